// Multi-tensor ("foreach") updates of libtorch behind a C ABI, for CUDA training where one kernel
// launch per parameter per operation dominates the step: PyTorch's foreach AdamW/Adam and SGD
// (the sequences of torch.optim's `_multi_tensor_adam` / `_multi_tensor_sgd`, which Ultralytics
// runs on CUDA), GradScaler's fused unscale, clip_grad_norm_'s foreach path, EMA lerp and zeroing.
// Tensors come as arrays of `at::Tensor*` (tch's handles). Every entry point returns 0, or -1 with
// a malloc'd message in *err.
#include <ATen/ATen.h>

#include "cabi.h"

#include <cmath>
#include <utility>
#include <vector>

namespace {

// ryolo::guarded as the 0 / -1 these entry points return.
template <typename F>
int guarded(char** err, F&& f) {
  return ryolo::guarded(err, std::forward<F>(f)) ? 0 : -1;
}

std::vector<at::Tensor> list(at::Tensor** p, size_t n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    v.push_back(*p[i]);
  }
  return v;
}

}  // namespace

extern "C" {

// a[i] += w * (b[i] - a[i]) for every i (the EMA update as Ultralytics 8.4 writes it).
int ryolo_foreach_lerp(at::Tensor** a, at::Tensor** b, size_t n, double w, char** err) {
  return guarded(err, [&] { at::_foreach_lerp_(list(a, n), list(b, n), w); });
}

// a[i].zero_() for every i.
int ryolo_foreach_zero(at::Tensor** a, size_t n, char** err) {
  return guarded(err, [&] { at::_foreach_zero_(list(a, n)); });
}

// One Adam step (AdamW when `decoupled`) at step count `step` (>= 1), as `_multi_tensor_adam`.
int ryolo_foreach_adam(at::Tensor** params, at::Tensor** grads, at::Tensor** exp_avg,
                       at::Tensor** exp_avg_sq, size_t n, double lr, double beta1, double beta2,
                       double eps, double weight_decay, bool decoupled, int64_t step, char** err) {
  return guarded(err, [&] {
    auto p = list(params, n);
    auto g = list(grads, n);
    auto m = list(exp_avg, n);
    auto v = list(exp_avg_sq, n);
    if (weight_decay != 0.0) {
      if (decoupled) {
        at::_foreach_mul_(p, 1.0 - lr * weight_decay);
      } else {
        g = at::_foreach_add(g, p, weight_decay);
      }
    }
    at::_foreach_lerp_(m, g, 1.0 - beta1);
    at::_foreach_mul_(v, beta2);
    at::_foreach_addcmul_(v, g, g, 1.0 - beta2);
    const double t = static_cast<double>(step);
    const double bc1 = 1.0 - std::pow(beta1, t);
    const double bc2 = 1.0 - std::pow(beta2, t);
    const double step_size = (lr / bc1) * -1.0;
    const double bc2_sqrt = std::pow(bc2, 0.5);
    auto denom = at::_foreach_sqrt(v);
    at::_foreach_div_(denom, bc2_sqrt);
    at::_foreach_add_(denom, eps);
    at::_foreach_addcdiv_(p, m, denom, step_size);
  });
}

// One SGD step with momentum (dampening 0), as `_multi_tensor_sgd`. New buffers come as zeros:
// 0 * momentum + g is exactly the copy of g that PyTorch starts them with.
int ryolo_foreach_sgd(at::Tensor** params, at::Tensor** grads, at::Tensor** bufs, size_t n,
                      double lr, double momentum, double weight_decay, bool nesterov, char** err) {
  return guarded(err, [&] {
    auto p = list(params, n);
    auto g = list(grads, n);
    auto b = list(bufs, n);
    if (weight_decay != 0.0) {
      g = at::_foreach_add(g, p, weight_decay);
    }
    if (momentum != 0.0) {
      at::_foreach_mul_(b, momentum);
      at::_foreach_add_(b, g, 1.0);
      if (nesterov) {
        if (weight_decay == 0.0) {
          g = at::_foreach_add(g, b, momentum);  // never change the gradients themselves
        } else {
          at::_foreach_add_(g, b, momentum);
        }
      } else {
        g = b;
      }
    }
    at::_foreach_add_(p, g, -lr);
  });
}

// GradScaler's unscale: every gradient times `inv_scale` ([1] float), `found_inf` ([1] float)
// set to 1 when any value is not finite.
int ryolo_foreach_unscale(at::Tensor** grads, size_t n, at::Tensor* found_inf,
                          at::Tensor* inv_scale, char** err) {
  return guarded(err, [&] {
    auto g = list(grads, n);
    at::_amp_foreach_non_finite_check_and_unscale_(g, *found_inf, *inv_scale);
  });
}

// clip_grad_norm_(max_norm) over all gradients (global L2 norm), foreach path, no host sync.
int ryolo_foreach_clip(at::Tensor** grads, size_t n, double max_norm, char** err) {
  return guarded(err, [&] {
    if (n == 0) {
      return;
    }
    auto g = list(grads, n);
    auto norms = at::_foreach_norm(g, 2);
    auto total = at::linalg_vector_norm(at::stack(norms), 2);
    auto coef = at::clamp_max(max_norm / (total + 1e-6), 1.0);
    at::_foreach_mul_(g, coef);
  });
}

}  // extern "C"
