// ryolo's C ABI over libtorch's c10d: a TCPStore rendezvous and a process group (Gloo, or a
// backend such as NCCL made by a factory from another library), with all-reduce (sum) of one
// tensor, broadcast, barrier and store keys. Every entry point catches
// C++ exceptions and returns them as a malloc'd message (freed with ryolo_dist_free_str), so no
// exception crosses into Rust.
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "cabi.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

struct Group {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::Backend> pg;
  std::chrono::milliseconds timeout;
  ~Group() {
    // NCCL wants an explicit shutdown before destruction (Gloo's is a no-op); never throw here.
    try {
      if (pg) {
        pg->shutdown();
      }
    } catch (...) {
    }
  }
};

// Makes a backend over the store (a c10::intrusive_ptr<c10d::Store>*): a heap
// c10::intrusive_ptr<c10d::Backend>*, or null with *err set. See dist_nccl.cpp.
using BackendFactory = void* (*)(void* store, int rank, int world, int device,
                                 int64_t timeout_ms, char** err);

using ryolo::dup;
using ryolo::guarded;

void wait(const c10::intrusive_ptr<c10d::Work>& work, std::chrono::milliseconds t) {
  if (!work->wait(t)) {
    throw std::runtime_error("collective did not complete");
  }
}

}  // namespace

extern "C" {

void ryolo_dist_free_str(char* s) { std::free(s); }

// Joins (rank 0: hosts) the TCPStore at host:port and builds a group of `world` ranks over it:
// Gloo when `factory` is null, else the factory's backend on GPU `device`. `timeout_ms` bounds
// the rendezvous and every later collective. Null on failure (*err set).
void* ryolo_dist_new(const char* host, uint16_t port, int listen_fd, int rank, int world,
                     int64_t timeout_ms, BackendFactory factory, int device, char** err) {
  Group* out = nullptr;
  guarded(err, [&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = port;
    so.isServer = rank == 0;
    so.numWorkers = static_cast<std::size_t>(world);
    so.waitWorkers = true;
    so.timeout = timeout;
    if (rank == 0 && listen_fd >= 0) {
      so.masterListenFd = listen_fd;
    }
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), so);
    if (factory != nullptr) {
      auto base = c10::static_intrusive_pointer_cast<c10d::Store>(store);
      char* ferr = nullptr;
      void* made = factory(&base, rank, world, device, timeout_ms, &ferr);
      if (made == nullptr) {
        std::string msg = ferr != nullptr ? ferr : "the backend factory failed without a message";
        std::free(ferr);
        throw std::runtime_error(msg);
      }
      auto* pg = static_cast<c10::intrusive_ptr<c10d::Backend>*>(made);
      out = new Group{store, *pg, timeout};
      delete pg;
      return;
    }
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // GLOO_SOCKET_IFNAME names the interface (as in PyTorch); else loopback for a one-machine
    // run, otherwise the address this host's name resolves to.
    const char* iface = std::getenv("GLOO_SOCKET_IFNAME");
    const std::string h(host);
    if (iface != nullptr && *iface != '\0') {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    } else if (h == "127.0.0.1" || h == "localhost") {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::static_intrusive_pointer_cast<c10d::Store>(store), rank, world, opts);
    out = new Group{store, c10::static_intrusive_pointer_cast<c10d::Backend>(pg), timeout};
  });
  return out;
}

void ryolo_dist_free(void* g) { delete static_cast<Group*>(g); }

// Makes `grad` (a view of a flat bucket) the gradient of `param`, so that backward accumulates
// into it in place.
int ryolo_dist_set_grad(at::Tensor* param, at::Tensor* grad, char** err) {
  return guarded(err, [&] { param->mutable_grad() = *grad; }) ? 0 : -1;
}

// In-place sum of `t` (contiguous; on the CPU for Gloo, on the group's GPU for NCCL) over all
// ranks.
int ryolo_dist_all_reduce_sum(void* g, at::Tensor* t, char** err) {
  auto* grp = static_cast<Group*>(g);
  return guarded(err, [&] {
           std::vector<at::Tensor> v{*t};
           c10d::AllreduceOptions o;
           o.reduceOp = c10d::ReduceOp::SUM;
           o.timeout = grp->timeout;
           wait(grp->pg->allreduce(v, o), grp->timeout);
         })
             ? 0
             : -1;
}

// In-place broadcast of `t` from `root` to all ranks.
int ryolo_dist_broadcast(void* g, at::Tensor* t, int root, char** err) {
  auto* grp = static_cast<Group*>(g);
  return guarded(err, [&] {
           std::vector<at::Tensor> v{*t};
           c10d::BroadcastOptions o;
           o.rootRank = root;
           o.rootTensor = 0;
           o.timeout = grp->timeout;
           wait(grp->pg->broadcast(v, o), grp->timeout);
         })
             ? 0
             : -1;
}

// Waits until every rank has reached the barrier (or the timeout).
int ryolo_dist_barrier(void* g, char** err) {
  auto* grp = static_cast<Group*>(g);
  return guarded(err, [&] {
           c10d::BarrierOptions o;
           o.timeout = grp->timeout;
           wait(grp->pg->barrier(o), grp->timeout);
         })
             ? 0
             : -1;
}

// Sets a store key.
int ryolo_dist_store_set(void* g, const char* key, const uint8_t* val, size_t len, char** err) {
  auto* grp = static_cast<Group*>(g);
  return guarded(err, [&] {
           grp->store->set(std::string(key), std::vector<uint8_t>(val, val + len));
         })
             ? 0
             : -1;
}

// Reads a store key, waiting at most `timeout_ms` for it to appear; *out (malloc'd) and *len.
int ryolo_dist_store_get(void* g, const char* key, int64_t timeout_ms, uint8_t** out, size_t* len,
                         char** err) {
  auto* grp = static_cast<Group*>(g);
  return guarded(err, [&] {
           std::string k(key);
           grp->store->wait({k}, std::chrono::milliseconds(timeout_ms));
           auto v = grp->store->get(k);
           *out = static_cast<uint8_t*>(std::malloc(v.empty() ? 1 : v.size()));
           if (*out == nullptr) {
             throw std::bad_alloc();
           }
           if (!v.empty()) {
             std::memcpy(*out, v.data(), v.size());
           }
           *len = v.size();
         })
             ? 0
             : -1;
}

}  // extern "C"
