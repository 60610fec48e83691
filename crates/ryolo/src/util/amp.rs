//! Mixed precision: which native bfloat16 instructions this CPU has, the CPU bfloat16 (`amp=bf16`)
//! and CUDA float16 autocast scopes, and channels-last layout for the convolutions bf16 speeds up.

use std::sync::OnceLock;
use tch::Tensor;

extern "C" {
    fn ryolo_cpu_autocast_set(enabled: bool) -> bool;
    fn ryolo_cuda_autocast_set(enabled: bool) -> bool;
    fn ryolo_autocast_enter();
    fn ryolo_autocast_exit();
}

/// The native bfloat16 instruction set of this CPU (`amx_bf16` or `avx512_bf16`), read from the
/// kernel's CPU flags once; `None` when it has neither (bfloat16 would be emulated, slower).
pub fn cpu_bf16() -> Option<&'static str> {
    static FLAGS: OnceLock<Option<&'static str>> = OnceLock::new();
    *FLAGS.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags: Vec<&str> = info
            .lines()
            .find(|l| l.starts_with("flags"))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        ["amx_bf16", "avx512_bf16"]
            .into_iter()
            .find(|f| flags.contains(f))
    })
}

/// Runs `f` with libtorch's CPU autocast to bfloat16 on this thread when `on` (convolutions and
/// matrix products in bfloat16, parameters and their gradients stay float32); else just `f()`.
pub fn cpu_autocast<T>(on: bool, f: impl FnOnce() -> T) -> T {
    // SAFETY: plain calls into libtorch's thread-local autocast state.
    scoped(on, |e| unsafe { ryolo_cpu_autocast_set(e) }, f)
}

/// Runs `f` with libtorch's CUDA autocast to float16 on this thread when `on` (as Ultralytics'
/// AMP on a GPU); else just `f()`.
pub fn cuda_autocast<T>(on: bool, f: impl FnOnce() -> T) -> T {
    // SAFETY: as above.
    scoped(on, |e| unsafe { ryolo_cuda_autocast_set(e) }, f)
}

/// `f` inside an autocast region switched by `set` (which returns the previous state), restored
/// when the scope ends, even on unwinding.
fn scoped<T>(on: bool, set: fn(bool) -> bool, f: impl FnOnce() -> T) -> T {
    if !on {
        return f();
    }
    struct Scope(bool, fn(bool) -> bool);
    impl Drop for Scope {
        fn drop(&mut self) {
            // SAFETY: plain calls into libtorch's thread-local autocast state.
            unsafe { ryolo_autocast_exit() };
            (self.1)(self.0);
        }
    }
    let prev = set(true);
    // SAFETY: as above.
    unsafe { ryolo_autocast_enter() };
    let _scope = Scope(prev, set);
    f()
}

/// `t` with channels-last strides (NHWC in memory, same shape and values) when it is 4-D; other
/// tensors are returned as they are.
pub fn channels_last(t: &Tensor) -> Tensor {
    if t.dim() == 4 {
        t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        t.shallow_clone()
    }
}

/// A 4-D input in the memory layout the network runs in: channels-last (`channels_last` unset or
/// True, our default on every device) or, with `nchw` (`channels_last=False`), NCHW-contiguous:
/// the layout Ultralytics trains in on a CPU, so float32 training follows its numbers step by step.
pub fn input_layout(t: &Tensor, nchw: bool) -> Tensor {
    if nchw {
        t.contiguous()
    } else {
        channels_last(t)
    }
}

/// Switches every 4-D parameter of `vs` to channels-last storage in place (values unchanged).
pub fn vars_channels_last(vs: &tch::nn::VarStore) {
    tch::no_grad(|| {
        for (_, mut v) in vs.variables() {
            if v.dim() == 4 {
                let cl = channels_last(&v);
                v.set_data(&cl);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn channels_last_keeps_values_and_changes_strides() {
        let t = Tensor::arange(2 * 3 * 4 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 4, 5]);
        let c = channels_last(&t);
        assert_eq!(c.size(), t.size());
        assert_eq!(c.stride(), vec![60, 1, 15, 3]);
        assert!(c.equal(&t));
    }

    #[test]
    fn autocast_scope_runs_convolutions_in_bf16_and_restores() {
        let x = Tensor::ones([1, 2, 4, 4], (Kind::Float, Device::Cpu));
        let w = Tensor::ones([3, 2, 1, 1], (Kind::Float, Device::Cpu));
        let y = cpu_autocast(true, || {
            x.conv2d::<Tensor>(&w, None, [1, 1], [0, 0], [1, 1], 1)
        });
        assert_eq!(y.kind(), Kind::BFloat16);
        let z = x.conv2d::<Tensor>(&w, None, [1, 1], [0, 0], [1, 1], 1);
        assert_eq!(z.kind(), Kind::Float);
        let n = cpu_autocast(false, || {
            x.conv2d::<Tensor>(&w, None, [1, 1], [0, 0], [1, 1], 1)
        });
        assert_eq!(n.kind(), Kind::Float);
    }
}
