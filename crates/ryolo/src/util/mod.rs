//! Small helpers shared across the pipeline: number formatting, rounding, atomic writes, progress
//! bars, `.npy` files.

pub mod amp;
pub mod cabi;
pub mod cuda;
pub mod foreach;
pub mod fsio;
pub mod malloc;
pub mod npy;
pub mod tensorboard;
pub mod threads;

use anyhow::{Context, Result};
use std::path::Path;

/// The libtorch version ryolo is built against (the PyPI `torch==2.11.0` wheel of setup).
pub const LIBTORCH_VERSION: &str = "2.11.0";

/// The CPU's model name (`/proc/cpuinfo`), when known.
fn cpu_name() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// Ultralytics' first console line, for ryolo: `ryolo 0.1.0 🚀 Rust-1.95.0 libtorch-2.11.0 CPU (...)`.
pub fn version_line(device: tch::Device) -> String {
    let dev = match device {
        tch::Device::Cuda(i) => format!("CUDA:{i}"),
        _ => match cpu_name() {
            Some(n) => format!("CPU ({n})"),
            None => "CPU".into(),
        },
    };
    format!(
        "ryolo {} 🚀 Rust-{} libtorch-{LIBTORCH_VERSION} {dev}",
        env!("CARGO_PKG_VERSION"),
        env!("RYOLO_RUSTC_VERSION")
    )
}

/// Python `round()`: half to even.
pub fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

/// Writes a file through a temporary sibling and a rename, so a crash never leaves half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let done = std::fs::write(&tmp, bytes)
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|_| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
        });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Removes the temporary files [`write_atomic`] leaves in `dir` when a process is killed mid-write
/// (`<name>.tmp<pid>`); returns how many.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let stale = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .and_then(|e| e.strip_prefix("tmp"))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    };
    rd.filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && stale(p))
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count()
}

/// Formats like C's `%.{sig}g` (Python's `%g` when `sig` = 6): significant digits, no trailing zeros.
pub fn fmt_g(v: f64, sig: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    let sig = sig.max(1);
    let exp = format!("{:.*e}", sig - 1, v);
    let (_, e) = exp.split_once('e').unwrap_or(("", "0"));
    let e: i32 = e.parse().unwrap_or(0);
    if e < -4 || e >= sig as i32 {
        let (m, _) = exp.split_once('e').unwrap_or((&exp, ""));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (sig as i32 - 1 - e).max(0) as usize;
    let s = format!("{:.*}", decimals, v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// An external file the project uses: the `env` variable's path when set, else the one setup
/// installed (`built_in`, known at build time) when it exists, else `fallback` (for the system's
/// search path).
pub fn locate(env: &str, built_in: Option<&str>, fallback: &str) -> std::path::PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return p.into();
    }
    match built_in {
        Some(p) if std::path::Path::new(p).exists() => p.into(),
        _ => fallback.into(),
    }
}

/// A progress bar on stderr in Ultralytics' style (`prefix: 42% ━━━━──── 12/28 1.2it/s`). It draws
/// only on a terminal, so logs and pipes stay clean.
pub fn progress_bar(len: usize, prefix: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix}: {percent:>3}% {bar:20} {pos}/{len} [{elapsed}<{eta}] {msg}",
    ) {
        pb.set_style(style.progress_chars("━━─"));
    }
    pb.set_prefix(prefix.to_string());
    pb
}

#[cfg(test)]
mod tests {
    use super::fmt_g;

    #[test]
    fn like_printf_g() {
        assert_eq!(fmt_g(0.000535875, 6), "0.000535875");
        assert_eq!(fmt_g(2.9916, 6), "2.9916");
        assert_eq!(fmt_g(0.0999373, 6), "0.0999373");
        assert_eq!(fmt_g(0.456789, 3), "0.457");
        assert_eq!(fmt_g(1.0, 3), "1");
        assert_eq!(fmt_g(1234567.0, 6), "1.23457e+06");
        assert_eq!(fmt_g(0.00001234, 3), "1.23e-05");
        assert_eq!(fmt_g(0.9996, 3), "1");
    }

    #[test]
    fn stale_temps_are_removed_and_failed_writes_leave_none() {
        let d = std::env::temp_dir().join(format!("ryolo-tmps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for f in [
            "last.tmp123",
            "best.tmp9",
            "keep.tmpx",
            "last.safetensors",
            "notes.tmp",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        assert_eq!(super::remove_stale_temps(&d), 2);
        let mut left: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left, ["keep.tmpx", "last.safetensors", "notes.tmp"]);
        // Renaming onto a directory fails: the temporary file must not stay behind.
        std::fs::create_dir_all(d.join("target.bin")).unwrap();
        assert!(super::write_atomic(&d.join("target.bin"), b"data").is_err());
        assert!(!d.join(format!("target.tmp{}", std::process::id())).exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
