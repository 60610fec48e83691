//! Built-in datasets: the data YAMLs Ultralytics ships (`data=coco8.yaml` works with no file at
//! hand) and the download of a dataset whose folder is missing, from the YAML's `download:` zip
//! URL into `datasets_dir`, unzipped with guards (no path escapes the folder, no links, a cap on
//! the unpacked size) and checked (the split folders exist).

use super::assets::{absolute, mirrored, settings_dir, GITHUB_RELEASES};
use super::download::{self, Request};
use anyhow::{anyhow, bail, Context, Result};
use serde_yaml::{Mapping, Value};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Pairs `(file name, YAML text)` of a built-in dataset.
macro_rules! builtin {
    ($name:literal) => {
        (
            concat!($name, ".yaml"),
            include_str!(concat!("datasets/", $name, ".yaml")),
        )
    };
}

/// The built-in data YAMLs (keys after Ultralytics 8.4 `cfg/datasets/*.yaml`): detection,
/// segmentation, pose and OBB datasets. Those Ultralytics fetches with a Python script say
/// `download: python-script` here and must be fetched by hand.
pub const BUILTIN: &[(&str, &str)] = &[
    builtin!("african-wildlife"),
    builtin!("Argoverse"),
    builtin!("brain-tumor"),
    builtin!("carparts-seg"),
    builtin!("coco-pose"),
    builtin!("coco"),
    builtin!("coco12-formats"),
    builtin!("coco128-seg"),
    builtin!("coco128"),
    builtin!("coco8-pose"),
    builtin!("coco8-seg"),
    builtin!("coco8"),
    builtin!("construction-ppe"),
    builtin!("crack-seg"),
    builtin!("dog-pose"),
    builtin!("dota128"),
    builtin!("dota8"),
    builtin!("DOTAv1.5"),
    builtin!("DOTAv1"),
    builtin!("GlobalWheat2020"),
    builtin!("hand-keypoints"),
    builtin!("HomeObjects-3K"),
    builtin!("kitti"),
    builtin!("lvis"),
    builtin!("medical-pills"),
    builtin!("Objects365"),
    builtin!("open-images-v7"),
    builtin!("package-seg"),
    builtin!("signature"),
    builtin!("SKU-110K"),
    builtin!("tiger-pose"),
    builtin!("TT100K"),
    builtin!("VisDrone"),
    builtin!("VOC"),
    builtin!("xView"),
];

/// Classification datasets are folders, not YAMLs: `data=mnist160` is
/// `{datasets_dir}/mnist160`, fetched from `{releases}/v0.0.0/mnist160.zip` (Ultralytics'
/// `check_cls_dataset`). The names Ultralytics documents (`imagenet` is script-only).
pub const CLASSIFY_DATASETS: &[&str] = &[
    "caltech101",
    "caltech256",
    "cifar10",
    "cifar100",
    "fashion-mnist",
    "imagenet10",
    "imagenette",
    "imagenette160",
    "imagenette320",
    "imagewoof",
    "imagewoof160",
    "imagewoof320",
    "mnist",
    "mnist160",
];

/// The release that holds Ultralytics' dataset zips.
pub const DATASETS_RELEASE: &str = "v0.0.0";

/// Files and folders of an archive that are never unpacked (macOS metadata).
const SKIPPED: [&str; 2] = ["__MACOSX", ".DS_Store"];

/// Default cap on a dataset archive's unpacked size (`RYOLO_UNZIP_MAX_BYTES` overrides): 64 GiB,
/// above the largest zip dataset Ultralytics ships.
const MAX_UNZIP_BYTES: u64 = 64 << 30;

/// An entry that inflates more than this many times is a zip bomb (images barely compress).
const MAX_RATIO: u64 = 500;

/// The text of a built-in dataset YAML when `file` names one (`coco8.yaml`, `coco8.yml` or bare
/// `coco8`) without a folder; `None` otherwise.
pub fn builtin_yaml(file: &Path) -> Option<&'static str> {
    if file
        .parent()
        .is_some_and(|p| !p.as_os_str().is_empty() && p != Path::new("."))
    {
        return None;
    }
    let name = file.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
        .unwrap_or(name);
    BUILTIN
        .iter()
        .find(|(n, _)| n.strip_suffix(".yaml") == Some(stem))
        .map(|(_, t)| *t)
}

/// The `datasets_dir` setting.
pub fn datasets_dir() -> PathBuf {
    settings_dir("datasets_dir", "datasets")
}

/// What a YAML's `download:` holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// A plain URL of a zip archive.
    Zip(String),
    /// Anything else (a script, another archive kind): fetched by hand; the words say what.
    Manual(String),
}

/// Sorts a `download:` value: a plain http(s) URL to a `.zip` is fetched, the rest is named.
pub fn source(download: &Value) -> Source {
    let Some(s) = download.as_str().map(str::trim) else {
        return Source::Manual("not a URL".into());
    };
    let lower = s.to_ascii_lowercase();
    let is_url = (lower.starts_with("http://") || lower.starts_with("https://"))
        && !s.contains(char::is_whitespace);
    let path = lower.split(['?', '#']).next().unwrap_or_default();
    if is_url && path.ends_with(".zip") {
        return Source::Zip(s.to_string());
    }
    Source::Manual(if is_url {
        format!("{s} is not a .zip archive, the only kind ryolo unpacks")
    } else if lower.starts_with("bash ") || lower.ends_with(".sh") {
        "a shell script, which ryolo does not run".into()
    } else {
        "a Python script in Ultralytics, which ryolo does not run".into()
    })
}

/// The dataset root of a YAML whose relative `path:` is missing both beside the YAML (`fallback`)
/// and under `datasets_dir` (`target`): with a `download:` key, the dataset is fetched so that
/// `target` exists and `target` is returned; without one, `fallback` (the usual errors follow).
pub fn missing_root(
    yaml: &Path,
    m: &Mapping,
    fallback: PathBuf,
    target: PathBuf,
) -> Result<PathBuf> {
    let Some(d) = m.get("download").filter(|v| !v.is_null()) else {
        return Ok(fallback);
    };
    let into = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = yaml.display();
    match source(d) {
        Source::Manual(why) => bail!(
            "Dataset '{name}' not found at {} and its download: is {why}: fetch the dataset by hand into {} and run again",
            target.display(),
            absolute(&target).display()
        ),
        Source::Zip(url) => {
            eprintln!(
                "WARNING Dataset '{name}' images not found, missing path '{}', attempting download...",
                target.display()
            );
            let t = std::time::Instant::now();
            fetch_zip(&mirrored(&url), &into, &target)?;
            check_splits(yaml, m, &target, &url)?;
            eprintln!(
                "Dataset download success ({:.1}s), saved to {}",
                t.elapsed().as_secs_f64(),
                into.display()
            );
            Ok(target)
        }
    }
}

/// Downloads the zip at `url` into `into` (reusing a complete one already there), unpacks it and
/// deletes it. `target` is the folder the caller expects (named in the by-hand advice).
pub fn fetch_zip(url: &str, into: &Path, target: &Path) -> Result<PathBuf> {
    let file = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .unwrap_or("dataset.zip");
    let zip_path = into.join(file);
    if download::is_zip(&zip_path).is_err() {
        let by_hand = format!(
            "Download it by hand and unzip it into {} so that {} exists",
            absolute(into).display(),
            absolute(target).display()
        );
        download::download(&Request {
            url,
            dest: &zip_path,
            min_bytes: 1,
            verify: &download::is_zip,
            by_hand: &by_hand,
        })?;
    }
    let out = unzip(&zip_path, into, max_unzip_bytes());
    // Kept or refused, the archive goes: a damaged one must not be reused next time.
    let _ = std::fs::remove_file(&zip_path);
    out.with_context(|| format!("unpacking {} (from {url})", zip_path.display()))
}

/// The cap on an archive's unpacked size: `RYOLO_UNZIP_MAX_BYTES`, else 64 GiB.
fn max_unzip_bytes() -> u64 {
    std::env::var("RYOLO_UNZIP_MAX_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(MAX_UNZIP_BYTES)
}

/// Whether an archive entry is macOS metadata.
fn skipped(name: &Path) -> bool {
    name.components()
        .any(|c| SKIPPED.contains(&c.as_os_str().to_string_lossy().as_ref()))
}

/// The archive's entries to unpack, as relative paths, after refusing unsafe ones (escaping
/// paths, links) and zip bombs (more than `max_bytes` in all, or an absurd inflation ratio).
fn plan(z: &mut zip::ZipArchive<std::fs::File>, max_bytes: u64) -> Result<Vec<(usize, PathBuf)>> {
    let mut total = 0u64;
    let mut out = Vec::new();
    for i in 0..z.len() {
        let e = z.by_index_raw(i)?;
        let name = e.name().to_string();
        let Some(rel) = e.enclosed_name() else {
            bail!("entry '{name}' would be written outside the destination folder");
        };
        if skipped(&rel) {
            continue;
        }
        if e.is_symlink() {
            bail!("entry '{name}' is a symbolic link");
        }
        total = total.saturating_add(e.size());
        if total > max_bytes {
            bail!("it unpacks to more than {max_bytes} bytes (a zip bomb?); raise RYOLO_UNZIP_MAX_BYTES if it is genuine");
        }
        if e.size() > (1 << 20) && e.size() / e.compressed_size().max(1) > MAX_RATIO {
            bail!(
                "entry '{name}' inflates {} bytes to {} (a zip bomb?)",
                e.compressed_size(),
                e.size()
            );
        }
        out.push((i, rel));
    }
    Ok(out)
}

/// Unpacks `zip_path` into `into` as Ultralytics does (an archive with one top-level folder
/// lands as that folder; several top-level entries land in a folder named after the archive),
/// through a hidden staging folder renamed into place, so a broken unpack leaves nothing behind.
/// An existing non-empty destination is kept (with a warning). Returns the destination.
pub fn unzip(zip_path: &Path, into: &Path, max_bytes: u64) -> Result<PathBuf> {
    let f = std::fs::File::open(zip_path).with_context(|| zip_path.display().to_string())?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| anyhow!("not a zip archive ({e})"))?;
    let entries = plan(&mut z, max_bytes)?;
    let tops: std::collections::BTreeSet<_> = entries
        .iter()
        .filter_map(|(_, p)| p.components().next().map(|c| c.as_os_str().to_owned()))
        .collect();
    let single = tops.len() == 1 && entries.iter().any(|(_, p)| p.components().count() > 1);
    let stem = zip_path
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_else(|| "dataset".into());
    let dest = match (single, tops.iter().next()) {
        (true, Some(top)) => into.join(top),
        _ => into.join(&stem),
    };
    if dest.exists()
        && std::fs::read_dir(&dest)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        eprintln!(
            "WARNING Skipping {} unzip as destination path {} already exists.",
            zip_path.display(),
            dest.display()
        );
        return Ok(dest);
    }
    let stage = into.join(format!(".{}.unzip", stem.to_string_lossy()));
    let _ = std::fs::remove_dir_all(&stage);
    let result = extract(&mut z, &entries, &stage, max_bytes, zip_path).and_then(|()| {
        let from = if single {
            stage.join(tops.iter().next().expect("one top-level entry"))
        } else {
            stage.clone()
        };
        let _ = std::fs::remove_dir(&dest);
        std::fs::rename(&from, &dest)
            .with_context(|| format!("moving {} to {}", from.display(), dest.display()))
    });
    let _ = std::fs::remove_dir_all(&stage);
    result.map(|()| dest)
}

/// Writes the planned entries under `stage`, counting real bytes (a lying header cannot exceed
/// `max_bytes` or its declared size).
fn extract(
    z: &mut zip::ZipArchive<std::fs::File>,
    entries: &[(usize, PathBuf)],
    stage: &Path,
    max_bytes: u64,
    zip_path: &Path,
) -> Result<()> {
    let name = zip_path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let pb = crate::util::progress_bar(entries.len(), &format!("Unzipping {name}"));
    let mut written = 0u64;
    for (i, rel) in entries {
        let mut e = z.by_index(*i)?;
        let out = stage.join(rel);
        if e.is_dir() {
            std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
            pb.inc(1);
            continue;
        }
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        }
        let mut w = std::fs::File::create(&out).with_context(|| out.display().to_string())?;
        let limit = e.size().min(max_bytes - written) + 1;
        let n = std::io::copy(&mut (&mut e).take(limit), &mut w)
            .with_context(|| format!("{}: entry {}", zip_path.display(), rel.display()))?;
        if n >= limit {
            bail!(
                "entry '{}' holds more bytes than it declares (a zip bomb?)",
                rel.display()
            );
        }
        written += n;
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(())
}

/// After a download: every `train`/`val` folder the YAML names exists under `root`.
fn check_splits(yaml: &Path, m: &Mapping, root: &Path, url: &str) -> Result<()> {
    for key in ["train", "val"] {
        let entries: Vec<&str> = match m.get(key) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Sequence(v)) => v.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        for e in entries {
            let p = root.join(e);
            let alt = e.strip_prefix("../").map(|r| root.join(r));
            if !p.exists() && !alt.is_some_and(|a| a.exists()) {
                bail!(
                    "downloaded {url} but {} ('{key}' of {}) is missing: the archive does not hold the layout the YAML expects",
                    p.display(),
                    yaml.display()
                );
            }
        }
    }
    Ok(())
}

/// A classification dataset folder by name (`mnist160`): `{datasets_dir}/{name}`, downloaded
/// from `{releases}/v0.0.0/{name}.zip` when missing, and checked for a `train` folder.
pub fn classify_dataset(name: &str) -> Result<PathBuf> {
    classify_dataset_in(name, &datasets_dir())
}

/// [`classify_dataset`] with an explicit `datasets_dir`.
pub fn classify_dataset_in(name: &str, datasets_dir: &Path) -> Result<PathBuf> {
    let p = Path::new(name);
    if p.is_dir() {
        return Ok(p.to_path_buf());
    }
    let root = datasets_dir.join(name);
    if !root.is_dir() {
        if name == "imagenet" {
            bail!("Dataset 'imagenet' not found at {} and Ultralytics fetches it with a shell script, which ryolo does not run: fetch it by hand into {}", root.display(), absolute(&root).display());
        }
        eprintln!(
            "WARNING Dataset not found, missing path {}, attempting download...",
            root.display()
        );
        let url = mirrored(&format!("{GITHUB_RELEASES}/{DATASETS_RELEASE}/{name}.zip"));
        fetch_zip(&url, datasets_dir, &root)?;
    }
    if !root.join("train").is_dir() {
        bail!("{}: no 'train' folder", root.display());
    }
    Ok(root)
}

/// The dataset Ultralytics falls back to for a task (`TASK2DATA`): `coco8.yaml` for detect.
pub fn default_data(task: crate::task::TaskKind) -> &'static str {
    use crate::task::TaskKind as T;
    match task {
        T::Detect => "coco8.yaml",
        T::Segment => "coco8-seg.yaml",
        T::Classify => "imagenet10",
        T::Pose => "coco8-pose.yaml",
        T::Obb => "dota8.yaml",
    }
}

/// Whether a dataset recorded in a checkpoint resolves here: a bare name (a built-in), a URL or
/// an existing file; a path from another machine does not.
pub fn portable(data: &str) -> bool {
    data.contains("://") || !data.contains(['/', '\\']) || Path::new(data).exists()
}

/// The dataset of `yolo val`: `data=` (`given`), else the one stored in the checkpoint
/// (`stored`) when it resolves here, else the task's default with a warning, as Ultralytics.
pub fn val_data(
    given: Option<String>,
    stored: Option<String>,
    task: crate::task::TaskKind,
) -> String {
    if let Some(d) = given {
        return d;
    }
    if let Some(d) = stored.as_deref().filter(|d| portable(d)) {
        return d.to_string();
    }
    let default = default_data(task);
    match stored {
        Some(d) => eprintln!("WARNING Checkpoint dataset '{d}' was not found. Using default 'data={default}'. Pass data=... to validate on the original dataset."),
        None => eprintln!("WARNING 'data' argument is missing. Using default 'data={default}'."),
    }
    default.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_with_splits_names_and_download() {
        for (name, text) in BUILTIN {
            let y: Value = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            for k in ["path", "train", "val", "names", "download"] {
                assert!(y.get(k).is_some(), "{name}: no {k}");
            }
            let s = source(&y["download"]);
            if let Source::Zip(u) = &s {
                assert!(u.starts_with(GITHUB_RELEASES), "{name}: {u}");
            }
        }
        assert!(builtin_yaml(Path::new("coco8.yaml")).is_some());
        assert!(builtin_yaml(Path::new("coco8")).is_some());
        assert!(builtin_yaml(Path::new("./coco8.yaml")).is_some());
        assert!(builtin_yaml(Path::new("x/coco8.yaml")).is_none());
        assert!(builtin_yaml(Path::new("coco9.yaml")).is_none());
    }

    #[test]
    fn download_kinds() {
        let v = |s: &str| Value::String(s.into());
        assert_eq!(
            source(&v("https://h/x/coco8.zip")),
            Source::Zip("https://h/x/coco8.zip".into())
        );
        assert!(
            matches!(source(&v("https://h/x.tar.gz")), Source::Manual(w) if w.contains("not a .zip"))
        );
        assert!(matches!(source(&v("bash data/get.sh")), Source::Manual(w) if w.contains("shell")));
        assert!(
            matches!(source(&v("from pathlib import Path\nx = 1\n")), Source::Manual(w) if w.contains("Python"))
        );
    }
}
