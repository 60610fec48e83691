//! Classification data (YOLOv8-cls / YOLO11-cls): ImageFolder split resolution
//! (`check_cls_dataset`), the image scan, the eval transform (Pillow's fixed-point antialiased
//! bilinear resize and a centre crop), the training augmentation and batches.

use super::classify_policy::Op;
use anyhow::{anyhow, bail, Context, Result};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Image suffixes a classification split lists (Ultralytics' `IMG_FORMATS`, case-insensitive);
/// files whose format ryolo cannot decode are dropped by the scan with a warning naming them.
pub const CLS_IMG_FORMATS: &[&str] = &[
    "avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpeg2000", "jpg", "mpo", "png", "tif",
    "tiff", "webp",
];

/// Folder depth below a class folder that the listing follows (deeper folders are skipped with a
/// warning).
pub const MAX_FOLDER_DEPTH: usize = 64;

/// The folder names tried for the validation split, in order.
pub const VAL_FOLDERS: [&str; 3] = ["val", "validation", "valid"];

/// Whether `p` has a suffix in [`CLS_IMG_FORMATS`].
pub fn is_cls_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| CLS_IMG_FORMATS.contains(&e.to_ascii_lowercase().as_str()))
}

// ---------------------------------------------------------------------------------------------
// Listing (torchvision ImageFolder order)
// ---------------------------------------------------------------------------------------------

/// The sub-folders of `dir` (symlinks followed), sorted by name (code-point order).
fn sub_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let rd = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let p = e.path();
        if p.is_dir() {
            out.push((e.file_name(), p));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out
        .into_iter()
        .map(|(n, p)| (n.to_string_lossy().into_owned(), p))
        .collect())
}

/// The image files below `dir` in ImageFolder order: folders sorted by path, files sorted by
/// name within a folder; symlinked folders are followed once (loops skipped). Problems are
/// appended to `warnings`.
fn images_below(dir: &Path, warnings: &mut Vec<String>) -> Vec<PathBuf> {
    let mut seen = BTreeSet::new();
    let mut folders: Vec<(PathBuf, Vec<OsString>)> = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        match std::fs::canonicalize(&d) {
            Ok(c) => {
                if !seen.insert(c) {
                    warnings.push(format!(
                        "{}: folder listed already (a symlink loop?), skipped",
                        d.display()
                    ));
                    continue;
                }
            }
            Err(e) => {
                warnings.push(format!("{}: cannot read folder: {e}", d.display()));
                continue;
            }
        }
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) => {
                warnings.push(format!("{}: cannot read folder: {e}", d.display()));
                continue;
            }
        };
        let mut files = Vec::new();
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if depth + 1 > MAX_FOLDER_DEPTH {
                    warnings.push(format!(
                        "{}: deeper than {MAX_FOLDER_DEPTH} folders, skipped",
                        p.display()
                    ));
                } else {
                    stack.push((p, depth + 1));
                }
            } else if is_cls_image(&p) {
                files.push(e.file_name());
            }
        }
        files.sort();
        folders.push((d, files));
    }
    folders.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    folders
        .into_iter()
        .flat_map(|(d, files)| files.into_iter().map(move |f| d.join(f)))
        .collect()
}

/// One split as torchvision's ImageFolder sees it: sorted class folder names and the image
/// files with their folder index, class by class.
#[derive(Debug, Clone, Default)]
pub struct ImageFolder {
    /// Class folder names, sorted.
    pub classes: Vec<String>,
    /// Image files with the index of their class folder.
    pub samples: Vec<(PathBuf, usize)>,
    /// Class folders without any image.
    pub empty: Vec<PathBuf>,
    /// Listing problems (unreadable or looping folders).
    pub warnings: Vec<String>,
}

impl ImageFolder {
    /// Lists `dir` (its sub-folders are the classes; files directly in `dir` are not samples).
    pub fn scan(dir: &Path) -> Result<Self> {
        let mut out = Self::default();
        for (name, p) in sub_folders(dir)? {
            let files = images_below(&p, &mut out.warnings);
            if files.is_empty() {
                out.empty.push(p);
            }
            let k = out.classes.len();
            out.samples.extend(files.into_iter().map(|f| (f, k)));
            out.classes.push(name);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// check_cls_dataset
// ---------------------------------------------------------------------------------------------

/// A resolved classification dataset: the split folders and the class names.
#[derive(Debug, Clone)]
pub struct ClsData {
    /// The dataset root folder.
    pub root: PathBuf,
    /// `root/train`.
    pub train: PathBuf,
    /// The validation folder (`val`, `validation` or `valid`; the test folder for `split=val`
    /// without one).
    pub val: Option<PathBuf>,
    /// `root/test` (the validation folder for `split=test` without one).
    pub test: Option<PathBuf>,
    /// Class names: the sorted sub-folder names of `root/train`.
    pub names: Vec<String>,
    /// The warnings and errors printed while resolving (without the prefix).
    pub warnings: Vec<String>,
}

impl ClsData {
    /// Number of classes.
    pub fn nc(&self) -> usize {
        self.names.len()
    }

    /// The folder of split `name` (`train`, `val` or `test`); an error naming the root when the
    /// dataset has none.
    pub fn split(&self, name: &str) -> Result<&Path> {
        let p = match name {
            "train" => Some(&self.train),
            "val" => self.val.as_ref(),
            "test" => self.test.as_ref(),
            other => bail!(
                "invalid classification dataset split '{other}'; use 'train', 'val' or 'test'"
            ),
        };
        p.map(PathBuf::as_path).ok_or_else(|| {
            anyhow!(
                "classification dataset {} has no '{name}' split (looked for {})",
                self.root.display(),
                match name {
                    "val" => "val/, validation/, valid/ and test/",
                    _ => "test/, val/, validation/ and valid/",
                }
            )
        })
    }
}

/// The archive suffixes Ultralytics unpacks when `data=` is not a folder.
const ARCHIVE_SUFFIXES: [&str; 8] = [
    ".zip", ".tar", ".gz", ".tgz", ".xz", ".bz2", ".txz", ".tbz2",
];

/// The dataset folder `data` names: a folder as is, a `.zip` unpacked into `datasets_dir`, a
/// bare name through [`crate::hub::datasets::classify_dataset`]; anything else is an error.
fn resolve_root(data: &Path) -> Result<PathBuf> {
    if data.is_dir() {
        return Ok(data.to_path_buf());
    }
    let lower = data.to_string_lossy().to_lowercase();
    if let Some(sfx) = ARCHIVE_SUFFIXES.iter().find(|s| lower.ends_with(*s)) {
        if *sfx != ".zip" {
            bail!(
                "{}: only .zip archives are unpacked; unpack it by hand and pass the folder",
                data.display()
            );
        }
        if !data.is_file() {
            bail!("dataset archive {} does not exist", data.display());
        }
        let max = std::env::var("RYOLO_UNZIP_MAX_BYTES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(64u64 << 30);
        let into = crate::hub::datasets::datasets_dir();
        std::fs::create_dir_all(&into).with_context(|| into.display().to_string())?;
        return crate::hub::datasets::unzip(data, &into, max)
            .with_context(|| format!("unpacking {}", data.display()));
    }
    if data.extension().is_some() || data.exists() {
        bail!(
            "Classification datasets must be a directory (data=\"path/to/dir\") not a file \
             (data=\"{}\"); see https://docs.ultralytics.com/datasets/classify",
            data.display()
        );
    }
    crate::hub::datasets::classify_dataset(&data.to_string_lossy())
}

/// Resolves a classification dataset as Ultralytics' `check_cls_dataset(data, split)`: the
/// `train/` folder (required), the validation folder (`val/`, `validation/`, `valid/`; the test
/// folder when `split == "val"` and there is none), `test/` (the validation folder when
/// `split == "test"` and there is none), class names = sorted sub-folders of `train/`. Prints one
/// line per split (`train: <dir>... found N images in K classes ✅ `) and the problems found.
pub fn check_cls_dataset(data: &Path, split: &str) -> Result<ClsData> {
    if !["", "train", "val", "test"].contains(&split) {
        bail!("invalid classification dataset split '{split}'; use 'train', 'val' or 'test'");
    }
    let root = resolve_root(data)?;
    let train = root.join("train");
    if !train.is_dir() {
        bail!(
            "classification dataset {}: no 'train' folder at {} (expected train/<class>/*.jpg, \
             val/<class>/*.jpg; splitting a folder of loose class folders is not supported)",
            root.display(),
            train.display()
        );
    }
    let mut warnings = Vec::new();
    let mut val = VAL_FOLDERS
        .iter()
        .map(|f| root.join(f))
        .find(|p| p.exists());
    let mut test = Some(root.join("test")).filter(|p| p.exists());
    if split == "val" && val.is_none() {
        warnings.push("Dataset 'split=val' not found, using 'split=test' instead.".to_string());
        val = test.clone();
    } else if split == "test" && test.is_none() {
        warnings.push("Dataset 'split=test' not found, using 'split=val' instead.".to_string());
        test = val.clone();
    }
    let names: Vec<String> = sub_folders(&train)?.into_iter().map(|(n, _)| n).collect();
    let nc = names.len();
    for w in &warnings {
        println!("WARNING {w}");
    }
    for (k, v) in [
        ("train", Some(&train)),
        ("val", val.as_ref()),
        ("test", test.as_ref()),
    ] {
        let Some(v) = v else {
            println!("{k}: None...");
            continue;
        };
        let prefix = format!("{k}: {}...", v.display());
        let mut listing = Vec::new();
        let files = if v.is_dir() {
            images_below(v, &mut listing)
        } else {
            listing.push(format!("{}: not a folder", v.display()));
            vec![]
        };
        let nf = files.len();
        let nd = files
            .iter()
            .filter_map(|f| f.strip_prefix(v).ok()?.components().next())
            .map(|c| c.as_os_str().to_owned())
            .collect::<BTreeSet<_>>()
            .len();
        for w in listing {
            println!("{k}: WARNING {w}");
            warnings.push(w);
        }
        if nf == 0 {
            if k == "train" {
                bail!(
                    "{} 'train:' no training images found in {} (looked for {})",
                    root.display(),
                    v.display(),
                    CLS_IMG_FORMATS.join(", ")
                );
            }
            let w = format!("{prefix} found 0 images in 0 classes (no images found)");
            println!("WARNING {w}");
            warnings.push(w);
        } else if nd != nc {
            let w = format!(
                "{prefix} found {nf} images in {nd} classes (requires {nc} classes, not {nd})"
            );
            println!("ERROR ❌ {w}");
            warnings.push(w);
        } else {
            println!("{prefix} found {nf} images in {nd} classes ✅ ");
        }
        if v.is_dir() {
            for (_, p) in sub_folders(v)? {
                if !files.iter().any(|f| f.starts_with(&p)) {
                    let w = format!("{}: empty class folder (no images)", p.display());
                    println!("{k}: WARNING {w}");
                    warnings.push(w);
                }
            }
        }
    }
    Ok(ClsData {
        root,
        train,
        val,
        test,
        names,
        warnings,
    })
}

// ---------------------------------------------------------------------------------------------
// fraction
// ---------------------------------------------------------------------------------------------

/// How much of a split to keep: a ratio of its images or an image count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fraction {
    /// A share of the images (1.0 = all).
    Ratio(f64),
    /// A number of images.
    Count(usize),
}

impl Fraction {
    /// The `fraction` setting for `split` (Ultralytics' `get_split_fraction`): a scalar applies to
    /// `train` only, a list is `[train, val, test]` (missing entries 1.0), an integer other than
    /// 0 or 1 is an image count; 0 for train or val is an error.
    pub fn for_split(v: &serde_yaml::Value, split: &str) -> Result<Self> {
        use serde_yaml::Value;
        let v = match v {
            Value::Sequence(s) => {
                let i = ["train", "val", "test"].iter().position(|s| *s == split);
                i.and_then(|i| s.get(i))
                    .cloned()
                    .unwrap_or(Value::from(1.0))
            }
            Value::Null => Value::from(1.0),
            v if split == "train" => v.clone(),
            _ => Value::from(1.0),
        };
        let f = match (&v, v.as_u64(), v.as_f64()) {
            (_, Some(n), _) if n > 1 => Self::Count(n as usize),
            (_, _, Some(r)) if r.is_finite() && r >= 0.0 => Self::Ratio(r),
            _ => bail!(
                "fraction for '{split}' must be a non-negative number or image count, got {v:?}"
            ),
        };
        if (split == "train" || split == "val") && matches!(f, Self::Ratio(r) if r == 0.0) {
            bail!("{split} fraction must select at least one image");
        }
        Ok(f)
    }

    /// The indices kept out of `n`: all, or `count` spread evenly (`linspace(0, n - 1, count)`
    /// truncated), with `count = max(1, round(n * ratio))` (0 stays 0).
    pub fn select(self, n: usize) -> Vec<usize> {
        let count = match self {
            Self::Count(c) => c,
            Self::Ratio(r) if r > 0.0 => ((n as f64 * r).round_ties_even() as usize).max(1),
            Self::Ratio(_) => 0,
        };
        if count >= n {
            return (0..n).collect();
        }
        if count == 1 {
            return vec![0];
        }
        let step = (n - 1) as f64 / (count - 1) as f64;
        (0..count)
            .map(|i| {
                if i + 1 == count {
                    n - 1
                } else {
                    (i as f64 * step) as usize
                }
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Pillow resampling (8-bit, antialiased bilinear)
// ---------------------------------------------------------------------------------------------

/// Fixed-point precision of Pillow's 8-bit resampler.
const PRECISION_BITS: u32 = 22;

/// The filter taps of output indices `range` for an axis of `in_size` resized to `out_size`:
/// per output index the first input index and its fixed-point weights.
fn bilinear_taps(
    in_size: usize,
    out_size: usize,
    range: std::ops::Range<usize>,
) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the bilinear kernel reaches 1 input pixel at scale 1
    let inv = 1.0 / filterscale;
    range
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // `as i64` truncates toward zero like C's (int).
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64)
                .min(in_size as i64)
                .max(lo as i64) as usize;
            let mut w: Vec<f64> = (lo..hi)
                .map(|j| {
                    let x = ((j as f64 - center + 0.5) * inv).abs();
                    if x < 1.0 {
                        1.0 - x
                    } else {
                        0.0
                    }
                })
                .collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
            let one = (1u64 << PRECISION_BITS) as f64;
            let k = w
                .iter()
                .map(|&v| {
                    if v < 0.0 {
                        (-0.5 + v * one) as i32
                    } else {
                        (0.5 + v * one) as i32
                    }
                })
                .collect();
            (lo, k)
        })
        .collect()
}

/// One fixed-point sum: rounding offset, `>> 22`, clamped to a byte.
#[inline]
fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize((ow, oh), BILINEAR)` of interleaved 8-bit RGB `src` (`w x h`),
/// computing only output columns `xr` and rows `yr` (the result is `xr.len() x yr.len()`):
/// horizontal pass first (stored as bytes), then vertical; a pass whose size is unchanged is
/// skipped. Bit-exact with Pillow for any window.
pub fn pil_resize_window(
    src: &[u8],
    (w, h): (usize, usize),
    (ow, oh): (usize, usize),
    xr: std::ops::Range<usize>,
    yr: std::ops::Range<usize>,
) -> Vec<u8> {
    const C: usize = 3;
    let (nx, ny) = (xr.len(), yr.len());
    if nx == 0 || ny == 0 || w == 0 || h == 0 || src.len() < w * h * C {
        return vec![0; nx * ny * C];
    }
    // Vertical taps, and the input rows they need.
    let vtaps = (oh != h).then(|| bilinear_taps(h, oh, yr.clone()));
    let (r0, r1) = match &vtaps {
        Some(t) => (
            t.iter().map(|(s, _)| *s).min().unwrap_or(0),
            t.iter().map(|(s, k)| s + k.len()).max().unwrap_or(0),
        ),
        None => (yr.start.min(h), yr.end.min(h)),
    };
    // Horizontal pass over rows r0..r1.
    let rows = r1 - r0;
    let mut tmp = vec![0u8; rows * nx * C];
    if ow != w {
        let htaps = bilinear_taps(w, ow, xr.clone());
        for (ry, dst) in tmp.chunks_exact_mut(nx * C).enumerate() {
            let row = &src[(r0 + ry) * w * C..(r0 + ry + 1) * w * C];
            for ((start, k), d) in htaps.iter().zip(dst.chunks_exact_mut(C)) {
                let mut acc = [1i64 << (PRECISION_BITS - 1); C];
                for (j, &kj) in k.iter().enumerate() {
                    let p = &row[(start + j) * C..(start + j) * C + C];
                    for c in 0..C {
                        acc[c] += p[c] as i64 * kj as i64;
                    }
                }
                for c in 0..C {
                    d[c] = clip8(acc[c]);
                }
            }
        }
    } else {
        let xe = xr.end.min(w);
        for (ry, dst) in tmp.chunks_exact_mut(nx * C).enumerate() {
            let row = &src[(r0 + ry) * w * C..(r0 + ry + 1) * w * C];
            let part = &row[xr.start.min(xe) * C..xe * C];
            dst[..part.len()].copy_from_slice(part);
        }
    }
    let Some(vtaps) = vtaps else {
        let mut out = vec![0u8; nx * ny * C];
        let n = tmp.len().min(out.len());
        out[..n].copy_from_slice(&tmp[..n]);
        return out;
    };
    // Vertical pass.
    let mut out = vec![0u8; nx * ny * C];
    let stride = nx * C;
    for ((start, k), dst) in vtaps.iter().zip(out.chunks_exact_mut(stride)) {
        for (x, d) in dst.iter_mut().enumerate() {
            let mut acc = 1i64 << (PRECISION_BITS - 1);
            for (j, &kj) in k.iter().enumerate() {
                acc += tmp[(start - r0 + j) * stride + x] as i64 * kj as i64;
            }
            *d = clip8(acc);
        }
    }
    out
}

/// Pillow's `Image.resize((ow, oh), BILINEAR)` of an 8-bit RGB image (antialiased, fixed point).
pub fn pil_resize(img: &RgbImage, ow: usize, oh: usize) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if (ow, oh) == (w, h) {
        return img.clone();
    }
    let px = pil_resize_window(img.as_raw(), (w, h), (ow, oh), 0..ow, 0..oh);
    RgbImage::from_raw(ow as u32, oh as u32, px).unwrap_or_default()
}

/// torchvision's `Resize(s)` output size for an `(h, w)` image: the short side becomes `s`, the
/// long side `int(s * long / short)`; returned as `(h, w)`.
pub fn shortest_edge_size((h, w): (usize, usize), s: usize) -> (usize, usize) {
    let (short, long) = (h.min(w).max(1), h.max(w));
    let new_long = (s as f64 * long as f64 / short as f64) as usize;
    if w <= h {
        (new_long, s)
    } else {
        (s, new_long)
    }
}

/// The `(top, left)` of torchvision's `CenterCrop((ch, cw))` on an `(h, w)` image, in the
/// zero-padded image when it is smaller: padding `((cw - w) // 2, (ch - h) // 2)` first, then
/// `int(round((h' - ch) / 2))` (half to even).
fn crop_origin((h, w): (usize, usize), (ch, cw): (usize, usize)) -> (i64, i64) {
    let axis = |n: usize, c: usize| -> i64 {
        if c > n {
            // Padded by floor(d/2) before, ceil(d/2) after: the crop is the whole padded axis.
            -(((c - n) / 2) as i64)
        } else {
            ((n - c) as f64 / 2.0).round_ties_even() as i64
        }
    };
    (axis(h, ch), axis(w, cw))
}

/// Crops the `(ch, cw)` window at `(top, left)` of an `(oh, ow)`-sized resize of `img` (zero
/// outside the resized image), computing only the pixels inside.
fn resize_and_crop(
    img: &RgbImage,
    (oh, ow): (usize, usize),
    (top, left): (i64, i64),
    (ch, cw): (usize, usize),
) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let clip = |o: i64, c: usize, n: usize| -> std::ops::Range<usize> {
        let a = o.clamp(0, n as i64) as usize;
        let b = (o + c as i64).clamp(0, n as i64) as usize;
        a..b
    };
    let (xr, yr) = (clip(left, cw, ow), clip(top, ch, oh));
    let win = pil_resize_window(img.as_raw(), (w, h), (ow, oh), xr.clone(), yr.clone());
    if (xr.len(), yr.len()) == (cw, ch) {
        return RgbImage::from_raw(cw as u32, ch as u32, win).unwrap_or_default();
    }
    let mut out = vec![0u8; cw * ch * 3];
    let (dx, dy) = (
        (xr.start as i64 - left) as usize,
        (yr.start as i64 - top) as usize,
    );
    for (r, src) in win.chunks_exact(xr.len() * 3).enumerate() {
        let o = ((dy + r) * cw + dx) * 3;
        out[o..o + src.len()].copy_from_slice(src);
    }
    RgbImage::from_raw(cw as u32, ch as u32, out).unwrap_or_default()
}

/// The eval image before `ToTensor`: Resize (shortest edge to `imgsz`, Pillow bilinear) then
/// CenterCrop `imgsz x imgsz` (only the cropped pixels are computed).
pub fn eval_image(img: &RgbImage, imgsz: usize) -> RgbImage {
    let (h, w) = (img.height() as usize, img.width() as usize);
    let rs = shortest_edge_size((h, w), imgsz);
    let o = crop_origin(rs, (imgsz, imgsz));
    resize_and_crop(img, rs, o, (imgsz, imgsz))
}

/// The eval image for a non-square `(h, w)` size (predict/export): resized to exactly `(h, w)`.
pub fn eval_image_hw(img: &RgbImage, (h, w): (usize, usize)) -> RgbImage {
    pil_resize(img, w, h)
}

/// RGB bytes to planar `3 x H x W` floats `/ 255` (torchvision `ToTensor`).
pub fn to_chw(img: &RgbImage) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    crate::ops::nhwc_to_planar(img.as_raw(), (1, h, w))
}

/// Ultralytics' `classify_transforms(imgsz)`: Resize shortest edge (Pillow antialiased bilinear),
/// CenterCrop, `ToTensor` (no mean/std); `3 x imgsz x imgsz` floats in [0, 1].
pub fn eval_transform(img: &RgbImage, imgsz: usize) -> Vec<f32> {
    to_chw(&eval_image(img, imgsz))
}

// ---------------------------------------------------------------------------------------------
// Training augmentation
// ---------------------------------------------------------------------------------------------

/// The `auto_augment` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoAugment {
    /// None: ColorJitter from the HSV gains is used instead.
    Off,
    /// `RandAugment(num_ops=2, magnitude=9, num_magnitude_bins=31)`.
    RandAugment,
    /// `AugMix(severity=3, mixture_width=3, chain_depth=-1, alpha=1)`.
    AugMix,
    /// `AutoAugment(AutoAugmentPolicy.IMAGENET)`.
    AutoAugment,
}

impl AutoAugment {
    /// The policy named by the `auto_augment` setting (empty/none/null = off).
    pub fn parse(s: Option<&str>) -> Result<Self> {
        Ok(match s.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("none") | Some("null") | Some("false") => Self::Off,
            Some("randaugment") => Self::RandAugment,
            Some("augmix") => Self::AugMix,
            Some("autoaugment") => Self::AutoAugment,
            Some(_) => bail!(
                "Invalid auto_augment policy: {}. Should be one of \"randaugment\", \"augmix\", \
                     \"autoaugment\" or None",
                s.unwrap_or_default()
            ),
        })
    }
}

/// Classification training augmentation settings (Ultralytics' `classify_augmentations`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClsAugConfig {
    /// `scale`: RandomResizedCrop area fraction range `(1 - scale, 1)`.
    pub scale: f64,
    /// Horizontal flip probability.
    pub fliplr: f64,
    /// Vertical flip probability.
    pub flipud: f64,
    /// RandomErasing probability.
    pub erasing: f64,
    /// The auto-augment policy.
    pub auto_augment: AutoAugment,
    /// ColorJitter hue (used only without auto-augment).
    pub hsv_h: f64,
    /// ColorJitter saturation.
    pub hsv_s: f64,
    /// ColorJitter brightness and contrast.
    pub hsv_v: f64,
}

impl Default for ClsAugConfig {
    fn default() -> Self {
        Self {
            scale: 0.5,
            fliplr: 0.5,
            flipud: 0.0,
            erasing: 0.4,
            auto_augment: AutoAugment::RandAugment,
            hsv_h: 0.015,
            hsv_s: 0.7,
            hsv_v: 0.4,
        }
    }
}

impl ClsAugConfig {
    /// The settings from the run's arguments (defaults where a key is absent).
    pub fn from_args(args: &crate::cfg::Args) -> Result<Self> {
        let d = Self::default();
        let num = |k: &str, dv: f64| -> Result<f64> {
            match args.get(k) {
                serde_yaml::Value::Null => Ok(dv),
                _ => args.num(k),
            }
        };
        Ok(Self {
            scale: num("scale", d.scale)?,
            fliplr: num("fliplr", d.fliplr)?,
            flipud: num("flipud", d.flipud)?,
            erasing: num("erasing", d.erasing)?,
            auto_augment: AutoAugment::parse(args.str("auto_augment").as_deref())?,
            hsv_h: num("hsv_h", d.hsv_h)?,
            hsv_s: num("hsv_s", d.hsv_s)?,
            hsv_v: num("hsv_v", d.hsv_v)?,
        })
    }

    /// Warnings for settings that are not applied as Ultralytics applies them (none today).
    pub fn warnings(&self) -> Vec<String> {
        vec![]
    }
}

/// Python's `int(round(x))` (half to even), saturating.
fn pyround(x: f64) -> i64 {
    if x.is_finite() {
        x.round_ties_even() as i64
    } else {
        0
    }
}

/// torchvision's `RandomResizedCrop.get_params` for an `(h, w)` image: `(top, left, ch, cw)`.
pub fn random_resized_crop_params(
    (h, w): (usize, usize),
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut impl Rng,
) -> (usize, usize, usize, usize) {
    let area = (h * w) as f64;
    let (lr0, lr1) = (ratio.0.ln(), ratio.1.ln());
    let uniform = |rng: &mut dyn rand::RngCore, a: f64, b: f64| a + (b - a) * rng.gen::<f64>();
    for _ in 0..10 {
        let target = area * uniform(rng, scale.0, scale.1);
        let aspect = uniform(rng, lr0, lr1).exp();
        let cw = pyround((target * aspect).max(0.0).sqrt());
        let ch = pyround((target / aspect).max(0.0).sqrt());
        if 0 < cw && cw as usize <= w && 0 < ch && ch as usize <= h {
            let (cw, ch) = (cw as usize, ch as usize);
            let top = rng.gen_range(0..=h - ch);
            let left = rng.gen_range(0..=w - cw);
            return (top, left, ch, cw);
        }
    }
    // Fallback: the largest centre crop within the ratio range.
    let in_ratio = w as f64 / h.max(1) as f64;
    let (cw, ch) = if in_ratio < ratio.0 {
        (w, (pyround(w as f64 / ratio.0).max(1) as usize).min(h))
    } else if in_ratio > ratio.1 {
        ((pyround(h as f64 * ratio.1).max(1) as usize).min(w), h)
    } else {
        (w, h)
    };
    ((h - ch) / 2, (w - cw) / 2, ch, cw)
}

/// Crops `(top, left, ch, cw)` of `img`.
fn crop(img: &RgbImage, (top, left, ch, cw): (usize, usize, usize, usize)) -> RgbImage {
    let w = img.width() as usize;
    let src = img.as_raw();
    let mut out = Vec::with_capacity(ch * cw * 3);
    for y in top..top + ch {
        out.extend_from_slice(&src[(y * w + left) * 3..(y * w + left + cw) * 3]);
    }
    RgbImage::from_raw(cw as u32, ch as u32, out).unwrap_or_default()
}

/// Blends `img` away from `degenerate` by `factor` as Pillow's `ImageEnhance` (`Image.blend`):
/// `d + factor * (x - d)`, truncated, clipped to bytes.
fn blend(img: &mut [u8], degenerate: impl Fn(usize) -> u8, factor: f64) {
    let f = factor as f32;
    for (i, v) in img.iter_mut().enumerate() {
        let d = degenerate(i) as f32;
        let t = d + f * (*v as f32 - d);
        *v = if t <= 0.0 {
            0
        } else if t >= 255.0 {
            255
        } else {
            t as u8
        };
    }
}

/// Pillow's `L` (luma) of an RGB pixel: `(19595 R + 38470 G + 7471 B + 0x8000) >> 16`.
#[inline]
fn luma(p: &[u8]) -> u8 {
    ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8
}

/// Brightness: blend with black.
fn adjust_brightness(img: &mut [u8], f: f64) {
    blend(img, |_| 0, f);
}

/// Saturation (Pillow `Color`): blend with the grey (luma) image.
fn adjust_saturation(img: &mut [u8], f: f64) {
    let grey: Vec<u8> = img.chunks_exact(3).map(luma).collect();
    blend(img, |i| grey[i / 3], f);
}

/// Contrast: blend with the mean luma (rounded).
fn adjust_contrast(img: &mut [u8], f: f64) {
    let n = (img.len() / 3).max(1);
    let sum: u64 = img.chunks_exact(3).map(|p| luma(p) as u64).sum();
    let mean = (sum as f64 / n as f64 + 0.5) as u8;
    blend(img, |_| mean, f);
}

/// Pillow's `SMOOTH` filter (3x3 kernel 1 1 1 / 1 5 1 / 1 1 1, sum 13, rounded; torchvision's
/// tensor kernel is the same) inside a one-pixel border that keeps the input; images under 3 px a
/// side come back unchanged.
pub(crate) fn smooth_filter(img: &[u8], (w, h): (usize, usize)) -> Vec<u8> {
    let mut smooth = img.to_vec();
    if w >= 3 && h >= 3 {
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                for c in 0..3 {
                    let mut s = 0u32;
                    for dy in 0..3 {
                        for dx in 0..3 {
                            let k = if dx == 1 && dy == 1 { 5 } else { 1 };
                            s += k * img[((y + dy - 1) * w + x + dx - 1) * 3 + c] as u32;
                        }
                    }
                    // s / 13 is never a half: rounding half up in integers.
                    smooth[(y * w + x) * 3 + c] = ((2 * s + 13) / 26) as u8;
                }
            }
        }
    }
    smooth
}

/// Sharpness: blend with [`smooth_filter`].
fn adjust_sharpness(img: &mut [u8], wh: (usize, usize), f: f64) {
    let smooth = smooth_filter(img, wh);
    blend(img, |i| smooth[i], f);
}

/// Per-channel lookup tables applied to an RGB buffer.
fn apply_luts(img: &mut [u8], luts: &[[u8; 256]; 3]) {
    for p in img.chunks_exact_mut(3) {
        for c in 0..3 {
            p[c] = luts[c][p[c] as usize];
        }
    }
}

/// Per-channel histograms.
fn histograms(img: &[u8]) -> [[u64; 256]; 3] {
    let mut hist = [[0u64; 256]; 3];
    for p in img.chunks_exact(3) {
        for c in 0..3 {
            hist[c][p[c] as usize] += 1;
        }
    }
    hist
}

/// AutoContrast: each channel stretched so its darkest value becomes 0 and its brightest 255.
fn autocontrast(img: &mut [u8]) {
    let hist = histograms(img);
    let mut luts = [[0u8; 256]; 3];
    for c in 0..3 {
        let lo = hist[c].iter().position(|&n| n > 0).unwrap_or(0);
        let hi = hist[c].iter().rposition(|&n| n > 0).unwrap_or(255);
        for (i, l) in luts[c].iter_mut().enumerate() {
            *l = if hi <= lo {
                i as u8
            } else {
                let scale = 255.0 / (hi - lo) as f64;
                (i as f64 * scale - lo as f64 * scale).clamp(0.0, 255.0) as u8
            };
        }
    }
    apply_luts(img, &luts);
}

/// Equalize: each channel's histogram flattened through its cumulative counts (Pillow's
/// `ImageOps.equalize`).
pub(crate) fn equalize(img: &mut [u8]) {
    let hist = histograms(img);
    let mut luts = [[0u8; 256]; 3];
    for c in 0..3 {
        let used: Vec<u64> = hist[c].iter().copied().filter(|&n| n > 0).collect();
        let step = if used.len() <= 1 {
            0
        } else {
            (used.iter().sum::<u64>() - used[used.len() - 1]) / 255
        };
        let mut n = step / 2;
        for (i, l) in luts[c].iter_mut().enumerate() {
            *l = n.checked_div(step).map_or(i as u8, |v| v.min(255) as u8);
            n += hist[c][i];
        }
    }
    apply_luts(img, &luts);
}

/// An inverse affine warp: output pixel centre `(x + .5, y + .5)` maps to input
/// `(a x + b y + c, d x + e y + f)`; bilinear, zero outside the image (Pillow `transform`).
fn affine_inverse(img: &[u8], (w, h): (usize, usize), m: [f64; 6]) -> Vec<u8> {
    let mut out = vec![0u8; img.len()];
    for y in 0..h {
        for x in 0..w {
            let (xo, yo) = (x as f64 + 0.5, y as f64 + 0.5);
            let xi = m[0] * xo + m[1] * yo + m[2];
            let yi = m[3] * xo + m[4] * yo + m[5];
            if !(xi >= 0.0 && yi >= 0.0 && xi < w as f64 && yi < h as f64) {
                continue;
            }
            let (xs, ys) = (xi - 0.5, yi - 0.5);
            let (x0, y0) = (xs.floor(), ys.floor());
            let (fx, fy) = (xs - x0, ys - y0);
            let cx = |v: f64| v.clamp(0.0, (w - 1) as f64) as usize;
            let cy = |v: f64| v.clamp(0.0, (h - 1) as f64) as usize;
            let (xa, xb, ya, yb) = (cx(x0), cx(x0 + 1.0), cy(y0), cy(y0 + 1.0));
            for c in 0..3 {
                let p = |xx: usize, yy: usize| img[(yy * w + xx) * 3 + c] as f64;
                let top = p(xa, ya) + fx * (p(xb, ya) - p(xa, ya));
                let bot = p(xa, yb) + fx * (p(xb, yb) - p(xa, yb));
                let v = top + fy * (bot - top);
                out[(y * w + x) * 3 + c] = v.clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// RGB byte to Pillow-style HSV bytes.
fn rgb_to_hsv(p: &[u8]) -> [u8; 3] {
    let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
    let (mx, mn) = (r.max(g).max(b), r.min(g).min(b));
    if mx == mn {
        return [0, 0, mx as u8];
    }
    let span = mx - mn;
    let s = span / mx;
    let (rc, gc, bc) = ((mx - r) / span, (mx - g) / span, (mx - b) / span);
    let hue = if r == mx {
        bc - gc
    } else if g == mx {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    let hue = (hue / 6.0 + 1.0).rem_euclid(1.0);
    [
        ((hue * 255.0) as i32).clamp(0, 255) as u8,
        ((s * 255.0) as i32).clamp(0, 255) as u8,
        mx as u8,
    ]
}

/// Pillow-style HSV bytes back to RGB.
fn hsv_to_rgb(hsv: [u8; 3]) -> [u8; 3] {
    let h = hsv[0] as f32 * 6.0 / 255.0;
    let s = hsv[1] as f32 / 255.0;
    let v = hsv[2];
    if hsv[1] == 0 {
        return [v, v, v];
    }
    let vf = v as f32;
    let i = h.floor();
    let f = h - i;
    let p = (vf * (1.0 - s)).round().clamp(0.0, 255.0) as u8;
    let q = (vf * (1.0 - s * f)).round().clamp(0.0, 255.0) as u8;
    let t = (vf * (1.0 - s * (1.0 - f))).round().clamp(0.0, 255.0) as u8;
    match (i as i32).rem_euclid(6) {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// Hue shift by `f` of a turn (torchvision `adjust_hue` on a PIL image: the HSV hue byte plus
/// `int8(f * 255)`, wrapping).
fn adjust_hue(img: &mut [u8], f: f64) {
    let shift = (f * 255.0) as i8 as u8;
    if shift == 0 {
        return;
    }
    for p in img.chunks_exact_mut(3) {
        let mut hsv = rgb_to_hsv(p);
        hsv[0] = hsv[0].wrapping_add(shift);
        p.copy_from_slice(&hsv_to_rgb(hsv));
    }
}

/// The 14 RandAugment operations in torchvision's order.
pub(crate) const RANDAUGMENT_OPS: [Op; 14] = [
    Op::Identity,
    Op::ShearX,
    Op::ShearY,
    Op::TranslateX,
    Op::TranslateY,
    Op::Rotate,
    Op::Brightness,
    Op::Color,
    Op::Contrast,
    Op::Sharpness,
    Op::Posterize,
    Op::Solarize,
    Op::AutoContrast,
    Op::Equalize,
];
/// RandAugment magnitude index and number of bins as Ultralytics configures them.
const RA_MAGNITUDE: usize = 9;
const RA_BINS: usize = 31;

/// The unsigned RandAugment magnitude of `op` (bin 9 of 31, float32 as torchvision builds it) for
/// a `(w, h)` image.
pub(crate) fn randaugment_magnitude(op: Op, (w, h): (usize, usize)) -> f64 {
    use super::classify_policy::linspace_f32;
    let lin = |end: f64| linspace_f32(0.0, end, RA_BINS, RA_MAGNITUDE) as f64;
    match op {
        Op::ShearX | Op::ShearY => lin(0.3),
        Op::TranslateX => lin(150.0 / 331.0 * w as f64),
        Op::TranslateY => lin(150.0 / 331.0 * h as f64),
        Op::Rotate => lin(30.0),
        Op::Brightness | Op::Color | Op::Contrast | Op::Sharpness => lin(0.9),
        // 8 - round(magnitude / ((bins - 1) / 4)) bits kept.
        Op::Posterize => {
            8.0 - (RA_MAGNITUDE as f32 / ((RA_BINS - 1) as f32 / 4.0)).round_ties_even() as f64
        }
        Op::Solarize => linspace_f32(255.0, 0.0, RA_BINS, RA_MAGNITUDE) as f64,
        _ => 0.0,
    }
}

/// torchvision's `_get_inverse_affine_matrix(center, angle, translate, scale=1, shear)`: the
/// output-to-input matrix of an affine warp (angles in degrees).
pub(crate) fn inverse_affine_matrix(
    (cx, cy): (f64, f64),
    angle: f64,
    (tx, ty): (f64, f64),
    (shx, shy): (f64, f64),
) -> [f64; 6] {
    let (rot, sx, sy) = (angle.to_radians(), shx.to_radians(), shy.to_radians());
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    m
}

/// Python's `round(x, 15)`.
fn round15(x: f64) -> f64 {
    format!("{x:.15}").parse().unwrap_or(x)
}

/// Pillow's `Image.rotate(angle)` matrix (counter-clockwise degrees, about the image centre).
fn pil_rotate_matrix((w, h): (usize, usize), angle: f64) -> [f64; 6] {
    let a = -(angle.rem_euclid(360.0)).to_radians();
    let (cs, sn) = (round15(a.cos()), round15(a.sin()));
    let mut m = [cs, sn, 0.0, round15(-a.sin()), cs, 0.0];
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    // Python's `a * x + b * y + c` with c = 0.
    m[2] += m[0] * -cx + m[1] * -cy;
    m[5] += m[3] * -cx + m[4] * -cy;
    m[2] += cx;
    m[5] += cy;
    m
}

/// Posterize: the top `bits` bits of every byte kept (`bits` clamped to 0..=8).
pub(crate) fn posterize(img: &mut [u8], bits: i64) {
    let mask = (0xFFu32 << (8 - bits.clamp(0, 8))) as u8;
    img.iter_mut().for_each(|v| *v &= mask);
}

/// Solarize: values at or above `threshold` inverted.
pub(crate) fn solarize(img: &mut [u8], threshold: f64) {
    img.iter_mut()
        .for_each(|v| *v = if *v as f64 >= threshold { 255 - *v } else { *v });
}

/// The shear (degrees, x and y) and translation (whole pixels, x and y) torchvision's `_apply_op`
/// gives the affine `op` at `magnitude`; zeros for the other ops.
pub(crate) fn shear_translate(op: Op, magnitude: f64) -> ((f64, f64), (f64, f64)) {
    let (s, t) = (magnitude.atan().to_degrees(), magnitude.trunc());
    match op {
        Op::ShearX => ((s, 0.0), (0.0, 0.0)),
        Op::ShearY => ((0.0, s), (0.0, 0.0)),
        Op::TranslateX => ((0.0, 0.0), (t, 0.0)),
        Op::TranslateY => ((0.0, 0.0), (0.0, t)),
        _ => ((0.0, 0.0), (0.0, 0.0)),
    }
}

/// torchvision's `_apply_op(img, op, magnitude)` on a PIL image (`w x h` RGB bytes): the
/// signed magnitude as the policies pass it (shear factor, pixels, degrees, enhance factor - 1,
/// bits, threshold); bilinear warps with black fill.
pub(crate) fn pil_op(img: &mut Vec<u8>, (w, h): (usize, usize), op: Op, magnitude: f64) {
    match op {
        Op::Identity => {}
        Op::ShearX | Op::ShearY => {
            let (shear, _) = shear_translate(op, magnitude);
            let m = inverse_affine_matrix((0.0, 0.0), 0.0, (0.0, 0.0), shear);
            *img = affine_inverse(img, (w, h), m);
        }
        Op::TranslateX | Op::TranslateY => {
            let (_, t) = shear_translate(op, magnitude);
            let c = (w as f64 * 0.5, h as f64 * 0.5);
            let m = inverse_affine_matrix(c, 0.0, t, (0.0, 0.0));
            *img = affine_inverse(img, (w, h), m);
        }
        Op::Rotate => {
            if magnitude.rem_euclid(360.0) != 0.0 {
                *img = affine_inverse(img, (w, h), pil_rotate_matrix((w, h), magnitude));
            }
        }
        Op::Brightness => adjust_brightness(img, 1.0 + magnitude),
        Op::Color => adjust_saturation(img, 1.0 + magnitude),
        Op::Contrast => adjust_contrast(img, 1.0 + magnitude),
        Op::Sharpness => adjust_sharpness(img, (w, h), 1.0 + magnitude),
        Op::Posterize => posterize(img, magnitude as i64),
        Op::Solarize => solarize(img, magnitude),
        Op::AutoContrast => autocontrast(img),
        Op::Equalize => equalize(img),
        Op::Invert => img.iter_mut().for_each(|v| *v = 255 - *v),
    }
}

/// One RandAugment operation `op` (0..14) on `img` (`w x h` RGB) at magnitude 9 of 31 bins, with
/// a random sign for the signed ones.
fn randaugment_op(img: &mut Vec<u8>, size: (usize, usize), op: usize, rng: &mut impl Rng) {
    let op = RANDAUGMENT_OPS[op % RANDAUGMENT_OPS.len()];
    let mut magnitude = randaugment_magnitude(op, size);
    if op.signed() && rng.gen::<bool>() {
        magnitude = -magnitude;
    }
    pil_op(img, size, op, magnitude);
}

/// torchvision's `RandomErasing.get_params` on a `3 x h x w` tensor: `(top, left, eh, ew)`, or
/// `None` when 10 tries find no fitting rectangle.
fn erasing_params(
    (h, w): (usize, usize),
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut impl Rng,
) -> Option<(usize, usize, usize, usize)> {
    let area = (h * w) as f64;
    let (lr0, lr1) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let a = area * (scale.0 + (scale.1 - scale.0) * rng.gen::<f64>());
        let r = (lr0 + (lr1 - lr0) * rng.gen::<f64>()).exp();
        let eh = pyround((a * r).sqrt());
        let ew = pyround((a / r).sqrt());
        if !(eh > 0 && ew > 0 && (eh as usize) < h && (ew as usize) < w) {
            continue;
        }
        let (eh, ew) = (eh as usize, ew as usize);
        return Some((rng.gen_range(0..=h - eh), rng.gen_range(0..=w - ew), eh, ew));
    }
    None
}

/// The training transform of one image: RandomResizedCrop to `imgsz`, flips, the auto-augment
/// policy (or ColorJitter without one), `ToTensor`, RandomErasing; `3 x imgsz x imgsz` floats.
pub fn train_transform(
    img: &RgbImage,
    imgsz: usize,
    aug: &ClsAugConfig,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let (h, w) = (img.height() as usize, img.width() as usize);
    if h == 0 || w == 0 || imgsz == 0 {
        return vec![0.0; 3 * imgsz * imgsz];
    }
    let s0 = (1.0 - aug.scale).clamp(0.0, 1.0);
    let rect = random_resized_crop_params((h, w), (s0, 1.0), (3.0 / 4.0, 4.0 / 3.0), rng);
    let cropped = crop(img, rect);
    let mut px = pil_resize(&cropped, imgsz, imgsz).into_raw();
    let size = (imgsz, imgsz);
    if aug.fliplr > 0.0 && rng.gen::<f64>() < aug.fliplr {
        for row in px.chunks_exact_mut(imgsz * 3) {
            let n = row.len() / 3;
            for x in 0..n / 2 {
                for c in 0..3 {
                    row.swap(x * 3 + c, (n - 1 - x) * 3 + c);
                }
            }
        }
    }
    if aug.flipud > 0.0 && rng.gen::<f64>() < aug.flipud {
        let stride = imgsz * 3;
        for y in 0..imgsz / 2 {
            let (a, b) = px.split_at_mut((imgsz - 1 - y) * stride);
            a[y * stride..(y + 1) * stride].swap_with_slice(&mut b[..stride]);
        }
    }
    match aug.auto_augment {
        AutoAugment::RandAugment => {
            for _ in 0..2 {
                let op = rng.gen_range(0..RANDAUGMENT_OPS.len());
                randaugment_op(&mut px, size, op, rng);
            }
        }
        AutoAugment::AutoAugment => super::classify_policy::autoaugment(&mut px, size, rng),
        AutoAugment::AugMix => px = super::classify_policy::augmix(&px, size, rng),
        AutoAugment::Off => color_jitter(&mut px, size, aug, rng),
    }
    let img = RgbImage::from_raw(imgsz as u32, imgsz as u32, px).unwrap_or_default();
    let mut x = to_chw(&img);
    if aug.erasing > 0.0 && rng.gen::<f64>() < aug.erasing {
        if let Some((t, l, eh, ew)) = erasing_params(size, (0.02, 0.33), (0.3, 3.3), rng) {
            let n = imgsz * imgsz;
            for c in 0..3 {
                for y in t..t + eh {
                    let o = c * n + y * imgsz + l;
                    x[o..o + ew].iter_mut().for_each(|v| *v = 0.0);
                }
            }
        }
    }
    x
}

/// torchvision `ColorJitter(brightness=hsv_v, contrast=hsv_v, saturation=hsv_s, hue=hsv_h)`: the
/// four adjustments in a random order, factors uniform in `[max(0, 1 - g), 1 + g]` (hue
/// `[-h, h]`); a zero gain skips its adjustment.
fn color_jitter(px: &mut [u8], size: (usize, usize), aug: &ClsAugConfig, rng: &mut impl Rng) {
    let _ = size;
    let mut order = [0usize, 1, 2, 3];
    for i in (1..4).rev() {
        let j = rng.gen_range(0..=i);
        order.swap(i, j);
    }
    let factor = |g: f64, rng: &mut dyn rand::RngCore| -> Option<f64> {
        (g > 0.0).then(|| {
            let lo = (1.0 - g).max(0.0);
            lo + (1.0 + g - lo) * rng.gen::<f64>()
        })
    };
    let b = factor(aug.hsv_v, rng);
    let c = factor(aug.hsv_v, rng);
    let s = factor(aug.hsv_s, rng);
    let hh = aug.hsv_h.clamp(0.0, 0.5);
    let hue = (hh > 0.0).then(|| -hh + 2.0 * hh * rng.gen::<f64>());
    for k in order {
        match (k, b, c, s, hue) {
            (0, Some(f), ..) => adjust_brightness(px, f),
            (1, _, Some(f), ..) => adjust_contrast(px, f),
            (2, _, _, Some(f), _) => adjust_saturation(px, f),
            (3, .., Some(f)) => adjust_hue(px, f),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dataset
// ---------------------------------------------------------------------------------------------

/// The per-sample RNG stream of classification augmentation.
const CLS_STREAM: u64 = 0x0063_6c73;

/// A per-(seed, epoch, index) RNG, derived as the detection loader derives its per-sample RNGs.
fn rng_for(seed: u64, epoch: usize, index: usize, stream: u64) -> rand::rngs::SmallRng {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for v in [epoch as u64, index as u64, stream] {
        h = (h ^ v).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 31;
    }
    rand::rngs::SmallRng::seed_from_u64(h)
}

/// Whether a JPEG file ends with the `FF D9` end-of-image marker.
fn jpeg_complete(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut b = [0u8; 2];
    f.seek(SeekFrom::End(-2)).is_ok() && f.read_exact(&mut b).is_ok() && b == [0xFF, 0xD9]
}

/// Checks one image as Ultralytics' `verify_image`: a regular file that decodes in full (within
/// the pixel limit), both sides at least 10 px. `Ok` holds an optional warning, `Err` the
/// corrupt-image message; both name the file.
pub fn verify_image(path: &Path) -> std::result::Result<Option<String>, String> {
    let name = path.display();
    let (h, w) = super::image::probe(path, true)
        .map_err(|e| format!("{name}: ignoring corrupt image/label: {e:#}"))?;
    if h < 10 || w < 10 {
        return Err(format!(
            "{name}: ignoring corrupt image/label: image size {w}x{h} <10 pixels"
        ));
    }
    let jpeg = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg"));
    Ok((jpeg && !jpeg_complete(path))
        .then(|| format!("{name}: truncated JPEG (no end marker) still decodes, kept")))
}

/// One classification sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ClsSample {
    /// The image file.
    pub file: PathBuf,
    /// Its class index in the model's names.
    pub cls: i64,
}

/// Options of a classification split.
#[derive(Debug, Clone)]
pub struct ClsOptions {
    /// Square image size.
    pub imgsz: usize,
    /// How much of the split to keep.
    pub fraction: Fraction,
    /// Every folder is class 0.
    pub single_cls: bool,
    /// Training augmentation.
    pub aug: ClsAugConfig,
    /// Augmentation seed.
    pub seed: u64,
}

impl Default for ClsOptions {
    fn default() -> Self {
        Self {
            imgsz: 224,
            fraction: Fraction::Ratio(1.0),
            single_cls: false,
            aug: ClsAugConfig::default(),
            seed: 0,
        }
    }
}

/// A scanned classification split: verified samples with class indices, and the transforms.
#[derive(Debug, Clone)]
pub struct ClsDataset {
    /// The split folder.
    pub root: PathBuf,
    /// Kept samples in ImageFolder order.
    pub samples: Vec<ClsSample>,
    /// The model's class names.
    pub names: Vec<String>,
    /// Options (size, augmentation, seed).
    pub opts: ClsOptions,
    /// Images that passed the check.
    pub found: usize,
    /// Images dropped as corrupt.
    pub corrupt: usize,
    /// Every warning printed (without the prefix).
    pub warnings: Vec<String>,
}

impl ClsDataset {
    /// Scans split folder `root` as Ultralytics' `ClassificationDataset`: ImageFolder listing,
    /// `fraction`, a check of every image (dropped with a warning naming it when corrupt), class
    /// indices aligned by folder name to `names` (the model's; folders it lacks are skipped with a
    /// warning; unrecognised folder sets keep their ImageFolder indices). Prints
    /// `{prefix}: Scanning {root}... N images, M corrupt` and the warnings.
    pub fn new(root: &Path, names: &[String], opts: ClsOptions, prefix: &str) -> Result<Self> {
        if opts.imgsz == 0 {
            bail!("imgsz must be positive");
        }
        if !root.is_dir() {
            bail!(
                "classification split folder {} does not exist",
                root.display()
            );
        }
        let folder = ImageFolder::scan(root)?;
        let mut warnings = folder.warnings.clone();
        warnings.extend(opts.aug.warnings());
        let keep = opts.fraction.select(folder.samples.len());
        let listed: Vec<&(PathBuf, usize)> = keep.iter().map(|&i| &folder.samples[i]).collect();
        let checks: Vec<_> = listed.par_iter().map(|(f, _)| verify_image(f)).collect();
        let (mut found, mut corrupt) = (0, 0);
        let mut verified = Vec::new();
        for (s, c) in listed.into_iter().zip(checks) {
            match c {
                Ok(w) => {
                    found += 1;
                    warnings.extend(w);
                    verified.push(s.clone());
                }
                Err(e) => {
                    corrupt += 1;
                    warnings.push(e);
                }
            }
        }
        // Class indices by name.
        let classes = &folder.classes;
        let index: Vec<Option<i64>> = if opts.single_cls {
            vec![Some(0); classes.len()]
        } else if !names.is_empty() && classes.iter().any(|c| names.contains(c)) {
            classes
                .iter()
                .map(|c| names.iter().position(|n| n == c).map(|i| i as i64))
                .collect()
        } else {
            (0..classes.len())
                .map(|i| (names.is_empty() || i < names.len()).then_some(i as i64))
                .collect()
        };
        let n = verified.len();
        let samples: Vec<ClsSample> = verified
            .into_iter()
            .filter_map(|(file, k)| index[k].map(|cls| ClsSample { file, cls }))
            .collect();
        if samples.len() < n {
            let extra: Vec<&str> = classes
                .iter()
                .zip(&index)
                .filter(|(_, i)| i.is_none())
                .map(|(c, _)| c.as_str())
                .collect();
            warnings.push(format!(
                "Skipping {} samples from classes the model lacks: {extra:?}",
                n - samples.len()
            ));
        }
        println!(
            "{prefix}: Scanning {}... {found} images, {corrupt} corrupt",
            root.display()
        );
        for w in &warnings {
            println!("{prefix}: WARNING {w}");
        }
        let names = if opts.single_cls {
            vec!["item".to_string()]
        } else {
            names.to_vec()
        };
        Ok(Self {
            root: root.to_path_buf(),
            samples,
            names,
            opts,
            found,
            corrupt,
            warnings,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Sample `i` decoded to RGB (an error when `i` is out of range); a file that no longer
    /// decodes gives a warning naming it and a grey (114) `imgsz` square.
    pub fn load(&self, i: usize) -> Result<RgbImage> {
        let s = self
            .samples
            .get(i)
            .ok_or_else(|| anyhow!("sample {i} out of range ({} samples)", self.len()))?;
        Ok(super::image::load_image(&s.file).unwrap_or_else(|e| {
            eprintln!("WARNING {e:#}; using a blank image");
            let s = self.opts.imgsz as u32;
            RgbImage::from_pixel(s, s, image::Rgb([114, 114, 114]))
        }))
    }

    /// Sample `i` transformed: the training augmentation with the RNG of `(seed, epoch, i)` when
    /// `train`, else the eval transform. `3 x imgsz x imgsz` floats and the class index.
    pub fn get(&self, i: usize, epoch: usize, train: bool) -> Result<(Vec<f32>, i64)> {
        let img = self.load(i)?;
        let x = if train {
            let mut rng = rng_for(self.opts.seed, epoch, i, CLS_STREAM);
            train_transform(&img, self.opts.imgsz, &self.opts.aug, &mut rng)
        } else {
            eval_transform(&img, self.opts.imgsz)
        };
        Ok((x, self.samples[i].cls))
    }

    /// A batch of samples `indices` in parallel (deterministic: each sample has its own RNG):
    /// `B x 3 x imgsz x imgsz` floats and the `B` class indices.
    pub fn batch(
        &self,
        indices: &[usize],
        epoch: usize,
        train: bool,
    ) -> Result<(Vec<f32>, Vec<i64>)> {
        let items: Vec<(Vec<f32>, i64)> = indices
            .par_iter()
            .map(|&i| self.get(i, epoch, train))
            .collect::<Result<_>>()?;
        let per = 3 * self.opts.imgsz * self.opts.imgsz;
        let mut x = Vec::with_capacity(items.len() * per);
        let mut y = Vec::with_capacity(items.len());
        for (v, c) in items {
            x.extend_from_slice(&v);
            y.push(c);
        }
        Ok((x, y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_edge_and_crop_origin() {
        assert_eq!(shortest_edge_size((1080, 810), 224), (298, 224));
        assert_eq!(shortest_edge_size((720, 1280), 224), (224, 398));
        assert_eq!(crop_origin((298, 224), (224, 224)), (37, 0));
        assert_eq!(crop_origin((224, 398), (224, 224)), (0, 87));
        // Half to even: (225 - 224) / 2 = 0.5 -> 0; (227 - 224) / 2 = 1.5 -> 2.
        assert_eq!(crop_origin((225, 227), (224, 224)), (0, 2));
        // Smaller than the crop: padded floor(d/2) before.
        assert_eq!(crop_origin((5, 4), (8, 8)), (-1, -2));
    }

    #[test]
    fn fraction_select_spreads_evenly() {
        assert_eq!(Fraction::Ratio(1.0).select(5), vec![0, 1, 2, 3, 4]);
        assert_eq!(Fraction::Ratio(0.5).select(10), vec![0, 2, 4, 6, 9]);
        assert_eq!(Fraction::Count(3).select(7), vec![0, 3, 6]);
        assert_eq!(Fraction::Ratio(0.01).select(10), vec![0]);
        let v = serde_yaml::Value::from(0.5);
        assert_eq!(
            Fraction::for_split(&v, "val").unwrap(),
            Fraction::Ratio(1.0)
        );
        assert!(Fraction::for_split(&serde_yaml::Value::from(0.0), "train").is_err());
        let l: serde_yaml::Value = serde_yaml::from_str("[1.0, 4]").unwrap();
        assert_eq!(Fraction::for_split(&l, "val").unwrap(), Fraction::Count(4));
        assert_eq!(
            Fraction::for_split(&l, "test").unwrap(),
            Fraction::Ratio(1.0)
        );
    }

    #[test]
    fn resize_identity_and_window_agree() {
        let (w, h) = (13usize, 9usize);
        let src: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        let same = pil_resize_window(&src, (w, h), (w, h), 0..w, 0..h);
        assert_eq!(same, src);
        let full = pil_resize_window(&src, (w, h), (7, 20), 0..7, 0..20);
        let win = pil_resize_window(&src, (w, h), (7, 20), 2..5, 6..11);
        for y in 6..11 {
            for x in 2..5 {
                for c in 0..3 {
                    assert_eq!(
                        full[(y * 7 + x) * 3 + c],
                        win[((y - 6) * 3 + x - 2) * 3 + c]
                    );
                }
            }
        }
    }

    #[test]
    fn hsv_round_trip_is_close() {
        for p in [[10u8, 200, 30], [255, 0, 0], [7, 7, 7], [120, 60, 250]] {
            let q = hsv_to_rgb(rgb_to_hsv(&p));
            for c in 0..3 {
                assert!((p[c] as i32 - q[c] as i32).abs() <= 3, "{p:?} -> {q:?}");
            }
        }
    }

    #[test]
    fn crop_params_fit() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        for (h, w) in [(10, 10), (50, 7), (7, 50), (224, 300)] {
            for _ in 0..100 {
                let (t, l, ch, cw) =
                    random_resized_crop_params((h, w), (0.5, 1.0), (0.75, 4.0 / 3.0), &mut rng);
                assert!(ch >= 1 && cw >= 1 && t + ch <= h && l + cw <= w);
            }
        }
    }

    #[test]
    fn randaugment_ops_keep_size_and_follow_their_definitions() {
        let (w, h) = (16usize, 12usize);
        let base: Vec<u8> = (0..w * h * 3).map(|i| (50 + i % 51) as u8).collect();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        for op in 0..RANDAUGMENT_OPS.len() {
            let mut img = base.clone();
            randaugment_op(&mut img, (w, h), op, &mut rng);
            assert_eq!(img.len(), base.len(), "op {op}");
        }
        // AutoContrast stretches 50..100 to 0..255; posterize keeps 7 bits; solarize inverts
        // values of 179 and above.
        let mut img = base.clone();
        autocontrast(&mut img);
        assert_eq!((img.iter().min(), img.iter().max()), (Some(&0), Some(&255)));
        let mut img = vec![255u8, 178, 179, 7, 0, 1];
        randaugment_op(&mut img, (2, 1), 10, &mut rng);
        assert_eq!(img, [254, 178, 178, 6, 0, 0]);
        let mut img = vec![255u8, 178, 179, 7, 0, 1];
        randaugment_op(&mut img, (2, 1), 11, &mut rng);
        assert_eq!(img, [0, 178, 76, 7, 0, 1]);
        // Translating by +-int(0.136 * 16) = 2 px moves a column by 2.
        let mut img = vec![0u8; w * h * 3];
        for y in 0..h {
            img[(y * w + 8) * 3] = 200;
        }
        randaugment_op(&mut img, (w, h), 3, &mut rng);
        let col = (0..w).find(|&x| img[(5 * w + x) * 3] == 200);
        assert!(matches!(col, Some(6) | Some(10)), "{col:?}");
        // Equalize of a two-level channel keeps the levels apart.
        let mut img: Vec<u8> = (0..w * h * 3)
            .map(|i| if i % 2 == 0 { 10 } else { 20 })
            .collect();
        equalize(&mut img);
        assert!(img.iter().any(|&v| v != img[0]));
    }
}
