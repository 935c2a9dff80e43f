//! Renditions of real photos: sizes, aspect ratio, orientation, alpha, determinism.

mod support;

use image::{DynamicImage, ImageEncoder, Rgba};
use support::{decode_jpeg, mean_abs_diff, photo, renderer};

#[test]
fn landscape_photo_gets_a_thumbnail_and_keeps_its_size_as_preview() {
    let rendered = renderer().render(&photo("china.jpg")).expect("renders");

    assert_eq!(rendered.format, "jpeg");
    assert_eq!((rendered.width, rendered.height), (640, 427));
    assert_eq!(rendered.thumb.width, 256);
    assert!(
        rendered.thumb.height.abs_diff(171) <= 1,
        "thumb is {}x{}",
        rendered.thumb.width,
        rendered.thumb.height
    );
    // 640 px is under the 1280 px preview size: no upscaling.
    assert_eq!(
        (rendered.preview.width, rendered.preview.height),
        (640, 427)
    );

    let aspect = 640.0 / 427.0;
    let thumb_aspect = f64::from(rendered.thumb.width) / f64::from(rendered.thumb.height);
    assert!(
        (thumb_aspect - aspect).abs() < 0.01,
        "aspect {thumb_aspect}"
    );

    decode_jpeg(&rendered.thumb);
    let preview = decode_jpeg(&rendered.preview);
    let original = image::load_from_memory(&photo("china.jpg"))
        .expect("china.jpg decodes")
        .into_rgb8();
    let diff = mean_abs_diff(&preview, &original);
    assert!(diff < 5.0, "preview drifted from the original: {diff}");
}

#[test]
fn placeholder_is_a_thumbhash_of_the_right_shape() {
    use base64::Engine as _;
    let rendered = renderer().render(&photo("flower.jpg")).expect("renders");
    let hash = base64::engine::general_purpose::STANDARD
        .decode(&rendered.placeholder)
        .expect("placeholder is standard base64");
    let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).expect("a thumbhash");
    assert!((ratio - 640.0 / 427.0).abs() < 0.2, "aspect ratio {ratio}");
}

#[test]
fn every_exif_orientation_renders_upright() {
    let renderer = renderer();
    let upright = renderer.render(&photo("hopper.jpg")).expect("renders");
    let upright_thumb = decode_jpeg(&upright.thumb);

    for n in 2..=8 {
        let name = format!("hopper_orientation_{n}.jpg");
        let bytes = photo(&name);
        let rendered = renderer.render(&bytes).expect("renders");
        assert_eq!(
            (rendered.width, rendered.height),
            (upright.width, upright.height),
            "{name}"
        );
        assert_eq!(
            (rendered.thumb.width, rendered.thumb.height),
            (upright.thumb.width, upright.thumb.height),
            "{name}"
        );
        let diff = mean_abs_diff(&decode_jpeg(&rendered.thumb), &upright_thumb);
        assert!(diff < 10.0, "{name}: mean abs diff {diff} from hopper.jpg");

        // Guard against a vacuous pass: as stored, the pixels really are turned.
        let stored = image::load_from_memory(&bytes)
            .expect("decodes")
            .into_rgb8();
        let stored_diff = mean_abs_diff(
            &stored,
            &image::load_from_memory(&photo("hopper.jpg"))
                .expect("decodes")
                .into_rgb8(),
        );
        assert!(
            stored_diff > 30.0,
            "{name} is not stored turned ({stored_diff})"
        );
    }
}

/// A minimal big-endian EXIF block holding only an orientation tag.
fn exif_orientation(value: u16) -> Vec<u8> {
    let mut exif = b"MM\0\x2a\0\0\0\x08".to_vec(); // TIFF header, first IFD at offset 8
    exif.extend_from_slice(&1u16.to_be_bytes()); // one entry
    exif.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    exif.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    exif.extend_from_slice(&1u32.to_be_bytes()); // count
    exif.extend_from_slice(&value.to_be_bytes());
    exif.extend_from_slice(&[0, 0]); // value padding
    exif.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    exif
}

#[test]
fn rotated_landscape_photo_swaps_back_to_landscape() {
    // A camera held upright-left stores the landscape scene turned a quarter counter-clockwise
    // and tags it 6 ("rotate 90 clockwise to view").
    let original = image::load_from_memory(&photo("china.jpg")).expect("decodes");
    let stored = original.rotate270().into_rgb8();
    assert_eq!(stored.dimensions(), (427, 640));
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
    encoder
        .set_exif_metadata(exif_orientation(6))
        .expect("JPEG takes EXIF");
    encoder
        .write_image(stored.as_raw(), 427, 640, image::ExtendedColorType::Rgb8)
        .expect("encodes");

    let renderer = renderer();
    let rendered = renderer.render(&bytes).expect("renders");
    assert_eq!((rendered.width, rendered.height), (640, 427));
    assert_eq!((rendered.thumb.width, rendered.thumb.height), (256, 171));
    assert_eq!(
        (rendered.preview.width, rendered.preview.height),
        (640, 427)
    );

    let reference = renderer.render(&photo("china.jpg")).expect("renders");
    let diff = mean_abs_diff(
        &decode_jpeg(&rendered.thumb),
        &decode_jpeg(&reference.thumb),
    );
    assert!(diff < 10.0, "rotated render differs from upright: {diff}");
}

#[test]
fn transparency_is_flattened_onto_white() {
    // A real photo with an alpha ramp added: fully transparent at the left edge, opaque at the
    // right.
    let mut rgba = image::load_from_memory(&photo("chelsea.png"))
        .expect("decodes")
        .into_rgba8();
    let width = rgba.width();
    for (x, _, Rgba(px)) in rgba.enumerate_pixels_mut() {
        px[3] = u8::try_from(x * 255 / (width - 1)).expect("0..=255");
    }
    let mut png = Vec::new();
    DynamicImage::ImageRgba8(rgba)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encodes PNG");

    let rendered = renderer().render(&png).expect("renders");
    assert_eq!(rendered.format, "png");
    assert_eq!((rendered.width, rendered.height), (451, 300));
    let thumb = image::load_from_memory(&rendered.thumb.bytes).expect("decodes");
    assert!(matches!(thumb, DynamicImage::ImageRgb8(_)), "thumb is RGB");
    let preview = decode_jpeg(&rendered.preview);
    let left_edge = preview.get_pixel(0, preview.height() / 2);
    assert!(
        left_edge.0.iter().all(|&c| c > 240),
        "transparent edge should be white, got {left_edge:?}"
    );
}

#[test]
fn rendering_is_deterministic() {
    let renderer = renderer();
    for name in ["china.jpg", "chelsea.png", "hopper_orientation_6.jpg"] {
        let bytes = photo(name);
        let first = renderer.render(&bytes).expect("renders");
        let second = renderer.render(&bytes).expect("renders");
        assert!(first == second, "{name}: two renders differ");
    }
}

#[test]
fn png_and_jpeg_of_the_same_photo_agree() {
    let renderer = renderer();
    let png = renderer.render(&photo("coffee.png")).expect("renders");
    let jpeg = renderer.render(&photo("coffee.jpg")).expect("renders");
    assert_eq!(png.format, "png");
    assert_eq!((png.thumb.width, png.thumb.height), (256, 171));
    let diff = mean_abs_diff(&decode_jpeg(&png.thumb), &decode_jpeg(&jpeg.thumb));
    assert!(diff < 5.0, "mean abs diff {diff}");
}

#[test]
fn every_test_photo_renders_within_the_box() {
    let renderer = renderer();
    let photos = [
        "astronaut.png",
        "chelsea.jpg",
        "chelsea.png",
        "china.jpg",
        "coffee.jpg",
        "coffee.png",
        "flower.jpg",
        "flower2.jpg",
        "hopper.jpg",
        "motorcycle_left.png",
        "rocket.jpg",
    ];
    for name in photos {
        let rendered = renderer
            .render(&photo(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let longest = rendered.width.max(rendered.height);
        let thumb = decode_jpeg(&rendered.thumb);
        assert_eq!(
            thumb.width().max(thumb.height()),
            longest.min(256),
            "{name}"
        );
        let preview = decode_jpeg(&rendered.preview);
        assert_eq!(
            (preview.width(), preview.height()),
            (rendered.width, rendered.height),
            "{name}: under 1280 px, the preview keeps the original size"
        );
        assert!(!rendered.placeholder.is_empty(), "{name}");
    }
}
