//! Links libtorch so that binaries start from a plain shell: an rpath to libtorch's lib folder (CUDA is
//! loaded at run time, see `util::cuda`).
include!("../../build_support.rs");
