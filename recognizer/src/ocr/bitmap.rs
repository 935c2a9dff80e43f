//! The detector's probability map as a binary mask, and the connected regions of that mask.

/// `prob > threshold`, dilated by a 2x2 square: a pixel is also set when its left, upper or
/// upper-left neighbour is (OpenCV's `dilate` with a 2x2 kernel, as PaddleOCR's DB
/// postprocessing does). `prob` is row-major, `width * height` values.
pub(crate) fn binarize(prob: &[f32], width: usize, height: usize, threshold: f32) -> Vec<bool> {
    let raw: Vec<bool> = prob.iter().map(|&p| p > threshold).collect();
    let mut mask = raw.clone();
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            mask[i] = raw[i]
                || (x > 0 && raw[i - 1])
                || (y > 0 && raw[i - width])
                || (x > 0 && y > 0 && raw[i - width - 1]);
        }
    }
    mask
}

/// Calls `each` with the pixels `(x, y)` of each 8-connected region of `mask`, regions in the
/// order of their first pixel in raster order, for at most `limit` regions. Consumes the mask.
pub(crate) fn regions(
    mut mask: Vec<bool>,
    width: usize,
    height: usize,
    limit: usize,
    mut each: impl FnMut(&[(u32, u32)]),
) {
    let mut stack = Vec::new();
    let mut pixels = Vec::new();
    let mut found = 0;
    for start in 0..mask.len() {
        if !mask[start] {
            continue;
        }
        if found == limit {
            return;
        }
        found += 1;
        mask[start] = false;
        stack.push(start);
        pixels.clear();
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            pixels.push((x as u32, y as u32));
            for ny in y.saturating_sub(1)..=(y + 1).min(height - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(width - 1) {
                    let n = ny * width + nx;
                    if mask[n] {
                        mask[n] = false;
                        stack.push(n);
                    }
                }
            }
        }
        each(&pixels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_of(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let mask = rows
            .iter()
            .flat_map(|r| r.chars().map(|c| c == '#'))
            .collect();
        (mask, rows[0].len(), rows.len())
    }

    #[test]
    fn threshold_then_dilate_down_and_right() {
        let prob = [0.0, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.3];
        let mask = binarize(&prob, 3, 3, 0.3);
        let expected = mask_of(&["...", ".##", ".##"]).0;
        assert_eq!(mask, expected);
    }

    #[test]
    fn regions_are_eight_connected() {
        let (mask, w, h) = mask_of(&["#..##", ".#...", "....#", "##..#"]);
        let mut sizes = Vec::new();
        regions(mask, w, h, usize::MAX, |pixels| sizes.push(pixels.len()));
        // The diagonal pair, the top-right pair, the right column pair, the bottom-left pair.
        assert_eq!(sizes, vec![2, 2, 2, 2]);
    }

    #[test]
    fn region_limit_is_respected() {
        let (mask, w, h) = mask_of(&["#.#.#.#"]);
        let mut count = 0;
        regions(mask, w, h, 3, |_| count += 1);
        assert_eq!(count, 3);
    }
}
