// Compiles `csrc/dist_shim.cpp` (c10d TCPStore + ProcessGroupGloo behind a C ABI) and
// `csrc/cpu_amp.cpp` (CPU bfloat16 autocast switches) against the
// libtorch that torch-sys links, with the gloo headers vendored in `csrc/gloo` (see its README).
fn build_dist() {
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = match std::env::var("DEP_TCH_LIBTORCH_LIB") {
        Ok(l) => std::path::PathBuf::from(l),
        Err(_) => match std::env::var("LIBTORCH") {
            Ok(r) => std::path::PathBuf::from(r).join("lib"),
            Err(_) => panic!("ryolo: neither torch-sys (DEP_TCH_LIBTORCH_LIB) nor LIBTORCH names libtorch; run scripts/setup.sh"),
        },
    };
    let lib = std::fs::canonicalize(&lib).unwrap_or(lib);
    let inc = lib.parent().map(|p| p.join("include")).unwrap_or_default();
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("csrc/dist_shim.cpp")
        .file("csrc/cpu_amp.cpp")
        .include("csrc")
        .include(&inc)
        .include(inc.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .define("USE_C10D_GLOO", None)
        .define("GLOG_USE_GLOG_EXPORT", None)
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false)
        .compile("ryolo_dist");
}
