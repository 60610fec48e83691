//! Official weights, fetched on first use as Ultralytics 8.4 does (`attempt_download_asset`): a
//! missing `yolo11n.pt` (any YOLOv8 / YOLO11 / YOLO26 scale and task) comes from the
//! `ultralytics/assets` GitHub release `v8.4.0`, i.e.
//! `https://github.com/ultralytics/assets/releases/download/v8.4.0/yolo11n.pt`. The release base
//! can be pointed elsewhere (a mirror, a test server) with `RYOLO_ASSETS_URL`.

use super::download::{self, Request};
use anyhow::{anyhow, bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where Ultralytics' GitHub releases are downloaded from (`{base}/{tag}/{file}`).
pub const GITHUB_RELEASES: &str = "https://github.com/ultralytics/assets/releases/download";

/// The release of `ultralytics/assets` that Ultralytics 8.4 takes weights from.
pub const WEIGHTS_RELEASE: &str = "v8.4.0";

/// The environment variable that replaces [`GITHUB_RELEASES`] (a mirror or a local test server).
pub const ASSETS_URL_ENV: &str = "RYOLO_ASSETS_URL";

/// The smallest credible weights file (Ultralytics' `min_bytes=1e5`): less is an error page.
const MIN_WEIGHTS_BYTES: u64 = 100_000;

/// The model families whose release assets ryolo fetches.
const FAMILIES: [&str; 3] = ["yolov8", "yolo11", "yolo26"];

/// The five scales.
const SCALES: [char; 5] = ['n', 's', 'm', 'l', 'x'];

/// The release base: `$RYOLO_ASSETS_URL` when set (without a trailing `/`), else GitHub's.
pub fn releases_base() -> String {
    std::env::var(ASSETS_URL_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .unwrap_or_else(|| GITHUB_RELEASES.to_string())
}

/// Rewrites a URL under GitHub's release base onto [`releases_base`] (unchanged otherwise).
pub fn mirrored(url: &str) -> String {
    match url.strip_prefix(GITHUB_RELEASES) {
        Some(rest) => format!("{}{rest}", releases_base()),
        None => url.to_string(),
    }
}

/// Whether a file name is an official weights asset ryolo fetches: `{family}{scale}{task}.pt` for
/// the YOLOv8, YOLO11 and YOLO26 families, scales n/s/m/l/x and the suffixes of the five tasks
/// (none, `-seg`, `-cls`, `-pose`, `-obb`).
pub fn is_official(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".pt") else {
        return false;
    };
    FAMILIES.iter().any(|fam| {
        let Some(rest) = stem.strip_prefix(fam) else {
            return false;
        };
        let mut chars = rest.chars();
        let scale_ok = chars.next().is_some_and(|c| SCALES.contains(&c));
        scale_ok
            && crate::task::TaskKind::ALL
                .iter()
                .any(|t| chars.as_str() == t.suffix())
    })
}

/// The download URL of an official asset: `{base}/v8.4.0/{name}`.
pub fn asset_url(name: &str) -> String {
    format!("{}/{WEIGHTS_RELEASE}/{name}", releases_base())
}

/// A settings folder (`weights_dir`, `datasets_dir`): as stored; a relative value is relative to
/// the working directory, as in Ultralytics (which stores the absolute form it computed at first
/// run) and as `runs_dir` already is here.
pub fn settings_dir(key: &str, default: &str) -> PathBuf {
    crate::cfg::load_settings()
        .get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// The `weights_dir` setting.
pub fn weights_dir() -> PathBuf {
    settings_dir("weights_dir", "weights")
}

/// Where a `.pt` named on the command line is: the path itself, else the same path under
/// `weights_dir`, else (for an official asset name) a fresh download, saved under `weights_dir`
/// for a bare name or at the given path otherwise. Anything else absent is "not found".
pub fn resolve_weights(model: &str) -> Result<PathBuf> {
    resolve_weights_in(model, &weights_dir())
}

/// [`resolve_weights`] with an explicit `weights_dir`.
pub fn resolve_weights_in(model: &str, weights_dir: &Path) -> Result<PathBuf> {
    let path = Path::new(model);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    if path.is_relative() {
        let cand = weights_dir.join(path);
        if cand.exists() {
            return Ok(cand);
        }
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if !is_official(name) {
        bail!(
            "model file '{model}' not found (looked in the working directory and in weights_dir {})",
            weights_dir.display()
        );
    }
    let dest = if path.parent().is_some_and(|p| !p.as_os_str().is_empty()) {
        path.to_path_buf()
    } else {
        weights_dir.join(name)
    };
    fetch_weights(&asset_url(name), &dest)?;
    Ok(dest)
}

/// Downloads a weights file from `url` to `dest`, checked as a PyTorch zip checkpoint.
pub fn fetch_weights(url: &str, dest: &Path) -> Result<()> {
    let by_hand = format!(
        "Download it by hand and save it as {}",
        absolute(dest).display()
    );
    download::download(&Request {
        url,
        dest,
        min_bytes: MIN_WEIGHTS_BYTES,
        verify: &is_torch_zip,
        by_hand: &by_hand,
    })
}

/// A path made absolute against the working directory (for messages).
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Whether a file is a PyTorch zip checkpoint: a readable zip whose entries all match their
/// CRC-32, holding a `data.pkl` that starts with the pickle protocol opcode and ends with STOP.
pub fn is_torch_zip(path: &Path) -> Result<()> {
    let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| anyhow!("not a zip archive ({e})"))?;
    let mut pickle_ok = false;
    for i in 0..z.len() {
        let mut e = z.by_index(i).map_err(|e| anyhow!("entry {i}: {e}"))?;
        let name = e.name().to_string();
        if name.ends_with("data.pkl") {
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes)
                .map_err(|err| anyhow!("{name}: {err} (data damaged)"))?;
            pickle_ok = bytes.first() == Some(&0x80) && bytes.last() == Some(&b'.');
        } else {
            std::io::copy(&mut e, &mut std::io::sink())
                .map_err(|err| anyhow!("{name}: {err} (data damaged)"))?;
        }
    }
    if !pickle_ok {
        bail!("no valid data.pkl inside: not a PyTorch checkpoint");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_names() {
        for n in [
            "yolo11n.pt",
            "yolov8x-seg.pt",
            "yolo26m-cls.pt",
            "yolo11s-pose.pt",
            "yolov8l-obb.pt",
        ] {
            assert!(is_official(n), "{n}");
        }
        for n in [
            "yolo11n.yaml",
            "yolo11q.pt",
            "yolo11n-foo.pt",
            "best.pt",
            "yolo11.pt",
            "yolov5nu.pt",
            "yolo11nn.pt",
        ] {
            assert!(!is_official(n), "{n}");
        }
    }

    #[test]
    fn url_scheme() {
        if std::env::var_os(ASSETS_URL_ENV).is_none() {
            assert_eq!(
                asset_url("yolo11n.pt"),
                "https://github.com/ultralytics/assets/releases/download/v8.4.0/yolo11n.pt"
            );
        }
    }
}
