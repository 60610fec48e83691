//! Multi-tensor ("foreach") updates over lists of tensors, one kernel launch per operation instead
//! of one per tensor (`csrc/foreach.cpp`): what CUDA training steps use, as PyTorch's optimizers do
//! there. A libtorch failure here panics, as tch's own operations do.

use std::os::raw::{c_char, c_void};
use tch::Tensor;

extern "C" {
    fn ryolo_foreach_lerp(
        a: *const *mut c_void,
        b: *const *mut c_void,
        n: usize,
        w: f64,
        err: *mut *mut c_char,
    ) -> i32;
    fn ryolo_foreach_zero(a: *const *mut c_void, n: usize, err: *mut *mut c_char) -> i32;
    fn ryolo_foreach_adam(
        p: *const *mut c_void,
        g: *const *mut c_void,
        m: *const *mut c_void,
        v: *const *mut c_void,
        n: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        decoupled: bool,
        step: i64,
        err: *mut *mut c_char,
    ) -> i32;
    fn ryolo_foreach_sgd(
        p: *const *mut c_void,
        g: *const *mut c_void,
        b: *const *mut c_void,
        n: usize,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
        nesterov: bool,
        err: *mut *mut c_char,
    ) -> i32;
    fn ryolo_foreach_unscale(
        g: *const *mut c_void,
        n: usize,
        found_inf: *mut c_void,
        inv_scale: *mut c_void,
        err: *mut *mut c_char,
    ) -> i32;
    fn ryolo_foreach_clip(
        g: *const *mut c_void,
        n: usize,
        max_norm: f64,
        err: *mut *mut c_char,
    ) -> i32;
}

/// The `at::Tensor*` handles of `ts`.
fn ptrs(ts: &[Tensor]) -> Vec<*mut c_void> {
    ts.iter().map(|t| t.as_ptr() as *mut c_void).collect()
}

/// Runs a shim call; panics with libtorch's message on failure.
fn run(what: &str, f: impl FnOnce(*mut *mut c_char) -> i32) {
    if let Err(msg) = super::cabi::call(f) {
        panic!("libtorch {what} failed: {msg}");
    }
}

/// `a[i] += w * (b[i] - a[i])` for all i (same lengths).
pub fn lerp_(a: &[Tensor], b: &[Tensor], w: f64) {
    assert_eq!(a.len(), b.len());
    let (pa, pb) = (ptrs(a), ptrs(b));
    // SAFETY: live tensors for the call, equal lengths.
    run("foreach lerp", |e| unsafe {
        ryolo_foreach_lerp(pa.as_ptr(), pb.as_ptr(), pa.len(), w, e)
    });
}

/// Zeroes every tensor of `a`.
pub fn zero_(a: &[Tensor]) {
    let pa = ptrs(a);
    // SAFETY: as above.
    run("foreach zero", |e| unsafe {
        ryolo_foreach_zero(pa.as_ptr(), pa.len(), e)
    });
}

/// The settings of one Adam / AdamW step.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    /// Learning rate.
    pub lr: f64,
    /// beta1 (Ultralytics' momentum).
    pub beta1: f64,
    /// beta2.
    pub beta2: f64,
    /// Epsilon.
    pub eps: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// AdamW (decoupled decay) rather than Adam (L2 on the gradient).
    pub decoupled: bool,
    /// Step count, from 1.
    pub step: i64,
}

/// One Adam/AdamW step over parameters `p` with gradients `g` and moments `m`, `v` (PyTorch's
/// `_multi_tensor_adam`).
pub fn adam_(p: &[Tensor], g: &[Tensor], m: &[Tensor], v: &[Tensor], s: AdamStep) {
    let n = p.len();
    assert!(g.len() == n && m.len() == n && v.len() == n);
    let (pp, pg, pm, pv) = (ptrs(p), ptrs(g), ptrs(m), ptrs(v));
    // SAFETY: live tensors for the call, equal lengths.
    run("foreach Adam step", |e| unsafe {
        ryolo_foreach_adam(
            pp.as_ptr(),
            pg.as_ptr(),
            pm.as_ptr(),
            pv.as_ptr(),
            n,
            s.lr,
            s.beta1,
            s.beta2,
            s.eps,
            s.weight_decay,
            s.decoupled,
            s.step,
            e,
        )
    });
}

/// One SGD step with momentum buffers `b` (new ones as zeros) (PyTorch's `_multi_tensor_sgd`,
/// dampening 0).
pub fn sgd_(
    p: &[Tensor],
    g: &[Tensor],
    b: &[Tensor],
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    nesterov: bool,
) {
    let n = p.len();
    assert!(g.len() == n && b.len() == n);
    let (pp, pg, pb) = (ptrs(p), ptrs(g), ptrs(b));
    // SAFETY: as above.
    run("foreach SGD step", |e| unsafe {
        ryolo_foreach_sgd(
            pp.as_ptr(),
            pg.as_ptr(),
            pb.as_ptr(),
            n,
            lr,
            momentum,
            weight_decay,
            nesterov,
            e,
        )
    });
}

/// GradScaler's unscale of `g` by `inv_scale` ([1] float); `found_inf` ([1] float) becomes 1 when
/// any value is not finite.
pub fn unscale_(g: &[Tensor], found_inf: &Tensor, inv_scale: &Tensor) {
    let pg = ptrs(g);
    // SAFETY: as above.
    run("foreach unscale", |e| unsafe {
        ryolo_foreach_unscale(
            pg.as_ptr(),
            pg.len(),
            found_inf.as_ptr() as *mut c_void,
            inv_scale.as_ptr() as *mut c_void,
            e,
        )
    });
}

/// Scales `g` so that its global L2 norm is at most `max_norm` (no host sync).
pub fn clip_(g: &[Tensor], max_norm: f64) {
    let pg = ptrs(g);
    // SAFETY: as above.
    run("foreach clip", |e| unsafe {
        ryolo_foreach_clip(pg.as_ptr(), pg.len(), max_norm, e)
    });
}
