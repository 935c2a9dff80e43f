//! Decoding under limits. An upload is untrusted: its header is read first and the image is
//! refused on what the header declares (pixel count, side length, scan count, memory needed),
//! so a small file claiming 60000x60000 pixels costs microseconds instead of gigabytes.
//!
//! [`open`] reads the header and estimates the memory the render will hold at its peak
//! (`footprint.rs`); [`Opened::decode`] decodes. The handler reserves that memory from the
//! decode budget between the two.

use std::io::Cursor;

use image::error::LimitErrorKind;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use imgpipe_imaging::jpeg::{self, JpegError, MAX_SCANS};

use crate::error::RenderError;
use crate::footprint::{Layout, Plan, Sizes, mib, peak_bytes};
use crate::heif::{self, HeifHeader};
use crate::png::{self, PngHeader};

/// The longest side accepted. JPEG and WebP cannot store more, so a longer side in any header is
/// junk or a decompression bomb rather than a photo.
pub(crate) const MAX_SIDE: u32 = 65_535;

/// Bytes per pixel of the widest layout we accept at full `max_pixels` (16-bit RGBA); 32-bit
/// float images are refused above a quarter of the pixel limit, which is fine for photos.
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// Room for decoder state (Huffman tables, PNG row buffers, ICC and EXIF blocks).
const DECODER_HEADROOM: u64 = 64 * 1024 * 1024;

/// What the header may declare before any pixel is decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeLimits {
    max_pixels: u64,
    /// What one decoder may allocate: the widest buffer at the pixel limit, never more than
    /// the whole decode budget.
    max_alloc: u64,
    budget_mib: u64,
}

/// A decoded image, still as stored: the orientation is reported, not applied. A JPEG may be
/// decoded at reduced scale, so `image` can be smaller than `width x height`.
pub(crate) struct Decoded {
    pub image: DynamicImage,
    /// The format's name as published: `jpeg`, `png`, `webp`, `gif`, `tiff`, `bmp`, `heic`,
    /// `avif`.
    pub format: &'static str,
    pub orientation: Orientation,
    /// The size stored in the file, before orientation.
    pub width: u32,
    pub height: u32,
    /// The embedded ICC profile, if any: the pixels are in its colour space.
    pub icc: Option<Vec<u8>>,
}

impl DecodeLimits {
    pub fn new(max_pixels: u64, budget_mib: u64) -> Self {
        let budget = budget_mib.saturating_mul(1024 * 1024);
        DecodeLimits {
            max_pixels,
            max_alloc: max_pixels
                .saturating_mul(MAX_BYTES_PER_PIXEL)
                .saturating_add(DECODER_HEADROOM)
                .min(budget),
            budget_mib,
        }
    }

    /// Refuses a declared size over the side or pixel limit.
    fn check(&self, width: u32, height: u32) -> Result<(), RenderError> {
        if width == 0 || height == 0 {
            return Err(RenderError::Corrupt(format!(
                "header declares {width}x{height} pixels"
            )));
        }
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(RenderError::TooWide { limit: MAX_SIDE });
        }
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(RenderError::TooManyPixels {
                width,
                height,
                limit: self.max_pixels,
            });
        }
        Ok(())
    }

    /// Refuses a render whose peak memory is over the whole decode budget.
    fn check_memory(&self, peak: u64) -> Result<(), RenderError> {
        if mib(peak) > self.budget_mib {
            return Err(RenderError::OverBudget {
                need_mib: mib(peak),
                budget_mib: self.budget_mib,
            });
        }
        Ok(())
    }

    fn image_limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }
}

/// An image whose header passed the limits, not yet decoded.
pub(crate) struct Opened<'a> {
    bytes: &'a [u8],
    limits: DecodeLimits,
    sizes: Sizes,
    format: &'static str,
    width: u32,
    height: u32,
    /// The most memory the render will hold at once.
    pub peak_bytes: u64,
    source: Source<'a>,
}

/// Which decoder takes the image, with what it has read so far.
enum Source<'a> {
    Heif(HeifHeader<'a>),
    Png(Box<PngHeader<'a>>),
    /// libjpeg-turbo at reduced scale, or the `image` crate for CMYK (four components).
    Jpeg {
        cmyk: bool,
    },
    Image(Box<dyn ImageDecoder + 'a>),
}

/// Sniffs the format from the content (the file name and declared type are the uploader's
/// claims), reads the header, and checks it against `limits`: side and pixel count, a JPEG's
/// completeness and scan count, and the peak memory of rendering it at `sizes`.
pub(crate) fn open<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
    sizes: Sizes,
) -> Result<Opened<'a>, RenderError> {
    if bytes.is_empty() {
        return Err(RenderError::Empty);
    }
    let (format, plan, source) = if let Some(kind) = heif::sniff(bytes) {
        let header = heif::open(bytes)?;
        limits.check(header.width, header.height)?;
        let (decoded, working) = header.layout();
        let plan = Plan {
            stored: (header.width, header.height),
            decoded,
            alpha: header.alpha,
            working,
        };
        (kind.name(), plan, Source::Heif(header))
    } else {
        let format = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| RenderError::Corrupt(e.to_string()))?
            .format()
            .ok_or(RenderError::NotAnImage)?;
        match format {
            ImageFormat::Png => open_png(bytes, limits)?,
            ImageFormat::Jpeg => open_jpeg(bytes, limits, sizes)?,
            _ => open_other(bytes, format, limits)?,
        }
    };
    let peak_bytes = peak_bytes(&plan, sizes);
    limits.check_memory(peak_bytes)?;
    Ok(Opened {
        bytes,
        limits: *limits,
        sizes,
        format,
        width: plan.stored.0,
        height: plan.stored.1,
        peak_bytes,
        source,
    })
}

fn open_png<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
) -> Result<(&'static str, Plan, Source<'a>), RenderError> {
    let header = png::open(bytes, DECODER_HEADROOM)?;
    let (width, height) = header.size();
    limits.check(width, height)?;
    let (decoded, alpha) = header.layout()?;
    let plan = Plan {
        stored: (width, height),
        decoded,
        alpha,
        working: 0,
    };
    Ok(("png", plan, Source::Png(Box::new(header))))
}

fn open_jpeg<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
    sizes: Sizes,
) -> Result<(&'static str, Plan, Source<'a>), RenderError> {
    let frame = jpeg::frame(bytes).ok_or_else(|| {
        RenderError::Corrupt("no JPEG frame header before the image data".to_owned())
    })?;
    let (width, height) = (u32::from(frame.width), u32::from(frame.height));
    limits.check(width, height)?;
    let structure = jpeg::structure(bytes);
    if !structure.complete {
        return Err(truncated_jpeg());
    }
    if structure.scans > MAX_SCANS {
        return Err(RenderError::TooManyScans {
            scans: structure.scans,
            limit: MAX_SCANS,
        });
    }
    // One scan with every component is decoded row by row; more scans need every
    // coefficient of the image at once.
    let coefficients = if structure.scans > 1 {
        frame.coefficient_bytes()
    } else {
        0
    };
    // The `image` crate's decoder, which reads the orientation and the ICC profile, keeps a
    // copy of the file.
    let file = bytes.len() as u64;
    let cmyk = frame.sampling.len() == 4;
    let plan = if cmyk {
        let decoded = Layout {
            width,
            height,
            channels: 3,
            bytes_per_sample: 1,
        };
        Plan {
            stored: (width, height),
            decoded,
            alpha: false,
            // Its CMYK samples beside the RGB output.
            working: coefficients + file + decoded.pixels() * 4,
        }
    } else {
        let eighths = jpeg::scale_eighths(width, height, 0, sizes.preview);
        let scaled = |side: u32| (u64::from(side) * u64::from(eighths)).div_ceil(8);
        let decoded = Layout {
            width: u32::try_from(scaled(width)).unwrap_or(width),
            height: u32::try_from(scaled(height)).unwrap_or(height),
            channels: 3,
            bytes_per_sample: 1,
        };
        Plan {
            stored: (width, height),
            decoded,
            alpha: false,
            working: coefficients + file,
        }
    };
    Ok(("jpeg", plan, Source::Jpeg { cmyk }))
}

fn open_other<'a>(
    bytes: &'a [u8],
    format: ImageFormat,
    limits: &DecodeLimits,
) -> Result<(&'static str, Plan, Source<'a>), RenderError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits.image_limits());
    // Building the decoder parses only the header (up to the first pixel data).
    let decoder = reader.into_decoder().map_err(|e| classify(e, limits))?;
    let (width, height) = decoder.dimensions();
    limits.check(width, height)?;
    if decoder.total_bytes() > limits.max_alloc {
        return Err(RenderError::TooMuchMemory {
            limit: limits.max_alloc,
        });
    }
    let color = decoder.color_type();
    let channels = color.channel_count();
    let decoded = Layout {
        width,
        height,
        channels,
        bytes_per_sample: color.bytes_per_pixel() / channels.max(1),
    };
    let plan = Plan {
        stored: (width, height),
        decoded,
        alpha: color.has_alpha(),
        // These decoders may hold one intermediate the size of their output: TIFF's strips,
        // a GIF frame, WebP's YUV planes.
        working: decoded.bytes(),
    };
    Ok((format_name(format), plan, Source::Image(Box::new(decoder))))
}

impl Opened<'_> {
    /// Decodes the image. A JPEG is decoded by libjpeg-turbo at the smallest n/8 scale whose
    /// longer side is still at least the preview size (shrink on load: a 1280 px preview of a
    /// 6000 px photo needs a quarter-scale decode, a sixteenth of the pixels).
    pub fn decode(self) -> Result<Decoded, RenderError> {
        let Opened {
            bytes,
            limits,
            sizes,
            format,
            width,
            height,
            source,
            ..
        } = self;
        let limits = &limits;
        let decoded = |image, orientation, icc| Decoded {
            image,
            format,
            orientation,
            width,
            height,
            icc,
        };
        match source {
            Source::Heif(header) => {
                let heif = header.decode()?;
                // libheif has applied the container's rotation and mirroring.
                Ok(decoded(heif.image, Orientation::NoTransforms, heif.icc))
            }
            Source::Png(header) => {
                let (orientation, icc) = (header.orientation(), header.icc());
                Ok(decoded(header.decode()?, orientation, icc))
            }
            Source::Jpeg { cmyk } => {
                let mut reader = ImageReader::with_format(Cursor::new(bytes), ImageFormat::Jpeg);
                reader.limits(limits.image_limits());
                let mut decoder = reader.into_decoder().map_err(|e| classify(e, limits))?;
                let (orientation, icc) = metadata(&mut decoder);
                if !cmyk
                    && let Some(scaled) =
                        jpeg::decode_scaled(bytes, 0, sizes.preview, limits.max_pixels)
                            .map_err(|e| from_jpeg(e, limits))?
                {
                    let image = DynamicImage::ImageRgb8(scaled.image);
                    return Ok(decoded(image, orientation, icc));
                }
                // CMYK and YCCK, which libjpeg-turbo cannot turn into RGB.
                let image = DynamicImage::from_decoder(decoder).map_err(|e| classify(e, limits))?;
                Ok(decoded(image, orientation, icc))
            }
            Source::Image(mut decoder) => {
                let (orientation, icc) = metadata(&mut decoder);
                let image = DynamicImage::from_decoder(decoder).map_err(|e| classify(e, limits))?;
                Ok(decoded(image, orientation, icc))
            }
        }
    }
}

/// The orientation and the ICC profile. A damaged EXIF block or profile should not cost the
/// uploader the picture: it is shown as stored, unconverted.
fn metadata(decoder: &mut impl ImageDecoder) -> (Orientation, Option<Vec<u8>>) {
    let orientation = match decoder.orientation() {
        Ok(Orientation::NoTransforms) | Err(_) => exif_orientation(decoder),
        Ok(orientation) => orientation,
    };
    (orientation, decoder.icc_profile().ok().flatten())
}

/// The name published in `SourceImage::format`: lowercase, `jpeg` rather than `jpg`.
fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::WebP => "webp",
        ImageFormat::Gif => "gif",
        ImageFormat::Tiff => "tiff",
        ImageFormat::Bmp => "bmp",
        // Only the formats above have decoders compiled in; others fail before this.
        _ => "other",
    }
}

/// The orientation in the decoder's EXIF block, also when the block keeps the `Exif\0\0` header
/// of a JPEG APP1 segment, as Pillow and some cameras write it into WebP and PNG files (the
/// `image` crate expects the bare TIFF structure there and reads such files as upright).
fn exif_orientation(decoder: &mut impl ImageDecoder) -> Orientation {
    decoder
        .exif_metadata()
        .ok()
        .flatten()
        .and_then(|exif| {
            Orientation::from_exif_chunk(exif.strip_prefix(b"Exif\0\0").unwrap_or(&exif))
        })
        .unwrap_or(Orientation::NoTransforms)
}

fn truncated_jpeg() -> RenderError {
    RenderError::Corrupt("the JPEG data ends before its end-of-image marker".to_owned())
}

fn from_jpeg(error: JpegError, limits: &DecodeLimits) -> RenderError {
    match error {
        JpegError::TooLarge { width, height, .. } => RenderError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        },
        JpegError::TooManyScans { scans, limit } => RenderError::TooManyScans { scans, limit },
        JpegError::Truncated => truncated_jpeg(),
        JpegError::Corrupt(reason) => RenderError::Corrupt(reason),
    }
}

fn classify(error: ImageError, limits: &DecodeLimits) -> RenderError {
    match error {
        ImageError::Limits(e) => match e.kind() {
            LimitErrorKind::DimensionError => RenderError::TooWide { limit: MAX_SIDE },
            LimitErrorKind::InsufficientMemory => RenderError::TooMuchMemory {
                limit: limits.max_alloc,
            },
            _ => RenderError::Unsupported(e.to_string()),
        },
        ImageError::Unsupported(e) => RenderError::Unsupported(e.to_string()),
        // Truncated input surfaces as an I/O error (unexpected end of file) from some decoders.
        other => RenderError::Corrupt(other.to_string()),
    }
}
