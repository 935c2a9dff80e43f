//! The hostile uploads mixed into the load: each is a file a real user or attacker sends, and
//! each must end `failed` with a reason while the photos around it go on.

/// A hostile upload: a file name, the content type the client declares, and the bytes.
pub struct Hostile {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The kinds, cycled: text named `.jpg`, a real JPEG cut in half, and a PNG whose header claims
/// 60000 x 60000 pixels (a decompression bomb stopped by its header).
pub fn kinds(real_jpeg: &[u8]) -> Vec<Hostile> {
    vec![
        Hostile {
            name: "notes.jpg",
            content_type: "image/jpeg",
            bytes: b"these are meeting notes, not a JPEG".to_vec(),
        },
        Hostile {
            name: "cut.jpg",
            content_type: "image/jpeg",
            bytes: real_jpeg[..real_jpeg.len() / 2].to_vec(),
        },
        Hostile {
            name: "bomb.png",
            content_type: "image/png",
            bytes: png_claiming(60_000, 60_000),
        },
    ]
}

/// A PNG signature, an IHDR chunk declaring `width` x `height` 8-bit RGBA, and a tiny IDAT.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    // A zlib stream of a few zero bytes: what a bomb starts with.
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend((data.len() as u32).to_be_bytes());
    let start = png.len();
    png.extend(kind);
    png.extend(data);
    let crc = crc32(&png[start..]);
    png.extend(crc.to_be_bytes());
}

/// CRC-32 (IEEE), bitwise: a few hundred bytes per run do not need a table.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_of_iend_is_the_known_value() {
        assert_eq!(super::crc32(b"IEND"), 0xae42_6082);
    }
}
