//! Image files: decoding with EXIF orientation, conversion to 8-bit RGB.

use anyhow::{Context, Result};
use image::ImageDecoder;
use std::path::Path;

/// Decodes an image file to RGB with its EXIF orientation applied (16-bit and grey become 8-bit RGB).
pub fn load_image(path: &Path) -> Result<image::RgbImage> {
    Ok(into_rgb8(load_dynamic(path)?))
}

/// Decodes an image file in its own pixel format with its EXIF orientation applied.
pub fn load_dynamic(path: &Path) -> Result<image::DynamicImage> {
    let ctx = || format!("reading image {}", path.display());
    let reader = image::ImageReader::open(path)
        .with_context(ctx)?
        .with_guessed_format()
        .with_context(ctx)?;
    let mut decoder = reader.into_decoder().with_context(ctx)?;
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
