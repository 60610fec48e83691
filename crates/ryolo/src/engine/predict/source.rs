//! Predict sources: image and video files, folders, globs and `.txt` lists expanded to files.

use crate::data::dataset::IMG_FORMATS;
use crate::data::video::{is_video, VID_FORMATS};
use anyhow::{Context, Result};
use std::path::Path;

/// The files of a `.txt` source list (relative to its folder); a line that names no file or not
/// an image or video is skipped with a warning naming the list and the line.
fn list_entries(list: &Path, is_img: &dyn Fn(&Path) -> bool) -> Result<Vec<std::path::PathBuf>> {
    let base = list.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for (ln, line) in crate::data::dataset::read_list(list)? {
        let f = base.join(&line);
        if !f.exists() {
            eprintln!(
                "WARNING {}:{ln}: '{line}' does not exist, skipped",
                list.display()
            );
        } else if !is_img(&f) {
            eprintln!(
                "WARNING {}:{ln}: '{line}' is not a supported image or video, skipped",
                list.display()
            );
        } else {
            files.push(f);
        }
    }
    Ok(files)
}

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
        list_entries(p, &is_img)?
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
    } else if p.exists() {
        anyhow::bail!("source '{source}' is not a regular file or a folder");
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
