//! HEIC and AVIF, the HEIF-family formats phones and modern cameras upload, decoded by libheif
//! (HEVC through libde265, AV1 through dav1d or libaom, as Debian builds it).
//!
//! HEIF keeps rotation and mirroring in the container (`irot`/`imir`), which libheif applies
//! while decoding; an EXIF orientation inside a HEIF file is informational only (the HEIF spec
//! says so, and phones write both), so the image comes back upright.

use std::sync::OnceLock;

use image::{DynamicImage, RgbImage, RgbaImage};
use libheif_rs::{
    ColorSpace, HeifContext, HeifError, HeifErrorCode, LibHeif, RgbChroma, color_profile_types,
};

use crate::error::RenderError;

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
    let brands = bytes.get(8..box_len.clamp(12, bytes.len()))?;
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

/// Reads the container, checks the primary image's size with `check` before any pixel is
/// decoded, then decodes it to 8-bit RGB (RGBA when it has alpha), transformations applied.
pub(crate) fn decode(
    bytes: &[u8],
    check: impl FnOnce(u32, u32) -> Result<(), RenderError>,
) -> Result<HeifDecoded, RenderError> {
    let context = HeifContext::read_from_bytes(bytes).map_err(classify)?;
    let handle = context.primary_image_handle().map_err(classify)?;
    let (width, height) = (handle.width(), handle.height());
    if width == 0 || height == 0 {
        return Err(RenderError::Corrupt(format!(
            "HEIF image is {width}x{height} pixels"
        )));
    }
    check(width, height)?;
    let alpha = handle.has_alpha_channel();
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    // libheif's default options (transformations applied; interleaved RGB is 8 bits per
    // channel, so 10- and 12-bit images are converted). Options set through these 1.14 bindings
    // on Debian's 1.15 library were seen to lose the rotation: leave them alone.
    let decoded = lib()
        .decode(&handle, ColorSpace::Rgb(chroma), None)
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
        let line = plane
            .data
            .get(start..start + row)
            .ok_or_else(|| RenderError::Corrupt("HEIF plane shorter than its size".to_owned()))?;
        pixels.extend_from_slice(line);
    }
    let wrong_size = || RenderError::Rendition("HEIF buffer has the wrong size".to_owned());
    let image = if alpha {
        DynamicImage::ImageRgba8(RgbaImage::from_raw(width, height, pixels).ok_or_else(wrong_size)?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, pixels).ok_or_else(wrong_size)?)
    };
    Ok(HeifDecoded { image, icc })
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
}
