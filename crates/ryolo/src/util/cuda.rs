//! CUDA on demand: loads libtorch's CUDA half (`libtorch_cuda.so`) at run time, only when a CUDA
//! device is asked for, so CPU commands never map the CUDA libraries (gigabytes of them).
//!
//! Loading registers libtorch's CUDA hooks and kernels (its static initialisers run), after which
//! `tch::Cuda` sees the GPUs as if the library had been linked.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The library loaded on demand.
const LIB: &str = "libtorch_cuda.so";

/// The outcome of the one load attempt of this process: the path loaded, or why not.
static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Loads `libtorch_cuda.so` once (later calls return the first outcome): from the folder of the
/// libtorch already mapped into this process, else the folder ryolo was built against, else the
/// loader's search path. The error says, for people, why CUDA cannot be used.
pub fn load() -> Result<&'static Path, &'static str> {
    LOADED
        .get_or_init(load_once)
        .as_deref()
        .map_err(String::as_str)
}

/// Whether a CUDA device can be used: loads the CUDA libraries when a GPU driver is present (with
/// none, CUDA cannot work, so nothing is loaded) and asks libtorch.
pub fn is_available() -> bool {
    driver_present() && load().is_ok() && tch::Cuda::is_available()
}

/// The GPUs that can be used, loading the CUDA libraries first when a driver is present (0
/// without a driver or a CUDA libtorch).
pub fn visible_devices() -> usize {
    if is_available() {
        tch::Cuda::device_count().max(0) as usize
    } else {
        0
    }
}

/// CUDA devices libtorch sees (0 when the CUDA libraries are not loaded).
pub fn device_count() -> i64 {
    if LOADED.get().is_some_and(|r| r.is_ok()) {
        tch::Cuda::device_count()
    } else {
        0
    }
}

/// Whether an NVIDIA driver shows itself (device nodes, the proc entry, or WSL's GPU node); cheap,
/// loads nothing.
pub fn driver_present() -> bool {
    [
        "/dev/nvidiactl",
        "/dev/nvidia0",
        "/proc/driver/nvidia/version",
        "/dev/dxg",
    ]
    .iter()
    .any(|p| Path::new(p).exists())
}

fn load_once() -> Result<PathBuf, String> {
    let mut tried = Vec::new();
    let mut dirs: Vec<PathBuf> = loaded_libtorch_dir().into_iter().collect();
    if let Some(d) = option_env!("RYOLO_LIBTORCH_LIB") {
        dirs.push(PathBuf::from(d));
    }
    for dir in dirs {
        let path = dir.join(LIB);
        if !path.exists() {
            tried.push(format!("{} (absent)", path.display()));
            continue;
        }
        return open(&path)
            .map(|()| path.clone())
            .map_err(|e| format!("{} could not be loaded: {e}", path.display()));
    }
    // Last: the loader's own search (LD_LIBRARY_PATH, this binary's rpath, the system cache).
    match open(Path::new(LIB)) {
        Ok(()) => Ok(PathBuf::from(LIB)),
        Err(e) => Err(format!(
            "this libtorch has no CUDA support: {LIB} was not found ({}; loader: {e})",
            if tried.is_empty() {
                "no libtorch folder known".to_string()
            } else {
                tried.join(", ")
            }
        )),
    }
}

/// `dlopen(path, RTLD_NOW | RTLD_GLOBAL)`: global, so the CUDA kernels' symbols resolve for
/// libtorch as if linked; never closed.
fn open(path: &Path) -> Result<(), String> {
    dlopen(path, libc::RTLD_GLOBAL).map(|_| ())
}

/// `dlopen(path, RTLD_NOW | flags)`: the handle (kept open for the life of the process), or the
/// loader's message.
pub(crate) fn dlopen(path: &Path, flags: libc::c_int) -> Result<*mut libc::c_void, String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "the path holds a NUL byte".to_string())?;
    // SAFETY: `c` is a valid C string; dlopen/dlerror are thread-safe in glibc.
    unsafe {
        let h = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | flags);
        if h.is_null() {
            let e = libc::dlerror();
            return Err(if e.is_null() {
                "unknown dlopen error".into()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            });
        }
        Ok(h)
    }
}

/// The folder of the `libtorch_cpu.so` mapped into this process, if any.
fn loaded_libtorch_dir() -> Option<PathBuf> {
    mapped_objects()
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libtorch_cpu.so"))
        })
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// The paths of the shared objects mapped into this process (`dl_iterate_phdr`).
pub fn mapped_objects() -> Vec<PathBuf> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: called by dl_iterate_phdr with a valid info; `data` is the Vec passed below.
        let out = &mut *(data as *mut Vec<PathBuf>);
        let name = (*info).dlpi_name;
        if !name.is_null() {
            let s = CStr::from_ptr(name).to_string_lossy();
            if !s.is_empty() {
                out.push(PathBuf::from(s.into_owned()));
            }
        }
        0
    }
    let mut out: Vec<PathBuf> = Vec::new();
    // SAFETY: the callback only reads the entries handed to it and pushes onto `out`.
    unsafe {
        libc::dl_iterate_phdr(
            Some(each),
            &mut out as *mut Vec<PathBuf> as *mut libc::c_void,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_is_found_among_the_mapped_objects() {
        // A tensor op makes sure libtorch is in use; its folder is where libtorch_cuda is sought.
        let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        assert!(loaded_libtorch_dir().is_some(), "{:?}", mapped_objects());
    }

    #[test]
    fn cuda_libraries_are_not_mapped_until_asked_for() {
        let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        if LOADED.get().is_some() {
            return; // another test in this process asked for CUDA
        }
        let cuda: Vec<_> = mapped_objects()
            .into_iter()
            .filter(|p| {
                let n = p.to_string_lossy();
                n.contains("libtorch_cuda") || n.contains("libcudnn") || n.contains("libcublas")
            })
            .collect();
        assert!(cuda.is_empty(), "mapped before any CUDA request: {cuda:?}");
    }
}
