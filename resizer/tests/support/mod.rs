//! Shared helpers: the real test photos, a renderer with the production defaults, and pixel
//! comparison.

#![allow(dead_code)] // each test file uses a different subset

use std::path::PathBuf;

use image::RgbImage;
use imgpipe_contract::config::ResizerConfig;
use imgpipe_resizer::{Encoded, Renderer};

/// The bytes of `tests/photos/<name>` at the workspace root. Missing photos fail the test
/// (never skip it): a green run must mean the renderer met real photos.
pub fn photo(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/photos")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test photo {} is missing ({e}): run `bash scripts/setup.sh` \
             (or just `bash scripts/fetch-photos.sh`) from the workspace root",
            path.display()
        )
    })
}

/// A renderer with the production defaults (thumb 256, preview 1280, 100 Mpx, quality 85).
pub fn renderer() -> Renderer {
    Renderer::new(&ResizerConfig::default())
}

/// Decodes a rendition, checking that it really is a JPEG of the size it claims.
pub fn decode_jpeg(rendition: &Encoded) -> RgbImage {
    assert_eq!(rendition.content_type, "image/jpeg");
    let image = image::load_from_memory_with_format(&rendition.bytes, image::ImageFormat::Jpeg)
        .expect("rendition decodes as JPEG");
    assert_eq!(
        (image.width(), image.height()),
        (rendition.width, rendition.height),
        "rendition dimensions match what was reported"
    );
    image.into_rgb8()
}

/// Mean absolute difference per channel value (0..=255) of two same-sized images.
pub fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "compared images differ in size"
    );
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

/// A renderer with the production defaults but a decode memory budget of `mib` MiB.
pub fn renderer_with_budget(mib: u64) -> Renderer {
    Renderer::new(&ResizerConfig {
        decode_memory_mb: mib,
        ..ResizerConfig::default()
    })
}

/// A valid PNG of `width`x`height` 16-bit RGBA pixels, all zero: a decompression bomb (a
/// 10000x10000 one is about 1 MB on disk and 800 MB decoded as stored). Rows are streamed, so
/// making it costs one row of memory.
pub fn sixteen_bit_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Sixteen);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().expect("PNG header");
    let mut stream = writer.stream_writer().expect("stream writer");
    let row = vec![0u8; width as usize * 8];
    for _ in 0..height {
        std::io::Write::write_all(&mut stream, &row).expect("PNG row");
    }
    stream.finish().expect("PNG data");
    writer.finish().expect("PNG end");
    png
}
