//! Truncation check for JPEG streams, shared by the resizer (originals) and the recognizer
//! (previews).
//!
//! The `image` crate's JPEG decoder (zune-jpeg) is lenient: a file cut in half decodes "fine",
//! with the missing rows filled in grey; a half-grey thumbnail, or a model tagging half a picture
//! with confidence, is worse than a clear error. A stream is complete when its end-of-image
//! marker is reached by walking the segments, so we check that ourselves. (JPEGs from cameras
//! that omit the marker are rare and are refused; our own previews always have it.)

const MARKER: u8 = 0xFF;
const END_OF_IMAGE: u8 = 0xD9;

/// Whether `data` (a JPEG starting with its start-of-image marker) reaches its end-of-image
/// marker. Walks segment by segment, skipping each by its length, so an `FF D9` inside an EXIF
/// thumbnail or a table does not count; inside entropy-coded data `FF` is always followed by
/// `00` (stuffing) or a restart marker unless a real marker starts.
pub fn is_complete(data: &[u8]) -> bool {
    if !data.starts_with(&[MARKER, 0xD8]) {
        return false;
    }
    let mut i = 2;
    while i + 1 < data.len() {
        if data[i] != MARKER {
            // Entropy-coded data, or stray bytes between segments that decoders skip too.
            i += 1;
            continue;
        }
        match data[i + 1] {
            // Fill byte before a marker.
            MARKER => i += 1,
            // A stuffed zero inside entropy-coded data.
            0x00 => i += 2,
            // Restart markers and TEM stand alone, without a length.
            0xD0..=0xD7 | 0x01 => i += 2,
            END_OF_IMAGE => return true,
            _ => {
                let Some(length) = data.get(i + 2..i + 4) else {
                    return false;
                };
                let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
                if length < 2 {
                    return false;
                }
                i += 2 + length;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, an APP1 segment holding a fake thumbnail's EOI, SOS header, entropy data with a
    /// stuffed byte and a restart marker, then EOI.
    fn minimal() -> Vec<u8> {
        let mut data = vec![0xFF, 0xD8];
        data.extend([0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD8, 0xFF, 0xD9]);
        data.extend([0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02]);
        data.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        data.extend([0xFF, 0xD9]);
        data
    }

    #[test]
    fn complete_stream_is_complete() {
        assert!(is_complete(&minimal()));
        let mut trailing = minimal();
        trailing.extend(b"trailer appended by some cameras");
        assert!(is_complete(&trailing));
    }

    #[test]
    fn end_marker_inside_a_segment_does_not_count() {
        // An APP1 segment (length 6) whose payload holds FF D9, as an EXIF thumbnail would.
        let mut data = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00];
        data.extend([0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34]);
        assert!(!is_complete(&data));
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let data = minimal();
        for cut in 0..data.len() - 1 {
            assert!(!is_complete(&data[..cut]), "cut at {cut}");
        }
    }
}
