//! Pixel work on decoded images: flattening to RGB, fitting a box, Lanczos3 resampling and
//! EXIF orientation.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};

use crate::error::RenderError;

/// Renditions are JPEG, which has no alpha: transparent pixels are composited onto white, as a
/// browser shows them on a white page, instead of turning black.
pub(crate) fn flatten_to_rgb8(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u32::from(src[3]);
        for c in 0..3 {
            let blended = (u32::from(src[c]) * alpha + 255 * (255 - alpha) + 127) / 255;
            dst[c] = u8::try_from(blended).unwrap_or(u8::MAX);
        }
    }
    rgb
}

/// The size of `width`x`height` scaled so its longest side is `max_side`, keeping the aspect
/// ratio (rounded, at least 1 px). Never upscales: a smaller image keeps its size.
pub(crate) fn fit(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= max_side {
        return (width, height);
    }
    let scale = |side: u32| {
        let scaled =
            (u64::from(side) * u64::from(max_side) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled).unwrap_or(max_side).max(1)
    };
    (scale(width), scale(height))
}

/// Resamples `source` to exactly `width`x`height` with a Lanczos3 convolution.
pub(crate) fn resize_to(
    source: &RgbImage,
    width: u32,
    height: u32,
) -> Result<RgbImage, RenderError> {
    if source.dimensions() == (width, height) {
        return Ok(source.clone());
    }
    let mut resized = RgbImage::new(width, height);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(source, &mut resized, &options)
        .map_err(|e| RenderError::Rendition(format!("resize to {width}x{height}: {e}")))?;
    Ok(resized)
}

/// Whether `orientation` turns the image a quarter, so width and height trade places.
pub(crate) fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Turns a stored image upright.
pub(crate) fn orient(image: RgbImage, orientation: Orientation) -> RgbImage {
    let mut image = DynamicImage::ImageRgb8(image);
    image.apply_orientation(orientation);
    image.into_rgb8()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(fit(640, 427, 256), (256, 171));
        assert_eq!(fit(427, 640, 256), (171, 256));
        assert_eq!(fit(640, 427, 1280), (640, 427));
        assert_eq!(fit(6000, 4000, 1280), (1280, 853));
        assert_eq!(fit(100_000, 3, 256), (256, 1));
        assert_eq!(fit(256, 256, 256), (256, 256));
    }

    #[test]
    fn transparent_pixels_become_white() {
        let rgba = image::RgbaImage::from_raw(2, 1, vec![0, 0, 0, 0, 10, 20, 30, 255])
            .expect("2x1 buffer");
        let rgb = flatten_to_rgb8(DynamicImage::ImageRgba8(rgba));
        assert_eq!(rgb.as_raw(), &[255, 255, 255, 10, 20, 30]);
    }
}
