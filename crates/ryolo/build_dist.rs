// Compiles `csrc/dist_shim.cpp` (c10d TCPStore + ProcessGroupGloo behind a C ABI) and
// `csrc/cpu_amp.cpp` (CPU bfloat16 autocast switches) against the
// libtorch that torch-sys links, with the gloo headers vendored in `csrc/gloo` (see its README);
// and, when this libtorch has CUDA and the CUDA and NCCL headers are found, `csrc/dist_nccl.cpp`
// as the shared library `libryolo_nccl.so` that multi-GPU training loads at run time.
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
        .file("csrc/foreach.cpp")
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
    build_nccl(&lib, &inc, &abi);
}

/// Builds `libryolo_nccl.so` into OUT_DIR and names it in `RYOLO_NCCL_SHIM` (or says in
/// `RYOLO_NCCL_MISSING` why not: no CUDA in this libtorch, or headers not found).
fn build_nccl(lib: &std::path::Path, inc: &std::path::Path, abi: &str) {
    use std::path::PathBuf;
    println!("cargo:rerun-if-env-changed=RYOLO_CUDA_INCLUDE");
    println!("cargo:rerun-if-env-changed=RYOLO_NCCL_INCLUDE");
    let missing = |why: String| {
        println!("cargo:rustc-env=RYOLO_NCCL_SHIM=");
        println!("cargo:rustc-env=RYOLO_NCCL_MISSING={why}");
    };
    if !lib.join("libtorch_cuda.so").exists() {
        return missing(format!("{} has no libtorch_cuda.so", lib.display()));
    }
    // The pip wheels' layout (site-packages/nvidia/{cu13,nccl}/include, next to torch/), unless
    // RYOLO_CUDA_INCLUDE / RYOLO_NCCL_INCLUDE name the folders.
    let nvidia = inc
        .parent()
        .and_then(|t| t.parent())
        .map(|sp| sp.join("nvidia"))
        .unwrap_or_default();
    let pick = |var: &str, sub: &str| -> PathBuf {
        std::env::var(var)
            .map(PathBuf::from)
            .unwrap_or_else(|_| nvidia.join(sub).join("include"))
    };
    // The CUDA headers' folder is named for the CUDA major version (cu13, cu12, ...).
    let cu = std::fs::read_dir(&nvidia)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("cu") && n[2..].chars().all(|c| c.is_ascii_digit()) && n.len() > 2)
        .max()
        .unwrap_or_else(|| "cu13".into());
    let cuda = pick("RYOLO_CUDA_INCLUDE", &cu);
    let nccl = pick("RYOLO_NCCL_INCLUDE", "nccl");
    for f in [
        cuda.join("cuda_runtime_api.h"),
        cuda.join("crt/host_config.h"),
        cuda.join("nv/target"),
        nccl.join("nccl.h"),
    ] {
        if !f.exists() {
            return missing(format!(
                "{} not found (scripts/setup.sh installs the nvidia-cuda-crt and nvidia-cuda-cccl wheels)",
                f.display()
            ));
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("libryolo_nccl.so");
    let cxx = cc::Build::new().cpp(true).get_compiler();
    let status = std::process::Command::new(cxx.path())
        .args(["-std=c++17", "-shared", "-fPIC", "-O2", "-w"])
        .arg(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .args(["-DUSE_C10D_NCCL", "-DUSE_CUDA", "-DGLOG_USE_GLOG_EXPORT"])
        .arg(format!("-I{}", inc.display()))
        .arg(format!("-I{}", inc.join("torch/csrc/api/include").display()))
        .arg(format!("-I{}", cuda.display()))
        .arg(format!("-I{}", nccl.display()))
        .arg("csrc/dist_nccl.cpp")
        .arg("-o")
        .arg(&out)
        .arg(format!("-L{}", lib.display()))
        .args(["-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-ltorch_cpu", "-lc10"])
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .status();
    match status {
        Ok(s) if s.success() => {
            println!("cargo:rustc-env=RYOLO_NCCL_SHIM={}", out.display());
            println!("cargo:rustc-env=RYOLO_NCCL_MISSING=");
        }
        Ok(s) => missing(format!("compiling csrc/dist_nccl.cpp failed ({s})")),
        Err(e) => missing(format!("running {}: {e}", cxx.path().display())),
    }
}
