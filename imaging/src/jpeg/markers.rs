//! Walking a JPEG's marker segments without decoding it: whether the stream is complete, how
//! many scans it has, its frame header and its EXIF block. Every read is bounds-checked, as the
//! bytes are an uploader's.

const MARKER: u8 = 0xFF;
const END_OF_IMAGE: u8 = 0xD9;
const START_OF_SCAN: u8 = 0xDA;
const APP1: u8 = 0xE1;
const EXIF_HEADER: &[u8] = b"Exif\0\0";

/// What a walk over the whole stream found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Structure {
    /// The end-of-image marker was reached.
    pub complete: bool,
    /// Start-of-scan segments met before the end (or before the data ran out).
    pub scans: u32,
}

/// The frame header (SOFn): the stored size, whether the coding is progressive, and the
/// sampling factors of each component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: u16,
    pub height: u16,
    pub progressive: bool,
    /// Horizontal and vertical sampling factors of each component, in frame order.
    pub sampling: Vec<(u8, u8)>,
}

impl Frame {
    /// The bytes libjpeg (and zune-jpeg) hold for the whole image's DCT coefficients when the
    /// image arrives in more than one scan (progressive, or components in separate scans): two
    /// bytes per coefficient, one coefficient per sample of each component at full resolution,
    /// padded to whole MCUs. A scaled decode still buffers them at full resolution.
    pub fn coefficient_bytes(&self) -> u64 {
        let max_h = self.sampling.iter().map(|s| s.0).max().unwrap_or(1).max(1);
        let max_v = self.sampling.iter().map(|s| s.1).max().unwrap_or(1).max(1);
        let blocks = |side: u16, factor: u8, max: u8| {
            let factor = u64::from(factor.max(1));
            let blocks = (u64::from(side) * factor).div_ceil(u64::from(max) * 8);
            blocks.div_ceil(factor) * factor
        };
        self.sampling
            .iter()
            .map(|&(h, v)| blocks(self.width, h, max_h) * blocks(self.height, v, max_v) * 64 * 2)
            .sum()
    }
}

/// The frame header, looked for before the first scan.
pub fn frame(data: &[u8]) -> Option<Frame> {
    segments(data).find_map(|(marker, body)| {
        // SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if !is_frame {
            return None;
        }
        let height = u16::from_be_bytes([*body.get(1)?, *body.get(2)?]);
        let width = u16::from_be_bytes([*body.get(3)?, *body.get(4)?]);
        let count = usize::from(*body.get(5)?);
        let sampling = body
            .get(6..6 + 3 * count)?
            .chunks_exact(3)
            .map(|component| (component[1] >> 4, component[1] & 0x0F))
            .collect();
        Some(Frame {
            width,
            height,
            // SOF2, SOF6, SOF10 and SOF14 are the progressive processes.
            progressive: matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE),
            sampling,
        })
    })
}

/// The TIFF structure inside the first EXIF APP1 segment, looked for before the image data
/// (never scanning the entropy-coded data).
pub fn exif(data: &[u8]) -> Option<&[u8]> {
    segments(data).find_map(|(marker, body)| {
        (marker == APP1 && body.starts_with(EXIF_HEADER)).then(|| &body[EXIF_HEADER.len()..])
    })
}

/// The marker segments before the first scan: `(marker, body after the length)`. Ends at a
/// scan, at the end of the image, or where the data stops making sense.
fn segments(data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut i = 2;
    std::iter::from_fn(move || {
        if i + 4 > data.len() || data[i] != MARKER {
            return None;
        }
        let marker = data[i + 1];
        if marker == START_OF_SCAN || marker == END_OF_IMAGE {
            return None;
        }
        let length = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        let body = data.get(i + 4..i + 2 + length.max(2))?;
        i += 2 + length;
        Some((marker, body))
    })
}

/// Whether `data` (a JPEG starting with its start-of-image marker) reaches its end-of-image
/// marker. See [`structure`].
pub fn is_complete(data: &[u8]) -> bool {
    structure(data).complete
}

/// Walks the whole stream segment by segment, skipping each by its length, so an `FF D9`
/// inside an EXIF thumbnail or a table does not count; inside entropy-coded data `FF` is
/// always followed by `00` (stuffing) or a restart marker unless a real marker starts.
pub fn structure(data: &[u8]) -> Structure {
    let mut scans = 0u32;
    let incomplete = |scans| Structure {
        complete: false,
        scans,
    };
    if !data.starts_with(&[MARKER, 0xD8]) {
        return incomplete(0);
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
            END_OF_IMAGE => {
                return Structure {
                    complete: true,
                    scans,
                };
            }
            marker => {
                let Some(length) = data.get(i + 2..i + 4) else {
                    return incomplete(scans);
                };
                let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
                if length < 2 {
                    return incomplete(scans);
                }
                if marker == START_OF_SCAN {
                    scans = scans.saturating_add(1);
                }
                i += 2 + length;
            }
        }
    }
    incomplete(scans)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// SOI, an APP1 segment holding a fake thumbnail's EOI, SOS header, entropy data with a
    /// stuffed byte and a restart marker, then EOI.
    pub(crate) fn minimal() -> Vec<u8> {
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

    #[test]
    fn scans_are_counted_outside_entropy_data() {
        assert_eq!(structure(&minimal()).scans, 1);
        // The same scan four times over: FF DA inside a segment or stuffed data is not a scan.
        let mut data = minimal();
        let scan = data[10..23].to_vec();
        for _ in 0..3 {
            data.splice(23..23, scan.iter().copied());
        }
        assert_eq!(
            structure(&data),
            Structure {
                complete: true,
                scans: 4
            }
        );
        let mut fake = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xDA, 0x00, 0x00];
        fake.extend([0xFF, 0xD9]);
        assert_eq!(structure(&fake).scans, 0);
    }

    /// SOI then a frame header: 8-bit, `height`x`width`, components with their sampling.
    fn with_frame(marker: u8, width: u16, height: u16, sampling: &[u8]) -> Vec<u8> {
        let length = 8 + 3 * sampling.len();
        let mut data = vec![0xFF, 0xD8, 0xFF, marker];
        data.extend(u16::try_from(length).unwrap_or(u16::MAX).to_be_bytes());
        data.push(8);
        data.extend(height.to_be_bytes());
        data.extend(width.to_be_bytes());
        data.push(u8::try_from(sampling.len()).unwrap_or(u8::MAX));
        for (id, hv) in sampling.iter().enumerate() {
            data.extend([u8::try_from(id).unwrap_or(0), *hv, 0]);
        }
        data.extend([0xFF, 0xD9]);
        data
    }

    #[test]
    fn frame_header_gives_size_process_and_sampling() {
        let baseline = frame(&with_frame(0xC0, 640, 427, &[0x22, 0x11, 0x11])).expect("frame");
        assert_eq!((baseline.width, baseline.height), (640, 427));
        assert!(!baseline.progressive);
        assert_eq!(baseline.sampling, vec![(2, 2), (1, 1), (1, 1)]);
        let progressive = frame(&with_frame(0xC2, 16, 16, &[0x11])).expect("frame");
        assert!(progressive.progressive);
        // DHT (C4) is not a frame header.
        assert_eq!(frame(&with_frame(0xC4, 16, 16, &[0x11])), None);
        // A frame header cut short.
        let data = with_frame(0xC0, 640, 427, &[0x22, 0x11, 0x11]);
        assert_eq!(frame(&data[..12]), None);
    }

    #[test]
    fn coefficients_are_two_bytes_per_sample_padded_to_mcus() {
        // 4:2:0, 640x427: luma 80x54 blocks (427/8 rounded up to 54, to a whole 2-block MCU);
        // each chroma component 40x27 blocks.
        let frame = Frame {
            width: 640,
            height: 427,
            progressive: true,
            sampling: vec![(2, 2), (1, 1), (1, 1)],
        };
        assert_eq!(frame.coefficient_bytes(), (80 * 54 + 2 * 40 * 27) * 128);
        // 4:4:4 greyscale 100x100: 13x13 blocks.
        let grey = Frame {
            width: 100,
            height: 100,
            progressive: true,
            sampling: vec![(1, 1)],
        };
        assert_eq!(grey.coefficient_bytes(), 13 * 13 * 128);
    }

    #[test]
    fn exif_block_is_found_before_the_scan() {
        let mut data = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x0A];
        data.extend(b"Exif\0\0MM");
        data.extend([0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9]);
        assert_eq!(exif(&data), Some(&b"MM"[..]));
        assert_eq!(exif(&minimal()), None);
    }
}
