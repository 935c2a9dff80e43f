/// Longest filename kept in a key, in characters.
const MAX_LEN: usize = 120;

/// A client-supplied filename made safe for an object key: no directories, no control or
/// reserved characters, bounded length. Never empty.
pub fn sanitize_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || "<>:\"|?*#%{}^~[]`".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.');
    let mut name: String = trimmed.chars().take(MAX_LEN).collect();
    if name.is_empty() {
        name = "image".to_owned();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::sanitize_filename;

    #[test]
    fn strips_paths_and_hostile_characters() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(
            sanitize_filename("C:\\Users\\me\\red flower.jpg"),
            "red flower.jpg"
        );
        assert_eq!(sanitize_filename("a\u{0}b?.jpg"), "a_b_.jpg");
        assert_eq!(sanitize_filename("..."), "image");
        assert_eq!(sanitize_filename(&"x".repeat(500)).len(), 120);
        assert_eq!(sanitize_filename("Ünïcödé café.jpg"), "Ünïcödé café.jpg");
    }
}
