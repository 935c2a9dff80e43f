//! The renderer: one decode of an original, two renditions (JPEG or WebP) and a placeholder. Pure and
//! deterministic (no I/O, no clocks, no randomness), so a replayed message rewrites
//! byte-identical objects.

use image::RgbImage;
use imgpipe_contract::config::{RenditionFormat, ResizerConfig};
use imgpipe_contract::document::CameraInfo;

use crate::budget::DecodeBudget;
use crate::camera;
use crate::color::ToSrgb;
use crate::error::RenderError;
use crate::footprint::Sizes;
use crate::limits::{DecodeLimits, open};
use crate::placeholder::thumbhash;
use crate::resize::{fit, flatten_to_rgb8, orient, resize_to, swaps_axes};

/// Pure image work, no I/O: one decode, both renditions, placeholder. Holds the process's
/// decode memory budget, which clones share.
#[derive(Debug, Clone)]
pub struct Renderer {
    thumb_size: u32,
    preview_size: u32,
    format: RenditionFormat,
    quality: u8,
    keep_gps: bool,
    limits: DecodeLimits,
    budget: DecodeBudget,
}

/// Everything rendered from one original.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Format found in the content (not the file name): `jpeg`, `png`, `webp`, `gif`, `tiff`,
    /// `bmp`, `heic`, `avif`.
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
    /// Camera metadata from EXIF (GPS only when configured).
    pub camera: Option<CameraInfo>,
}

/// One encoded rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// `image/jpeg` or `image/webp`, per `resizer.format`.
    pub content_type: &'static str,
    /// File name extension for that type: `jpg` or `webp`.
    pub extension: &'static str,
}

impl Renderer {
    /// Takes sizes, format, quality, the pixel limit and the decode memory budget from
    /// `config` as they are: `Config::load` refused a zero size, a quality outside 1-100 and a
    /// budget under 64 MiB (`Config::validate`).
    pub fn new(config: &ResizerConfig) -> Self {
        Renderer {
            thumb_size: config.thumb_size,
            preview_size: config.preview_size,
            format: config.format,
            quality: config.jpeg_quality,
            keep_gps: config.keep_gps,
            limits: DecodeLimits::new(config.max_pixels, config.decode_memory_mb),
            budget: DecodeBudget::new(config.decode_memory_mb),
        }
    }

    /// The decode memory budget the renders of this renderer (and its clones) share: the
    /// handler reserves each render's [`decode_memory`](Self::decode_memory) from it.
    pub fn budget(&self) -> &DecodeBudget {
        &self.budget
    }

    /// The most memory rendering `bytes` will hold at once, estimated from the header alone,
    /// after the checks `render` makes before decoding (format, size, scans, and the whole
    /// budget). Cheap: no pixel is decoded.
    pub fn decode_memory(&self, bytes: &[u8]) -> Result<u64, RenderError> {
        Ok(open(bytes, &self.limits, self.sizes())?.peak_bytes)
    }

    fn sizes(&self) -> Sizes {
        Sizes {
            preview: self.preview_size,
            thumb: self.thumb_size,
        }
    }

    /// Decodes `bytes` (format sniffed from the content; size and memory checked from the
    /// header before decoding), turns it upright per EXIF, flattens alpha onto white, converts
    /// an embedded ICC profile to sRGB, and renders a thumbnail and a preview (never upscaled)
    /// plus a ThumbHash placeholder; reads the camera metadata.
    ///
    /// An image needing more than the whole decode budget is refused, but nothing is reserved
    /// here: concurrent callers go through [`render_in_budget`](crate::render_in_budget).
    ///
    /// CPU-bound (tens of milliseconds for a large photo): call it from a blocking thread.
    pub fn render(&self, bytes: &[u8]) -> Result<Rendered, RenderError> {
        // Both renditions come from this one decode: large enough for the preview.
        let decoded = open(bytes, &self.limits, self.sizes())?.decode()?;
        let orientation = decoded.orientation;
        let (stored_width, stored_height) = (decoded.width, decoded.height);
        let source = flatten_to_rgb8(decoded.image)?;
        let to_srgb = decoded.icc.as_deref().and_then(ToSrgb::from_icc);

        // Resize first and orient the small results: turning a 100-megapixel buffer a quarter
        // would copy it whole. `fit` is symmetric in width and height, so the stored-layout
        // targets orient into exactly the upright targets.
        let (preview_width, preview_height) = fit(stored_width, stored_height, self.preview_size);
        let mut preview = resize_to(&source, preview_width, preview_height)?;
        // Colour conversion at rendition size: a few hundred thousand pixels, not millions.
        if let Some(to_srgb) = &to_srgb {
            to_srgb.apply(&mut preview);
        }
        let (thumb_width, thumb_height) = fit(stored_width, stored_height, self.thumb_size);
        // The thumbnail comes from the preview when the preview is at least as large: far
        // fewer source pixels to convolve, and no visible difference at thumbnail size.
        let thumb = if preview_width >= thumb_width && preview_height >= thumb_height {
            resize_to(&preview, thumb_width, thumb_height)?
        } else {
            let mut thumb = resize_to(&source, thumb_width, thumb_height)?;
            if let Some(to_srgb) = &to_srgb {
                to_srgb.apply(&mut thumb);
            }
            thumb
        };
        drop(source);

        let preview = orient(preview, orientation);
        let thumb = orient(thumb, orientation);
        let (width, height) = if swaps_axes(orientation) {
            (stored_height, stored_width)
        } else {
            (stored_width, stored_height)
        };
        Ok(Rendered {
            format: decoded.format.to_owned(),
            width,
            height,
            placeholder: thumbhash(&thumb)?,
            thumb: self.encode(&thumb)?,
            preview: self.encode(&preview)?,
            camera: camera::read(bytes, self.keep_gps),
        })
    }

    fn encode(&self, image: &RgbImage) -> Result<Encoded, RenderError> {
        match self.format {
            RenditionFormat::Jpeg => self.encode_jpeg(image),
            RenditionFormat::Webp => self.encode_webp(image),
        }
    }

    /// Lossy WebP with libwebp, at the configured quality.
    fn encode_webp(&self, image: &RgbImage) -> Result<Encoded, RenderError> {
        let encoder = webp::Encoder::from_rgb(image.as_raw(), image.width(), image.height());
        let bytes = encoder
            .encode_simple(false, f32::from(self.quality))
            .map_err(|e| RenderError::Rendition(format!("WebP encoding: {e:?}")))?
            .to_vec();
        Ok(Encoded {
            bytes,
            width: image.width(),
            height: image.height(),
            content_type: "image/webp",
            extension: "webp",
        })
    }

    /// JPEG with libjpeg-turbo (SIMD), 4:2:0 chroma as cameras and web services use for photos:
    /// about a third smaller than 4:4:4 at the same quality and faster for the recognizer (and
    /// browsers) to decode.
    fn encode_jpeg(&self, image: &RgbImage) -> Result<Encoded, RenderError> {
        let error = |e: turbojpeg::Error| RenderError::Rendition(format!("JPEG encoding: {e}"));
        let mut compressor = turbojpeg::Compressor::new().map_err(error)?;
        compressor
            .set_quality(i32::from(self.quality))
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
            extension: "jpg",
        })
    }
}
