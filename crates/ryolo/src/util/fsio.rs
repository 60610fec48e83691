//! `std::fs` writers whose errors name the path (`creating runs/x: Not a directory`).

use anyhow::{Context, Result};
use std::path::Path;

/// `std::fs::create_dir_all`, its error naming the folder.
pub fn create_dir_all(dir: impl AsRef<Path>) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).with_context(|| format!("creating folder {}", dir.display()))
}

/// `std::fs::write`, its error naming the file.
pub fn write(file: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> Result<()> {
    let file = file.as_ref();
    std::fs::write(file, bytes).with_context(|| format!("writing {}", file.display()))
}

/// JPEG quality of saved images: OpenCV's `imwrite` default, which Ultralytics' outputs use.
pub const JPEG_QUALITY: u8 = 95;

/// Saves an RGB image (format from the extension; `.jpg`/`.jpeg` at [`JPEG_QUALITY`], 4:2:0, with
/// a SIMD encoder), its error naming the file.
pub fn save_rgb(img: &image::RgbImage, file: impl AsRef<Path>) -> Result<()> {
    let file = file.as_ref();
    let jpeg = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
    let (w, h) = img.dimensions();
    if !jpeg || w > u16::MAX as u32 || h > u16::MAX as u32 {
        return save_image(img, file);
    }
    let mut enc = jpeg_encoder::Encoder::new_file(file, JPEG_QUALITY)
        .with_context(|| format!("saving image {}", file.display()))?;
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    enc.encode(
        img.as_raw(),
        w as u16,
        h as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .with_context(|| format!("saving image {}", file.display()))
}

/// Saves an image (format from the extension), its error naming the file.
pub fn save_image<P, C>(img: &image::ImageBuffer<P, C>, file: impl AsRef<Path>) -> Result<()>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let file = file.as_ref();
    img.save(file)
        .with_context(|| format!("saving image {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x + y) % 256) as u8,
            ])
        })
    }

    #[test]
    fn jpeg_at_quality_95_and_png_lossless() {
        let dir = std::env::temp_dir().join(format!("ryolo-fsio-{}", std::process::id()));
        create_dir_all(&dir).unwrap();
        let img = gradient(101, 67);
        for name in ["a.jpg", "b.JPEG"] {
            let f = dir.join(name);
            save_rgb(&img, &f).unwrap();
            let back = image::open(&f).unwrap().to_rgb8();
            assert_eq!(back.dimensions(), img.dimensions());
            let err: f64 = back
                .as_raw()
                .iter()
                .zip(img.as_raw())
                .map(|(a, b)| (*a as f64 - *b as f64).abs())
                .sum::<f64>()
                / img.as_raw().len() as f64;
            // Quality 95 on a smooth image: about one level of mean error at most.
            assert!(err < 1.5, "{name}: mean abs error {err}");
        }
        let f = dir.join("c.png");
        save_rgb(&img, &f).unwrap();
        assert_eq!(image::open(&f).unwrap().to_rgb8(), img);
        let bad = dir.join("missing/d.jpg");
        let e = save_rgb(&img, &bad).unwrap_err();
        assert!(format!("{e:#}").contains("d.jpg"), "{e:#}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
