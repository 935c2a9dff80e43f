//! Camera metadata worth keeping on the document, read from the original's EXIF in any
//! container kamadak-exif knows (JPEG, PNG, WebP, TIFF, HEIF/AVIF). A missing or broken EXIF
//! block costs nothing but the metadata: the picture still renders.

use std::io::Cursor;

use exif::{DateTime, Exif, Field, In, Tag, Value};
use imgpipe_contract::document::{CameraInfo, GpsPosition};

/// Longest text kept from one field: EXIF strings are uploader-controlled.
const MAX_TEXT: usize = 120;

/// What the EXIF of `bytes` says about the camera, or `None` when there is no EXIF or it says
/// nothing we keep. GPS only with `keep_gps`.
pub(crate) fn read(bytes: &[u8], keep_gps: bool) -> Option<CameraInfo> {
    let reader = exif::Reader::new();
    let exif = if bytes.starts_with(&[0xFF, 0xD8]) {
        // Our own segment walk stops at the scan; kamadak-exif's reads through a JPEG without
        // EXIF to its end, a few milliseconds for a large photo.
        reader.read_raw(imgpipe_imaging::jpeg::exif(bytes)?.to_vec())
    } else {
        reader.read_from_container(&mut Cursor::new(bytes))
    }
    .ok()?;
    let info = CameraInfo {
        make: text(&exif, Tag::Make),
        model: text(&exif, Tag::Model),
        lens: text(&exif, Tag::LensModel),
        taken_at: taken_at(&exif),
        orientation: field(&exif, Tag::Orientation)
            .and_then(|f| f.value.get_uint(0))
            .and_then(|v| u16::try_from(v).ok())
            .filter(|v| (1..=8).contains(v)),
        gps: if keep_gps { gps(&exif) } else { None },
    };
    (!info.is_empty()).then_some(info)
}

fn field(exif: &Exif, tag: Tag) -> Option<&Field> {
    exif.get_field(tag, In::PRIMARY)
}

/// An ASCII field, trimmed; `None` when empty (cameras pad with spaces or NULs).
fn text(exif: &Exif, tag: Tag) -> Option<String> {
    let Value::Ascii(parts) = &field(exif, tag)?.value else {
        return None;
    };
    let raw = String::from_utf8_lossy(parts.first()?);
    let trimmed = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let kept: String = trimmed
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect();
    (!kept.is_empty()).then_some(kept)
}

fn ascii(exif: &Exif, tag: Tag) -> Option<&[u8]> {
    match &field(exif, tag)?.value {
        Value::Ascii(parts) => parts.first().map(Vec::as_slice),
        _ => None,
    }
}

/// `DateTimeOriginal` (else `DateTimeDigitized`; never `DateTime`, which editors rewrite) with
/// its offset tag when present, as ISO 8601.
fn taken_at(exif: &Exif) -> Option<String> {
    let (stamp, offset) = [
        (Tag::DateTimeOriginal, Tag::OffsetTimeOriginal),
        (Tag::DateTimeDigitized, Tag::OffsetTimeDigitized),
    ]
    .into_iter()
    .find_map(|(stamp, offset)| Some((ascii(exif, stamp)?, ascii(exif, offset))))?;
    let mut time = DateTime::from_ascii(stamp).ok()?;
    if let Some(offset) = offset {
        // A malformed offset leaves the local time, which is still worth having.
        let _ = time.parse_offset(offset);
    }
    let valid = (1..=12).contains(&time.month)
        && (1..=31).contains(&time.day)
        && time.hour < 24
        && time.minute < 60
        && time.second < 61
        && time.year > 0;
    if !valid {
        return None;
    }
    let mut iso = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        time.year, time.month, time.day, time.hour, time.minute, time.second
    );
    if let Some(minutes) = time.offset {
        let sign = if minutes < 0 { '-' } else { '+' };
        let minutes = minutes.unsigned_abs();
        iso.push_str(&format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60));
    }
    Some(iso)
}

/// Degrees, minutes and seconds with a hemisphere letter, as decimal degrees.
fn coordinate(exif: &Exif, value: Tag, hemisphere: Tag, negative: u8) -> Option<f64> {
    let Value::Rational(dms) = &field(exif, value)?.value else {
        return None;
    };
    let part = |i: usize| {
        dms.get(i)
            .filter(|r| r.denom != 0)
            .map(|r| r.to_f64())
            .unwrap_or(0.0)
    };
    let degrees = part(0) + part(1) / 60.0 + part(2) / 3600.0;
    let sign = match ascii(exif, hemisphere)?.first() {
        Some(&c) if c.eq_ignore_ascii_case(&negative) => -1.0,
        Some(_) => 1.0,
        None => return None,
    };
    Some(sign * degrees).filter(|d| d.is_finite())
}

fn gps(exif: &Exif) -> Option<GpsPosition> {
    let latitude = coordinate(exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S')?;
    let longitude = coordinate(exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W')?;
    if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
        return None;
    }
    let altitude = match &field(exif, Tag::GPSAltitude).map(|f| &f.value) {
        Some(Value::Rational(r)) => r.first().filter(|r| r.denom != 0).map(|r| {
            let below_sea = field(exif, Tag::GPSAltitudeRef)
                .and_then(|f| f.value.get_uint(0))
                .is_some_and(|v| v == 1);
            if below_sea { -r.to_f64() } else { r.to_f64() }
        }),
        _ => None,
    };
    Some(GpsPosition {
        latitude,
        longitude,
        altitude,
    })
}
