//! The recognizer's alphabet and greedy CTC decoding of its output.

/// Output classes of the recognition model: 0 is the CTC blank, 1..=N the characters listed in
/// the model's `character` metadata (one per line), N + 1 a space (PaddleOCR's
/// `use_space_char`).
#[derive(Debug)]
pub(crate) struct Charset {
    /// Indexed by class; the blank is an empty string.
    classes: Vec<String>,
}

impl Charset {
    /// From the model's `character` metadata: one character per line.
    pub fn from_metadata(list: &str) -> Result<Self, String> {
        let list = list.strip_suffix('\n').unwrap_or(list);
        let characters: Vec<&str> = list
            .split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .collect();
        if characters.iter().any(|c| c.is_empty()) {
            return Err("the `character` metadata has an empty line".to_owned());
        }
        let classes = std::iter::once("")
            .chain(characters)
            .chain(std::iter::once(" "))
            .map(str::to_owned)
            .collect();
        Ok(Charset { classes })
    }

    /// Number of output classes the model must have.
    pub fn classes(&self) -> usize {
        self.classes.len()
    }

    /// Greedy CTC decoding of one line: `probs` holds `steps` rows of [`Self::classes`]
    /// probabilities. The best class of each step, repeats merged, blanks dropped. The score
    /// is the mean probability of the characters kept (0 when none is).
    pub fn decode(&self, probs: &[f32]) -> (String, f32) {
        let mut text = String::new();
        let (mut sum, mut kept) = (0.0f32, 0usize);
        let mut previous = None;
        for row in probs.chunks_exact(self.classes.len()) {
            let (best, p) = row
                .iter()
                .copied()
                .enumerate()
                .fold((0, f32::MIN), |a, b| if b.1 > a.1 { b } else { a });
            if best != 0 && previous != Some(best) {
                text.push_str(&self.classes[best]);
                sum += p;
                kept += 1;
            }
            previous = Some(best);
        }
        let score = if kept == 0 { 0.0 } else { sum / kept as f32 };
        (text, score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hot(charset: &Charset, classes: &[usize], p: f32) -> Vec<f32> {
        let n = charset.classes();
        let mut probs = vec![0.0; classes.len() * n];
        for (step, &class) in classes.iter().enumerate() {
            probs[step * n + class] = p;
        }
        probs
    }

    #[test]
    fn blank_first_space_last() {
        let charset = Charset::from_metadata("a\nb\nc").expect("charset");
        assert_eq!(charset.classes(), 5);
        // a a _ a b _ _ space c c
        let probs = one_hot(&charset, &[1, 1, 0, 1, 2, 0, 0, 4, 3, 3], 0.8);
        let (text, score) = charset.decode(&probs);
        assert_eq!(text, "aab c");
        assert!((score - 0.8).abs() < 1e-6);
    }

    #[test]
    fn nothing_read_scores_zero() {
        let charset = Charset::from_metadata("a\nb").expect("charset");
        let probs = one_hot(&charset, &[0, 0, 0], 0.99);
        assert_eq!(charset.decode(&probs), (String::new(), 0.0));
    }

    #[test]
    fn empty_lines_are_refused() {
        assert!(Charset::from_metadata("a\n\nb").is_err());
        assert!(Charset::from_metadata("").is_err());
        assert_eq!(
            Charset::from_metadata("a\nb\n")
                .expect("final newline")
                .classes(),
            4
        );
    }

    #[test]
    fn multi_byte_characters_survive() {
        let charset = Charset::from_metadata("é\n字\r\n€").expect("charset");
        let probs = one_hot(&charset, &[2, 0, 1, 3], 1.0);
        assert_eq!(charset.decode(&probs).0, "字é€");
    }
}
