//! Links libtorch so that binaries start from a plain shell: an rpath to libtorch's lib folder, and
//! `torch_cuda` linked with `--no-as-needed` so CUDA is visible when present.
include!("../../build_support.rs");
