//! The placeholder a page paints while the thumbnail loads: a ThumbHash, base64 (standard
//! alphabet, padded), about 25 bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use image::RgbImage;

use crate::error::RenderError;
use crate::resize::{fit, resize_to};

/// ThumbHash refuses inputs over 100 px a side (more detail would not survive anyway).
const THUMBHASH_MAX_SIDE: u32 = 100;

/// The ThumbHash of `image` (already flattened and upright), from a copy at most 100 px a side.
pub(crate) fn thumbhash(image: &RgbImage) -> Result<String, RenderError> {
    let (width, height) = fit(image.width(), image.height(), THUMBHASH_MAX_SIDE);
    let small = resize_to(image, width, height)?;
    let rgba: Vec<u8> = small
        .pixels()
        .flat_map(|p| [p[0], p[1], p[2], u8::MAX])
        .collect();
    let hash = thumbhash::rgba_to_thumb_hash(width as usize, height as usize, &rgba);
    Ok(STANDARD.encode(hash))
}
