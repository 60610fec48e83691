//! NCCL on demand: opens `libryolo_nccl.so` (built from `csrc/dist_nccl.cpp` next to ryolo) after
//! the CUDA libraries, and hands out its backend factory and the CUDA allocator's reserved bytes;
//! CPU runs never load either.

use super::ffi::BackendFactory;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The library's file name.
const LIB: &str = "libryolo_nccl.so";

/// What the library offers.
#[derive(Clone, Copy)]
struct Lib {
    factory: BackendFactory,
    version: i32,
    reserved: unsafe extern "C" fn(i32) -> i64,
}

/// The outcome of the one load attempt of this process.
static LOADED: OnceLock<Result<Lib, String>> = OnceLock::new();

/// The NCCL backend factory and the NCCL version it was compiled against (e.g. 22809), loading
/// the CUDA libraries and `libryolo_nccl.so` on first use; the error says why NCCL cannot be used.
pub fn factory() -> Result<(BackendFactory, i32), String> {
    LOADED
        .get_or_init(load_once)
        .clone()
        .map(|l| (l.factory, l.version))
}

/// One line for `yolo checks`: the NCCL version multi-GPU training would use, or why GPU ranks
/// would fall back to Gloo.
pub fn describe() -> String {
    match factory() {
        Ok((_, v)) => format!(
            "NCCL (multi-GPU training): {}.{}.{}",
            v / 10000,
            v / 100 % 100,
            v % 100
        ),
        Err(why) => format!("NCCL: not available ({why}); GPU ranks would use Gloo"),
    }
}

/// Bytes the CUDA caching allocator holds on GPU `device` (`torch.cuda.memory_reserved`); None
/// when the library cannot be loaded.
pub fn memory_reserved(device: usize) -> Option<u64> {
    let l = LOADED.get_or_init(load_once).as_ref().ok()?;
    // SAFETY: the symbol has this C signature (csrc/dist_nccl.cpp) and never throws.
    let b = unsafe { (l.reserved)(device as i32) };
    u64::try_from(b).ok()
}

/// Where the library is sought, in order: `RYOLO_NCCL_SHIM`, next to this executable (and one
/// folder up, for test binaries in `deps/`), then where the build put it.
fn candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("RYOLO_NCCL_SHIM").filter(|p| !p.is_empty()) {
        v.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|p| p.to_path_buf()))
    {
        v.push(dir.join(LIB));
        if let Some(up) = dir.parent() {
            v.push(up.join(LIB));
        }
    }
    let built = env!("RYOLO_NCCL_SHIM");
    if !built.is_empty() {
        v.push(PathBuf::from(built));
    }
    v
}

fn load_once() -> Result<Lib, String> {
    crate::util::cuda::load().map_err(|e| format!("NCCL needs the CUDA libraries: {e}"))?;
    let Some(path) = candidates().into_iter().find(|p| p.exists()) else {
        let why = env!("RYOLO_NCCL_MISSING");
        return Err(if why.is_empty() {
            format!("{LIB} was not found next to this program nor where it was built")
        } else {
            format!("this ryolo was built without NCCL support: {why}")
        });
    };
    let h = crate::util::cuda::dlopen(&path, libc::RTLD_LOCAL)
        .map_err(|e| format!("{} could not be loaded: {e}", path.display()))?;
    // SAFETY: the handle stays open for the life of the process; the symbols have the C
    // signatures of csrc/dist_nccl.cpp.
    unsafe {
        let make = libc::dlsym(h, c"ryolo_nccl_backend".as_ptr());
        let version = libc::dlsym(h, c"ryolo_nccl_version".as_ptr());
        let reserved = libc::dlsym(h, c"ryolo_cuda_memory_reserved".as_ptr());
        if make.is_null() || version.is_null() || reserved.is_null() {
            return Err(format!(
                "{} lacks ryolo_nccl_backend, ryolo_nccl_version or ryolo_cuda_memory_reserved",
                path.display()
            ));
        }
        let version: unsafe extern "C" fn() -> i32 = std::mem::transmute(version);
        Ok(Lib {
            factory: std::mem::transmute::<*mut libc::c_void, BackendFactory>(make),
            version: version(),
            reserved: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(i32) -> i64>(
                reserved,
            ),
        })
    }
}
