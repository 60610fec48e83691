// ryolo's CUDA-only helpers, built as their own shared library (libryolo_nccl.so) because they
// live in libtorch_cuda / c10_cuda, which CPU commands never load: `util::cuda` loads
// libtorch_cuda first, then the engine opens this library. The NCCL backend maker goes to
// `ryolo_dist_new` (dist_shim.cpp), which only sees the generic c10d::Backend it returns; the
// caching allocator's reserved bytes feed the training console's GPU_mem column.
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include "cabi.h"

#include <chrono>
#include <cstdint>

extern "C" {

// Bytes the CUDA caching allocator holds on `device` (torch.cuda.memory_reserved), or -1.
int64_t ryolo_cuda_memory_reserved(int device) {
  try {
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    return stats.reserved_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)]
        .current;
  } catch (...) {
    return -1;
  }
}

// The NCCL version this library was compiled against (major*10000 + minor*100 + patch).
int ryolo_nccl_version() { return NCCL_MAJOR * 10000 + NCCL_MINOR * 100 + NCCL_PATCH; }

// Makes this process's ProcessGroupNCCL over `store` (a c10::intrusive_ptr<c10d::Store>*), bound
// to GPU `device` (made the current device) and connected eagerly, with `timeout_ms` on every
// collective. Returns a heap c10::intrusive_ptr<c10d::Backend>* (the caller owns it), or null
// with *err set (malloc'd).
void* ryolo_nccl_backend(void* store, int rank, int world, int device, int64_t timeout_ms,
                         char** err) {
  void* out = nullptr;
  ryolo::guarded(err, [&] {
    auto& st = *static_cast<c10::intrusive_ptr<c10d::Store>*>(store);
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = std::chrono::milliseconds(timeout_ms);
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(st, rank, world, opts);
    const at::Device dev(at::kCUDA, static_cast<c10::DeviceIndex>(device));
    pg->setBoundDeviceId(dev);
    pg->eagerConnectSingleDevice(dev);
    out = new c10::intrusive_ptr<c10d::Backend>(
        c10::static_intrusive_pointer_cast<c10d::Backend>(pg));
  });
  return out;
}

}  // extern "C"
