// Shared by the build scripts of the workspace crates (included, not a crate).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    // The compiler's version, for the version line (`Rust-1.95.0`).
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Ok(o) = std::process::Command::new(rustc).arg("--version").output() {
        let v = String::from_utf8_lossy(&o.stdout);
        let v = v.split_whitespace().nth(1).unwrap_or("unknown");
        println!("cargo:rustc-env=RYOLO_RUSTC_VERSION={v}");
    }
    let Ok(root) = std::env::var("LIBTORCH") else {
        return;
    };
    let root = std::path::PathBuf::from(root);
    let lib = std::fs::canonicalize(root.join("lib")).unwrap_or_else(|_| root.join("lib"));
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // libtorch_cuda is not linked: `ryolo::util::cuda` loads it at run time when a CUDA device is
    // asked for, so CPU commands never map the CUDA libraries. Its folder at build time is one of
    // the places it looks.
    println!("cargo:rustc-env=RYOLO_LIBTORCH_LIB={}", lib.display());
}
