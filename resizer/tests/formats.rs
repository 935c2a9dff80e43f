//! Every format people upload, and the colour layouts inside them: each renders upright, in
//! sRGB, looking like the same picture in a plain format. Photos from Pillow's test suite (see
//! tests/PHOTOS.md): hopper in eight formats, AVIFs stored rotated, CMYK, greyscale, 16-bit,
//! a ProPhoto-tagged JPEG, a camera file with EXIF.

mod support;

use image::RgbImage;
use imgpipe_contract::config::{RenditionFormat, ResizerConfig};
use imgpipe_resizer::{Encoded, Renderer};
use support::{decode_jpeg, mean_abs_diff, photo, renderer};

fn preview(name: &str) -> RgbImage {
    let rendered = renderer()
        .render(&photo(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    decode_jpeg(&rendered.preview)
}

fn decoded(name: &str) -> RgbImage {
    image::load_from_memory(&photo(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .into_rgb8()
}

#[test]
fn every_format_renders_the_same_picture() {
    let reference = preview("hopper.png");
    // Far from this, for a guard: the same picture mirrored.
    let mirrored = image::imageops::flip_horizontal(&reference);
    assert!(mean_abs_diff(&reference, &mirrored) > 30.0);

    for (name, format, tolerance) in [
        ("hopper.png", "png", 0.5),
        ("hopper.jpg", "jpeg", 6.0),
        ("hopper.webp", "webp", 6.0),
        ("hopper.gif", "gif", 10.0),
        ("hopper.tif", "tiff", 0.5),
        ("hopper.bmp", "bmp", 0.5),
        ("hopper.heif", "heic", 6.0),
        ("hopper.avif", "avif", 6.0),
    ] {
        let rendered = renderer()
            .render(&photo(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(rendered.format, format, "{name}");
        assert_eq!((rendered.width, rendered.height), (128, 128), "{name}");
        let diff = mean_abs_diff(&decode_jpeg(&rendered.preview), &reference);
        println!("{name}: {diff:.2}");
        assert!(
            diff < tolerance,
            "{name}: mean abs diff {diff} from hopper.png"
        );
    }
}

#[test]
fn webp_exif_orientations_are_applied() {
    let upright = preview("hopper.webp");
    for n in 2..=8 {
        let name = format!("hopper_orientation_{n}.webp");
        let turned = preview(&name);
        let diff = mean_abs_diff(&turned, &upright);
        // As stored, the pixels really are turned.
        let stored = mean_abs_diff(&decoded(&name), &decoded("hopper.webp"));
        println!("{name}: {diff:.2} (stored {stored:.2})");
        assert!(stored > 30.0, "{name} is not stored turned ({stored})");
        assert!(diff < 10.0, "{name}: mean abs diff {diff} from hopper.webp");
    }
}

#[test]
fn heif_rotation_and_mirroring_are_applied() {
    let upright = preview("rot0mir0.avif");
    assert_eq!(upright.dimensions(), (640, 427));
    for name in ["rot1mir0.avif", "rot2mir1.avif", "rot3mir1.avif"] {
        let turned = preview(name);
        assert_eq!(turned.dimensions(), upright.dimensions(), "{name}");
        let diff = mean_abs_diff(&turned, &upright);
        println!("{name}: {diff:.2}");
        assert!(
            diff < 14.0,
            "{name}: mean abs diff {diff} from rot0mir0.avif"
        );
    }
}

#[test]
fn cmyk_jpeg_looks_like_its_rgb_twin() {
    let cmyk = preview("pil_sample_cmyk.jpg");
    let rgb = decoded("pil_sample_rgb.jpg");
    let diff = mean_abs_diff(&cmyk, &rgb);
    println!("cmyk: {diff:.2}");
    assert!(
        diff < 12.0,
        "CMYK rendition differs from the RGB sample by {diff}"
    );
}

#[test]
fn sixteen_bit_tiff_matches_its_eight_bit_target() {
    let rendered = renderer()
        .render(&photo("tiff_16bit_RGB.tiff"))
        .expect("renders");
    assert_eq!(rendered.format, "tiff");
    let diff = mean_abs_diff(
        &decode_jpeg(&rendered.preview),
        &decoded("tiff_16bit_RGB_target.png"),
    );
    println!("16-bit: {diff:.2}");
    assert!(diff < 6.0, "16-bit TIFF differs from its target by {diff}");
}

#[test]
fn greyscale_stays_grey() {
    let grey = preview("hopper_gray.jpg");
    let worst = grey
        .pixels()
        .map(|p| p[0].abs_diff(p[1]).max(p[1].abs_diff(p[2])))
        .max()
        .expect("pixels");
    assert!(
        worst <= 3,
        "a grey picture got colour: channels differ by {worst}"
    );
    assert!(mean_abs_diff(&grey, &preview("hopper.png")) > 5.0);
}

#[test]
fn wide_gamut_profile_is_converted_to_srgb() {
    let srgb = preview("china.jpg");
    let converted = preview("china_prophoto.jpg");
    let diff = mean_abs_diff(&converted, &srgb);
    // What a browser would show if we dropped the profile without converting.
    let unconverted = mean_abs_diff(&decoded("china_prophoto.jpg"), &decoded("china.jpg"));
    println!("prophoto: converted {diff:.2}, unconverted {unconverted:.2}");
    assert!(unconverted > 8.0, "the test photo is not really wide gamut");
    assert!(
        diff < 4.5,
        "ProPhoto JPEG differs from the sRGB one by {diff}"
    );
}

#[test]
fn transparent_avif_is_flattened_onto_white() {
    let rendered = renderer()
        .render(&photo("transparency.avif"))
        .expect("renders");
    let preview = decode_jpeg(&rendered.preview);
    // Its middle is transparent (stored as green), its corners opaque red.
    let middle = preview.get_pixel(32, 32);
    assert!(middle.0.iter().all(|&c| c > 235), "middle is {middle:?}");
    let corner = preview.get_pixel(0, 0);
    assert!(corner[0] > 200 && corner[1] < 40, "corner is {corner:?}");
}

fn decode_webp(rendition: &Encoded) -> RgbImage {
    assert_eq!(rendition.content_type, "image/webp");
    assert_eq!(rendition.extension, "webp");
    let image = image::load_from_memory_with_format(&rendition.bytes, image::ImageFormat::WebP)
        .expect("rendition decodes as WebP");
    assert_eq!(
        (image.width(), image.height()),
        (rendition.width, rendition.height)
    );
    image.into_rgb8()
}

#[test]
fn webp_renditions_by_config() {
    let webp = Renderer::new(&ResizerConfig {
        format: RenditionFormat::Webp,
        ..ResizerConfig::default()
    });
    let bytes = photo("china.jpg");
    let as_webp = webp.render(&bytes).expect("renders");
    let as_jpeg = renderer().render(&bytes).expect("renders");
    let diff = mean_abs_diff(
        &decode_webp(&as_webp.preview),
        &decode_jpeg(&as_jpeg.preview),
    );
    assert!(diff < 4.0, "WebP and JPEG previews differ by {diff}");
    decode_webp(&as_webp.thumb);
    assert_eq!(
        webp.render(&bytes).expect("renders"),
        as_webp,
        "deterministic"
    );
    println!(
        "preview bytes: webp {} jpeg {}",
        as_webp.preview.bytes.len(),
        as_jpeg.preview.bytes.len()
    );
}
