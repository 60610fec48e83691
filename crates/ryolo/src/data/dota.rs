//! `yolo data convert from=dota`: DOTA original labels to YOLO OBB corner files, as Ultralytics
//! 8.4 `convert_dota_to_yolo_obb` writes them (spec/obb.md §12).

use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::Path;

/// DOTA v1.5/v2 class names in Ultralytics' converter order (index = class id).
pub const DOTA_CLASSES: [&str; 18] = [
    "plane",
    "ship",
    "storage-tank",
    "baseball-diamond",
    "tennis-court",
    "basketball-court",
    "ground-track-field",
    "harbor",
    "bridge",
    "large-vehicle",
    "small-vehicle",
    "helicopter",
    "roundabout",
    "soccer-ball-field",
    "swimming-pool",
    "container-crane",
    "airport",
    "helipad",
];

/// What a DOTA conversion did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotaReport {
    /// Label files written.
    pub images: usize,
    /// Rows written.
    pub boxes: usize,
    /// Images skipped: not `.png`, or without an original label file (background).
    pub skipped: usize,
}

/// One original DOTA label file as YOLO OBB rows for an image `w x h` pixels: lines with fewer
/// than 9 fields (`imagesource:`, `gsd:`) are skipped, the difficulty is ignored, every corner is
/// normalised and written `%.6g`; `name` is used in errors (unknown class, bad number).
pub fn convert_label(text: &str, w: u32, h: u32, name: &str) -> Result<String> {
    let mut out = String::new();
    for (ln, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 9 {
            continue;
        }
        let Some(cls) = DOTA_CLASSES.iter().position(|c| *c == parts[8]) else {
            bail!(
                "{name}:{}: unknown DOTA class '{}' (known: {})",
                ln + 1,
                parts[8],
                DOTA_CLASSES.join(", ")
            );
        };
        let _ = write!(out, "{cls}");
        for (i, p) in parts[..8].iter().enumerate() {
            let v: f64 = p
                .parse()
                .with_context(|| format!("{name}:{}: '{p}' is not a number", ln + 1))?;
            let d = f64::from(if i % 2 == 0 { w } else { h });
            let _ = write!(out, " {}", crate::util::fmt_g(v / d, 6));
        }
        out.push('\n');
    }
    Ok(out)
}

/// Converts `root/labels/{train,val}_original/*.txt` into `root/labels/{train,val}/*.txt` for the
/// `.png` images of `root/images/{train,val}` (sizes read from the image headers); images without
/// an original label file are skipped.
pub fn from_dota(root: &Path) -> Result<DotaReport> {
    let mut rep = DotaReport::default();
    for phase in ["train", "val"] {
        let image_dir = root.join("images").join(phase);
        let orig = root.join("labels").join(format!("{phase}_original"));
        let save = root.join("labels").join(phase);
        std::fs::create_dir_all(&save).with_context(|| format!("creating {}", save.display()))?;
        let mut files: Vec<_> = std::fs::read_dir(&image_dir)
            .with_context(|| format!("reading {}", image_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for im in files {
            let stem = im.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let label = orig.join(format!("{stem}.txt"));
            if im.extension().and_then(|e| e.to_str()) != Some("png") || !label.is_file() {
                rep.skipped += 1;
                continue;
            }
            let (w, h) = image::image_dimensions(&im)
                .with_context(|| format!("reading the size of {}", im.display()))?;
            let text = std::fs::read_to_string(&label)
                .with_context(|| format!("reading {}", label.display()))?;
            let rows = convert_label(&text, w, h, &label.display().to_string())?;
            rep.boxes += rows.lines().count();
            let dst = save.join(format!("{stem}.txt"));
            std::fs::write(&dst, rows).with_context(|| format!("writing {}", dst.display()))?;
            rep.images += 1;
        }
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_are_skipped_and_unknown_classes_named() {
        let t = "imagesource:x\ngsd:1\n10 20 30 20 30 40 10 40 ship 1\n";
        assert_eq!(
            convert_label(t, 100, 50, "a.txt").unwrap(),
            "1 0.1 0.4 0.3 0.4 0.3 0.8 0.1 0.8\n"
        );
        let e = convert_label("1 2 3 4 5 6 7 8 boat 0", 10, 10, "b.txt").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("b.txt:1: unknown DOTA class 'boat'"),
            "{e}"
        );
        let e = convert_label("1 2 x 4 5 6 7 8 ship 0", 10, 10, "c.txt").unwrap_err();
        assert!(
            e.to_string().contains("c.txt:1: 'x' is not a number"),
            "{e}"
        );
    }
}
