//! Shared helpers: where `../shared` is, and a loud skip when it is absent.
#![allow(dead_code)]

use std::path::PathBuf;

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
