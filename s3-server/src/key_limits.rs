//! Keys the file-system backend can store. s3s-fs writes an object to `<root>/<bucket>/<key>`
//! and its attributes to sidecar files in the root named after the base64 (URL-safe, no
//! padding) of bucket and key: `.bucket-{b64}.object-{b64}.metadata.json` and
//! `.internal.json`, with `.upload-{uuid}` before the suffix while a multipart upload is open.
//! A name over the file system's 255-byte limit fails only after the object was written,
//! leaving it without its attributes (content type, eTag); so such keys are refused first.

use s3s::{S3Error, S3ErrorCode, S3Result};

/// The longest file name Linux file systems accept (NAME_MAX), in bytes.
const NAME_MAX: usize = 255;

/// What surrounds the two base64 names in a sidecar's file name; `.internal.json` is as long
/// as `.metadata.json`.
const SIDECAR_FRAME: usize = ".bucket-".len() + ".object-".len() + ".metadata.json".len();

/// `.upload-` and a hyphenated UUID, in the sidecar of an open multipart upload.
const UPLOAD_INFIX: usize = ".upload-".len() + 36;

/// Which sidecar a write creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sidecar {
    /// A PUT, a copy or a completed multipart upload.
    Object,
    /// The start of a multipart upload.
    Upload,
}

/// Length of unpadded base64 of `n` bytes.
fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

/// Length in bytes of the sidecar file name s3s-fs gives `bucket`/`key`.
pub(crate) fn sidecar_name_len(bucket: &str, key: &str, sidecar: Sidecar) -> usize {
    let infix = match sidecar {
        Sidecar::Object => 0,
        Sidecar::Upload => UPLOAD_INFIX,
    };
    SIDECAR_FRAME + base64_len(bucket.len()) + base64_len(key.len()) + infix
}

/// Length in bytes of the longest path segment of `key`, each one a directory or file name.
pub(crate) fn longest_segment(key: &str) -> usize {
    key.split('/').map(str::len).max().unwrap_or(0)
}

/// Refuses, with S3's `KeyTooLongError`, a key the backend could not store whole.
pub(crate) fn check_storable_key(bucket: &str, key: &str, sidecar: Sidecar) -> S3Result<()> {
    let segment = longest_segment(key);
    if segment > NAME_MAX {
        return Err(S3Error::with_message(
            S3ErrorCode::KeyTooLongError,
            format!(
                "Your key is too long: a path segment has {segment} bytes, \
                 at most {NAME_MAX} are allowed."
            ),
        ));
    }
    if sidecar_name_len(bucket, key, sidecar) > NAME_MAX {
        return Err(S3Error::with_message(
            S3ErrorCode::KeyTooLongError,
            format!(
                "Your key is too long: at most {} bytes are allowed in bucket {bucket}{}.",
                longest_key(bucket, sidecar),
                match sidecar {
                    Sidecar::Object => "",
                    Sidecar::Upload => " for a multipart upload",
                }
            ),
        ));
    }
    Ok(())
}

/// The longest key, in bytes, whose sidecar name fits in `bucket`.
fn longest_key(bucket: &str, sidecar: Sidecar) -> usize {
    let base = sidecar_name_len(bucket, "", sidecar);
    // Base64 of n bytes takes ceil(4n/3) characters, so n = floor(3 * room / 4) is the largest fit.
    NAME_MAX.saturating_sub(base) * 3 / 4
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// The names as s3s-fs 0.14 formats them (`FileSystem::get_metadata_path`).
    fn s3s_fs_names(bucket: &str, key: &str) -> [String; 3] {
        let (b, k) = (URL_SAFE_NO_PAD.encode(bucket), URL_SAFE_NO_PAD.encode(key));
        let upload = "0190a7c4-2b1e-7c3d-9a8b-123456789abc";
        [
            format!(".bucket-{b}.object-{k}.metadata.json"),
            format!(".bucket-{b}.object-{k}.internal.json"),
            format!(".bucket-{b}.object-{k}.upload-{upload}.metadata.json"),
        ]
    }

    #[test]
    fn sidecar_length_is_that_of_the_name_s3s_fs_writes() {
        for key in [
            "a",
            "ab",
            "abc",
            "t/0190/photo.jpg",
            "t/写真写真写真.jpg",
            "",
        ] {
            let [metadata, internal, upload] = s3s_fs_names("originals", key);
            assert_eq!(
                sidecar_name_len("originals", key, Sidecar::Object),
                metadata.len()
            );
            assert_eq!(
                sidecar_name_len("originals", key, Sidecar::Object),
                internal.len()
            );
            assert_eq!(
                sidecar_name_len("originals", key, Sidecar::Upload),
                upload.len()
            );
        }
    }

    #[test]
    fn the_longest_key_fits_and_one_byte_more_does_not() {
        for bucket in ["abc", "originals", "a-much-longer-bucket-name"] {
            for sidecar in [Sidecar::Object, Sidecar::Upload] {
                let longest = "k".repeat(longest_key(bucket, sidecar));
                assert!(check_storable_key(bucket, &longest, sidecar).is_ok());
                let over = format!("{longest}k");
                let err = check_storable_key(bucket, &over, sidecar).expect_err("too long");
                assert_eq!(*err.code(), S3ErrorCode::KeyTooLongError);
            }
        }
    }

    #[test]
    fn a_path_segment_over_the_file_name_limit_is_refused() {
        assert_eq!(longest_segment("a/bcd/ef"), 3);
        assert_eq!(longest_segment(""), 0);
        // Such a key is too long for any sidecar as well; the message shows the segment rule
        // caught it, so it holds even if the backend named its sidecars otherwise.
        let segment = "x".repeat(NAME_MAX + 1);
        assert!(longest_segment(&format!("t/{segment}/f")) > NAME_MAX);
        let err = check_storable_key("b", &format!("t/{segment}"), Sidecar::Object)
            .expect_err("segment too long");
        assert!(
            err.message().is_some_and(|m| m.contains("path segment")),
            "{err:?}"
        );
    }
}
