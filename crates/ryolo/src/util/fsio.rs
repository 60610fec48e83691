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
