//! The C ABI of `csrc/dist_shim.cpp` (c10d TCPStore + ProcessGroupGloo or a backend made by
//! `csrc/dist_nccl.cpp`'s factory).

use std::os::raw::{c_char, c_int, c_void};
use tch::Tensor;

/// A backend factory (`ryolo_nccl_backend`): store, rank, world, device, timeout_ms, err.
pub type BackendFactory = unsafe extern "C" fn(
    store: *mut c_void,
    rank: c_int,
    world: c_int,
    device: c_int,
    timeout_ms: i64,
    err: *mut *mut c_char,
) -> *mut c_void;

extern "C" {
    pub fn ryolo_dist_new(
        host: *const c_char,
        port: u16,
        listen_fd: c_int,
        rank: c_int,
        world: c_int,
        timeout_ms: i64,
        factory: Option<BackendFactory>,
        device: c_int,
        err: *mut *mut c_char,
    ) -> *mut c_void;
    pub fn ryolo_dist_free(g: *mut c_void);
    pub fn ryolo_dist_set_grad(
        param: *mut c_void,
        grad: *mut c_void,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn ryolo_dist_all_reduce_sum(
        g: *mut c_void,
        t: *mut c_void,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn ryolo_dist_broadcast(
        g: *mut c_void,
        t: *mut c_void,
        root: c_int,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn ryolo_dist_barrier(g: *mut c_void, err: *mut *mut c_char) -> c_int;
    pub fn ryolo_dist_store_set(
        g: *mut c_void,
        key: *const c_char,
        val: *const u8,
        len: usize,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn ryolo_dist_store_get(
        g: *mut c_void,
        key: *const c_char,
        timeout_ms: i64,
        out: *mut *mut u8,
        len: *mut usize,
        err: *mut *mut c_char,
    ) -> c_int;
}

/// The `torch::Tensor*` behind a tch tensor, as the shim takes it.
pub fn tensor_ptr(t: &Tensor) -> *mut c_void {
    t.as_ptr() as *mut c_void
}
