//! Inputs an uploader controls: forged headers, truncation, non-images. Each must end in a clear
//! error, quickly, and never a panic.

mod support;

use std::time::{Duration, Instant};

use imgpipe_resizer::RenderError;
use support::{photo, renderer};

/// Rendering a forged header must not attempt the decode it declares.
const HEADER_ONLY: Duration = Duration::from_millis(500);

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A real PNG whose IHDR now declares `width`x`height`, with a valid chunk CRC.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = photo("chelsea.png");
    assert_eq!(&png[12..16], b"IHDR", "IHDR is the first chunk");
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A real JPEG whose frame header (SOFn) now declares `width`x`height`.
fn jpeg_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = photo("china.jpg");
    let mut at = 2; // after SOI
    loop {
        assert_eq!(jpeg[at], 0xFF, "marker expected at {at}");
        let marker = jpeg[at + 1];
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            // FF Cn, length (2), precision (1), height (2), width (2)
            jpeg[at + 5..at + 7].copy_from_slice(&height.to_be_bytes());
            jpeg[at + 7..at + 9].copy_from_slice(&width.to_be_bytes());
            return jpeg;
        }
        assert_ne!(marker, 0xDA, "reached the scan without a frame header");
        at += 2 + length;
    }
}

fn expect_error(bytes: &[u8]) -> (RenderError, Duration) {
    let started = Instant::now();
    let result = renderer().render(bytes);
    let elapsed = started.elapsed();
    match result {
        Ok(rendered) => panic!(
            "rendered {}x{} instead of failing",
            rendered.width, rendered.height
        ),
        Err(e) => (e, elapsed),
    }
}

#[test]
fn png_declaring_60000_squared_is_refused_from_the_header() {
    let (error, elapsed) = expect_error(&png_declaring(60_000, 60_000));
    assert_eq!(
        error.to_string(),
        "the image is too large: 60000x60000 is 3600 megapixels, over the limit of 100 \
         (3600000000 pixels, over the 100000000 pixel limit)"
    );
    assert!(matches!(error, RenderError::TooManyPixels { .. }));
    assert!(elapsed < HEADER_ONLY, "took {elapsed:?}: did it decode?");
}

#[test]
fn jpeg_declaring_60000_squared_is_refused_from_the_header() {
    let (error, elapsed) = expect_error(&jpeg_declaring(60_000, 60_000));
    assert_eq!(
        error.to_string(),
        "the image is too large: 60000x60000 is 3600 megapixels, over the limit of 100 \
         (3600000000 pixels, over the 100000000 pixel limit)"
    );
    assert!(elapsed < HEADER_ONLY, "took {elapsed:?}: did it decode?");
}

#[test]
fn png_with_a_side_beyond_any_format_is_refused() {
    let (error, elapsed) = expect_error(&png_declaring(1_000_000, 1));
    assert!(
        error.to_string().contains("65535 pixel side limit"),
        "{error}"
    );
    assert!(elapsed < HEADER_ONLY, "took {elapsed:?}");
}

#[test]
fn truncated_jpeg_is_an_error() {
    let jpeg = photo("china.jpg");
    let (error, _) = expect_error(&jpeg[..jpeg.len() / 2]);
    assert!(
        error
            .to_string()
            .starts_with("the file is cut off or damaged"),
        "{error}"
    );
}

#[test]
fn truncated_png_is_an_error() {
    let png = photo("coffee.png");
    let (error, _) = expect_error(&png[..png.len() / 2]);
    assert!(
        error
            .to_string()
            .starts_with("the file is cut off or damaged"),
        "{error}"
    );
}

#[test]
fn empty_file_is_an_error() {
    let (error, _) = expect_error(b"");
    assert_eq!(error.to_string(), "the file is empty");
}

#[test]
fn text_named_jpg_is_not_an_image() {
    let (error, _) = expect_error(b"hello");
    assert_eq!(error.to_string(), "not an image (unrecognised format)");
}

#[test]
fn header_alone_is_an_error() {
    let jpeg = photo("china.jpg");
    // Three bytes are the shortest that still read as a JPEG signature.
    for cut in [3, 20, 200, 2000] {
        let (error, _) = expect_error(&jpeg[..cut]);
        assert!(
            matches!(error, RenderError::Corrupt(_)),
            "cut at {cut}: {error}"
        );
    }
}

#[test]
fn png_decompression_bomb_is_refused_before_inflating() {
    // 20000x20000 pixels in under 64 KiB: a real, valid PNG that would inflate to 50 MB of
    // 1-bit rows, and to 1.2 GB as the RGB buffer a renderer needs.
    let bomb = photo("hostile/bomb.png");
    assert!(bomb.len() < 64 * 1024, "bomb is {} bytes", bomb.len());
    let (error, elapsed) = expect_error(&bomb);
    assert_eq!(
        error.to_string(),
        "the image is too large: 20000x20000 is 400 megapixels, over the limit of 100 \
         (400000000 pixels, over the 100000000 pixel limit)"
    );
    assert!(elapsed < HEADER_ONLY, "took {elapsed:?}");
}

#[test]
fn truncated_heic_and_avif_are_errors() {
    for name in ["hopper.heif", "hopper.avif"] {
        let bytes = photo(name);
        for cut in [bytes.len() / 2, 40] {
            let (error, _) = expect_error(&bytes[..cut]);
            assert!(
                matches!(error, RenderError::Corrupt(_)),
                "{name} cut at {cut}: {error}"
            );
            assert!(error.to_string().contains("HEIF"), "{name}: {error}");
        }
    }
}

#[test]
fn video_in_an_iso_container_is_not_an_image() {
    // An MP4 header shares HEIF's box structure: it must not reach libheif as an image.
    let mut mp4 = 24u32.to_be_bytes().to_vec();
    mp4.extend(b"ftypisom\0\0\x02\0isommp41");
    let (error, _) = expect_error(&mp4);
    assert_eq!(error.to_string(), "not an image (unrecognised format)");
}

/// The markers of a JPEG after its start-of-image: `(offset, code)`, entropy-coded data
/// skipped (there `FF` is followed by `00` or a restart marker).
fn markers(jpeg: &[u8]) -> Vec<(usize, u8)> {
    let mut found = Vec::new();
    let mut at = 2;
    while at + 1 < jpeg.len() {
        let code = jpeg[at + 1];
        if jpeg[at] != 0xFF || matches!(code, 0x00 | 0xFF | 0xD0..=0xD7) {
            at += 1;
            continue;
        }
        found.push((at, code));
        let Some(&[high, low]) = jpeg.get(at + 2..at + 4) else {
            break;
        };
        at += 2 + usize::from(u16::from_be_bytes([high, low]));
    }
    found
}

/// `china.jpg` re-encoded as a progressive JPEG, then its smallest scan (with the tables
/// defined just before it) repeated until the file has `scans` scans: a small file whose every
/// scan libjpeg decodes over the whole image, only warning about the repeated refinement.
/// (imaging's `tests/scans.rs` repeats a large AC scan instead, which without the limit holds
/// a core for seconds on this photo.)
fn jpeg_with_scans(scans: u32) -> Vec<u8> {
    let pixels =
        turbojpeg::decompress(&photo("china.jpg"), turbojpeg::PixelFormat::RGB).expect("decodes");
    let mut compressor = turbojpeg::Compressor::new().expect("compressor");
    compressor.set_progressive(true).expect("progressive");
    let jpeg = compressor
        .compress_to_vec(pixels.as_deref())
        .expect("encodes");
    let markers = markers(&jpeg);
    let scan_at: Vec<usize> = (0..markers.len())
        .filter(|&i| markers[i].1 == 0xDA)
        .collect();
    // Each later scan with what came between it and the scan before: its Huffman tables.
    let smallest = scan_at
        .windows(2)
        .map(|pair| (markers[pair[0] + 1].0, markers[pair[1] + 1].0))
        .min_by_key(|(start, end)| end - start)
        .expect("a progressive JPEG has several scans");
    let (end, eoi) = markers.last().copied().expect("markers");
    assert_eq!(eoi, 0xD9, "ends with its end-of-image marker");
    let have = u32::try_from(scan_at.len()).expect("few scans");
    let mut bomb = jpeg[..end].to_vec();
    for _ in have..scans {
        bomb.extend_from_slice(&jpeg[smallest.0..smallest.1]);
    }
    bomb.extend_from_slice(&jpeg[end..]);
    assert_eq!(
        imgpipe_imaging::jpeg::structure(&bomb).scans,
        scans.max(have)
    );
    bomb
}

#[test]
fn progressive_jpeg_with_thousands_of_scans_is_refused_quickly() {
    let bomb = jpeg_with_scans(5_000);
    // Well under `resizer.max_bytes`: an upload the API accepts.
    assert!(bomb.len() < 16 * 1024 * 1024, "{} bytes", bomb.len());
    let (error, elapsed) = expect_error(&bomb);
    assert!(matches!(error, RenderError::TooManyScans { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "JPEG has 5000 scans, over the limit of 100"
    );
    assert!(elapsed < HEADER_ONLY, "took {elapsed:?}: did it decode?");
    // Refused before any memory is reserved for it.
    let error = renderer().decode_memory(&bomb).expect_err("refused");
    assert!(matches!(error, RenderError::TooManyScans { .. }), "{error}");
    // The same photo with its ordinary progression renders.
    let rendered = renderer().render(&jpeg_with_scans(0)).expect("renders");
    assert_eq!((rendered.width, rendered.height), (640, 427));
}
