//! Image files: decoding with EXIF orientation and a pixel limit, conversion to 8-bit RGB.

use anyhow::{anyhow, bail, Context, Result};
use image::ImageDecoder;
use std::path::Path;

/// Pillow's default `Image.MAX_IMAGE_PIXELS` (1024 * 1024 * 1024 / 4 / 3): larger images are
/// refused before any pixel is decoded.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// The environment variable that overrides [`DEFAULT_MAX_IMAGE_PIXELS`] (a positive whole number).
pub const MAX_PIXELS_ENV: &str = "RYOLO_MAX_IMAGE_PIXELS";

/// The most pixels an image may have: `RYOLO_MAX_IMAGE_PIXELS` when set, else Pillow's default.
pub fn max_image_pixels() -> Result<u64> {
    parse_max_pixels(std::env::var_os(MAX_PIXELS_ENV).as_deref())
}

/// The pixel limit given the environment variable's value (`None` when unset).
fn parse_max_pixels(v: Option<&std::ffi::OsStr>) -> Result<u64> {
    let Some(v) = v else {
        return Ok(DEFAULT_MAX_IMAGE_PIXELS);
    };
    match v.to_str().map(|s| s.trim().parse::<u64>()) {
        Some(Ok(n)) if n > 0 => Ok(n),
        _ => bail!("{MAX_PIXELS_ENV}={v:?} must be a positive whole number of pixels"),
    }
}

/// The decoding limits for `max_pixels`: no side longer than the pixel count, and allocations up
/// to 8 bytes a pixel (16-bit RGBA) or the crate's default, whichever is more.
fn limits(max_pixels: u64) -> image::Limits {
    let mut l = image::Limits::default();
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    l.max_image_width = Some(side);
    l.max_image_height = Some(side);
    l.max_alloc = Some(max_pixels.saturating_mul(8).max(512 << 20));
    l
}

/// A decoder for `path` (a regular file in a known image format, within the pixel limit); the
/// errors give the reason without the file name.
fn open_decoder(path: &Path) -> Result<impl ImageDecoder> {
    super::dataset::check_regular(path).map_err(|e| anyhow!(e))?;
    let max = max_image_pixels()?;
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| anyhow!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| anyhow!("cannot read: {e}"))?;
    if reader.format().is_none() {
        bail!("not a supported image format");
    }
    reader.limits(limits(max));
    let dec = reader
        .into_decoder()
        .map_err(|e| anyhow!("invalid image header: {e}"))?;
    let (w, h) = dec.dimensions();
    let pixels = w as u64 * h as u64;
    if pixels > max {
        bail!(
            "{w}x{h} is {pixels} pixels, over the limit of {max} (set {MAX_PIXELS_ENV} to allow more)"
        );
    }
    Ok(dec)
}

/// The EXIF-aware `(h, w)` of an image from its header, within the pixel limit. With `decode` the
/// whole image is decoded as well (and dropped), so a truncated or damaged file fails here.
pub fn probe(path: &Path, decode: bool) -> Result<(u32, u32)> {
    use image::metadata::Orientation::*;
    let mut dec = open_decoder(path)?;
    let (w, h) = dec.dimensions();
    let o = dec.orientation().unwrap_or(NoTransforms);
    if decode {
        image::DynamicImage::from_decoder(dec).map_err(|e| anyhow!("does not decode: {e}"))?;
    }
    Ok(
        if matches!(o, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH) {
            (w, h)
        } else {
            (h, w)
        },
    )
}

/// Decodes an image file to RGB with its EXIF orientation applied (16-bit and grey become 8-bit RGB).
pub fn load_image(path: &Path) -> Result<image::RgbImage> {
    Ok(into_rgb8(load_dynamic(path)?))
}

/// Decodes an image file in its own pixel format with its EXIF orientation applied; regular files
/// only, within the pixel limit ([`max_image_pixels`]).
pub fn load_dynamic(path: &Path) -> Result<image::DynamicImage> {
    let ctx = || format!("reading image {}", path.display());
    let mut decoder = open_decoder(path).with_context(ctx)?;
    let orientation = decoder.orientation().ok();
    let mut img = image::DynamicImage::from_decoder(decoder).with_context(ctx)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img)
}

/// 8-bit RGB from any decoded image, without the generic (float) conversion for the common cases.
pub fn into_rgb8(img: image::DynamicImage) -> image::RgbImage {
    match img {
        image::DynamicImage::ImageRgb8(i) => i,
        image::DynamicImage::ImageLuma8(l) => {
            let (w, h) = l.dimensions();
            image::RgbImage::from_raw(w, h, crate::ops::grey_to_rgb(l.as_raw()))
                .expect("w * h * 3 bytes")
        }
        other => other.to_rgb8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn pixel_limit_defaults_to_pillow_and_is_overridable() {
        assert_eq!(parse_max_pixels(None).unwrap(), 89_478_485);
        assert_eq!(
            parse_max_pixels(Some(OsStr::new(" 4000000000 "))).unwrap(),
            4_000_000_000
        );
        for bad in ["0", "-1", "1e9", "lots", ""] {
            let e = parse_max_pixels(Some(OsStr::new(bad)))
                .unwrap_err()
                .to_string();
            assert!(e.contains(MAX_PIXELS_ENV), "{e}");
        }
        let l = limits(100);
        assert_eq!(
            (l.max_image_width, l.max_alloc),
            (Some(100), Some(512 << 20))
        );
    }
}
