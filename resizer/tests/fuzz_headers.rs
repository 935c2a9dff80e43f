//! Bounded fuzzing of the decode path's header checks: real photos with bytes of their first
//! 2 KiB changed or cut, and random bytes behind each format's signature, through the
//! header-only estimate and the whole render. Every outcome must be a value (a rendition or a
//! `RenderError`), never a panic, and come quickly.
//!
//! Small photos (hopper, 128x128, in every format we decode) keep each render cheap, so a few
//! thousand cases run in seconds.

mod support;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use imgpipe_resizer::Renderer;
use proptest::prelude::*;
use proptest::test_runner::Config;
use support::{photo, renderer};

/// The most one case may take: a header check that decodes, or a decode that spins, is slower.
const PER_CASE: Duration = Duration::from_secs(2);

/// Where mutations land: the headers, not the pixel data.
const HEADER_BYTES: usize = 2048;

const PHOTOS: &[&str] = &[
    "hopper.jpg",
    "hopper.png",
    "hopper.webp",
    "hopper.gif",
    "hopper.bmp",
    "hopper.tif",
    "hopper.heif",
    "hopper.avif",
    "hopper_orientation_6.jpg",
];

fn photos() -> &'static [Vec<u8>] {
    static PHOTOS_BYTES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    PHOTOS_BYTES.get_or_init(|| PHOTOS.iter().map(|name| photo(name)).collect())
}

fn shared_renderer() -> &'static Renderer {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    RENDERER.get_or_init(renderer)
}

/// Checks the header, then renders: each returns, quickly, whatever the bytes are.
fn check_and_render(bytes: &[u8]) -> Result<(), TestCaseError> {
    let renderer = shared_renderer();
    let started = Instant::now();
    let estimate = renderer.decode_memory(bytes);
    let rendered = renderer.render(bytes);
    let elapsed = started.elapsed();
    prop_assert!(elapsed < PER_CASE, "took {elapsed:?}");
    // The estimate reads the same header the render does: a header it refuses is refused
    // by the render too, with the same reason.
    if let Err(refused) = &estimate {
        let rendered = rendered.as_ref().map(|r| r.format.clone());
        prop_assert!(
            matches!(&rendered, Err(e) if e.to_string() == refused.to_string()),
            "estimate refused ({refused}), render gave {rendered:?}"
        );
    }
    Ok(())
}

/// A photo, a few of its first 2 KiB overwritten, maybe cut short.
fn mutated_photo() -> impl Strategy<Value = Vec<u8>> {
    (
        0..PHOTOS.len(),
        prop::collection::vec((0..HEADER_BYTES, any::<u8>()), 1..12),
        prop::option::of(0..HEADER_BYTES * 2),
    )
        .prop_map(|(photo, changes, cut)| {
            let mut bytes = photos()[photo].clone();
            for (at, byte) in changes {
                if let Some(slot) = bytes.get_mut(at) {
                    *slot = byte;
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut);
            }
            bytes
        })
}

/// Each format's signature (with HEIF's `ftyp` box), then random bytes.
fn signature_then_noise() -> impl Strategy<Value = Vec<u8>> {
    const SIGNATURES: &[&[u8]] = &[
        b"\xFF\xD8\xFF",
        b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR",
        b"RIFF\0\0\0\0WEBPVP8 ",
        b"GIF89a",
        b"BM",
        b"II*\0",
        b"MM\0*",
        b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
        b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf",
    ];
    (
        0..SIGNATURES.len(),
        prop::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|(signature, noise)| {
            let mut bytes = SIGNATURES[signature].to_vec();
            bytes.extend(noise);
            bytes
        })
}

proptest! {
    #![proptest_config(Config {
        cases: 1500,
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn mutated_photo_headers_never_panic(bytes in mutated_photo()) {
        check_and_render(&bytes)?;
    }

    #[test]
    fn random_bytes_behind_a_signature_never_panic(bytes in signature_then_noise()) {
        check_and_render(&bytes)?;
    }
}

#[test]
fn every_short_prefix_of_every_photo_is_refused_without_panic() {
    // Where a format's signature ends and its first box or chunk begins (HEIF's `ftyp` is
    // bytes 4 to 8, its major brand 8 to 12).
    for (name, bytes) in PHOTOS.iter().zip(photos()) {
        for len in 0..64.min(bytes.len()) {
            let prefix = &bytes[..len];
            if let Err(e) = check_and_render(prefix) {
                panic!("{name} cut to {len} bytes: {e}");
            }
            assert!(
                shared_renderer().render(prefix).is_err(),
                "{name} cut to {len} bytes rendered"
            );
        }
    }
}
