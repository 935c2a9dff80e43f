//! Text detection (PP-OCR DB): the model's input tensor, and the postprocessing that turns its
//! text-probability map into boxes.
//!
//! Preprocessing as PaddleOCR's `DetResizeForTest` + `NormalizeImage`: the longer side scaled
//! down to at most [`MAX_SIDE`], each side rounded to a multiple of 32, channels in BGR order
//! (PaddleOCR decodes with OpenCV), `(x / 255 - mean) / std` with ImageNet's mean and std taken
//! in the order given (so the blue channel gets 0.485 / 0.229).

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use ndarray::Array4;

use super::bitmap;
use super::geometry::{Quad, convex_hull, min_area_rect};
use crate::error::RecognizerError;

/// The longer side of the detector's input, at most.
pub(crate) const MAX_SIDE: u32 = 960;
/// Pixels of the probability map above this are text.
const THRESHOLD: f32 = 0.3;
/// Regions whose mean probability is lower are dropped.
const BOX_THRESHOLD: f32 = 0.5;
/// How far a region's rectangle is grown: area * ratio / perimeter on each side (the model is
/// trained to predict shrunk text regions).
const UNCLIP_RATIO: f32 = 1.6;
/// Regions looked at, at most, per image.
const MAX_CANDIDATES: usize = 1000;
/// Rectangles with a shorter side (in map pixels) are noise.
const MIN_SIZE: f32 = 3.0;
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Size of the detector's input for an image of `width` x `height`.
pub(crate) fn input_size(width: u32, height: u32) -> (u32, u32) {
    let longer = width.max(height);
    let ratio = if longer > MAX_SIDE {
        f64::from(MAX_SIDE) / f64::from(longer)
    } else {
        1.0
    };
    let side = |v: u32| {
        let scaled = (f64::from(v) * ratio).floor();
        (((scaled / 32.0).round() as u32) * 32).max(32)
    };
    (side(width), side(height))
}

/// The `[1, 3, height, width]` input for `image`, at [`input_size`].
pub(crate) fn tensor(
    image: &RgbImage,
    resizer: &mut Resizer,
) -> Result<Array4<f32>, RecognizerError> {
    let (width, height) = input_size(image.width(), image.height());
    let mut resized = RgbImage::new(width, height);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    resizer
        .resize(image, &mut resized, &options)
        .map_err(|e| RecognizerError::InvalidImage(format!("resize failed: {e}")))?;

    let plane = (width * height) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    let (blue, rest) = data.split_at_mut(plane);
    let (green, red) = rest.split_at_mut(plane);
    let norm = |v: u8, c: usize| (f32::from(v) / 255.0 - MEAN[c]) / STD[c];
    for (i, pixel) in resized.as_raw().chunks_exact(3).enumerate() {
        blue[i] = norm(pixel[2], 0);
        green[i] = norm(pixel[1], 1);
        red[i] = norm(pixel[0], 2);
    }
    Array4::from_shape_vec((1, 3, height as usize, width as usize), data)
        .map_err(|e| RecognizerError::Inference(e.to_string()))
}

/// Text boxes from the probability map `prob` (`map_width` x `map_height`, row-major), in the
/// coordinates of the original `image_width` x `image_height` image. A region is kept when its
/// mean probability is at least 0.5 and its rectangle is at least 3 map pixels across.
pub(crate) fn boxes(
    prob: &[f32],
    map_width: usize,
    map_height: usize,
    image_width: u32,
    image_height: u32,
) -> Vec<Quad> {
    let mask = bitmap::binarize(prob, map_width, map_height, THRESHOLD);
    let scale_x = image_width as f32 / map_width as f32;
    let scale_y = image_height as f32 / map_height as f32;
    let (max_x, max_y) = ((image_width - 1) as f32, (image_height - 1) as f32);
    let mut found = Vec::new();
    bitmap::regions(mask, map_width, map_height, MAX_CANDIDATES, |pixels| {
        let score = pixels
            .iter()
            .map(|&(x, y)| prob[y as usize * map_width + x as usize])
            .sum::<f32>()
            / pixels.len() as f32;
        if score < BOX_THRESHOLD {
            return;
        }
        let mut outline = row_ends(pixels);
        let Some(rect) = min_area_rect(&convex_hull(&mut outline)) else {
            return;
        };
        if rect.short_side() < MIN_SIZE {
            return;
        }
        let area = rect.width * rect.height;
        let perimeter = 2.0 * (rect.width + rect.height);
        let grown = rect.grown(area * UNCLIP_RATIO / perimeter);
        if grown.short_side() < MIN_SIZE + 2.0 {
            return;
        }
        let quad = grown.corners().scaled(scale_x, scale_y, max_x, max_y);
        if quad.width() < 4.0 || quad.height() < 4.0 {
            return;
        }
        found.push(quad);
    });
    found
}

/// The leftmost and rightmost pixel of each row of a region: enough for its convex hull.
fn row_ends(pixels: &[(u32, u32)]) -> Vec<(i32, i32)> {
    let (top, bottom) = pixels
        .iter()
        .fold((u32::MAX, 0), |(lo, hi), &(_, y)| (lo.min(y), hi.max(y)));
    let mut ends = vec![(u32::MAX, 0u32); (bottom - top + 1) as usize];
    for &(x, y) in pixels {
        let row = &mut ends[(y - top) as usize];
        *row = (row.0.min(x), row.1.max(x));
    }
    ends.iter()
        .zip(top..)
        .filter(|((left, _), _)| *left != u32::MAX)
        .flat_map(|(&(left, right), y)| [(left as i32, y as i32), (right as i32, y as i32)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sides_are_multiples_of_32_within_the_limit() {
        assert_eq!(input_size(1280, 853), (960, 640));
        assert_eq!(input_size(853, 1280), (640, 960));
        assert_eq!(input_size(384, 191), (384, 192));
        assert_eq!(input_size(640, 427), (640, 416));
        assert_eq!(input_size(10, 3), (32, 32));
        assert_eq!(input_size(5000, 20), (960, 32));
    }

    #[test]
    fn tensor_is_bgr_with_imagenet_normalisation() {
        let image = RgbImage::from_pixel(64, 32, image::Rgb([255, 0, 51]));
        let tensor = tensor(&image, &mut Resizer::new()).expect("tensor");
        assert_eq!(tensor.shape(), &[1, 3, 32, 64]);
        let close = |a: f32, b: f32| (a - b).abs() < 1e-5;
        assert!(
            close(tensor[[0, 0, 5, 5]], (0.2 - 0.485) / 0.229),
            "blue first"
        );
        assert!(close(tensor[[0, 1, 5, 5]], (0.0 - 0.456) / 0.224));
        assert!(
            close(tensor[[0, 2, 5, 5]], (1.0 - 0.406) / 0.225),
            "red last"
        );
    }

    #[test]
    fn one_bright_bar_becomes_one_grown_box() {
        // A 40x6 bar of text probability in a 64x32 map of a 128x64 image.
        let (w, h) = (64, 32);
        let mut prob = vec![0.0f32; w * h];
        for y in 10..16 {
            for x in 10..50 {
                prob[y * w + x] = 0.9;
            }
        }
        let found = boxes(&prob, w, h, 128, 64);
        assert_eq!(found.len(), 1, "{found:?}");
        let (x0, y0, x1, y1) = found[0].bounds();
        // Dilated: pixel centres 10..=50 x 10..=16, a 40x6 rectangle; unclipping grows each
        // side by 40 * 6 * 1.6 / 92 (about 4.2 map pixels); then everything doubles.
        assert!(
            (x0 - 11.7).abs() < 0.5 && (x1 - 108.3).abs() < 0.5,
            "{x0} {x1}"
        );
        assert!(
            (y0 - 11.7).abs() < 0.5 && (y1 - 40.3).abs() < 0.5,
            "{y0} {y1}"
        );
    }

    #[test]
    fn faint_and_tiny_regions_are_dropped() {
        let (w, h) = (32, 32);
        let mut prob = vec![0.0f32; w * h];
        // Faint: above the pixel threshold, below the box threshold.
        for x in 2..30 {
            for y in 2..8 {
                prob[y * w + x] = 0.35;
            }
        }
        // Tiny: a 1x1 dot.
        prob[20 * w + 20] = 1.0;
        assert!(boxes(&prob, w, h, 32, 32).is_empty());
    }
}
