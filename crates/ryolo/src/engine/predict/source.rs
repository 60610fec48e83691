//! Predict sources: image and video files, folders, globs and `.txt` lists expanded to files.

use crate::data::dataset::IMG_FORMATS;
use crate::data::video::{is_video, VID_FORMATS};
use anyhow::{Context, Result};
use std::path::Path;

/// Expands a `source`: an image or video file, a folder (sorted), a glob, or a `.txt` list of
/// paths. Webcams and URLs are not files: see [`crate::data::video::is_stream`].
pub fn expand_source(source: &str) -> Result<Vec<std::path::PathBuf>> {
    let p = Path::new(source);
    let is_img = |q: &Path| crate::data::dataset::is_image(q) || is_video(q);
    let mut files: Vec<std::path::PathBuf> = if p.is_dir() {
        std::fs::read_dir(p)
            .with_context(|| format!("listing {source}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|q| is_img(q))
            .collect()
    } else if p.is_file() && p.extension().and_then(|e| e.to_str()) == Some("txt") {
        let base = p.parent().unwrap_or(Path::new("."));
        std::fs::read_to_string(p)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| base.join(l))
            .collect()
    } else if p.is_file() {
        if !is_img(p) {
            anyhow::bail!(
                "source '{source}' is not a supported image ({}) or video ({})",
                IMG_FORMATS.join(", "),
                VID_FORMATS.join(", ")
            );
        }
        vec![p.to_path_buf()]
    } else if source.contains(['*', '?', '[']) {
        glob::glob(source)
            .with_context(|| format!("bad glob {source}"))?
            .filter_map(|e| e.ok())
            .filter(|q| is_img(q))
            .collect()
    } else {
        anyhow::bail!("source '{source}' does not exist");
    };
    if !p.is_file() {
        files.sort();
    }
    if files.is_empty() {
        anyhow::bail!(
            "no images or videos found in source '{source}' (looked for {}, {})",
            IMG_FORMATS.join(", "),
            VID_FORMATS.join(", ")
        );
    }
    Ok(files)
}
