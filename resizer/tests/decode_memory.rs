//! The decode memory budget: an image is refused from its header when rendering it alone
//! would need more than the whole budget; images that fit alone but not together are rendered
//! one after another; a 16-bit PNG costs 8-bit memory and renders as before.

mod support;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use image::ImageEncoder;
use imgpipe_resizer::{RenderError, render_in_budget};
use imgpipe_runtime::worker::HandlerError;
use support::{photo, renderer, renderer_with_budget, sixteen_bit_bomb};

const MIB: u64 = 1024 * 1024;

/// A refusal from the header must not decode anything.
const HEADER_ONLY: Duration = Duration::from_millis(500);

/// 100 MP of 16-bit RGBA: about 1 MB on disk, 800 MB as stored, within `max_pixels`.
fn bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| sixteen_bit_bomb(10_000, 10_000))
}

#[test]
fn a_sixteen_bit_bomb_costs_eight_bit_memory() {
    let bomb = bomb();
    assert!(bomb.len() < 2 * 1024 * 1024, "bomb is {} bytes", bomb.len());
    let need = renderer()
        .decode_memory(bomb)
        .expect("within the default budget");
    // 400 MB of 8-bit RGBA flattened in place, the resizer's 38 MB intermediate, the preview
    // and slack; the `image` crate's 16-bit buffer and its 8-bit copy peaked at 1.2 GB.
    assert_eq!(need.div_ceil(MIB), 431);
}

#[test]
fn a_sixteen_bit_bomb_over_the_budget_is_refused_from_its_header() {
    let bomb = bomb();
    let renderer = renderer_with_budget(256);
    let started = Instant::now();
    let error = renderer.render(bomb).expect_err("over the budget");
    let elapsed = started.elapsed();
    assert!(matches!(error, RenderError::OverBudget { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "image needs ~431 MiB to decode, over the decode memory budget of 256 MiB"
    );
    assert!(elapsed < HEADER_ONLY, "took {elapsed:?}: did it decode?");
    let error = renderer.decode_memory(bomb).expect_err("over the budget");
    assert!(matches!(error, RenderError::OverBudget { .. }), "{error}");
    assert_eq!(renderer.budget().in_use_peak_mib(), 0, "nothing reserved");
}

#[tokio::test]
async fn the_handler_path_refuses_it_as_bad_input_without_reserving() {
    let renderer = Arc::new(renderer_with_budget(256));
    let result = render_in_budget(renderer.clone(), Bytes::from_static(bomb())).await;
    match result {
        Err(HandlerError::BadInput(reason)) => assert_eq!(
            reason,
            "image needs ~431 MiB to decode, over the decode memory budget of 256 MiB"
        ),
        other => panic!("expected bad input, got {:?}", other.map(|r| r.format)),
    }
    assert_eq!(renderer.budget().in_use_peak_mib(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_that_fit_alone_but_not_together_are_rendered_one_after_another() {
    // 4 MP of 16-bit RGBA: about 36 MiB each to render, so two do not fit in 64 MiB.
    let bomb = Bytes::from(sixteen_bit_bomb(2_000, 2_000));
    let renderer = Arc::new(renderer_with_budget(64));
    let need = renderer
        .decode_memory(&bomb)
        .expect("fits alone")
        .div_ceil(MIB);
    assert!(need <= 64 && 2 * need > 64, "needs {need} MiB");

    let renders: Vec<_> = (0..2)
        .map(|_| tokio::spawn(render_in_budget(renderer.clone(), bomb.clone())))
        .collect();
    for render in renders {
        let rendered = render.await.expect("joins").expect("renders");
        assert_eq!((rendered.width, rendered.height), (2_000, 2_000));
        assert_eq!(
            (rendered.preview.width, rendered.preview.height),
            (1280, 1280)
        );
    }
    let budget = renderer.budget();
    assert_eq!(budget.in_use_peak_mib(), need, "never both at once");
    assert_eq!(budget.in_use_mib(), 0, "all given back");
}

/// `name` (an 8-bit RGB PNG) re-encoded as 16-bit RGBA, every sample `v` stored as `v * 257`
/// and fully opaque: the same picture.
fn as_sixteen_bit_rgba(name: &str) -> Vec<u8> {
    let rgba16 = image::load_from_memory(&photo(name))
        .expect("decodes")
        .into_rgba16();
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(
            native_bytes(rgba16.as_raw()).as_slice(),
            rgba16.width(),
            rgba16.height(),
            image::ExtendedColorType::Rgba16,
        )
        .expect("encodes");
    png
}

/// 16-bit samples as the native-endian bytes `ImageEncoder::write_image` expects.
fn native_bytes(samples: &[u16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_ne_bytes()).collect()
}

#[test]
fn a_sixteen_bit_png_renders_as_its_eight_bit_original() {
    let sixteen = renderer()
        .render(&as_sixteen_bit_rgba("chelsea.png"))
        .expect("renders");
    let eight = renderer().render(&photo("chelsea.png")).expect("renders");
    assert_eq!(sixteen.format, "png");
    assert_eq!((sixteen.width, sixteen.height), (451, 300));
    assert_eq!(
        (sixteen.thumb.width, sixteen.thumb.height),
        (eight.thumb.width, eight.thumb.height)
    );
    // Cutting to 8 bits gives back every sample exactly: the renditions are the same bytes.
    assert_eq!(sixteen.preview, eight.preview);
    assert_eq!(sixteen.thumb, eight.thumb);
    assert_eq!(sixteen.placeholder, eight.placeholder);
}
