//! HEIC and AVIF, the HEIF-family formats phones and modern cameras upload, decoded by libheif
//! (HEVC through libde265, AV1 through dav1d or libaom, as Debian builds it).
//!
//! HEIF keeps rotation and mirroring in the container (`irot`/`imir`), which libheif applies
//! while decoding; an EXIF orientation inside a HEIF file is informational only (the HEIF spec
//! says so, and phones write both), so the image comes back upright.

use std::marker::PhantomData;
use std::sync::OnceLock;

use image::{DynamicImage, RgbImage, RgbaImage};
use libheif_rs::{
    ColorSpace, HeifContext, HeifError, HeifErrorCode, ImageHandle, LibHeif, RgbChroma,
    color_profile_types,
};

use crate::error::RenderError;
use crate::footprint::Layout;

/// The two HEIF flavours we tell apart, by the brands in the `ftyp` box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeifKind {
    /// HEVC-coded (Apple's and most phones' HEIC).
    Heic,
    /// AV1-coded.
    Avif,
}

impl HeifKind {
    pub fn name(self) -> &'static str {
        match self {
            HeifKind::Heic => "heic",
            HeifKind::Avif => "avif",
        }
    }
}

/// The HEIF kind of `bytes`, from its `ftyp` box: major brand first, then the compatible brands.
pub(crate) fn sniff(bytes: &[u8]) -> Option<HeifKind> {
    if bytes.get(4..8)? != b"ftyp" {
        return None;
    }
    let box_len = usize::try_from(u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?)).ok()?;
    // The box as declared, but never past the data; under 12 bytes there is no major brand.
    let brands = bytes.get(8..box_len.max(12).min(bytes.len()))?;
    let specific = |brand: &[u8]| match brand {
        b"avif" | b"avis" => Some(HeifKind::Avif),
        b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" => Some(HeifKind::Heic),
        _ => None,
    };
    let major = brands.get(0..4)?;
    // After the major brand and the minor version come the compatible brands.
    let compatible = brands.get(8..).unwrap_or_default().chunks_exact(4);
    specific(major)
        .or_else(|| compatible.clone().find_map(specific))
        // A generic still image (`mif1`) of another codec: libheif tells which, or refuses.
        .or_else(|| {
            std::iter::once(major)
                .chain(compatible)
                .any(|b| b == b"mif1" || b == b"msf1")
                .then_some(HeifKind::Heic)
        })
}

/// What libheif gave us: upright pixels and the ICC profile.
pub(crate) struct HeifDecoded {
    pub image: DynamicImage,
    pub icc: Option<Vec<u8>>,
}

/// libheif's global state (plugin registry), set up once per process.
fn lib() -> &'static LibHeif {
    static LIB: OnceLock<LibHeif> = OnceLock::new();
    LIB.get_or_init(LibHeif::new)
}

/// A HEIF container read, its primary image not yet decoded. libheif reads the image data
/// from the caller's bytes when decoding, so the header borrows them.
pub(crate) struct HeifHeader<'a> {
    handle: ImageHandle,
    // Dropped after the handle.
    _context: HeifContext,
    _bytes: PhantomData<&'a [u8]>,
    /// The primary image's size, transformations applied.
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    /// Bits of the luma samples as coded (8, 10 or 12).
    pub luma_bits: u8,
}

/// Reads the container and the primary image's properties, decoding no pixel. libheif's own
/// security limits (built into the library: image size, boxes, items) apply while it parses;
/// the bindings expose no setter for them.
pub(crate) fn open(bytes: &[u8]) -> Result<HeifHeader<'_>, RenderError> {
    let context = HeifContext::read_from_bytes(bytes).map_err(classify)?;
    let handle = context.primary_image_handle().map_err(classify)?;
    let (width, height) = (handle.width(), handle.height());
    if width == 0 || height == 0 {
        return Err(RenderError::Corrupt(format!(
            "HEIF image is {width}x{height} pixels"
        )));
    }
    Ok(HeifHeader {
        alpha: handle.has_alpha_channel(),
        luma_bits: handle.luma_bits_per_pixel(),
        handle,
        _context: context,
        _bytes: PhantomData,
        width,
        height,
    })
}

impl HeifHeader<'_> {
    /// The decoded buffer (8-bit RGB, RGBA with alpha), and what libheif holds beside it:
    /// its planes as coded (up to three samples a pixel plus alpha, two bytes each above 8
    /// bits) while converting them, or that buffer again while we copy it out.
    pub fn layout(&self) -> (Layout, u64) {
        let layout = Layout {
            width: self.width,
            height: self.height,
            channels: if self.alpha { 4 } else { 3 },
            bytes_per_sample: 1,
        };
        let sample_bytes = if self.luma_bits > 8 { 2 } else { 1 };
        let planes = layout.pixels() * (3 + u64::from(self.alpha)) * sample_bytes;
        (layout, planes.max(layout.bytes()))
    }

    /// Decodes the primary image to 8-bit RGB (RGBA when it has alpha), transformations
    /// applied.
    pub fn decode(self) -> Result<HeifDecoded, RenderError> {
        let handle = &self.handle;
        let alpha = self.alpha;
        let chroma = if alpha {
            RgbChroma::Rgba
        } else {
            RgbChroma::Rgb
        };
        // libheif's default options (transformations applied; interleaved RGB is 8 bits per
        // channel, so 10- and 12-bit images are converted). Options set through these 1.14
        // bindings on Debian's 1.15 library were seen to lose the rotation: leave them alone.
        let decoded = lib()
            .decode(handle, ColorSpace::Rgb(chroma), None)
            .map_err(classify)?;
        let icc = handle
            .color_profile_raw()
            .filter(|p| {
                use libheif_rs::ColorProfile;
                let kind = p.profile_type();
                kind == color_profile_types::PROF || kind == color_profile_types::R_ICC
            })
            .map(|p| p.data);

        let planes = decoded.planes();
        let plane = planes
            .interleaved
            .ok_or_else(|| RenderError::Corrupt("HEIF image decoded without pixels".to_owned()))?;
        let channels = if alpha { 4 } else { 3 };
        if usize::from(plane.storage_bits_per_pixel) != 8 * channels {
            return Err(RenderError::Unsupported(format!(
                "HEIF decoded to {} bits per pixel",
                plane.storage_bits_per_pixel
            )));
        }
        let (width, height) = (plane.width, plane.height);
        let row = width as usize * channels;
        let mut pixels = Vec::with_capacity(row * height as usize);
        for y in 0..height as usize {
            let start = y * plane.stride;
            let line = plane.data.get(start..start + row).ok_or_else(|| {
                RenderError::Corrupt("HEIF plane shorter than its size".to_owned())
            })?;
            pixels.extend_from_slice(line);
        }
        let wrong_size = || RenderError::Rendition("HEIF buffer has the wrong size".to_owned());
        let image = if alpha {
            DynamicImage::ImageRgba8(
                RgbaImage::from_raw(width, height, pixels).ok_or_else(wrong_size)?,
            )
        } else {
            DynamicImage::ImageRgb8(
                RgbImage::from_raw(width, height, pixels).ok_or_else(wrong_size)?,
            )
        };
        Ok(HeifDecoded { image, icc })
    }
}

fn classify(error: HeifError) -> RenderError {
    match error.code {
        HeifErrorCode::UnsupportedFeature
        | HeifErrorCode::UnsupportedFileType
        | HeifErrorCode::DecoderPluginError
        | HeifErrorCode::PluginLoadingError => RenderError::Unsupported(format!("HEIF: {error}")),
        HeifErrorCode::MemoryAllocationError => RenderError::Corrupt(format!(
            "HEIF: libheif refused the allocation (a security limit): {error}"
        )),
        _ => RenderError::Corrupt(format!("HEIF: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let len = 16 + 4 * compatible.len();
        let mut data = (len as u32).to_be_bytes().to_vec();
        data.extend(b"ftyp");
        data.extend(major);
        data.extend([0, 0, 0, 0]);
        for brand in compatible {
            data.extend(*brand);
        }
        data
    }

    #[test]
    fn brands_tell_heic_from_avif() {
        assert_eq!(sniff(&ftyp(b"heic", &[b"mif1"])), Some(HeifKind::Heic));
        assert_eq!(
            sniff(&ftyp(b"avif", &[b"mif1", b"miaf"])),
            Some(HeifKind::Avif)
        );
        assert_eq!(sniff(&ftyp(b"mif1", &[b"avif"])), Some(HeifKind::Avif));
        assert_eq!(sniff(&ftyp(b"mif1", &[b"miaf"])), Some(HeifKind::Heic));
        // An MP4 video is ISO-BMFF too, but not an image.
        assert_eq!(sniff(&ftyp(b"isom", &[b"mp41"])), None);
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn a_box_shorter_than_its_brand_is_not_heif() {
        // "ftyp" at offset 4 with fewer than 12 bytes: no major brand to read. (Clamping the
        // box end to 12..=len panicked here when len < 12.)
        for len in 8..12 {
            let mut data = 12u32.to_be_bytes().to_vec();
            data.extend(b"ftypheic");
            data.truncate(len);
            assert_eq!(sniff(&data), None, "{len} bytes");
        }
        // A box length under 12 or past the data is read as far as the data goes.
        let mut short_box = 4u32.to_be_bytes().to_vec();
        short_box.extend(b"ftypheic\0\0\0\0");
        assert_eq!(sniff(&short_box), Some(HeifKind::Heic));
        let mut long_box = 4096u32.to_be_bytes().to_vec();
        long_box.extend(b"ftypmif1\0\0\0\0avif");
        assert_eq!(sniff(&long_box), Some(HeifKind::Avif));
    }
}
