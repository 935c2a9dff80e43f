//! `?q=` search terms, the same for every backend: each whitespace-separated word must occur
//! (case-insensitively, anywhere, as a substring) in the document's
//! [`ImageDocument::search_text`](crate::document::ImageDocument::search_text).

use super::DbError;

/// More words than this is not a search an editor types; refusing keeps queries cheap.
pub const MAX_TERMS: usize = 8;
/// Longest accepted word, in characters.
pub const MAX_TERM_CHARS: usize = 100;

/// Splits `q` into lowercase words, each turned into a `LIKE` pattern (`%word%`, with `\` as
/// the escape character for `%`, `_` and `\` in the word). No words gives an empty list.
pub fn like_patterns(q: &str) -> Result<Vec<String>, DbError> {
    let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
    if words.len() > MAX_TERMS {
        return Err(DbError::InvalidQuery(format!(
            "q has {} words; at most {MAX_TERMS} are searched",
            words.len()
        )));
    }
    words
        .iter()
        .map(|word| {
            if word.chars().count() > MAX_TERM_CHARS {
                return Err(DbError::InvalidQuery(format!(
                    "a word of q is longer than {MAX_TERM_CHARS} characters"
                )));
            }
            let mut pattern = String::with_capacity(word.len() + 2);
            pattern.push('%');
            for c in word.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            Ok(pattern)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_escaped_lowercase_patterns() {
        assert_eq!(
            like_patterns("  Cat  50%_off \\ ").expect("valid"),
            ["%cat%", "%50\\%\\_off%", "%\\\\%"]
        );
        assert!(like_patterns("   ").expect("valid").is_empty());
    }

    #[test]
    fn too_many_or_too_long_words_are_refused() {
        let many = ["a"; MAX_TERMS + 1].join(" ");
        assert!(matches!(
            like_patterns(&many),
            Err(DbError::InvalidQuery(_))
        ));
        let long = "x".repeat(MAX_TERM_CHARS + 1);
        assert!(matches!(
            like_patterns(&long),
            Err(DbError::InvalidQuery(_))
        ));
    }
}
