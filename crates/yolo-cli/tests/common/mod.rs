//! Shared helpers of the CLI tests: run the real `yolo` binary, temporary folders, `../shared`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `yolo` in `cwd` with settings isolated under `cwd/cfg`: (success, stdout + stderr).
pub fn yolo(args: &[&str], cwd: &Path) -> (bool, String) {
    yolo_env(args, cwd, &[])
}

/// [`yolo`] with extra environment variables.
pub fn yolo_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_yolo"))
        .args(args)
        .current_dir(cwd)
        .env("YOLO_CONFIG_DIR", cwd.join("cfg"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A fresh temporary folder for one test.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ryolo-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.canonicalize().unwrap()
}

/// `<repo>/../shared`, or None (with a loud message) when it is absent (a user's clone).
pub fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if p.join("fixtures").exists() {
        Some(p.canonicalize().unwrap())
    } else {
        eprintln!("\n!!!!! SKIPPED: ../shared (fixtures and datasets) not found next to the repository !!!!!\n");
        None
    }
}
