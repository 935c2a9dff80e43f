//! PNG through the `png` crate directly, to choose what it outputs: samples of 16 bits are cut
//! to 8 as each row is decoded (`STRIP_16`), so a 16-bit RGBA image costs 4 bytes a pixel
//! instead of 8 for the `image` crate's 16-bit buffer plus 4 for the 8-bit copy made from it.
//! Renditions are 8-bit JPEG or WebP, so the low byte was never going to be seen.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};
use png::{BitDepth, ColorType, DecodingError, Transformations};

use crate::error::RenderError;
use crate::footprint::Layout;

/// A PNG whose chunks before the image data have been read.
pub(crate) struct PngHeader<'a> {
    reader: png::Reader<Cursor<&'a [u8]>>,
    limit: u64,
}

/// Reads the header and the chunks before the image data (palette, ICC profile, EXIF).
/// `metadata_limit` caps what the decoder allocates for those and for its row buffers; the
/// pixels go to a buffer of ours.
pub(crate) fn open(bytes: &[u8], metadata_limit: u64) -> Result<PngHeader<'_>, RenderError> {
    let limits = png::Limits {
        bytes: usize::try_from(metadata_limit).unwrap_or(usize::MAX),
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    // Palettes and low bit depths become 8-bit samples, transparency an alpha channel.
    decoder.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
    decoder.set_ignore_text_chunk(true);
    let reader = decoder
        .read_info()
        .map_err(|e| classify(e, metadata_limit))?;
    Ok(PngHeader {
        reader,
        limit: metadata_limit,
    })
}

impl PngHeader<'_> {
    /// The stored size.
    pub fn size(&self) -> (u32, u32) {
        self.reader.info().size()
    }

    /// The decoded buffer: always 8 bits a sample, and whether it has alpha.
    pub fn layout(&self) -> Result<(Layout, bool), RenderError> {
        let (width, height) = self.size();
        let (color, depth) = self.reader.output_color_type();
        if depth != BitDepth::Eight {
            return Err(RenderError::Unsupported(format!(
                "PNG decoded to {} bits a sample",
                depth as u8
            )));
        }
        let (channels, alpha) = match color {
            ColorType::Grayscale => (1, false),
            ColorType::GrayscaleAlpha => (2, true),
            ColorType::Rgb => (3, false),
            ColorType::Rgba => (4, true),
            ColorType::Indexed => {
                return Err(RenderError::Unsupported(
                    "PNG palette left unexpanded".to_owned(),
                ));
            }
        };
        let layout = Layout {
            width,
            height,
            channels,
            bytes_per_sample: 1,
        };
        Ok((layout, alpha))
    }

    /// The embedded ICC profile.
    pub fn icc(&self) -> Option<Vec<u8>> {
        self.reader
            .info()
            .icc_profile
            .as_deref()
            .map(<[u8]>::to_vec)
    }

    /// The EXIF orientation, when an `eXIf` chunk comes before the image data. Some writers
    /// keep the `Exif\0\0` header of a JPEG APP1 segment in it.
    pub fn orientation(&self) -> Orientation {
        self.reader
            .info()
            .exif_metadata
            .as_deref()
            .and_then(|exif| {
                Orientation::from_exif_chunk(exif.strip_prefix(b"Exif\0\0").unwrap_or(exif))
            })
            .unwrap_or(Orientation::NoTransforms)
    }

    /// Decodes the image (the first frame of an animated PNG), 8 bits a sample.
    pub fn decode(mut self) -> Result<DynamicImage, RenderError> {
        let (layout, _) = self.layout()?;
        let size = self
            .reader
            .output_buffer_size()
            .ok_or_else(|| RenderError::Corrupt("PNG image does not fit in memory".to_owned()))?;
        let mut pixels = vec![0u8; size];
        self.reader
            .next_frame(&mut pixels)
            .map_err(|e| classify(e, self.limit))?;
        let (width, height) = (layout.width, layout.height);
        let wrong_size = || RenderError::Rendition("PNG buffer has the wrong size".to_owned());
        Ok(match layout.channels {
            1 => DynamicImage::ImageLuma8(
                GrayImage::from_raw(width, height, pixels).ok_or_else(wrong_size)?,
            ),
            2 => DynamicImage::ImageLumaA8(
                GrayAlphaImage::from_raw(width, height, pixels).ok_or_else(wrong_size)?,
            ),
            3 => DynamicImage::ImageRgb8(
                RgbImage::from_raw(width, height, pixels).ok_or_else(wrong_size)?,
            ),
            _ => DynamicImage::ImageRgba8(
                RgbaImage::from_raw(width, height, pixels).ok_or_else(wrong_size)?,
            ),
        })
    }
}

fn classify(error: DecodingError, limit: u64) -> RenderError {
    match error {
        DecodingError::LimitsExceeded => RenderError::TooMuchMemory { limit },
        DecodingError::Parameter(e) => RenderError::Rendition(format!("PNG: {e}")),
        // A truncated file is an I/O error (unexpected end of file).
        other => RenderError::Corrupt(other.to_string()),
    }
}
