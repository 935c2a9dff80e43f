//! Image bytes to model input, exactly as the model was validated (see `models/README.md`):
//! EXIF orientation applied, RGB, shorter side resized to 256 with an antialiased bilinear filter
//! (Pillow's `BILINEAR`), centre crop 224x224, NCHW f32, `(x - 127) / 128`.

use std::borrow::Cow;
use std::io::Cursor;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use ndarray::ArrayViewMut3;
#[cfg(test)]
use ndarray::{Array4, Axis};

use imgpipe_imaging::jpeg;

use crate::error::RecognizerError;

/// The shorter side is resized to this before cropping.
pub const RESIZE_SHORTER: u32 = 256;
/// Side of the square the model sees.
pub const CROP: u32 = 224;
/// Decoder allocation cap: far above any preview, low enough that a decompression bomb fails
/// cleanly instead of exhausting memory.
const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;

/// Decodes JPEG/PNG/WebP/... bytes (format sniffed from the content) and applies the EXIF
/// orientation so the model sees the picture upright. Full size; see [`decode_at_least`].
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, RecognizerError> {
    decode_at_least(bytes, u32::MAX, u32::MAX)
}

/// [`decode`], but a JPEG is decoded at the smallest n/8 scale (in libjpeg-turbo's DCT domain)
/// whose shorter side is still at least `min_short` and longer side at least `min_long`: the
/// model needs a 256 px shorter side ([`RESIZE_SHORTER`]), so a 1280 px preview is decoded at
/// 3/8, about a seventh of the pixels. Other formats are decoded whole.
pub fn decode_at_least(
    bytes: &[u8],
    min_short: u32,
    min_long: u32,
) -> Result<DynamicImage, RecognizerError> {
    let decode_error = |e: &dyn std::fmt::Display| RecognizerError::Decode(e.to_string());
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_error(&e))?;
    match reader.format() {
        None => {
            return Err(RecognizerError::Decode(
                "not a recognised image format".to_owned(),
            ));
        }
        Some(ImageFormat::Jpeg) => {
            let pixels = MAX_DECODE_ALLOC / 3;
            if let Some(scaled) = jpeg::decode_scaled(bytes, min_short, min_long, pixels)
                .map_err(|e| decode_error(&e))?
            {
                let mut image = DynamicImage::ImageRgb8(scaled.image);
                image.apply_orientation(scaled.orientation);
                return Ok(image);
            }
            // CMYK: libjpeg-turbo cannot make RGB of it; the `image` crate can.
        }
        Some(_) => {}
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| decode_error(&e))?;
    // A broken EXIF block should not lose an otherwise good picture: treat it as upright.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| decode_error(&e))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Size after resizing the shorter side to [`RESIZE_SHORTER`], the longer side rounded like
/// Python's `round` (ties to even), as the reference preprocessing does.
pub(crate) fn resized_size(width: u32, height: u32) -> (u32, u32) {
    let scaled = |long: u32, short: u32| {
        let exact = f64::from(long) * f64::from(RESIZE_SHORTER) / f64::from(short);
        (exact.round_ties_even() as u32).max(RESIZE_SHORTER)
    };
    if width <= height {
        (RESIZE_SHORTER, scaled(height, width))
    } else {
        (scaled(width, height), RESIZE_SHORTER)
    }
}

/// Fills `out` (shape `[3, 224, 224]`) with the normalised centre crop of `image`.
pub(crate) fn write_tensor(
    image: &DynamicImage,
    resizer: &mut Resizer,
    mut out: ArrayViewMut3<'_, f32>,
) -> Result<(), RecognizerError> {
    let (width, height) = (image.width(), image.height());
    if width == 0 || height == 0 {
        return Err(RecognizerError::InvalidImage(format!(
            "image is {width}x{height}"
        )));
    }
    let rgb: Cow<'_, RgbImage> = match image {
        DynamicImage::ImageRgb8(rgb) => Cow::Borrowed(rgb),
        other => Cow::Owned(other.to_rgb8()),
    };

    // Resizing only the source region behind the 224x224 crop gives the same pixels as resizing
    // the whole image and cropping (the filter still reads neighbours outside the region, up to
    // the image border), without allocating a huge intermediate for extreme aspect ratios.
    let (resized_w, resized_h) = resized_size(width, height);
    let (left, top) = ((resized_w - CROP) / 2, (resized_h - CROP) / 2);
    let (scale_x, scale_y) = (
        f64::from(width) / f64::from(resized_w),
        f64::from(height) / f64::from(resized_h),
    );
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(
            f64::from(left) * scale_x,
            f64::from(top) * scale_y,
            f64::from(CROP) * scale_x,
            f64::from(CROP) * scale_y,
        );
    let mut cropped = RgbImage::new(CROP, CROP);
    resizer
        .resize(rgb.as_ref(), &mut cropped, &options)
        .map_err(|e| RecognizerError::InvalidImage(format!("resize failed: {e}")))?;

    let plane = (CROP * CROP) as usize;
    let out = out
        .as_slice_mut()
        .ok_or_else(|| RecognizerError::Inference("input tensor is not contiguous".to_owned()))?;
    let (red, rest) = out.split_at_mut(plane);
    let (green, blue) = rest.split_at_mut(plane);
    for (i, pixel) in cropped.as_raw().chunks_exact(3).enumerate() {
        red[i] = normalise(pixel[0]);
        green[i] = normalise(pixel[1]);
        blue[i] = normalise(pixel[2]);
    }
    Ok(())
}

/// How many `f32` values one image's model input holds (`3 x 224 x 224`).
pub const IMAGE_VALUES: usize = 3 * (CROP as usize) * (CROP as usize);

/// One image's model input, `[3, 224, 224]` flattened (NCHW without the N): what each caller
/// prepares in its own thread before the batcher stacks it with others.
pub fn tensor(image: &DynamicImage) -> Result<Vec<f32>, RecognizerError> {
    thread_local! {
        // The resizer keeps scratch buffers: one per thread saves reallocating them per image.
        static RESIZER: std::cell::RefCell<Resizer> = std::cell::RefCell::new(Resizer::new());
    }
    let side = CROP as usize;
    let mut values = vec![0.0; IMAGE_VALUES];
    let view = ArrayViewMut3::from_shape((3, side, side), values.as_mut_slice())
        .map_err(|e| RecognizerError::Inference(format!("input tensor: {e}")))?;
    RESIZER.with(|resizer| write_tensor(image, &mut resizer.borrow_mut(), view))?;
    Ok(values)
}

/// Stacks the preprocessed images into one `[N, 3, 224, 224]` batch.
#[cfg(test)]
pub(crate) fn batch(images: &[DynamicImage]) -> Result<Array4<f32>, RecognizerError> {
    let side = CROP as usize;
    let mut batch = Array4::<f32>::zeros((images.len(), 3, side, side));
    let mut resizer = Resizer::new();
    for (image, slot) in images.iter().zip(batch.axis_iter_mut(Axis(0))) {
        write_tensor(image, &mut resizer, slot)?;
    }
    Ok(batch)
}

fn normalise(value: u8) -> f32 {
    (f32::from(value) - 127.0) / 128.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_side_becomes_256() {
        assert_eq!(resized_size(640, 427), (384, 256));
        assert_eq!(resized_size(427, 640), (256, 384));
        assert_eq!(resized_size(128, 128), (256, 256));
        assert_eq!(resized_size(1280, 853), (384, 256));
        // Extreme aspect ratios stay computable: only the crop is ever materialised.
        assert_eq!(resized_size(1, 10_000), (256, 2_560_000));
    }

    #[test]
    fn uniform_image_normalises_to_constant() {
        let image =
            DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 200, image::Rgb([127, 255, 0])));
        let tensor = batch(std::slice::from_ref(&image)).expect("preprocess");
        assert_eq!(tensor.shape(), &[1, 3, 224, 224]);
        assert!(tensor.index_axis(Axis(1), 0).iter().all(|&v| v == 0.0));
        assert!(
            tensor
                .index_axis(Axis(1), 1)
                .iter()
                .all(|&v| v == 128.0 / 128.0)
        );
        assert!(
            tensor
                .index_axis(Axis(1), 2)
                .iter()
                .all(|&v| v == -127.0 / 128.0)
        );
    }

    #[test]
    fn tiny_and_thin_images_are_handled() {
        for (w, h) in [(1, 1), (1, 5000), (3000, 2)] {
            let image = DynamicImage::ImageRgb8(RgbImage::new(w, h));
            let tensor = batch(std::slice::from_ref(&image)).expect("preprocess");
            assert_eq!(tensor.shape(), &[1, 3, 224, 224]);
        }
    }

    #[test]
    fn one_tensor_equals_its_slot_in_a_batch() {
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(640, 427, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        }));
        let single = tensor(&image).expect("tensor");
        let stacked = batch(std::slice::from_ref(&image)).expect("batch");
        assert_eq!(single.len(), IMAGE_VALUES);
        assert_eq!(stacked.as_slice().expect("contiguous"), single.as_slice());
    }

    #[test]
    fn empty_image_is_invalid() {
        let image = DynamicImage::ImageRgb8(RgbImage::new(0, 10));
        let err = batch(std::slice::from_ref(&image)).expect_err("zero width");
        assert!(err.is_bad_input(), "{err}");
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let err = decode(b"definitely not an image").expect_err("garbage");
        assert!(matches!(err, RecognizerError::Decode(_)), "{err}");
    }
}
