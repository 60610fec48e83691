//! data.yaml in the forms Ultralytics accepts, image listing and the image -> label path rule
//! (spec/data.md §1-2).

use super::labels::LabelFormat;
use anyhow::{anyhow, bail, Context, Result};
use serde_yaml::Value;
use std::path::{Path, PathBuf};

/// Image suffixes accepted in datasets (those the `image` crate decodes).
pub const IMG_FORMATS: &[&str] = &["bmp", "jpeg", "jpg", "png", "tif", "tiff", "webp"];

/// The largest data.yaml read (2 MiB); larger files are refused with their name.
pub const MAX_YAML_BYTES: u64 = 2 << 20;

/// The deepest nesting accepted in a data.yaml, in brackets or in indentation (checked on the text
/// before parsing: deep nesting makes the YAML parser slow).
pub const MAX_YAML_DEPTH: usize = 64;

/// The most aliases (`*name`) a data.yaml may use (each one can repeat a large part of the file).
pub const MAX_YAML_ALIASES: usize = 8;

/// The most classes a dataset may have (`nc`, the entries of `names`).
pub const MAX_CLASSES: usize = 10_000;

/// The most keypoints per instance (`kpt_shape[0]`) a pose dataset may have.
pub const MAX_KEYPOINTS: usize = 1_000;

/// A parsed data.yaml.
#[derive(Debug, Clone)]
pub struct DataConfig {
    /// The YAML file.
    pub yaml_file: PathBuf,
    /// Dataset root.
    pub root: PathBuf,
    /// Sources per split (`train`, `val`, `test`): folders, .txt lists or image files.
    pub splits: Vec<(String, Vec<PathBuf>)>,
    /// Class names, index = class id.
    pub names: Vec<String>,
    /// `kpt_shape: [nkpt, ndim]` of a pose dataset.
    pub kpt_shape: Option<[usize; 2]>,
    /// `flip_idx`: keypoint k of a flipped image is keypoint `flip_idx[k]` (pose datasets).
    pub flip_idx: Option<Vec<usize>>,
    /// `kpt_oks_sigmas` (8.4): the OKS σ of every keypoint for the pose loss and metrics.
    pub kpt_oks_sigmas: Option<Vec<f64>>,
}

impl DataConfig {
    /// Number of classes.
    pub fn nc(&self) -> usize {
        self.names.len()
    }
    /// Sources of a split, or an error naming the split and the file.
    pub fn split(&self, name: &str) -> Result<&[PathBuf]> {
        self.splits
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .ok_or_else(|| anyhow!("{}: no '{name}' split", self.yaml_file.display()))
    }

    /// How this dataset's label rows are read for `task` (`detect`, `segment`, `pose`, `obb`);
    /// pose needs `kpt_shape`.
    pub fn label_format(&self, task: &str) -> Result<LabelFormat> {
        Ok(match task {
            "segment" => LabelFormat::Segment,
            "obb" => LabelFormat::Obb,
            "pose" => {
                let [nkpt, ndim] = self.kpt_shape.ok_or_else(|| {
                    anyhow!(
                        "{}: a pose dataset needs 'kpt_shape: [nkpt, ndim]'",
                        self.yaml_file.display()
                    )
                })?;
                LabelFormat::Pose { nkpt, ndim }
            }
            _ => LabelFormat::Detect,
        })
    }
}

/// A YAML list of non-negative integers, or an error naming the file and key.
fn usize_list(v: &Value, file: &Path, key: &str) -> Result<Vec<usize>> {
    let items = v
        .as_sequence()
        .ok_or_else(|| anyhow!("{}: '{key}' must be a list", file.display()))?;
    items
        .iter()
        .map(|i| {
            i.as_u64()
                .map(|u| u as usize)
                .ok_or_else(|| anyhow!("{}: '{key}' holds {i:?}, not an integer", file.display()))
        })
        .collect()
}

/// `kpt_shape` and `flip_idx` of a data.yaml.
type KeypointKeys = (Option<[usize; 2]>, Option<Vec<usize>>);

/// `kpt_shape` (`[nkpt > 0, ndim in {2, 3}]`) and `flip_idx` (a permutation of the `nkpt`
/// keypoints; an empty list counts as absent), checked (spec/pose.md §2).
fn parse_keypoint_keys(m: &serde_yaml::Mapping, file: &Path) -> Result<KeypointKeys> {
    let Some(v) = m.get("kpt_shape").filter(|v| !v.is_null()) else {
        return Ok((None, None));
    };
    let shape = match usize_list(v, file, "kpt_shape")?.as_slice() {
        &[k, d] if (1..=MAX_KEYPOINTS).contains(&k) && (d == 2 || d == 3) => [k, d],
        other => bail!(
            "{}: 'kpt_shape' must be [nkpt from 1 to {MAX_KEYPOINTS}, ndim 2 or 3], found {other:?}",
            file.display()
        ),
    };
    let flip = match m.get("flip_idx").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(usize_list(v, file, "flip_idx")?).filter(|f| !f.is_empty()),
    };
    if let Some(f) = &flip {
        if f.len() != shape[0] || f.iter().any(|&i| i >= shape[0]) {
            bail!(
                "{}: 'flip_idx' must list {} keypoint indices below {}, found {f:?}",
                file.display(),
                shape[0],
                shape[0]
            );
        }
    }
    Ok((Some(shape), flip))
}

/// `kpt_oks_sigmas` (8.4): one positive finite σ per keypoint of `kpt_shape`, or an error naming
/// the file and key; absent or null gives None.
fn parse_oks_sigmas(
    m: &serde_yaml::Mapping,
    file: &Path,
    kpt_shape: Option<[usize; 2]>,
) -> Result<Option<Vec<f64>>> {
    let Some(v) = m.get("kpt_oks_sigmas").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let items = v
        .as_sequence()
        .ok_or_else(|| anyhow!("{}: 'kpt_oks_sigmas' must be a list", file.display()))?;
    let vals: Vec<f64> = items
        .iter()
        .map(|i| {
            i.as_f64()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| {
                    anyhow!(
                        "{}: 'kpt_oks_sigmas' holds {i:?}, not a positive number",
                        file.display()
                    )
                })
        })
        .collect::<Result<_>>()?;
    match kpt_shape {
        Some([k, _]) if k == vals.len() => Ok(Some(vals)),
        Some([k, _]) => bail!(
            "{}: 'kpt_oks_sigmas' lists {} values for the {k} keypoints of kpt_shape",
            file.display(),
            vals.len()
        ),
        None => bail!(
            "{}: 'kpt_oks_sigmas' needs 'kpt_shape' (a pose dataset)",
            file.display()
        ),
    }
}

/// What a non-regular file is, for messages.
fn file_kind(m: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    if m.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// The metadata of `path` (symlinks followed) when it is a regular file, else the reason (without
/// the path). Checked before opening: a FIFO or device would block or never end.
pub fn check_regular(path: &Path) -> std::result::Result<std::fs::Metadata, String> {
    let m = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if m.is_file() {
        Ok(m)
    } else {
        Err(format!("not a regular file ({})", file_kind(&m)))
    }
}

/// [`check_regular`] as an error that names the file.
pub fn regular_file(path: &Path) -> Result<std::fs::Metadata> {
    check_regular(path).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// The bytes of the regular file `path` when at most `max` bytes, read through `take` so a file
/// that grows while read stays bounded; the error is the reason, without the path.
pub fn read_bounded(path: &Path, max: u64) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let m = check_regular(path)?;
    if m.len() > max {
        return Err(format!("{} bytes, over the limit of {max} bytes", m.len()));
    }
    let f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut bytes = Vec::with_capacity(m.len() as usize);
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!("grew over the limit of {max} bytes while read"));
    }
    Ok(bytes)
}

/// [`read_bounded`] as an error that names the file.
pub fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>> {
    read_bounded(path, max).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Whether a path has an accepted image suffix.
pub fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMG_FORMATS.contains(&e.to_ascii_lowercase().as_str()))
}

fn parse_names(v: &Value, file: &Path) -> Result<Vec<String>> {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    match v {
        Value::Sequence(items) => Ok(items.iter().map(s).collect()),
        Value::Mapping(m) => {
            let mut pairs: Vec<(i64, String)> = Vec::new();
            for (k, v) in m {
                let i = k
                    .as_i64()
                    .or_else(|| k.as_str().and_then(|s| s.trim().parse().ok()))
                    .ok_or_else(|| {
                        anyhow!(
                            "{}: class id {k:?} in 'names' is not an integer",
                            file.display()
                        )
                    })?;
                pairs.push((i, s(v)));
            }
            pairs.sort();
            for (want, (i, _)) in pairs.iter().enumerate() {
                if *i != want as i64 {
                    bail!(
                        "{}: 'names' keys must be 0..{} without gaps, found {i}",
                        file.display(),
                        pairs.len() - 1
                    );
                }
            }
            Ok(pairs.into_iter().map(|(_, n)| n).collect())
        }
        _ => bail!("{}: 'names' must be a list or a mapping", file.display()),
    }
}

/// A short rendering of a YAML value for messages.
fn show(v: &Value) -> String {
    let t = serde_yaml::to_string(v).unwrap_or_default();
    let t = t.trim();
    match t.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t.to_string(),
    }
}

/// `nc`: a whole number from 1 to [`MAX_CLASSES`] (an integral float such as `3.0` counts), or an
/// error naming the file and the key.
fn parse_nc(v: &Value, file: &Path) -> Result<usize> {
    let n = match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= 1e9)
                .map(|f| f as u64)
        }),
        _ => None,
    };
    match n {
        Some(n) if (1..=MAX_CLASSES as u64).contains(&n) => Ok(n as usize),
        _ => bail!(
            "{}: 'nc: {}' must be a whole number from 1 to {MAX_CLASSES}",
            file.display(),
            show(v)
        ),
    }
}

/// The class names from `names` and/or `nc`: 1 to [`MAX_CLASSES`] of them, `nc` matching `names`
/// when both are given; errors name the file and the key.
fn class_names(m: &serde_yaml::Mapping, file: &Path) -> Result<Vec<String>> {
    let nc = match m.get("nc").filter(|v| !v.is_null()) {
        Some(v) => Some(parse_nc(v, file)?),
        None => None,
    };
    let Some(n) = m.get("names") else {
        let nc = nc.ok_or_else(|| anyhow!("{}: needs 'names' (or 'nc')", file.display()))?;
        return Ok((0..nc).map(|i| format!("class_{i}")).collect());
    };
    let names = parse_names(n, file)?;
    if names.is_empty() {
        bail!("{}: 'names' is empty; list the class names", file.display());
    }
    if names.len() > MAX_CLASSES {
        bail!(
            "{}: 'names' has {} entries, over the limit of {MAX_CLASSES} classes",
            file.display(),
            names.len()
        );
    }
    if let Some(nc) = nc.filter(|&nc| nc != names.len()) {
        bail!(
            "{}: 'nc: {nc}' does not match the {} entries of 'names'",
            file.display(),
            names.len()
        );
    }
    Ok(names)
}

/// Refuses a YAML text that nests deeper than [`MAX_YAML_DEPTH`] or uses more than
/// [`MAX_YAML_ALIASES`] aliases, naming the file and the line.
fn check_yaml_shape(text: &str, file: &Path) -> Result<()> {
    let s = super::yaml_scan::shape(text, MAX_YAML_DEPTH);
    for ((depth, line), what) in [(s.flow, "brackets"), (s.block, "indentation")] {
        if depth > MAX_YAML_DEPTH {
            bail!(
                "{}:{line}: nesting deeper than {MAX_YAML_DEPTH} levels ({what})",
                file.display()
            );
        }
    }
    if s.aliases > MAX_YAML_ALIASES {
        bail!(
            "{}: {} aliases (*name), over the limit of {MAX_YAML_ALIASES}",
            file.display(),
            s.aliases
        );
    }
    Ok(())
}

/// The text of a data.yaml: a regular file of at most [`MAX_YAML_BYTES`], UTF-8, BOM removed,
/// nesting and aliases within bounds.
fn read_yaml_text(file: &Path) -> Result<String> {
    let bytes = read_bounded(file, MAX_YAML_BYTES)
        .map_err(|e| anyhow!("reading dataset {}: {e}", file.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let ok = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = ok.iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow!("{}:{line}: not UTF-8 text", file.display())
    })?;
    let text = text.trim_start_matches('\u{feff}').to_string();
    check_yaml_shape(&text, file)?;
    Ok(text)
}

/// Loads a data.yaml. Relative `path` values resolve against the YAML's folder, then `datasets_dir`.
/// Hostile files (huge, deeply nested, `nc` out of 1..=10000, no names) are errors naming the file.
pub fn load_data_yaml(file: &Path) -> Result<DataConfig> {
    // A built-in dataset (coco8.yaml, ...) when no such file exists here.
    let builtin = (!file.exists())
        .then(|| crate::hub::datasets::builtin_yaml(file))
        .flatten();
    let text = match builtin {
        Some(t) => t.to_string(),
        None => read_yaml_text(file)?,
    };
    let y: Value = serde_yaml::from_str(&text).map_err(|e| {
        anyhow!(
            "{}: invalid YAML at line {}: {e}",
            file.display(),
            e.location().map(|l| l.line()).unwrap_or(0)
        )
    })?;
    let m = y
        .as_mapping()
        .ok_or_else(|| anyhow!("{}: a data.yaml must be a mapping", file.display()))?;
    let yaml_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let yaml_dir = if yaml_dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        yaml_dir
    };
    let path = match m.get("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.as_str()),
        Some(other) => bail!(
            "{}: 'path: {}' must be a folder path",
            file.display(),
            show(other)
        ),
    };
    let root = match path {
        None => yaml_dir.clone(),
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else if yaml_dir.join(&p).exists() {
                yaml_dir.join(&p)
            } else {
                let settings = crate::cfg::load_settings();
                let dd = settings
                    .get("datasets_dir")
                    .and_then(|v| v.as_str())
                    .unwrap_or("datasets")
                    .to_string();
                let cand = PathBuf::from(dd).join(&p);
                let beside = m
                    .get("train")
                    .and_then(Value::as_str)
                    .is_some_and(|t| yaml_dir.join(t).exists());
                if cand.exists() {
                    cand
                } else if beside {
                    // A data.yaml shipped inside its dataset folder (its splits beside it).
                    eprintln!(
                        "WARNING {}: 'path: {}' not found; using the YAML's own folder, which holds the splits",
                        file.display(),
                        p.display()
                    );
                    yaml_dir.clone()
                } else {
                    // Missing: downloaded into datasets_dir when the YAML says `download:`.
                    crate::hub::datasets::missing_root(file, m, yaml_dir.join(&p), cand)?
                }
            }
        }
    };
    let names = class_names(m, file)?;
    let mut splits = Vec::new();
    for key in ["train", "val", "validation", "test", "minival"] {
        let Some(v) = m.get(key) else { continue };
        let entries: Vec<String> = match v {
            Value::String(s) => vec![s.clone()],
            Value::Sequence(items) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_string).ok_or_else(|| {
                        anyhow!("{}: '{key}' holds {}, not a path", file.display(), show(i))
                    })
                })
                .collect::<Result<_>>()?,
            Value::Null => continue,
            _ => bail!(
                "{}: '{key}' must be a path or a list of paths",
                file.display()
            ),
        };
        let paths = entries
            .iter()
            .map(|e| {
                let p = root.join(e);
                if !p.exists() {
                    if let Some(rest) = e.strip_prefix("../") {
                        return root.join(rest);
                    }
                }
                p
            })
            .collect();
        let key = if key == "validation" { "val" } else { key };
        splits.push((key.to_string(), paths));
    }
    for need in ["train", "val"] {
        if !splits.iter().any(|(k, _)| k == need) {
            bail!("{}: missing the required '{need}' key", file.display());
        }
    }
    let (kpt_shape, flip_idx) = parse_keypoint_keys(m, file)?;
    let kpt_oks_sigmas = parse_oks_sigmas(m, file, kpt_shape)?;
    Ok(DataConfig {
        yaml_file: file.to_path_buf(),
        root,
        splits,
        names,
        kpt_shape,
        flip_idx,
        kpt_oks_sigmas,
    })
}

/// The folders already listed (canonical paths) and the images found, for [`walk`].
#[derive(Default)]
struct Walk {
    /// Canonical paths of the folders listed so far.
    visited: std::collections::HashSet<PathBuf>,
    /// Images found, in listing order.
    images: Vec<PathBuf>,
    /// Folders skipped because they were listed already (symlink loops or aliases).
    skipped: Vec<PathBuf>,
}

/// Lists `dir` recursively in name order; a folder whose canonical path was listed already (a
/// symlink loop or a second link to the same folder) is skipped and remembered.
fn walk(dir: &Path, w: &mut Walk) -> Result<()> {
    let canonical =
        std::fs::canonicalize(dir).with_context(|| format!("listing {}", dir.display()))?;
    if !w.visited.insert(canonical) {
        w.skipped.push(dir.to_path_buf());
        return Ok(());
    }
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("listing {}", dir.display()))?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, w)?;
        } else if is_image(&p) {
            w.images.push(p);
        }
    }
    Ok(())
}

/// The canonical path of a file: its folder canonicalised once (cached in `dirs`), the file
/// itself resolved only when it is a symlink; the path as given when it cannot be resolved.
fn canonical_file(p: &Path, dirs: &mut std::collections::HashMap<PathBuf, PathBuf>) -> PathBuf {
    let is_link = std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) if !is_link => {
            let d = dirs.entry(dir.to_path_buf()).or_insert_with(|| {
                std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
            });
            d.join(name)
        }
        _ => std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()),
    }
}

/// Sorts `paths` and keeps the first path of each file (by canonical path: two links to one image
/// are one image); returns how many were dropped.
fn dedup_files(paths: &mut Vec<PathBuf>) -> usize {
    paths.sort();
    paths.dedup();
    let before = paths.len();
    let mut dirs = std::collections::HashMap::new();
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(canonical_file(p, &mut dirs)));
    before - paths.len()
}

/// The largest image list (`.txt`) read (256 MiB).
pub const MAX_LIST_BYTES: u64 = 256 << 20;

/// The non-empty lines of an image list (`.txt`) with their 1-based numbers, trimmed, BOM
/// removed; a file over [`MAX_LIST_BYTES`], not a regular file, or with a line that is not UTF-8
/// is an error naming the file (and the line).
pub fn read_list(file: &Path) -> Result<Vec<(usize, String)>> {
    let bytes = read_bounded(file, MAX_LIST_BYTES)
        .map_err(|e| anyhow!("reading image list {}: {e}", file.display()))?;
    let mut lines = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = std::str::from_utf8(raw)
            .map_err(|_| anyhow!("{}:{}: not UTF-8 text", file.display(), i + 1))?;
        let line = line.trim().trim_start_matches('\u{feff}');
        if !line.is_empty() {
            lines.push((i + 1, line.to_string()));
        }
    }
    Ok(lines)
}

/// All images of a split: folders recursively, `.txt` lists (`./` relative to the list), files;
/// sorted. An empty result is an error that says what was looked for where.
pub fn list_images(sources: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut w = Walk::default();
    let mut out = Vec::new();
    for s in sources {
        if s.is_dir() {
            walk(s, &mut w)?;
        } else if s.extension().and_then(|e| e.to_str()) == Some("txt") && s.is_file() {
            let base = s.parent().unwrap_or(Path::new("."));
            for (_, line) in read_list(s)? {
                let p = match line.strip_prefix("./") {
                    Some(rest) => base.join(rest),
                    None => {
                        let p = PathBuf::from(&line);
                        if p.is_absolute() {
                            p
                        } else {
                            base.join(p)
                        }
                    }
                };
                if is_image(&p) {
                    out.push(p);
                }
            }
        } else if s.is_file() && is_image(s) {
            out.push(s.clone());
        } else if !s.exists() {
            bail!("dataset path {} does not exist", s.display());
        } else if !s.is_file() {
            bail!(
                "dataset path {} is not a regular file or a folder",
                s.display()
            );
        } else {
            eprintln!(
                "WARNING {}: not a folder, an image or a .txt list; ignored",
                s.display()
            );
        }
    }
    out.append(&mut w.images);
    for d in &w.skipped {
        eprintln!(
            "WARNING {}: listed already (overlapping sources, a symlink loop or a second link to \
             the same folder), skipped",
            d.display()
        );
    }
    let dropped = dedup_files(&mut out);
    if dropped > 0 {
        eprintln!(
            "WARNING {dropped} image paths lead to an image listed already (symlinks), skipped"
        );
    }
    if out.is_empty() {
        let where_ = sources
            .iter()
            .map(|s| s.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        bail!(
            "no images found in {where_} (looked for {})",
            IMG_FORMATS.join(", ")
        );
    }
    Ok(out)
}

/// The label file of an image: the last `/images/` becomes `/labels/`, the suffix becomes `.txt`.
pub fn img2label_path(img: &Path) -> PathBuf {
    let s = img.to_string_lossy();
    let sep = std::path::MAIN_SEPARATOR;
    let pat = format!("{sep}images{sep}");
    let replaced = match s.rfind(&pat) {
        Some(i) => format!("{}{sep}labels{sep}{}", &s[..i], &s[i + pat.len()..]),
        None => s.to_string(),
    };
    let p = PathBuf::from(replaced);
    match p.file_stem() {
        Some(stem) if p.extension().is_some() => {
            p.with_file_name(format!("{}.txt", stem.to_string_lossy()))
        }
        _ => p.with_extension("txt"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_path_rule() {
        assert_eq!(
            img2label_path(Path::new("/d/images/train/a.b.jpg")),
            PathBuf::from("/d/labels/train/a.b.txt")
        );
        assert_eq!(
            img2label_path(Path::new("/images/x/images/t/a.png")),
            PathBuf::from("/images/x/labels/t/a.txt")
        );
        assert_eq!(
            img2label_path(Path::new("/d/pics/a.jpg")),
            PathBuf::from("/d/pics/a.txt")
        );
    }

    #[test]
    fn kpt_shape_and_flip_idx_are_checked() {
        let d = std::env::temp_dir().join(format!("ryolo-kpt-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("data.yaml");
        let load = |extra: &str| {
            std::fs::write(&f, format!("train: a\nval: a\nnames: [person]\n{extra}")).unwrap();
            load_data_yaml(&f)
        };
        let c = load("kpt_shape: [3, 3]\nflip_idx: [0, 2, 1]\n").unwrap();
        assert_eq!(
            (c.kpt_shape, c.flip_idx.clone()),
            (Some([3, 3]), Some(vec![0, 2, 1]))
        );
        let fmt = c.label_format("pose").unwrap();
        assert_eq!(fmt, LabelFormat::Pose { nkpt: 3, ndim: 3 });
        assert_eq!(c.label_format("detect").unwrap(), LabelFormat::Detect);
        let c = load("kpt_shape: [3, 2]\nflip_idx: []\n").unwrap();
        assert_eq!(c.flip_idx, None, "an empty flip_idx counts as absent");
        for bad in [
            "kpt_shape: [3, 4]\n",
            "kpt_shape: 17\n",
            "kpt_shape: [3, 3]\nflip_idx: [0, 1]\n",
            "kpt_shape: [3, 3]\nkpt_oks_sigmas: [0.1, 0.2]\n",
            "kpt_shape: [2, 3]\nkpt_oks_sigmas: [0.1, -0.2]\n",
            "kpt_oks_sigmas: [0.1]\n",
        ] {
            let e = load(bad).unwrap_err().to_string();
            assert!(e.contains("data.yaml"), "{e}");
        }
        let c = load("kpt_shape: [2, 3]\nkpt_oks_sigmas: [0.05, 0.1]\n").unwrap();
        assert_eq!(c.kpt_oks_sigmas, Some(vec![0.05, 0.1]));
        let e = load("")
            .unwrap()
            .label_format("pose")
            .unwrap_err()
            .to_string();
        assert!(e.contains("kpt_shape"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }
}
