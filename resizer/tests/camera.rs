//! Camera metadata on the document: make, model, lens, taken-at and orientation from EXIF; GPS
//! only when configured.

mod support;

use imgpipe_contract::config::ResizerConfig;
use imgpipe_resizer::Renderer;
use support::{photo, renderer};

#[test]
fn a_real_camera_file_names_its_camera() {
    let rendered = renderer().render(&photo("fujifilm.mpo")).expect("renders");
    assert_eq!((rendered.width, rendered.height), (3648, 2736));
    let camera = rendered.camera.expect("camera metadata");
    assert_eq!(camera.make.as_deref(), Some("FUJIFILM"));
    assert_eq!(camera.model.as_deref(), Some("FinePix REAL 3D W3"));
    assert_eq!(camera.taken_at.as_deref(), Some("2013-05-25T16:38:10"));
    assert_eq!(camera.orientation, Some(1));
    assert_eq!(camera.gps, None);
}

#[test]
fn gps_is_kept_only_when_enabled() {
    let bytes = photo("china_gps.jpg");
    let camera = renderer()
        .render(&bytes)
        .expect("renders")
        .camera
        .expect("camera metadata");
    assert_eq!(camera.make.as_deref(), Some("Canon"));
    assert_eq!(camera.model.as_deref(), Some("Canon EOS 5D Mark IV"));
    assert_eq!(camera.lens.as_deref(), Some("EF24-105mm f/4L IS USM"));
    assert_eq!(
        camera.taken_at.as_deref(),
        Some("2019-07-14T09:21:05+08:00")
    );
    assert_eq!(camera.gps, None, "GPS must stay private by default");

    let keep = Renderer::new(&ResizerConfig {
        keep_gps: true,
        ..ResizerConfig::default()
    });
    let gps = keep
        .render(&bytes)
        .expect("renders")
        .camera
        .and_then(|c| c.gps)
        .expect("GPS with keep_gps");
    assert!((gps.latitude - 39.9995).abs() < 1e-4, "{gps:?}");
    assert!((gps.longitude - 116.2752).abs() < 1e-4, "{gps:?}");
    assert_eq!(gps.altitude, Some(51.0));
}

#[test]
fn files_without_exif_have_no_camera() {
    for name in ["chelsea.png", "hopper.gif", "hopper.heif"] {
        let rendered = renderer().render(&photo(name)).expect("renders");
        assert_eq!(rendered.camera, None, "{name}");
    }
}
