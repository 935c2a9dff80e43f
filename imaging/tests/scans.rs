//! The scan limit: a progressive JPEG re-encoded from a real photo decodes, and the same file
//! with a thousand scans is refused at once instead of holding a core while each scan makes
//! another pass over the image (without the limit: about a second for this 640x427 photo in a
//! debug build, five for 5000 scans, minutes for a 24 MP photo).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use imgpipe_imaging::jpeg::{self, JpegError, MAX_SCANS};

fn photo(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/photos")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test photo {} is missing ({e}): run `bash scripts/fetch-photos.sh`",
            path.display()
        )
    })
}

/// `china.jpg` re-encoded as a progressive JPEG (libjpeg-turbo's default progression).
fn progressive_photo() -> Vec<u8> {
    let pixels =
        turbojpeg::decompress(&photo("china.jpg"), turbojpeg::PixelFormat::RGB).expect("decodes");
    let mut compressor = turbojpeg::Compressor::new().expect("compressor");
    compressor.set_progressive(true).expect("progressive");
    compressor.set_quality(85).expect("quality");
    compressor
        .compress_to_vec(pixels.as_deref())
        .expect("encodes")
}

/// `jpeg` with its last scan (header and entropy-coded data) repeated until it has `scans`
/// scans. libjpeg only warns about the repeated refinement and goes on decoding each one.
fn with_scans(jpeg: &[u8], scans: u32) -> Vec<u8> {
    // Entropy-coded data never holds FF DA, so the last one is the last scan's marker.
    let last_scan = jpeg
        .windows(2)
        .rposition(|w| w == [0xFF, 0xDA])
        .expect("a scan");
    let end = jpeg.len() - 2;
    assert_eq!(
        &jpeg[end..],
        &[0xFF, 0xD9],
        "ends with its end-of-image marker"
    );
    let have = jpeg::structure(jpeg).scans;
    let mut bomb = jpeg[..end].to_vec();
    for _ in have..scans {
        bomb.extend_from_slice(&jpeg[last_scan..end]);
    }
    bomb.extend_from_slice(&jpeg[end..]);
    bomb
}

#[test]
fn a_progressive_photo_decodes_within_the_scan_limit() {
    let jpeg = progressive_photo();
    let scans = jpeg::structure(&jpeg).scans;
    assert!((2..=MAX_SCANS).contains(&scans), "{scans} scans");
    let scaled = jpeg::decode_scaled(&jpeg, 0, 320, 100_000_000)
        .expect("decodes")
        .expect("RGB");
    assert_eq!((scaled.width, scaled.height), (640, 427));
}

#[test]
fn a_thousand_scans_are_refused_quickly() {
    let bomb = with_scans(&progressive_photo(), 1_000);
    assert_eq!(
        jpeg::structure(&bomb),
        jpeg::Structure {
            complete: true,
            scans: 1_000
        }
    );
    let started = Instant::now();
    let error = jpeg::decode_scaled(&bomb, 0, 0, 100_000_000).expect_err("refused");
    let elapsed = started.elapsed();
    assert!(
        matches!(
            error,
            JpegError::TooManyScans {
                scans: 1_000,
                limit: MAX_SCANS
            }
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "JPEG has 1000 scans, over the limit of 100"
    );
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}
