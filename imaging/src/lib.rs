//! Imaging code the resizer and the recognizer share: JPEG decoding at reduced scale with
//! libjpeg-turbo, EXIF orientation, and the truncation check.

pub mod jpeg;
