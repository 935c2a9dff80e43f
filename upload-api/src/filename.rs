//! Client-supplied file names made safe for object keys, and short enough for the embedded
//! store's file system.

/// The longest file name of the file systems the embedded store writes to (ext4, XFS, btrfs).
const NAME_MAX: usize = 255;

/// What s3s-fs (0.14) writes around the base64 (URL-safe, unpadded) of the bucket and the key
/// to name an object's sidecar files: `.bucket-{bucket}.object-{key}.metadata.json`, or
/// `.internal.json`, as long. Multipart sidecars add an upload id, but an upload ticket is a
/// single presigned PUT, and the embedded store lets a presigned URL do nothing else.
const SIDECAR_OVERHEAD: usize = ".bucket-".len() + ".object-".len() + ".metadata.json".len();

/// Longest file name kept even where the key would allow more, in bytes.
const MAX_BYTES: usize = 120;

/// Longest extension kept whole when a name is cut (`.jpeg`, `.heic`, with room to spare).
const MAX_EXTENSION_BYTES: usize = 16;

/// The name of a file whose own name has nothing left once cleaned.
const FALLBACK: &str = "image";

/// How many bytes a file name may have in a key starting with `key_prefix` (`tenant/id/`) in
/// `bucket`, so that the embedded store's sidecar file, named after the base64 of bucket and
/// key, stays within the file system's name limit: a longer name would be written as an object
/// and then fail on its sidecar, leaving an orphan. At most [`MAX_BYTES`], at least 1.
pub fn filename_budget(bucket: &str, key_prefix: &str) -> usize {
    let room_for_key = NAME_MAX.saturating_sub(SIDECAR_OVERHEAD + base64_len(bucket.len()));
    // base64 turns every 3 bytes into 4 characters: the longest key whose encoding fits.
    let key_bytes = room_for_key * 3 / 4;
    key_bytes
        .saturating_sub(key_prefix.len())
        .clamp(1, MAX_BYTES)
}

/// Length of unpadded base64 of `n` bytes.
fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

/// A client-supplied filename made safe for an object key: no directories, no control,
/// bidirectional-override or reserved characters, no leading dots or surrounding spaces, at most
/// `max_bytes` bytes (cut on a character boundary, the extension kept). Never empty (given
/// `max_bytes` > 0), and sanitising a sanitised name changes nothing.
pub fn sanitize_filename(raw: &str, max_bytes: usize) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        // Bidi controls make `cat\u{202E}gpj.exe` display as `catexe.jpg`: dropped, not replaced.
        .filter(|c| !is_bidi_control(*c))
        .map(|c| {
            if c.is_control() || "<>:\"|?*#%{}^~[]`".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let name = cut(trimmed(&cleaned), max_bytes);
    if name.is_empty() {
        cut(FALLBACK, max_bytes)
    } else {
        name
    }
}

/// Without surrounding white space and leading dots (hidden files, `..`).
fn trimmed(name: &str) -> &str {
    name.trim_start_matches(|c: char| c.is_whitespace() || c == '.')
        .trim_end()
}

/// `name` within `max_bytes`, keeping its extension when the part before it can keep a
/// character; what remains never ends in white space, so trimming it again changes nothing.
fn cut(name: &str, max_bytes: usize) -> String {
    if name.len() <= max_bytes {
        return name.to_owned();
    }
    if let Some(dot) = name.rfind('.').filter(|&dot| dot > 0) {
        let extension = &name[dot..];
        if extension.len() <= MAX_EXTENSION_BYTES && extension.len() < max_bytes {
            let stem = prefix_within(&name[..dot], max_bytes - extension.len()).trim_end();
            if !stem.is_empty() {
                return format!("{stem}{extension}");
            }
        }
    }
    prefix_within(name, max_bytes).trim_end().to_owned()
}

/// The longest prefix of `s` of at most `max_bytes` bytes that ends on a character boundary.
fn prefix_within(s: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The Unicode bidirectional formatting characters: embeddings and overrides (U+202A-U+202E),
/// isolates (U+2066-U+2069) and the implicit marks (U+200E, U+200F, U+061C).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key prefix of an upload of the tenant `default`.
    const PREFIX: &str = "default/0190a3e5-0000-7000-8000-000000000000/";

    /// The sidecar s3s-fs writes for `key` in `bucket`, as it names it.
    fn sidecar(bucket: &str, key: &str) -> String {
        use base64::Engine;
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            ".bucket-{}.object-{}.metadata.json",
            encode(bucket),
            encode(key)
        )
    }

    #[test]
    fn strips_paths_and_hostile_characters() {
        let clean = |raw: &str| sanitize_filename(raw, MAX_BYTES);
        assert_eq!(clean("../../etc/passwd"), "passwd");
        assert_eq!(clean("C:\\Users\\me\\red flower.jpg"), "red flower.jpg");
        assert_eq!(clean("a\u{0}b?.jpg"), "a_b_.jpg");
        assert_eq!(clean("..."), "image");
        assert_eq!(clean(&"x".repeat(500)).len(), MAX_BYTES);
        assert_eq!(clean("Ünïcödé café.jpg"), "Ünïcödé café.jpg");
    }

    #[test]
    fn bidirectional_controls_are_dropped() {
        let clean = |raw: &str| sanitize_filename(raw, MAX_BYTES);
        assert_eq!(clean("invoice\u{202E}gpj.exe"), "invoicegpj.exe");
        assert_eq!(
            clean("\u{2066}a\u{2067}b\u{2068}c\u{2069}\u{200E}\u{200F}\u{061C}.png"),
            "abc.png"
        );
        // Dropping one may leave spaces or dots at the edges: trimmed all the same.
        assert_eq!(clean("\u{202E} .hidden.jpg"), "hidden.jpg");
    }

    /// 41 CJK characters are 123 bytes: under the old 120-character cap, yet the key's base64
    /// made the sidecar's name longer than 255 bytes, so the object was written and its sidecar
    /// was not.
    #[test]
    fn a_wide_name_is_cut_in_bytes_so_the_sidecar_name_fits() {
        let budget = filename_budget("originals", PREFIX);
        let wide = format!("{}.jpg", "猫".repeat(41));
        let name = sanitize_filename(&wide, budget);
        assert!(name.len() <= budget, "{} > {budget}", name.len());
        assert!(name.ends_with(".jpg"), "{name}");
        assert!(name.starts_with("猫猫"), "{name}");
        let key = format!("{PREFIX}{name}");
        assert!(sidecar("originals", &key).len() <= NAME_MAX, "{key}");
        let old_key = format!("{PREFIX}{wide}");
        assert!(
            sidecar("originals", &old_key).len() > NAME_MAX,
            "the uncut name overflows"
        );
    }

    #[test]
    fn the_budget_is_exact_for_the_sidecar() {
        for (bucket, tenant) in [
            ("originals", "default"),
            ("o", "a"),
            (&*"b".repeat(63), &*"t".repeat(40)),
        ] {
            let prefix = format!("{tenant}/0190a3e5-0000-7000-8000-000000000000/");
            let budget = filename_budget(bucket, &prefix);
            if budget == MAX_BYTES {
                continue;
            }
            let fits = format!("{prefix}{}", "x".repeat(budget));
            let over = format!("{prefix}{}", "x".repeat(budget + 1));
            assert!(
                sidecar(bucket, &fits).len() <= NAME_MAX,
                "{bucket} {tenant}"
            );
            assert!(sidecar(bucket, &over).len() > NAME_MAX, "{bucket} {tenant}");
        }
        assert_eq!(filename_budget("originals", PREFIX), 114);
        assert_eq!(filename_budget("o", "a/"), MAX_BYTES, "capped");
        assert_eq!(filename_budget(&"b".repeat(300), PREFIX), 1, "never zero");
    }

    #[test]
    fn cuts_keep_the_extension_and_never_split_a_character() {
        assert_eq!(sanitize_filename("abcdefgh.jpeg", 9), "abcd.jpeg");
        assert_eq!(sanitize_filename("ééééé.jpg", 8), "éé.jpg");
        // No room for the stem: the name is cut as a whole.
        assert_eq!(sanitize_filename("éééé.jpg", 5), "éé");
        // An extension too long to be one is cut like the rest.
        let long_ext = format!("a.{}", "x".repeat(30));
        assert_eq!(sanitize_filename(&long_ext, 10), "a.xxxxxxxx");
        // A cut ending in a space loses it.
        assert_eq!(sanitize_filename("ab cd", 3), "ab");
        assert_eq!(sanitize_filename("ab   x.jpg", 7), "ab.jpg");
        assert_eq!(sanitize_filename("anything", 2), "an");
        assert_eq!(sanitize_filename("...", 3), "ima");
    }

    #[test]
    fn sanitising_twice_changes_nothing() {
        for raw in [
            ". foo.jpg",
            " .. . bar",
            "ab cd",
            "a\u{202E} .jpg",
            "x/ .y",
            "\u{85}name",
            "日本語のファイル名.heic",
        ] {
            for max in [1, 2, 3, 5, 8, 13, MAX_BYTES] {
                let once = sanitize_filename(raw, max);
                assert_eq!(sanitize_filename(&once, max), once, "{raw:?} within {max}");
            }
        }
    }
}
