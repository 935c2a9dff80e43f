//! JPEG specifics shared by the resizer (originals) and the recognizer (previews): the
//! truncation check, the EXIF orientation, and reduced-scale decoding with libjpeg-turbo.
//!
//! Decoding dominates the cost of a small rendition: libjpeg-turbo can decode at n/8 of the
//! size in the DCT domain ("shrink on load"), skipping most of the inverse DCT and colour work,
//! so a 256 px thumbnail of a 20 MP photo or the model input of a 1280 px preview costs a
//! fraction of a full decode.
//!
//! The `image` crate's JPEG decoder (zune-jpeg) is lenient: a file cut in half decodes "fine",
//! with the missing rows filled in grey; a half-grey thumbnail, or a model tagging half a picture
//! with confidence, is worse than a clear error. A stream is complete when its end-of-image
//! marker is reached by walking the segments, so we check that ourselves. (JPEGs from cameras
//! that omit the marker are rare and are refused; our own previews always have it.)

use image::RgbImage;
use image::metadata::Orientation;
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat, ScalingFactor};

mod markers;

pub use markers::{Frame, Structure, exif, frame, is_complete, structure};

/// The most scans a JPEG may have. Each scan of a progressive JPEG is a pass over the whole
/// image's coefficients, so a small file of thousands of tiny scans can hold a core for
/// minutes; encoders write about ten (libjpeg's default progression) and rarely more than 30.
pub const MAX_SCANS: u32 = 100;

/// Why a JPEG could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum JpegError {
    #[error("truncated JPEG (no end-of-image marker)")]
    Truncated,
    #[error("JPEG is {width}x{height}, over the limit of {max_pixels} pixels")]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("JPEG has {scans} scans, over the limit of {limit}")]
    TooManyScans { scans: u32, limit: u32 },
    #[error("corrupt JPEG: {0}")]
    Corrupt(String),
}

/// A JPEG decoded at reduced scale, as RGB, not yet turned upright.
#[derive(Debug)]
pub struct Scaled {
    pub image: RgbImage,
    /// The full size stored in the file.
    pub width: u32,
    pub height: u32,
    /// The numerator `n` of the `n/8` scale decoded at.
    pub eighths: u32,
    /// From the EXIF block; apply it after resizing, where it is cheapest.
    pub orientation: Orientation,
}

/// The smallest `n/8` scale (`n` in 1..=8) at which a `width x height` picture still has its
/// shorter side at least `min_short` and its longer side at least `min_long` (each capped at the
/// full size: a picture is never scaled up). libjpeg-turbo rounds scaled sides up.
pub fn scale_eighths(width: u32, height: u32, min_short: u32, min_long: u32) -> u32 {
    let (short, long) = (width.min(height), width.max(height));
    let (need_short, need_long) = (min_short.min(short), min_long.min(long));
    let scaled = |side: u32, n: u32| (u64::from(side) * u64::from(n)).div_ceil(8);
    (1..=8)
        .find(|&n| {
            scaled(short, n) >= u64::from(need_short) && scaled(long, n) >= u64::from(need_long)
        })
        .unwrap_or(8)
}

/// Decodes a baseline or progressive JPEG at the smallest n/8 scale that keeps the sides at
/// least `min_short` and `min_long` (see [`scale_eighths`]), with libjpeg-turbo. The pixel cap
/// is checked against the header before anything is allocated.
///
/// `Ok(None)` for JPEGs libjpeg-turbo cannot turn into RGB (CMYK and YCCK, from print
/// workflows): decode those another way.
pub fn decode_scaled(
    data: &[u8],
    min_short: u32,
    min_long: u32,
    max_pixels: u64,
) -> Result<Option<Scaled>, JpegError> {
    let structure = structure(data);
    if !structure.complete {
        return Err(JpegError::Truncated);
    }
    if structure.scans > MAX_SCANS {
        return Err(JpegError::TooManyScans {
            scans: structure.scans,
            limit: MAX_SCANS,
        });
    }
    let corrupt = |e: turbojpeg::Error| JpegError::Corrupt(e.to_string());
    let mut decompressor = Decompressor::new().map_err(corrupt)?;
    let header = decompressor.read_header(data).map_err(corrupt)?;
    if matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK) {
        return Ok(None);
    }
    let (width, height) = (
        u32::try_from(header.width).map_err(|e| JpegError::Corrupt(e.to_string()))?,
        u32::try_from(header.height).map_err(|e| JpegError::Corrupt(e.to_string()))?,
    );
    if width == 0 || height == 0 {
        return Err(JpegError::Corrupt(format!("JPEG is {width}x{height}")));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(JpegError::TooLarge {
            width,
            height,
            max_pixels,
        });
    }
    let eighths = scale_eighths(width, height, min_short, min_long);
    let scale = ScalingFactor::new(eighths as usize, 8);
    decompressor.set_scaling_factor(scale).map_err(corrupt)?;
    // Counted above already; libjpeg-turbo's own count guards the same limit should our walk
    // and its parser ever disagree. (The turbojpeg crate exposes no memory or pixel limit:
    // TJPARAM_MAXMEMORY and TJPARAM_MAXPIXELS are not reachable without unsafe code; the pixel
    // cap is checked above and the memory is estimated by the caller.)
    decompressor.set_scan_limit(MAX_SCANS).map_err(corrupt)?;
    let scaled = header.scaled(scale);
    let mut pixels = vec![0u8; 3 * scaled.width * scaled.height];
    decompressor
        .decompress(
            data,
            Image {
                pixels: pixels.as_mut_slice(),
                width: scaled.width,
                pitch: 3 * scaled.width,
                height: scaled.height,
                format: PixelFormat::RGB,
            },
        )
        .map_err(corrupt)?;
    let image = RgbImage::from_raw(
        u32::try_from(scaled.width).map_err(|e| JpegError::Corrupt(e.to_string()))?,
        u32::try_from(scaled.height).map_err(|e| JpegError::Corrupt(e.to_string()))?,
        pixels,
    )
    .ok_or_else(|| JpegError::Corrupt("decoded buffer has the wrong size".to_owned()))?;
    Ok(Some(Scaled {
        image,
        width,
        height,
        eighths,
        orientation: orientation(data),
    }))
}

/// The EXIF orientation of a JPEG (upright when absent or unreadable: a broken EXIF block should
/// not lose an otherwise good picture).
pub fn orientation(data: &[u8]) -> Orientation {
    exif(data)
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::markers::tests::minimal;

    #[test]
    fn scale_is_the_smallest_that_keeps_the_sides() {
        // A 1280x853 preview for a 256 px shorter side: 3/8 gives 480x320, 2/8 only 320x214.
        assert_eq!(scale_eighths(1280, 853, 256, 0), 3);
        // OCR wants the longer side at 960: 6/8.
        assert_eq!(scale_eighths(1280, 853, 256, 960), 6);
        // A 6000x4000 original for a 1280 px preview: 2/8 gives 1500x1000.
        assert_eq!(scale_eighths(6000, 4000, 0, 1280), 2);
        // Small pictures are decoded whole, never below what they are.
        assert_eq!(scale_eighths(200, 100, 256, 0), 8);
        assert_eq!(scale_eighths(40_000, 10, 256, 256), 8);
    }

    #[test]
    fn exif_orientation_is_read_from_app1() {
        // APP1 "Exif\0\0", big-endian TIFF, one IFD entry: 0x0112 SHORT 1 = 6.
        let mut data = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x22];
        data.extend(b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01");
        data.extend([
            0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00,
        ]);
        data.extend([0x00, 0x00, 0x00, 0x00]);
        data.extend([0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9]);
        assert_eq!(orientation(&data), Orientation::Rotate90);
        assert_eq!(orientation(&minimal()), Orientation::NoTransforms);
        assert_eq!(orientation(&data[..12]), Orientation::NoTransforms);
    }
}
