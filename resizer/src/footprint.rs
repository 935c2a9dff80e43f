//! The memory a render holds at its peak, estimated from the header before any pixel is
//! decoded, so the decode memory budget can be reserved first (see `budget.rs`).
//!
//! A render goes through three phases, each freeing most of what the one before held:
//! decoding (the decoder's output plus its working memory), flattening to 8-bit RGB (the
//! output plus any converted copy), and resizing (the RGB source, the resizer's intermediate
//! buffer and the renditions). The peak is the largest of the three. The original file's
//! bytes are not counted: they are in memory before the estimate, capped by
//! `resizer.max_bytes`.

use crate::resize::fit;

const MIB: u64 = 1024 * 1024;

/// Room for what the phases leave out: decoder tables and row buffers, the ICC transform, the
/// encoders' buffers, the placeholder.
const SLACK: u64 = 8 * MIB;

/// The shape of a pixel buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub bytes_per_sample: u8,
}

impl Layout {
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    pub fn bytes(&self) -> u64 {
        self.pixels() * u64::from(self.channels) * u64::from(self.bytes_per_sample)
    }

    fn is_rgb8(&self) -> bool {
        self.channels == 3 && self.bytes_per_sample == 1
    }

    fn is_rgba8(&self) -> bool {
        self.channels == 4 && self.bytes_per_sample == 1
    }
}

/// How an image will be decoded: what the decoder returns and what it holds beside that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The stored size, from which the renditions' sizes follow.
    pub stored: (u32, u32),
    /// The buffer the decoder returns (smaller than `stored` for a JPEG decoded at n/8).
    pub decoded: Layout,
    /// Whether that buffer has alpha (composited onto white when flattened).
    pub alpha: bool,
    /// The most the decoder holds beside its output while it works: a multi-scan JPEG's
    /// coefficients, libheif's YCbCr planes, an intermediate copy.
    pub working: u64,
}

/// The rendition sizes a renderer makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub preview: u32,
    pub thumb: u32,
}

/// The peak bytes decoding and rendering with `plan` holds.
pub(crate) fn peak_bytes(plan: &Plan, sizes: Sizes) -> u64 {
    let decoded = plan.decoded;
    let decode = decoded.bytes() + plan.working;

    // `flatten_to_rgb8`: RGB8 is kept, RGBA8 is flattened in place (its buffer keeps its
    // capacity), anything else is converted into a new 8-bit buffer first.
    let (copy, source) = if decoded.is_rgb8() || (plan.alpha && decoded.is_rgba8()) {
        (0, decoded.bytes())
    } else if plan.alpha {
        (decoded.pixels() * 4, decoded.pixels() * 4)
    } else {
        (decoded.pixels() * 3, decoded.pixels() * 3)
    };
    let flatten = decoded.bytes() + copy;

    let (stored_width, stored_height) = plan.stored;
    let (preview_width, preview_height) = fit(stored_width, stored_height, sizes.preview);
    let (thumb_width, thumb_height) = fit(stored_width, stored_height, sizes.thumb);
    let rgb = |width: u32, height: u32| u64::from(width) * u64::from(height) * 3;
    let preview = rgb(preview_width, preview_height);
    let thumb = rgb(thumb_width, thumb_height);
    // fast_image_resize runs the vertical pass first for 8-bit pixels, into a buffer as wide as
    // the source and as tall as the target. A source already at the preview's size is cloned:
    // the clone is the preview.
    let to_preview = if (decoded.width, decoded.height) == (preview_width, preview_height) {
        0
    } else {
        rgb(decoded.width, preview_height)
    };
    let to_thumb = rgb(preview_width, thumb_height);
    let resize = source + preview + to_preview.max(to_thumb + thumb);

    decode.max(flatten).max(resize) + SLACK
}

/// `bytes` in MiB, rounded up.
pub(crate) fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: Sizes = Sizes {
        preview: 1280,
        thumb: 256,
    };

    fn plan(width: u32, height: u32, channels: u8, bytes_per_sample: u8, alpha: bool) -> Plan {
        Plan {
            stored: (width, height),
            decoded: Layout {
                width,
                height,
                channels,
                bytes_per_sample,
            },
            alpha,
            working: 0,
        }
    }

    #[test]
    fn sixteen_bit_rgba_decoded_as_such_peaks_at_twelve_bytes_a_pixel() {
        // 100 MP of 16-bit RGBA (800 MB) beside its 8-bit RGBA copy (400 MB) while flattening:
        // the 1.2 GB of the issue.
        let peak = peak_bytes(&plan(10_000, 10_000, 4, 2, true), SIZES);
        assert_eq!(peak, 1_200_000_000 + SLACK);
        assert_eq!(mib(peak), 1153);
    }

    #[test]
    fn sixteen_bit_rgba_cut_to_eight_bits_while_decoding_is_a_third_of_that() {
        // 400 MB of RGBA flattened in place, then resizing: the source, a 10000x1280 RGB
        // intermediate (38.4 MB) and the 1280x1280 preview (4.9 MB).
        let peak = peak_bytes(&plan(10_000, 10_000, 4, 1, true), SIZES);
        let resize = 400_000_000 + 10_000 * 1280 * 3 + 1280 * 1280 * 3;
        assert_eq!(peak, resize + SLACK);
        assert_eq!(mib(peak), 431);
    }

    #[test]
    fn other_layouts_are_converted_into_a_new_eight_bit_buffer() {
        // 16 MP each. 16-bit RGB: 6 bytes a pixel beside the 3 of its RGB8 copy.
        let rgb16 = peak_bytes(&plan(4000, 4000, 3, 2, false), SIZES);
        assert_eq!(rgb16, 16_000_000 * (6 + 3) + SLACK);
        // Grey with alpha: 2 bytes a pixel beside 4 of RGBA8, flattened in place.
        let grey_alpha = peak_bytes(&plan(4000, 4000, 2, 1, true), SIZES);
        assert_eq!(grey_alpha, 16_000_000 * (2 + 4) + SLACK);
        // Grey: the 1 + 3 bytes a pixel of flattening are less than resizing from RGB.
        let grey = peak_bytes(&plan(4000, 4000, 1, 1, false), SIZES);
        let resize = 16_000_000 * 3 + 1280 * 1280 * 3 + 4000 * 1280 * 3;
        assert_eq!(grey, resize + SLACK);
    }

    #[test]
    fn a_jpeg_decoded_at_reduced_scale_counts_its_scaled_buffer_and_coefficients() {
        // 6000x4000 at 2/8 for a 1280 px preview: 1500x1000 RGB.
        let mut jpeg = plan(6000, 4000, 3, 1, false);
        jpeg.decoded.width = 1500;
        jpeg.decoded.height = 1000;
        let resize = 1500 * 1000 * 3 + 1280 * 853 * 3 + 1500 * 853 * 3;
        assert_eq!(peak_bytes(&jpeg, SIZES), resize + SLACK);
        // Progressive: libjpeg holds every coefficient of the full-size image (4:2:0, 36 MB).
        jpeg.working = 36_000_000;
        assert_eq!(peak_bytes(&jpeg, SIZES), 4_500_000 + 36_000_000 + SLACK);
    }

    #[test]
    fn an_image_within_the_preview_size_is_cloned_not_resampled() {
        let small = peak_bytes(&plan(640, 427, 3, 1, false), SIZES);
        let rgb = 640 * 427 * 3;
        // The source and its clone as the preview; then the thumbnail from the preview.
        let to_thumb = 640 * 171 * 3 + 256 * 171 * 3;
        assert_eq!(small, rgb + rgb + to_thumb + SLACK);
    }
}
