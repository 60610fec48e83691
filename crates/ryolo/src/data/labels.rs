//! Label verification with a verdict per file, the dataset scan and its cache (spec/data.md §3).

use super::dataset::img2label_path;
use anyhow::Result;
use image::ImageDecoder;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Cache format version; bump when the scan rules change.
const CACHE_VERSION: &str = "ryolo-labels-2";

/// One verified image with its labels.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabelEntry {
    /// The image file.
    pub im_file: PathBuf,
    /// EXIF-aware `(h, w)`.
    pub shape: (u32, u32),
    /// Class id per box.
    pub cls: Vec<u32>,
    /// Normalised `cx, cy, w, h` per box.
    pub boxes: Vec<[f32; 4]>,
}

/// What the scan concluded for one image.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Verdict {
    /// Label file found with objects.
    Found,
    /// No label file: a background image.
    Missing,
    /// Empty label file: a background image.
    Empty,
    /// Dropped.
    Corrupt,
}

/// The result of checking one image and its label file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checked {
    /// The entry, unless corrupt.
    pub entry: Option<LabelEntry>,
    /// Verdict.
    pub verdict: Verdict,
    /// Warnings (file, line, reason), possibly with a kept entry.
    pub warnings: Vec<String>,
}

fn image_shape(path: &Path) -> Result<(u32, u32), String> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    if reader.format().is_none() {
        return Err("not a supported image format".into());
    }
    let mut dec = reader
        .into_decoder()
        .map_err(|e| format!("invalid image header: {e}"))?;
    let (w, h) = dec.dimensions();
    let o = dec
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    use image::metadata::Orientation::*;
    let (w, h) = if matches!(o, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH) {
        (h, w)
    } else {
        (w, h)
    };
    Ok((h, w))
}

fn jpeg_complete(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut tail = [0u8; 2];
    f.seek(SeekFrom::End(-2)).is_ok() && f.read_exact(&mut tail).is_ok() && tail == [0xFF, 0xD9]
}

/// Checks an image and its label file (spec/data.md §3); never panics, never aborts the scan.
pub fn verify(im_file: &Path, nc: usize, single_cls: bool) -> Checked {
    let corrupt = |w: String| Checked {
        entry: None,
        verdict: Verdict::Corrupt,
        warnings: vec![w],
    };
    let mut warnings = Vec::new();
    let shape = match image_shape(im_file) {
        Ok(s) => s,
        Err(e) => {
            return corrupt(format!(
                "{}: ignoring corrupt image: {e}",
                im_file.display()
            ))
        }
    };
    if shape.0 < 10 || shape.1 < 10 {
        return corrupt(format!(
            "{}: ignoring corrupt image: size {}x{} is under 10 pixels",
            im_file.display(),
            shape.1,
            shape.0
        ));
    }
    let ext = im_file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if (ext == "jpg" || ext == "jpeg") && !jpeg_complete(im_file) {
        match image::open(im_file) {
            Ok(_) => warnings.push(format!(
                "{}: truncated JPEG (no end marker) still decodes, kept",
                im_file.display()
            )),
            Err(e) => {
                return corrupt(format!(
                    "{}: ignoring corrupt image: truncated JPEG that does not decode: {e}",
                    im_file.display()
                ))
            }
        }
    }
    let lb = img2label_path(im_file);
    let mut entry = LabelEntry {
        im_file: im_file.to_path_buf(),
        shape,
        cls: vec![],
        boxes: vec![],
    };
    let bytes = match std::fs::read(&lb) {
        Ok(b) => b,
        Err(_) => {
            return Checked {
                entry: Some(entry),
                verdict: Verdict::Missing,
                warnings,
            }
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => {
            return corrupt(format!(
                "{}: ignoring corrupt label: not UTF-8 text",
                lb.display()
            ))
        }
    };
    let text = text.trim_start_matches('\u{feff}');
    let mut rows: Vec<(u32, [f32; 4], usize)> = Vec::new();
    let mut kinds = (false, false);
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason: &str| {
            corrupt(format!(
                "{}:{ln}: ignoring corrupt image/label: {reason}",
                lb.display()
            ))
        };
        let mut vals = Vec::new();
        for tok in line.split_whitespace() {
            match tok.parse::<f64>() {
                Ok(v) if v.is_finite() => vals.push(v),
                Ok(_) => return bad(&format!("non-finite value '{tok}'")),
                Err(_) => return bad(&format!("'{tok}' is not a number")),
            }
        }
        let (c, b) = if vals.len() > 6 {
            if vals.len() % 2 == 0 {
                return bad(&format!(
                    "polygon row has {} values; expected class then x y pairs",
                    vals.len()
                ));
            }
            kinds.1 = true;
            let xs = vals[1..].iter().step_by(2);
            let ys = vals[2..].iter().step_by(2);
            let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |a, &v| (a.0.min(v), a.1.max(v)));
            let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |a, &v| (a.0.min(v), a.1.max(v)));
            (
                vals[0],
                [(x0 + x1) / 2.0, (y0 + y1) / 2.0, x1 - x0, y1 - y0],
            )
        } else if vals.len() == 5 {
            kinds.0 = true;
            (vals[0], [vals[1], vals[2], vals[3], vals[4]])
        } else {
            return bad(&format!(
                "labels require 5 columns, {} columns detected",
                vals.len()
            ));
        };
        if c.fract() != 0.0 {
            return bad(&format!("class id {c} is not an integer"));
        }
        if c < 0.0 {
            return bad(&format!("negative class id {c}"));
        }
        if !single_cls && c as usize >= nc {
            return bad(&format!(
                "class id {c} exceeds dataset class count {nc} (valid ids 0-{})",
                nc.saturating_sub(1)
            ));
        }
        if b.iter().any(|&v| v > 1.01) {
            return bad(&format!(
                "non-normalized or out of bounds coordinates {:?}",
                b
            ));
        }
        let min = b.iter().cloned().fold(f64::MAX, f64::min);
        if !(min >= 0.0 || (min >= -0.01 && b[2] >= 0.0 && b[3] >= 0.0)) {
            return bad(&format!("negative label values {:?}", b));
        }
        if b[2] <= 0.0 || b[3] <= 0.0 {
            warnings.push(format!("{}:{ln}: zero-area box ignored", lb.display()));
            continue;
        }
        let c = if single_cls { 0 } else { c as u32 };
        rows.push((c, b.map(|v| v as f32), ln));
    }
    if kinds.0 && kinds.1 {
        return corrupt(format!(
            "{}: ignoring corrupt image/label: mixes box rows and polygon rows",
            lb.display()
        ));
    }
    let before = rows.len();
    let mut seen: Vec<(u32, [u32; 4])> = Vec::new();
    rows.retain(|(c, b, _)| {
        let key = (*c, b.map(f32::to_bits));
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    if rows.len() < before {
        warnings.push(format!(
            "{}: {} duplicate labels removed",
            lb.display(),
            before - rows.len()
        ));
    }
    let verdict =
        if rows.is_empty() && before == 0 && warnings.iter().all(|w| !w.contains("zero-area")) {
            Verdict::Empty
        } else {
            Verdict::Found
        };
    entry.cls = rows.iter().map(|r| r.0).collect();
    entry.boxes = rows.iter().map(|r| r.1).collect();
    Checked {
        entry: Some(entry),
        verdict,
        warnings,
    }
}

/// The outcome of scanning a split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scan {
    /// Kept images (found + backgrounds), in file order.
    pub entries: Vec<LabelEntry>,
    /// Images with a label file.
    pub found: usize,
    /// Background images (missing or empty label files).
    pub backgrounds: usize,
    /// Dropped images.
    pub corrupt: usize,
    /// One line per problem file.
    pub warnings: Vec<String>,
}

fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= *b as u64;
        *h = h.wrapping_mul(0x100000001b3);
    }
}

fn stamp(h: &mut u64, p: &Path) {
    fnv(h, p.to_string_lossy().as_bytes());
    if let Ok(m) = std::fs::metadata(p) {
        fnv(h, &m.len().to_le_bytes());
        if let Ok(t) = m.modified().and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_err(std::io::Error::other)
        }) {
            fnv(h, &t.as_nanos().to_le_bytes());
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    version: String,
    hash: u64,
    scan: Scan,
}

/// Where the cache of a split lives: next to the labels folder when writable, else the user cache dir.
fn cache_paths(files: &[PathBuf], hash: u64) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(dir) = files
        .first()
        .map(|f| img2label_path(f))
        .and_then(|l| l.parent().map(Path::to_path_buf))
    {
        // Honour read-only permission bits even as root: never write into a read-only dataset.
        let writable = dir
            .parent()
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| !m.permissions().readonly());
        if writable {
            v.push(dir.with_extension("ryolo.cache"));
        }
    }
    let base = dirs::cache_dir().unwrap_or_else(std::env::temp_dir);
    v.push(base.join("ryolo").join(format!("labels-{hash:016x}.cache")));
    v
}

/// Scans a split (in parallel), reusing a valid cache. Prints the Ultralytics summary line and one
/// warning line per problem file.
pub fn scan(prefix: &str, files: &[PathBuf], nc: usize, single_cls: bool) -> Scan {
    let mut hash = 0xcbf29ce484222325u64;
    fnv(&mut hash, CACHE_VERSION.as_bytes());
    fnv(&mut hash, &(nc as u64).to_le_bytes());
    fnv(&mut hash, &[single_cls as u8]);
    for f in files {
        stamp(&mut hash, f);
        stamp(&mut hash, &img2label_path(f));
    }
    let label_dir = files
        .first()
        .map(|f| img2label_path(f))
        .and_then(|l| l.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let paths = cache_paths(files, hash);
    for p in &paths {
        if let Some(c) = std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<CacheFile>(&b).ok())
        {
            if c.version == CACHE_VERSION && c.hash == hash {
                report(prefix, &label_dir, &c.scan, Some(p));
                return c.scan;
            }
        }
    }
    let pb = crate::util::progress_bar(
        files.len(),
        &format!("{prefix}: Scanning {}", label_dir.display()),
    );
    let checked: Vec<Checked> = files
        .par_iter()
        .map(|f| {
            let c = verify(f, nc, single_cls);
            pb.inc(1);
            c
        })
        .collect();
    pb.finish_and_clear();
    let mut s = Scan {
        entries: vec![],
        found: 0,
        backgrounds: 0,
        corrupt: 0,
        warnings: vec![],
    };
    for c in checked {
        match c.verdict {
            Verdict::Found => s.found += 1,
            Verdict::Missing | Verdict::Empty => s.backgrounds += 1,
            Verdict::Corrupt => s.corrupt += 1,
        }
        s.warnings.extend(c.warnings);
        s.entries.extend(c.entry);
    }
    report(prefix, &label_dir, &s, None);
    let bytes = serde_json::to_vec(&CacheFile {
        version: CACHE_VERSION.into(),
        hash,
        scan: s.clone(),
    })
    .unwrap_or_default();
    for p in &paths {
        if crate::util::write_atomic(p, &bytes).is_ok() {
            println!("{prefix}: New cache created: {}", p.display());
            break;
        }
    }
    s
}

fn report(prefix: &str, dir: &Path, s: &Scan, cache: Option<&Path>) {
    println!(
        "{prefix}: Scanning {}... {} images, {} backgrounds, {} corrupt",
        dir.display(),
        s.found,
        s.backgrounds,
        s.corrupt
    );
    if let Some(c) = cache {
        println!("{prefix}: using label cache {}", c.display());
    }
    for w in &s.warnings {
        println!("{prefix}: WARNING {w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(label: &[u8], tag: &str) -> (PathBuf, PathBuf) {
        let d = std::env::temp_dir().join(format!(
            "ryolo-lbl-{tag}-{}-{}",
            std::process::id(),
            fnv_name(label)
        ));
        std::fs::create_dir_all(d.join("images")).unwrap();
        std::fs::create_dir_all(d.join("labels")).unwrap();
        let img = d.join("images/a.png");
        image::RgbImage::new(32, 24).save(&img).unwrap();
        std::fs::write(d.join("labels/a.txt"), label).unwrap();
        (d, img)
    }
    fn fnv_name(b: &[u8]) -> u64 {
        let mut h = 0xcbf29ce484222325u64;
        fnv(&mut h, b);
        h
    }

    #[test]
    fn verdicts() {
        let cases: &[(&[u8], Verdict, &str)] = &[
            (b"0 0.5 0.5 0.2 0.2\n", Verdict::Found, ""),
            (b"", Verdict::Empty, ""),
            (
                b"\xef\xbb\xbf1 0.5 0.5 0.2 0.2\r\n1 0.5 0.5 0.2 0.2  \r\n",
                Verdict::Found,
                "1 duplicate labels removed",
            ),
            (
                b"0 nan 0.5 0.2 0.2\n",
                Verdict::Corrupt,
                ":1: ignoring corrupt image/label: non-finite",
            ),
            (
                b"0 0.5 0.5 0.2 0.2\n0 1e30 0.5 0.2 0.2\n",
                Verdict::Corrupt,
                ":2: ignoring corrupt image/label: non-normalized",
            ),
            (b"-1 0.5 0.5 0.2 0.2\n", Verdict::Corrupt, "negative class"),
            (
                b"5 0.5 0.5 0.2 0.2\n",
                Verdict::Corrupt,
                "exceeds dataset class count 3",
            ),
            (b"0 0.5 0.5 0.2\n", Verdict::Corrupt, "5 columns, 4 columns"),
            (
                b"0 0.5 0.5 0 0.2\n0 0.5 0.5 0.2 0.2\n",
                Verdict::Found,
                ":1: zero-area box ignored",
            ),
            (b"0.5 0.5 0.5 0.2 0.2\n", Verdict::Corrupt, "not an integer"),
        ];
        for (label, want, msg) in cases {
            let (d, img) = setup(label, "verdicts");
            let c = verify(&img, 3, false);
            assert_eq!(
                c.verdict,
                *want,
                "{:?}: {:?}",
                String::from_utf8_lossy(label),
                c.warnings
            );
            assert!(
                c.warnings.iter().any(|w| w.contains(msg)) || msg.is_empty(),
                "{:?}",
                c.warnings
            );
            if *want == Verdict::Found {
                assert!(!c.entry.unwrap().boxes.is_empty());
            }
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn missing_label_is_background_and_bad_image_is_corrupt() {
        let (d, img) = setup(b"", "missing");
        std::fs::remove_file(d.join("labels/a.txt")).unwrap();
        assert_eq!(verify(&img, 3, false).verdict, Verdict::Missing);
        std::fs::write(&img, b"not a png").unwrap();
        let c = verify(&img, 3, false);
        assert_eq!(c.verdict, Verdict::Corrupt);
        assert!(c.warnings[0].contains("a.png"), "{:?}", c.warnings);
        std::fs::remove_dir_all(d).unwrap();
    }
}
