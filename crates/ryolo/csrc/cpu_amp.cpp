// Autocast switches of libtorch behind a C ABI: CPU (bfloat16), which tch lacks, and CUDA (float16)
// through the per-device API (tch's autocast calls the deprecated one, which warns on every run).
#include <ATen/autocast_mode.h>

extern "C" {

// Turns CPU autocast on (bfloat16) or off on this thread; returns whether it was on before.
bool ryolo_cpu_autocast_set(bool enabled) {
  bool was = at::autocast::is_autocast_enabled(at::kCPU);
  if (enabled) {
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  }
  at::autocast::set_autocast_enabled(at::kCPU, enabled);
  return was;
}

// Turns CUDA autocast (float16, libtorch's default) on or off on this thread; returns whether it
// was on before.
bool ryolo_cuda_autocast_set(bool enabled) {
  bool was = at::autocast::is_autocast_enabled(at::kCUDA);
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
  return was;
}

// Enters an autocast region (nesting count for the weight-cast cache).
void ryolo_autocast_enter() { at::autocast::increment_nesting(); }

// Leaves an autocast region; the outermost exit drops the cached low-precision weight copies.
void ryolo_autocast_exit() {
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
}

}
