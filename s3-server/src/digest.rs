//! The digests a PUT declares (Content-MD5, `x-amz-checksum-*` in its headers or its
//! aws-chunked trailers), verified as the body streams by, so that a mismatch fails the body
//! before the backend moves the object into place. s3s-fs 0.14 checks them itself only after
//! renaming the new file over the stored object, so a wrong digest would replace the original
//! and answer BadDigest. These rules mirror its `put_object` exactly, which leaves its own later
//! check nothing to refuse.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::{Checksum, PutObjectInput};
use s3s::{S3Error, S3ErrorCode, S3Result, TrailingHeaders};

/// The additional checksums S3 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Crc32,
    Crc32c,
    Sha1,
    Sha256,
    Crc64Nvme,
}

impl Algorithm {
    const ALL: [Algorithm; 5] = [
        Algorithm::Crc32,
        Algorithm::Crc32c,
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Crc64Nvme,
    ];

    /// The name in `x-amz-sdk-checksum-algorithm`.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Crc64Nvme => "CRC64NVME",
        }
    }

    /// The header, or trailer, that carries the value.
    fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
        }
    }

    fn value(self, checksum: &mut Checksum) -> &mut Option<String> {
        match self {
            Algorithm::Crc32 => &mut checksum.checksum_crc32,
            Algorithm::Crc32c => &mut checksum.checksum_crc32c,
            Algorithm::Sha1 => &mut checksum.checksum_sha1,
            Algorithm::Sha256 => &mut checksum.checksum_sha256,
            Algorithm::Crc64Nvme => &mut checksum.checksum_crc64nvme,
        }
    }

    fn enable(self, hasher: &mut ChecksumHasher) {
        match self {
            Algorithm::Crc32 => hasher.crc32 = Some(Default::default()),
            Algorithm::Crc32c => hasher.crc32c = Some(Default::default()),
            Algorithm::Sha1 => hasher.sha1 = Some(Default::default()),
            Algorithm::Sha256 => hasher.sha256 = Some(Default::default()),
            Algorithm::Crc64Nvme => hasher.crc64nvme = Some(Default::default()),
        }
    }
}

/// The digest a body did not match, by the header that declared it.
#[derive(Debug, thiserror::Error)]
#[error("the body does not match its {0}")]
pub(crate) struct DigestMismatch(pub &'static str);

/// What a body must hash to, and the running hashes.
pub(crate) struct DigestCheck {
    md5: Option<(Md5, [u8; 16])>,
    hasher: ChecksumHasher,
    declared: Checksum,
    trailers: Option<TrailingHeaders>,
}

impl DigestCheck {
    /// Verifies nothing.
    pub(crate) fn none() -> Self {
        DigestCheck {
            md5: None,
            hasher: ChecksumHasher::default(),
            declared: Checksum::default(),
            trailers: None,
        }
    }

    /// The digests of a PUT: what its headers declare, and what its trailers will. Refuses
    /// before any byte is read a Content-MD5 that is not base64 of 16 bytes (`InvalidDigest`)
    /// and an unknown checksum algorithm (`NotImplemented`, as s3s-fs does).
    pub(crate) fn for_put(
        input: &PutObjectInput,
        trailers: Option<TrailingHeaders>,
    ) -> S3Result<Self> {
        let md5 = input
            .content_md5
            .as_deref()
            .map(|declared| {
                let bytes = STANDARD.decode(declared).ok();
                let digest = bytes.and_then(|b| <[u8; 16]>::try_from(b).ok());
                digest.map(|d| (Md5::new(), d)).ok_or_else(|| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidDigest,
                        "The Content-MD5 you specified is not the base64 of an MD5 digest.",
                    )
                })
            })
            .transpose()?;
        let mut check = DigestCheck {
            md5,
            trailers,
            ..DigestCheck::none()
        };
        check.declared.checksum_crc32 = input.checksum_crc32.clone();
        check.declared.checksum_crc32c = input.checksum_crc32c.clone();
        check.declared.checksum_sha1 = input.checksum_sha1.clone();
        check.declared.checksum_sha256 = input.checksum_sha256.clone();
        check.declared.checksum_crc64nvme = input.checksum_crc64nvme.clone();
        for algorithm in Algorithm::ALL {
            if algorithm.value(&mut check.declared).is_some() {
                algorithm.enable(&mut check.hasher);
            }
        }
        if let Some(name) = &input.checksum_algorithm {
            let algorithm = Algorithm::from_name(name.as_str()).ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::NotImplemented,
                    "Unsupported checksum algorithm",
                )
            })?;
            algorithm.enable(&mut check.hasher);
        }
        Ok(check)
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        if let Some((md5, _)) = &mut self.md5 {
            md5.update(bytes);
        }
        self.hasher.update(bytes);
    }

    /// Compares once the body has ended (its trailers, if any, have arrived by then).
    pub(crate) fn verify(self) -> Result<(), DigestMismatch> {
        if let Some((md5, declared)) = self.md5
            && md5.finalize() != declared
        {
            return Err(DigestMismatch("Content-MD5"));
        }
        let mut computed = self.hasher.finalize();
        let mut declared = self.declared;
        if let Some(trailers) = &self.trailers {
            // A trailer replaces the header's value; one that is not text matches nothing.
            let unreadable = trailers.read(|headers| {
                for algorithm in Algorithm::ALL {
                    if let Some(value) = headers.get(algorithm.header()) {
                        match value.to_str() {
                            Ok(text) => *algorithm.value(&mut declared) = Some(text.to_owned()),
                            Err(_) => return Some(algorithm),
                        }
                    }
                }
                None
            });
            if let Some(algorithm) = unreadable.flatten() {
                return Err(DigestMismatch(algorithm.header()));
            }
        }
        // Like s3s-fs: an algorithm announced without a value, or a value for an algorithm
        // not announced, is a mismatch too.
        match Algorithm::ALL
            .into_iter()
            .find(|a| a.value(&mut computed) != a.value(&mut declared))
        {
            Some(algorithm) => Err(DigestMismatch(algorithm.header())),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use s3s::dto::ChecksumAlgorithm;

    use super::*;

    fn put(configure: impl FnOnce(&mut PutObjectInput)) -> PutObjectInput {
        let mut input = PutObjectInput::builder()
            .bucket("b".to_owned())
            .key("k".to_owned())
            .build()
            .expect("input");
        configure(&mut input);
        input
    }

    fn check(input: &PutObjectInput, body: &[u8]) -> Result<(), DigestMismatch> {
        let mut check = DigestCheck::for_put(input, None).expect("digests");
        for chunk in body.chunks(3) {
            check.update(chunk);
        }
        check.verify()
    }

    const BODY: &[u8] = b"hello world";
    /// base64 of MD5("hello world").
    const BODY_MD5: &str = "XrY7u+Ae7tCTyyK7j1rNww==";
    /// base64 of CRC32("hello world").
    const BODY_CRC32: &str = "DUoRhQ==";

    #[test]
    fn a_matching_md5_passes_and_another_fails() {
        let good = put(|i| i.content_md5 = Some(BODY_MD5.to_owned()));
        assert!(check(&good, BODY).is_ok());
        let err = check(&good, b"hello worle").expect_err("mismatch");
        assert_eq!(err.0, "Content-MD5");
    }

    #[test]
    fn a_malformed_md5_is_refused_before_the_body() {
        for bad in ["not base64!", "aGVsbG8="] {
            let input = put(|i| i.content_md5 = Some(bad.to_owned()));
            let err = DigestCheck::for_put(&input, None)
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(*err.code(), S3ErrorCode::InvalidDigest);
        }
    }

    #[test]
    fn declared_checksums_are_verified() {
        let good = put(|i| i.checksum_crc32 = Some(BODY_CRC32.to_owned()));
        assert!(check(&good, BODY).is_ok());
        let err = check(&good, b"jello world").expect_err("mismatch");
        assert_eq!(err.0, "x-amz-checksum-crc32");
        let wrong_sha = put(|i| i.checksum_sha256 = Some(BODY_CRC32.to_owned()));
        let err = check(&wrong_sha, BODY).expect_err("mismatch");
        assert_eq!(err.0, "x-amz-checksum-sha256");
    }

    #[test]
    fn an_announced_algorithm_without_a_value_fails_like_the_backend() {
        let input = put(|i| i.checksum_algorithm = Some(ChecksumAlgorithm::from_static("CRC32")));
        assert!(check(&input, BODY).is_err());
        let unknown = put(|i| i.checksum_algorithm = Some(ChecksumAlgorithm::from_static("MD4")));
        let err = DigestCheck::for_put(&unknown, None)
            .err()
            .unwrap_or_else(|| panic!("unknown algorithm accepted"));
        assert_eq!(*err.code(), S3ErrorCode::NotImplemented);
    }

    #[test]
    fn a_body_without_digests_passes() {
        assert!(check(&put(|_| ()), BODY).is_ok());
        assert!(DigestCheck::none().verify().is_ok());
    }
}
