//! Why an image could not be rendered. Rendering is deterministic, so retrying the same bytes
//! fails the same way: the handler treats every variant as a permanent failure.

/// A render failure, worded for the person who uploaded the image.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Zero bytes.
    #[error("the file is empty")]
    Empty,
    /// The leading bytes match no image signature.
    #[error("not an image (unrecognised format)")]
    NotAnImage,
    /// A format we recognise but do not decode (e.g. AVIF, ICO), or a variant of a supported
    /// format the decoder does not handle (e.g. an unusual colour type).
    #[error("unsupported image: {0}")]
    Unsupported(String),
    /// The header declares more pixels than `max_pixels`; refused before decoding.
    #[error(
        "the image is too large: {width}x{height} is {mp} megapixels, over the limit of {limit_mp} \
         ({pixels} pixels, over the {limit} pixel limit)",
        pixels = u64::from(*width) * u64::from(*height),
        mp = u64::from(*width) * u64::from(*height) / 1_000_000,
        limit_mp = limit / 1_000_000
    )]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    /// The header declares a side longer than any format we render can hold.
    #[error("the image is too large: wider or taller than the {limit} pixel side limit")]
    TooWide { limit: u32 },
    /// Decoding would need more memory than the limit allows (e.g. a 32-bit float TIFF).
    #[error("decoding the image would need more than {limit} bytes of memory")]
    TooMuchMemory { limit: u64 },
    /// Rendering would hold more memory at its peak than the whole decode budget
    /// (`resizer.decode_memory_mb`), estimated from the header; refused before decoding.
    #[error(
        "image needs ~{need_mib} MiB to decode, over the decode memory budget of {budget_mib} MiB"
    )]
    OverBudget { need_mib: u64, budget_mib: u64 },
    /// A JPEG with more scans than encoders write: each scan of a progressive JPEG is another
    /// pass over the image, so thousands of them hold a core for minutes.
    #[error("JPEG has {scans} scans, over the limit of {limit}")]
    TooManyScans { scans: u32, limit: u32 },
    /// The data stops early or contradicts its own format.
    #[error("the file is cut off or damaged: {0}")]
    Corrupt(String),
    /// Resizing or encoding a rendition failed; a bug rather than a property of the input.
    #[error("cannot produce rendition: {0}")]
    Rendition(String),
}
