//! Links libtorch as the other crates do (rpath to the build's libtorch), plus an rpath relative to
//! the installed extension, `$ORIGIN/../torch/lib`, so a wheel finds the user's torch package
//! (`site-packages/ryolo/_ryolo.abi3.so` -> `site-packages/torch/lib`).
mod support {
    include!("../../build_support.rs");
    pub fn run() {
        main()
    }
}

fn main() {
    support::run();
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../torch/lib");
}
