//! Decoding under limits. An upload is untrusted: its header is read first and the image is
//! refused on what the header declares (pixel count, side length, buffer size), so a small file
//! claiming 60000x60000 pixels costs microseconds instead of gigabytes.

use std::io::Cursor;

use image::error::LimitErrorKind;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use imgpipe_imaging::jpeg::{self, JpegError};

use crate::error::RenderError;
use crate::heif;

/// The longest side accepted. JPEG and WebP cannot store more, so a longer side in any header is
/// junk or a decompression bomb rather than a photo.
pub(crate) const MAX_SIDE: u32 = 65_535;

/// Bytes per pixel of the widest layout we accept at full `max_pixels` (16-bit RGBA); 32-bit
/// float images are refused above a quarter of the pixel limit, which is fine for photos.
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// Room for decoder state (Huffman tables, PNG row buffers, ICC and EXIF blocks).
const DECODER_HEADROOM: u64 = 64 * 1024 * 1024;

/// What the header may declare before any pixel is decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeLimits {
    max_pixels: u64,
    max_alloc: u64,
}

/// A decoded image, still as stored: the orientation is reported, not applied. A JPEG may be
/// decoded at reduced scale, so `image` can be smaller than `width x height`.
pub(crate) struct Decoded {
    pub image: DynamicImage,
    /// The format's name as published: `jpeg`, `png`, `webp`, `gif`, `tiff`, `bmp`, `heic`,
    /// `avif`.
    pub format: &'static str,
    pub orientation: Orientation,
    /// The size stored in the file, before orientation.
    pub width: u32,
    pub height: u32,
    /// The embedded ICC profile, if any: the pixels are in its colour space.
    pub icc: Option<Vec<u8>>,
}

impl DecodeLimits {
    pub fn new(max_pixels: u64) -> Self {
        DecodeLimits {
            max_pixels,
            max_alloc: max_pixels
                .saturating_mul(MAX_BYTES_PER_PIXEL)
                .saturating_add(DECODER_HEADROOM),
        }
    }

    /// Refuses a declared size over the side or pixel limit.
    fn check(&self, width: u32, height: u32) -> Result<(), RenderError> {
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(RenderError::TooWide { limit: MAX_SIDE });
        }
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(RenderError::TooManyPixels {
                width,
                height,
                limit: self.max_pixels,
            });
        }
        Ok(())
    }

    fn image_limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }
}

/// Sniffs the format from the content (the file name and declared type are the uploader's
/// claims), checks the header against `limits`, then decodes. A JPEG is decoded by libjpeg-turbo
/// at the smallest n/8 scale whose longer side is still at least `min_long` (shrink on load: a
/// 1280 px preview of a 6000 px photo needs a quarter-scale decode, a sixteenth of the pixels).
pub(crate) fn decode(
    bytes: &[u8],
    limits: &DecodeLimits,
    min_long: u32,
) -> Result<Decoded, RenderError> {
    if bytes.is_empty() {
        return Err(RenderError::Empty);
    }
    if let Some(kind) = heif::sniff(bytes) {
        let decoded = heif::decode(bytes, |width, height| limits.check(width, height))?;
        let (width, height) = (decoded.image.width(), decoded.image.height());
        return Ok(Decoded {
            image: decoded.image,
            format: kind.name(),
            // libheif has applied the container's rotation and mirroring.
            orientation: Orientation::NoTransforms,
            width,
            height,
            icc: decoded.icc,
        });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| RenderError::Corrupt(e.to_string()))?;
    let format = reader.format().ok_or(RenderError::NotAnImage)?;
    reader.limits(limits.image_limits());

    // Building the decoder parses only the header (up to the first pixel data).
    let mut decoder = reader.into_decoder().map_err(|e| classify(e, limits))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(RenderError::Corrupt(format!(
            "header declares {width}x{height} pixels"
        )));
    }
    limits.check(width, height)?;
    if decoder.total_bytes() > limits.max_alloc {
        return Err(RenderError::TooMuchMemory {
            limit: limits.max_alloc,
        });
    }
    if format == ImageFormat::Jpeg && !imgpipe_imaging::jpeg::is_complete(bytes) {
        return Err(RenderError::Corrupt(
            "the JPEG data ends before its end-of-image marker".to_owned(),
        ));
    }
    // A damaged EXIF block should not cost the uploader the picture: show it as stored.
    let orientation = match decoder.orientation() {
        Ok(Orientation::NoTransforms) | Err(_) => exif_orientation(&mut decoder),
        Ok(orientation) => orientation,
    };
    // Likewise a damaged profile: the pixels are shown unconverted.
    let icc = decoder.icc_profile().ok().flatten();
    if format == ImageFormat::Jpeg
        && let Some(scaled) = jpeg::decode_scaled(bytes, 0, min_long, limits.max_pixels)
            .map_err(|e| from_jpeg(e, limits))?
    {
        return Ok(Decoded {
            image: DynamicImage::ImageRgb8(scaled.image),
            format: format_name(format),
            orientation,
            width,
            height,
            icc,
        });
    }
    // Other formats, and CMYK JPEGs (which libjpeg-turbo cannot turn into RGB).
    let image = DynamicImage::from_decoder(decoder).map_err(|e| classify(e, limits))?;
    Ok(Decoded {
        image,
        format: format_name(format),
        orientation,
        width,
        height,
        icc,
    })
}

/// The name published in `SourceImage::format`: lowercase, `jpeg` rather than `jpg`.
fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::WebP => "webp",
        ImageFormat::Gif => "gif",
        ImageFormat::Tiff => "tiff",
        ImageFormat::Bmp => "bmp",
        // Only the formats above have decoders compiled in; others fail before this.
        _ => "other",
    }
}

/// The orientation in the decoder's EXIF block, also when the block keeps the `Exif\0\0` header
/// of a JPEG APP1 segment, as Pillow and some cameras write it into WebP and PNG files (the
/// `image` crate expects the bare TIFF structure there and reads such files as upright).
fn exif_orientation(decoder: &mut impl ImageDecoder) -> Orientation {
    decoder
        .exif_metadata()
        .ok()
        .flatten()
        .and_then(|exif| {
            Orientation::from_exif_chunk(exif.strip_prefix(b"Exif\0\0").unwrap_or(&exif))
        })
        .unwrap_or(Orientation::NoTransforms)
}

fn from_jpeg(error: JpegError, limits: &DecodeLimits) -> RenderError {
    match error {
        JpegError::TooLarge { width, height, .. } => RenderError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        },
        JpegError::Truncated => {
            RenderError::Corrupt("the JPEG data ends before its end-of-image marker".to_owned())
        }
        JpegError::Corrupt(reason) => RenderError::Corrupt(reason),
    }
}

fn classify(error: ImageError, limits: &DecodeLimits) -> RenderError {
    match error {
        ImageError::Limits(e) => match e.kind() {
            LimitErrorKind::DimensionError => RenderError::TooWide { limit: MAX_SIDE },
            LimitErrorKind::InsufficientMemory => RenderError::TooMuchMemory {
                limit: limits.max_alloc,
            },
            _ => RenderError::Unsupported(e.to_string()),
        },
        ImageError::Unsupported(e) => RenderError::Unsupported(e.to_string()),
        // Truncated input surfaces as an I/O error (unexpected end of file) from some decoders.
        other => RenderError::Corrupt(other.to_string()),
    }
}
