//! The renderer: one decode of an original, two JPEG renditions and a placeholder. Pure and
//! deterministic (no I/O, no clocks, no randomness), so a replayed message rewrites
//! byte-identical objects.

use image::RgbImage;
use imgpipe_core::config::ResizerConfig;

use crate::error::RenderError;
use crate::limits::{DecodeLimits, decode, format_name};
use crate::placeholder::thumbhash;
use crate::resize::{fit, flatten_to_rgb8, orient, resize_to, swaps_axes};

/// Pure image work, no I/O: one decode, both renditions, placeholder.
#[derive(Debug, Clone)]
pub struct Renderer {
    thumb_size: u32,
    preview_size: u32,
    jpeg_quality: u8,
    limits: DecodeLimits,
}

/// Everything rendered from one original.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Format found in the content (not the file name): `jpeg`, `png`, `webp`, `gif`, `tiff`,
    /// `bmp`.
    pub format: String,
    /// Width of the original after EXIF orientation.
    pub width: u32,
    /// Height of the original after EXIF orientation.
    pub height: u32,
    /// Longest side at most `thumb_size`.
    pub thumb: Encoded,
    /// Longest side at most `preview_size`.
    pub preview: Encoded,
    /// ThumbHash of the image, base64 (standard alphabet).
    pub placeholder: String,
}

/// One encoded rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Always `image/jpeg` today.
    pub content_type: &'static str,
}

impl Renderer {
    /// Takes sizes, quality and the pixel limit from `config`; nonsensical values (a zero size,
    /// quality 0 or over 100) are clamped rather than refused.
    pub fn new(config: &ResizerConfig) -> Self {
        Renderer {
            thumb_size: config.thumb_size.max(1),
            preview_size: config.preview_size.max(1),
            jpeg_quality: config.jpeg_quality.clamp(1, 100),
            limits: DecodeLimits::new(config.max_pixels),
        }
    }

    /// Decodes `bytes` (format sniffed from the content; dimensions checked from the header
    /// before decoding), turns it upright per EXIF, flattens alpha onto white, and renders a
    /// thumbnail and a preview as JPEG (never upscaled) plus a ThumbHash placeholder.
    ///
    /// CPU-bound (tens of milliseconds for a large photo): call it from a blocking thread.
    pub fn render(&self, bytes: &[u8]) -> Result<Rendered, RenderError> {
        // Both renditions come from this one decode: large enough for the preview.
        let decoded = decode(bytes, &self.limits, self.preview_size)?;
        let orientation = decoded.orientation;
        let (stored_width, stored_height) = (decoded.width, decoded.height);
        let source = flatten_to_rgb8(decoded.image);

        // Resize first and orient the small results: turning a 100-megapixel buffer a quarter
        // would copy it whole. `fit` is symmetric in width and height, so the stored-layout
        // targets orient into exactly the upright targets.
        let (preview_width, preview_height) = fit(stored_width, stored_height, self.preview_size);
        let preview = resize_to(&source, preview_width, preview_height)?;
        let (thumb_width, thumb_height) = fit(stored_width, stored_height, self.thumb_size);
        // The thumbnail comes from the preview when the preview is at least as large: far
        // fewer source pixels to convolve, and no visible difference at thumbnail size.
        let thumb_source = if preview_width >= thumb_width && preview_height >= thumb_height {
            &preview
        } else {
            &source
        };
        let thumb = resize_to(thumb_source, thumb_width, thumb_height)?;
        drop(source);

        let preview = orient(preview, orientation);
        let thumb = orient(thumb, orientation);
        let (width, height) = if swaps_axes(orientation) {
            (stored_height, stored_width)
        } else {
            (stored_width, stored_height)
        };
        Ok(Rendered {
            format: format_name(decoded.format),
            width,
            height,
            placeholder: thumbhash(&thumb)?,
            thumb: self.encode(&thumb)?,
            preview: self.encode(&preview)?,
        })
    }

    /// JPEG with libjpeg-turbo (SIMD), 4:2:0 chroma as cameras and web services use for photos:
    /// about a third smaller than 4:4:4 at the same quality and faster for the recognizer (and
    /// browsers) to decode.
    fn encode(&self, image: &RgbImage) -> Result<Encoded, RenderError> {
        let error = |e: turbojpeg::Error| RenderError::Rendition(format!("JPEG encoding: {e}"));
        let mut compressor = turbojpeg::Compressor::new().map_err(error)?;
        compressor
            .set_quality(i32::from(self.jpeg_quality))
            .map_err(error)?;
        compressor
            .set_subsamp(turbojpeg::Subsamp::Sub2x2)
            .map_err(error)?;
        let (width, height) = (image.width() as usize, image.height() as usize);
        let bytes = compressor
            .compress_to_vec(turbojpeg::Image {
                pixels: image.as_raw().as_slice(),
                width,
                pitch: 3 * width,
                height,
                format: turbojpeg::PixelFormat::RGB,
            })
            .map_err(error)?;
        Ok(Encoded {
            bytes,
            width: image.width(),
            height: image.height(),
            content_type: "image/jpeg",
        })
    }
}
