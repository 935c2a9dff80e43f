//! Pixel work on decoded images: flattening to RGB, fitting a box, Lanczos3 resampling and
//! EXIF orientation.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};

use crate::error::RenderError;

/// Renditions are JPEG, which has no alpha: transparent pixels are composited onto white, as a
/// browser shows them on a white page, instead of turning black.
///
/// 8-bit RGBA is flattened in place (pixel `i` is read from byte `4i` and written to `3i`,
/// never ahead of what is still to be read), so a large image needs no second buffer; the
/// buffer keeps its capacity, which is what `footprint.rs` counts.
pub(crate) fn flatten_to_rgb8(image: DynamicImage) -> Result<RgbImage, RenderError> {
    if !image.color().has_alpha() {
        return Ok(image.into_rgb8());
    }
    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    let mut pixels = rgba.into_raw();
    let count = pixels.len() / 4;
    for i in 0..count {
        let [r, g, b, a] = [
            pixels[4 * i],
            pixels[4 * i + 1],
            pixels[4 * i + 2],
            pixels[4 * i + 3],
        ];
        let alpha = u32::from(a);
        let blend = |c: u8| {
            let blended = (u32::from(c) * alpha + 255 * (255 - alpha) + 127) / 255;
            u8::try_from(blended).unwrap_or(u8::MAX)
        };
        pixels[3 * i] = blend(r);
        pixels[3 * i + 1] = blend(g);
        pixels[3 * i + 2] = blend(b);
    }
    pixels.truncate(3 * count);
    RgbImage::from_raw(width, height, pixels)
        .ok_or_else(|| RenderError::Rendition("flattened buffer has the wrong size".to_owned()))
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
    fn flattening_in_place_matches_flattening_into_a_new_buffer() {
        let (width, height) = (7, 5);
        let pixels: Vec<u8> = (0..width * height * 4)
            .map(|i| u8::try_from((i * 37 + i / 4 * 11) % 256).unwrap_or(0))
            .collect();
        let rgba = image::RgbaImage::from_raw(width, height, pixels).expect("7x5 buffer");
        let expected: Vec<u8> = rgba
            .pixels()
            .flat_map(|p| {
                let alpha = u32::from(p[3]);
                (0..3).map(move |c| {
                    let blended = (u32::from(p[c]) * alpha + 255 * (255 - alpha) + 127) / 255;
                    u8::try_from(blended).unwrap_or(u8::MAX)
                })
            })
            .collect();
        let rgb = flatten_to_rgb8(DynamicImage::ImageRgba8(rgba)).expect("flattens");
        assert_eq!(rgb.dimensions(), (width, height));
        assert_eq!(rgb.as_raw(), &expected);
    }

    #[test]
    fn transparent_pixels_become_white() {
        let rgba = image::RgbaImage::from_raw(2, 1, vec![0, 0, 0, 0, 10, 20, 30, 255])
            .expect("2x1 buffer");
        let rgb = flatten_to_rgb8(DynamicImage::ImageRgba8(rgba)).expect("flattens");
        assert_eq!(rgb.as_raw(), &[255, 255, 255, 10, 20, 30]);
    }
}
