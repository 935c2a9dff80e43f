//! Logits to tags: softmax, top-k, rounding.

use imgpipe_contract::document::Tag;

/// Scores are rounded to this many decimals so a replay of the same image produces byte-identical
/// JSON even if the last float bits differ between runs or batch sizes.
const SCORE_DECIMALS: i32 = 4;

/// Softmax of one row of logits, in f32, shifted by the maximum so `exp` cannot overflow.
pub(crate) fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&z| (z - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The `k` most probable classes scoring at least `min_score` (after rounding), best first; ties
/// broken by class index so the order is stable.
pub(crate) fn top_k(
    probabilities: &[f32],
    labels: &[String],
    k: usize,
    min_score: f32,
) -> Vec<Tag> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then(a.cmp(&b))
    });
    order
        .into_iter()
        .take(k)
        .map(|index| Tag {
            label: labels.get(index).cloned().unwrap_or_default(),
            score: round(probabilities[index]),
        })
        .take_while(|tag| tag.score >= min_score)
        .collect()
}

/// Rounded to [`SCORE_DECIMALS`].
pub(crate) fn round(score: f32) -> f32 {
    let scale = 10f32.powi(SCORE_DECIMALS);
    (score * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_survives_large_logits() {
        let p = softmax(&[1000.0, 1000.0, -1000.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(p[0], 0.5);
        assert_eq!(p[2], 0.0);
    }

    #[test]
    fn top_k_is_sorted_rounded_and_stable() {
        let labels: Vec<String> = ["a", "b", "c", "d"].map(str::to_owned).to_vec();
        let tags = top_k(&softmax(&[0.0, 2.0, 2.0, 1.0]), &labels, 3, 0.0);
        let names: Vec<&str> = tags.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(names, ["b", "c", "d"]);
        for tag in &tags {
            assert_eq!(tag.score, (tag.score * 10_000.0).round() / 10_000.0);
        }
        assert_eq!(top_k(&[0.5, 0.5], &labels[..2], 10, 0.0).len(), 2);
        assert!(top_k(&[0.5, 0.5], &labels[..2], 0, 0.0).is_empty());
    }

    #[test]
    fn min_score_drops_weak_tags_within_top_k() {
        let labels: Vec<String> = ["a", "b", "c"].map(str::to_owned).to_vec();
        let tags = top_k(&[0.7, 0.25, 0.05], &labels, 3, 0.1);
        let names: Vec<&str> = tags.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(top_k(&[0.7, 0.25, 0.05], &labels, 3, 0.9).is_empty());
    }
}
