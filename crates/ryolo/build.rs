//! Links libtorch so that binaries start from a plain shell (the shared `build_support.rs`; CUDA is
//! loaded at run time, see `util::cuda`), and
//! compiles the C++ shim over libtorch's c10d that multi-process training uses (`csrc/`).
mod support {
    include!("../../build_support.rs");
    pub fn run() {
        main()
    }
}
include!("build_dist.rs");

fn main() {
    support::run();
    build_dist();
}
