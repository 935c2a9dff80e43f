//! The real model on real photos.

mod common;

use common::{CAT_CLASSES, classifier, decoded, labels, photo};
use imgpipe_contract::document::Tag;
use imgpipe_recognizer::{Classifier, RecognizerError};

/// The top `top_k` tags of an image's bytes, through the classifier's one path.
fn top_tags(bytes: &[u8], top_k: usize) -> Result<Vec<Tag>, RecognizerError> {
    common::recognize(&classifier(), bytes, top_k).map(|r| r.tags)
}

#[test]
fn classifier_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Classifier>();
}

#[test]
fn cat_is_a_cat() {
    let tags = top_tags(&photo("chelsea.jpg"), 5).expect("classify");
    let names = labels(&tags);
    assert_eq!(names.len(), 5);
    assert!(
        names.iter().any(|l| CAT_CLASSES.contains(l)),
        "no cat class in {names:?}"
    );
    // The reference (Python, Pillow bilinear) gives tiger cat, Egyptian cat, tabby as the top 3.
    let mut top3 = names[..3].to_vec();
    top3.sort_unstable();
    assert_eq!(top3, ["Egyptian cat", "tabby", "tiger cat"], "{tags:?}");
}

#[test]
fn coffee_is_espresso() {
    let tags = top_tags(&photo("coffee.jpg"), 5).expect("classify");
    let names = labels(&tags);
    assert!(
        names
            .iter()
            .any(|l| ["espresso", "cup", "coffee mug"].contains(l)),
        "no coffee class in {names:?}"
    );
    assert_eq!(names[0], "espresso", "{tags:?}");
    assert!(tags[0].score > 0.9, "{tags:?}");
}

#[test]
fn matches_the_python_reference_on_stable_photos() {
    // Top-1 labels from `models/verify.py` that do not depend on the resize filter.
    for (name, expected) in [
        ("china.jpg", "palace"),
        ("flower.jpg", "daisy"),
        ("chelsea.png", "tiger cat"),
        ("coffee.png", "espresso"),
        ("motorcycle_left.png", "moped"),
        ("hopper.jpg", "academic gown"),
    ] {
        let tags = top_tags(&photo(name), 5).expect("classify");
        assert_eq!(tags[0].label, expected, "{name}: {tags:?}");
    }
}

#[test]
fn exif_orientation_is_applied() {
    // Stored rotated/mirrored with an EXIF tag; without applying it none is an "academic gown".
    for n in 2..=8 {
        let name = format!("hopper_orientation_{n}.jpg");
        let tags = top_tags(&photo(&name), 1).expect("classify");
        assert_eq!(tags[0].label, "academic gown", "{name}: {tags:?}");
    }
}

#[test]
fn scores_are_probabilities_rounded_to_four_decimals() {
    let tags = top_tags(&photo("flower.jpg"), 1000).expect("classify");
    assert_eq!(tags.len(), 1000);
    let total: f32 = tags.iter().map(|t| t.score).sum();
    assert!((total - 1.0).abs() < 0.01, "sum {total}");
    for pair in tags.windows(2) {
        assert!(pair[0].score >= pair[1].score, "not sorted: {pair:?}");
    }
    for tag in &tags {
        let scaled = f64::from(tag.score) * 10_000.0;
        assert!((scaled - scaled.round()).abs() < 1e-3, "{tag:?}");
        assert_eq!(tag.label, tag.label.trim());
    }
    let again = top_tags(&photo("flower.jpg"), 1000).expect("classify");
    assert_eq!(
        serde_json::to_string(&tags).expect("json"),
        serde_json::to_string(&again).expect("json"),
        "a replay must produce identical JSON"
    );
}

#[test]
fn the_picture_comes_back_decoded_once_at_the_scale_asked() {
    // A 1280 px preview, as the resizer makes them: decoded at reduced scale, as small as the
    // model allows, or large enough for OCR when the handler asks for that.
    let photo = decoded("china.jpg").resize_exact(1280, 853, image::imageops::FilterType::Triangle);
    let mut preview = Vec::new();
    photo
        .to_rgb8()
        .write_to(
            &mut std::io::Cursor::new(&mut preview),
            image::ImageFormat::Jpeg,
        )
        .expect("encode");
    let classifier = classifier();
    let small = classifier
        .recognize_bytes(&preview, 0, 5)
        .expect("recognize");
    let (w, h) = (small.image.width(), small.image.height());
    assert!((256..853).contains(&h), "{w}x{h}");
    assert_eq!(
        small.recognition.tags[0].label, "palace",
        "{:?}",
        small.recognition
    );
    let for_ocr = classifier
        .recognize_bytes(&preview, 960, 5)
        .expect("recognize");
    let (w, h) = (for_ocr.image.width(), for_ocr.image.height());
    assert!((960..1280).contains(&w), "{w}x{h}");
    assert_eq!(
        for_ocr.recognition.tags[0].label, "palace",
        "{:?}",
        for_ocr.recognition
    );
}

#[test]
fn the_picture_comes_back_upright() {
    let upright = classifier()
        .recognize_bytes(&photo("hopper.jpg"), 0, 1)
        .expect("recognize")
        .image;
    for n in 2..=8 {
        let name = format!("hopper_orientation_{n}.jpg");
        let turned = classifier()
            .recognize_bytes(&photo(&name), 0, 1)
            .expect("recognize")
            .image;
        assert_eq!(
            (turned.width(), turned.height()),
            (upright.width(), upright.height()),
            "{name}"
        );
    }
}

#[test]
fn truncated_jpeg_is_bad_input() {
    let bytes = photo("chelsea.jpg");
    for cut in [bytes.len() / 2, 600, 10] {
        let err = top_tags(&bytes[..cut], 5).expect_err("truncated JPEG must not classify");
        assert!(err.is_bad_input(), "cut at {cut}: {err}");
        assert!(matches!(err, RecognizerError::Decode(_)), "{err:?}");
    }
}

#[test]
fn truncated_png_is_bad_input() {
    let bytes = photo("chelsea.png");
    for cut in [bytes.len() - 100, bytes.len() / 2, 40] {
        let err = top_tags(&bytes[..cut], 5).expect_err("truncated PNG must not classify");
        assert!(err.is_bad_input(), "cut at {cut}: {err}");
    }
}

#[test]
fn text_and_empty_input_are_bad_input() {
    for bytes in [
        &b"this is not an image, just some text\n"[..],
        b"",
        b"\xff\xd8\xff",
    ] {
        let err = top_tags(bytes, 5).expect_err("garbage must not classify");
        assert!(err.is_bad_input(), "{err}");
        assert!(!err.is_setup());
    }
}

#[test]
fn model_info_comes_from_config() {
    let model = classifier().model();
    assert_eq!(model.name, "efficientnet-lite0");
    assert_eq!(model.version, "1");
}
