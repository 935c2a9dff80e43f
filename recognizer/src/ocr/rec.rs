//! Text recognition input (PP-OCR rec): each detected box cut out of the image upright, scaled
//! to the model's height keeping its aspect ratio, and batched left-aligned with zero padding.
//! Channels in BGR order, `(x / 255 - 0.5) / 0.5`, as PaddleOCR's `resize_norm_img`.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use ndarray::{Array4, Axis};

use super::geometry::{Point, Quad};
use crate::error::RecognizerError;

/// Height of the model's input.
pub(crate) const HEIGHT: u32 = 48;
/// Narrowest batch: PaddleOCR pads every line to at least 320 px, the width it trains at.
const MIN_WIDTH: u32 = 320;
/// Widest line after scaling; longer lines are squeezed, which bounds the work per line.
const MAX_WIDTH: u32 = 1920;
/// Lines per model run (PaddleOCR's default), taken in order of width so padding stays small.
pub(crate) const BATCH: usize = 6;
/// A box this much taller than wide holds vertical text: it is turned before reading.
const VERTICAL_RATIO: f32 = 1.5;

/// Cuts `quad` out of `image` as an upright picture of its width and height (bilinear
/// sampling, edges replicated). A box at least 1.5 times taller than wide is turned 90°
/// counter-clockwise, as PaddleOCR does. `None` when the box is under a pixel either way.
pub(crate) fn crop(image: &RgbImage, quad: &Quad) -> Option<RgbImage> {
    let (width, height) = (quad.width() as u32, quad.height() as u32);
    if width == 0 || height == 0 || image.width() == 0 || image.height() == 0 {
        return None;
    }
    let [tl, tr, _, bl] = quad.0;
    let across = Point::new((tr.x - tl.x) / width as f32, (tr.y - tl.y) / width as f32);
    let down = Point::new((bl.x - tl.x) / height as f32, (bl.y - tl.y) / height as f32);
    let crop = RgbImage::from_fn(width, height, |x, y| {
        let (x, y) = (x as f32, y as f32);
        image::Rgb(sample(
            image,
            tl.x + across.x * x + down.x * y,
            tl.y + across.y * x + down.y * y,
        ))
    });
    if height as f32 / width as f32 >= VERTICAL_RATIO {
        Some(image::imageops::rotate270(&crop))
    } else {
        Some(crop)
    }
}

/// Bilinear interpolation at `(x, y)`, coordinates clamped to the image.
fn sample(image: &RgbImage, x: f32, y: f32) -> [u8; 3] {
    let x = x.clamp(0.0, (image.width() - 1) as f32);
    let y = y.clamp(0.0, (image.height() - 1) as f32);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = (
        (x0 + 1).min(image.width() - 1),
        (y0 + 1).min(image.height() - 1),
    );
    let (ax, ay) = (x - x0 as f32, y - y0 as f32);
    let [p00, p10, p01, p11] =
        [(x0, y0), (x1, y0), (x0, y1), (x1, y1)].map(|(x, y)| image.get_pixel(x, y).0);
    std::array::from_fn(|c| {
        let top = f32::from(p00[c]) * (1.0 - ax) + f32::from(p10[c]) * ax;
        let bottom = f32::from(p01[c]) * (1.0 - ax) + f32::from(p11[c]) * ax;
        (top * (1.0 - ay) + bottom * ay).round() as u8
    })
}

/// `crop` scaled to [`HEIGHT`], keeping its aspect ratio (width rounded up, at most
/// [`MAX_WIDTH`]).
pub(crate) fn to_line(crop: &RgbImage, resizer: &mut Resizer) -> Result<RgbImage, RecognizerError> {
    let ratio = f64::from(crop.width()) / f64::from(crop.height());
    let width = ((f64::from(HEIGHT) * ratio).ceil() as u32).clamp(1, MAX_WIDTH);
    let mut line = RgbImage::new(width, HEIGHT);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    resizer
        .resize(crop, &mut line, &options)
        .map_err(|e| RecognizerError::InvalidImage(format!("resize failed: {e}")))?;
    Ok(line)
}

/// The `[n, 3, 48, W]` input for `lines` (each [`HEIGHT`] tall), `W` the widest line but at
/// least [`MIN_WIDTH`].
pub(crate) fn tensor(lines: &[&RgbImage]) -> Array4<f32> {
    let width = lines.iter().map(|l| l.width()).fold(MIN_WIDTH, u32::max) as usize;
    let mut batch = Array4::<f32>::zeros((lines.len(), 3, HEIGHT as usize, width));
    for (line, mut slot) in lines.iter().zip(batch.axis_iter_mut(Axis(0))) {
        for (x, y, pixel) in line.enumerate_pixels() {
            let [r, g, b] = pixel.0;
            let (x, y) = (x as usize, y as usize);
            slot[[0, y, x]] = normalise(b);
            slot[[1, y, x]] = normalise(g);
            slot[[2, y, x]] = normalise(r);
        }
    }
    batch
}

fn normalise(value: u8) -> f32 {
    f32::from(value) / 127.5 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quad(x0: f32, y0: f32, x1: f32, y1: f32) -> Quad {
        Quad([
            Point::new(x0, y0),
            Point::new(x1, y0),
            Point::new(x1, y1),
            Point::new(x0, y1),
        ])
    }

    #[test]
    fn crop_of_an_axis_aligned_box_copies_pixels() {
        let image = RgbImage::from_fn(20, 10, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let crop = crop(&image, &quad(3.0, 2.0, 11.0, 6.0)).expect("crop");
        assert_eq!(crop.dimensions(), (8, 4));
        assert_eq!(crop.get_pixel(0, 0).0, [3, 2, 7]);
        assert_eq!(crop.get_pixel(7, 3).0, [10, 5, 7]);
    }

    #[test]
    fn tall_boxes_are_turned() {
        let image = RgbImage::from_fn(20, 40, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let turned = crop(&image, &quad(0.0, 0.0, 4.0, 30.0)).expect("crop");
        assert_eq!(turned.dimensions(), (30, 4));
        // Counter-clockwise: the box's top-right corner comes to the top-left.
        assert_eq!(turned.get_pixel(0, 0).0, [3, 0, 0]);
        assert!(crop(&image, &quad(0.0, 0.0, 0.5, 30.0)).is_none());
    }

    #[test]
    fn lines_keep_their_aspect_and_pad_to_the_widest() {
        let mut resizer = Resizer::new();
        let short = to_line(&RgbImage::new(30, 10), &mut resizer).expect("line");
        assert_eq!(short.dimensions(), (144, HEIGHT));
        let long = to_line(
            &RgbImage::from_pixel(400, 12, image::Rgb([255, 0, 0])),
            &mut resizer,
        )
        .expect("line");
        assert_eq!(long.dimensions(), (1600, HEIGHT));
        let huge = to_line(&RgbImage::new(5000, 10), &mut resizer).expect("line");
        assert_eq!(huge.width(), MAX_WIDTH);

        let batch = tensor(&[&short, &long]);
        assert_eq!(batch.shape(), &[2, 3, 48, 1600]);
        assert_eq!(batch[[0, 0, 0, 0]], -1.0, "black");
        assert_eq!(batch[[0, 0, 0, 200]], 0.0, "padding");
        assert_eq!(batch[[1, 2, 5, 5]], 1.0, "red is the last channel");
        assert_eq!(batch[[1, 0, 5, 5]], -1.0);
        assert_eq!(tensor(&[&short]).shape(), &[1, 3, 48, 320]);
    }
}
