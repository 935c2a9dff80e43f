//! Colour management: renditions are sRGB (what browsers assume for untagged images), so pixels
//! that come with another ICC profile (Adobe RGB, Display P3 from phones, ProPhoto from raw
//! converters) are converted, instead of showing dull or oversaturated.

use image::RgbImage;
use lcms2::{ColorSpaceSignature, InfoType, Intent, Locale, PixelFormat, Profile, Transform};

/// A conversion from an embedded RGB profile to sRGB.
pub(crate) struct ToSrgb(Transform<[u8; 3], [u8; 3]>);

impl ToSrgb {
    /// The conversion for `icc`, or `None` when there is nothing to do: the profile is sRGB
    /// already, is not an RGB profile (a grey or CMYK profile describes pixels the decoder has
    /// already turned into RGB), or does not parse (shown as stored, as browsers do).
    pub fn from_icc(icc: &[u8]) -> Option<Self> {
        let profile = Profile::new_icc(icc).ok()?;
        if profile.color_space() != ColorSpaceSignature::RgbData || is_srgb(&profile) {
            return None;
        }
        Transform::new(
            &profile,
            PixelFormat::RGB_8,
            &Profile::new_srgb(),
            PixelFormat::RGB_8,
            Intent::Perceptual,
        )
        .ok()
        .map(ToSrgb)
    }

    /// Converts `image` in place. Cheap at rendition size, which is where it is applied.
    pub fn apply(&self, image: &mut RgbImage) {
        let mut pixels: Vec<[u8; 3]> = image
            .as_raw()
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        self.0.transform_in_place(&mut pixels);
        for (dst, src) in image.as_mut().chunks_exact_mut(3).zip(&pixels) {
            dst.copy_from_slice(src);
        }
    }
}

/// Whether a profile is (a variant of) sRGB, by its description: converting sRGB to sRGB
/// would only cost time and rounding.
fn is_srgb(profile: &Profile) -> bool {
    profile
        .info(InfoType::Description, Locale::none())
        .is_some_and(|d| d.to_ascii_lowercase().contains("srgb"))
}
