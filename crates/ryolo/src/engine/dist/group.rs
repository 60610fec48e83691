//! A safe process group: rendezvous through a c10d TCPStore, then Gloo collectives on CPU tensors
//! or NCCL collectives on the rank's GPU (tensors elsewhere are staged through a copy), each
//! bounded by the group's timeout.

use super::ffi;
use anyhow::{anyhow, bail, Result};
use std::ffi::CString;
use std::os::raw::{c_char, c_void};
use std::time::Duration;
use tch::{Device, Tensor};

/// The communication backend of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Gloo over TCP on CPU tensors (CUDA tensors are staged through host memory).
    Gloo,
    /// NCCL on CUDA device `device` (this rank's GPU).
    Nccl {
        /// The GPU index.
        device: usize,
    },
}

impl Backend {
    /// The name Ultralytics and PyTorch print ("gloo", "nccl").
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Gloo => "gloo",
            Backend::Nccl { .. } => "nccl",
        }
    }

    /// The name in messages ("Gloo", "NCCL").
    pub fn label(&self) -> &'static str {
        match self {
            Backend::Gloo => "Gloo",
            Backend::Nccl { .. } => "NCCL",
        }
    }

    /// The device collectives run on without staging.
    fn device(&self) -> Device {
        match self {
            Backend::Gloo => Device::Cpu,
            Backend::Nccl { device } => Device::Cuda(*device),
        }
    }
}

/// One rank's membership of a process group.
pub struct ProcessGroup {
    raw: *mut c_void,
    backend: Backend,
    rank: usize,
    world: usize,
    timeout: Duration,
    /// Collectives issued so far (named in errors, and in the store's progress keys).
    seq: u64,
}

// The c10d objects are thread-safe; the handle is only used through `&mut self` anyway.
unsafe impl Send for ProcessGroup {}

pub(super) use crate::util::cabi::call as check;

impl ProcessGroup {
    /// Joins the Gloo group of `world` ranks as `rank`: rank 0 hosts the store at `addr:port` (or
    /// takes over the already bound socket `listen_fd`), the others connect to it. Every
    /// rendezvous and collective fails after `timeout`.
    pub fn new(
        rank: usize,
        world: usize,
        addr: &str,
        port: u16,
        listen_fd: Option<i32>,
        timeout: Duration,
    ) -> Result<Self> {
        Self::with_backend(rank, world, addr, port, listen_fd, timeout, Backend::Gloo)
    }

    /// As [`Self::new`], on `backend` (NCCL loads the CUDA libraries and `libryolo_nccl.so`, and
    /// fails with the reason when they cannot be used).
    pub fn with_backend(
        rank: usize,
        world: usize,
        addr: &str,
        port: u16,
        listen_fd: Option<i32>,
        timeout: Duration,
        backend: Backend,
    ) -> Result<Self> {
        if world == 0 || rank >= world {
            bail!("rank {rank} is outside a world of {world} ranks");
        }
        let (factory, device) = match backend {
            Backend::Gloo => (None, -1),
            Backend::Nccl { device } => {
                let (f, _) = super::nccl::factory()
                    .map_err(|e| anyhow!("rank {rank} of {world}: NCCL is not available: {e}"))?;
                let n = crate::util::cuda::visible_devices();
                if device >= n {
                    bail!("rank {rank} of {world}: NCCL is not available: GPU {device} is not visible ({n} CUDA devices)");
                }
                (Some(f), device as i32)
            }
        };
        let host = CString::new(addr).map_err(|_| anyhow!("bad store address {addr:?}"))?;
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid C string, out-pointer for the message.
        let raw = unsafe {
            ffi::ryolo_dist_new(
                host.as_ptr(),
                port,
                listen_fd.unwrap_or(-1),
                rank as i32,
                world as i32,
                timeout.as_millis() as i64,
                factory,
                device,
                &mut err,
            )
        };
        if raw.is_null() {
            // SAFETY: the shim set the message.
            let msg = unsafe { crate::util::cabi::take_str(err) };
            bail!(
                "rank {rank} of {world}: rendezvous at {addr}:{port} ({}) failed within {}s: {msg}",
                backend.label(),
                timeout.as_secs()
            );
        }
        let g = Self {
            raw,
            backend,
            rank,
            world,
            timeout,
            seq: 0,
        };
        // Every rank's progress key exists from the start (collective 0 = none reached yet).
        g.mark_progress();
        Ok(g)
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn world(&self) -> usize {
        self.world
    }

    /// The timeout of every collective.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs a collective on `t` (staged through a contiguous copy on the backend's device when it
    /// is not one),
    /// naming the operation, the ranks that never arrived and this rank on failure.
    fn collective(
        &mut self,
        what: &str,
        t: &mut Tensor,
        op: impl FnOnce(*mut c_void, *mut c_void, *mut *mut c_char) -> i32,
    ) -> Result<()> {
        self.seq += 1;
        self.mark_progress();
        let home = self.backend.device();
        let direct = t.device() == home && t.is_contiguous();
        let staged = if direct {
            None
        } else {
            Some(t.to_device(home).contiguous())
        };
        let target = staged.as_ref().unwrap_or(&*t);
        let raw = self.raw;
        let res = check(|e| op(raw, ffi::tensor_ptr(target), e));
        if let Err(msg) = res {
            return Err(self.failure(what, &msg));
        }
        self.mark("done");
        if let Some(s) = staged {
            t.copy_(&s);
        }
        Ok(())
    }

    /// In-place sum of `t` over all ranks (divide by [`Self::world`] for the mean).
    pub fn all_reduce_sum(&mut self, t: &mut Tensor) -> Result<()> {
        // SAFETY: raw is a live group, tensor pointer valid for the call.
        self.collective("all-reduce", t, |g, p, e| unsafe {
            ffi::ryolo_dist_all_reduce_sum(g, p, e)
        })
    }

    /// In-place broadcast of `t` from rank `root` to every rank.
    pub fn broadcast(&mut self, t: &mut Tensor, root: usize) -> Result<()> {
        // SAFETY: as above.
        self.collective("broadcast", t, |g, p, e| unsafe {
            ffi::ryolo_dist_broadcast(g, p, root as i32, e)
        })
    }

    /// Waits for every rank.
    pub fn barrier(&mut self) -> Result<()> {
        self.seq += 1;
        self.mark_progress();
        let raw = self.raw;
        // SAFETY: raw is a live group.
        check(|e| unsafe { ffi::ryolo_dist_barrier(raw, e) })
            .map_err(|msg| self.failure("barrier", &msg))?;
        self.mark("done");
        Ok(())
    }

    /// Sets `key` in the group's store.
    pub fn store_set(&self, key: &str, val: &[u8]) -> Result<()> {
        let k = CString::new(key).map_err(|_| anyhow!("bad store key {key:?}"))?;
        let raw = self.raw;
        // SAFETY: live group, valid key and slice.
        check(|e| unsafe { ffi::ryolo_dist_store_set(raw, k.as_ptr(), val.as_ptr(), val.len(), e) })
            .map_err(|m| anyhow!("rank {}: store set {key:?} failed: {m}", self.rank))
    }

    /// Reads `key` from the group's store, waiting at most `wait` for it to be set.
    pub fn store_get(&self, key: &str, wait: Duration) -> Result<Vec<u8>> {
        let k = CString::new(key).map_err(|_| anyhow!("bad store key {key:?}"))?;
        let raw = self.raw;
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: live group, valid key, out-pointers.
        check(|e| unsafe {
            ffi::ryolo_dist_store_get(
                raw,
                k.as_ptr(),
                wait.as_millis() as i64,
                &mut out,
                &mut len,
                e,
            )
        })
        .map_err(|m| anyhow!("rank {}: store get {key:?} failed: {m}", self.rank))?;
        // SAFETY: the shim malloc'd `len` bytes (at least one) at `out`.
        let v = unsafe { std::slice::from_raw_parts(out, len).to_vec() };
        // SAFETY: allocated with malloc by the shim.
        unsafe { libc::free(out as *mut c_void) };
        Ok(v)
    }

    /// Records in the store that this rank has reached collective `seq` (best effort: it is
    /// only read to name a missing rank after a failure).
    fn mark_progress(&self) {
        self.mark("progress");
    }

    /// Sets `<what>/<rank>` = `seq` in the store (`progress`: reached, `done`: completed), best
    /// effort.
    fn mark(&self, what: &str) {
        let _ = self.store_set(
            &format!("{what}/{}", self.rank),
            self.seq.to_string().as_bytes(),
        );
    }

    /// `<what>/<rank>` of rank `r` from the store (0 when never set), None when the store does not
    /// answer.
    fn seq_of(&self, what: &str, r: usize) -> Option<u64> {
        let wait = Duration::from_millis(if what == "progress" { 500 } else { 50 });
        match self.store_get(&format!("{what}/{r}"), wait) {
            Ok(v) => Some(String::from_utf8_lossy(&v).parse().unwrap_or(0)),
            Err(_) if what == "done" => Some(0),
            Err(_) => None,
        }
    }

    /// The error of a failed collective: this rank, the operation, and which ranks had not
    /// reached it or stalled inside it (read from the store, when it still answers).
    fn failure(&self, what: &str, msg: &str) -> anyhow::Error {
        let (mut behind, mut inside) = (Vec::new(), Vec::new());
        let mut unknown = false;
        for r in (0..self.world).filter(|&r| r != self.rank) {
            match self.seq_of("progress", r) {
                Some(s) if s < self.seq => behind.push(format!("rank {r} (at collective {s})")),
                // Reached it but never completed it: stopped or stuck inside the collective.
                Some(_) if self.seq_of("done", r).is_some_and(|d| d < self.seq) => {
                    inside.push(format!("rank {r}"))
                }
                Some(_) => {}
                None => unknown = true,
            }
        }
        let who = if !behind.is_empty() || !inside.is_empty() {
            let mut w = String::new();
            if !behind.is_empty() {
                w.push_str(&format!("; not arrived: {}", behind.join(", ")));
            }
            if !inside.is_empty() {
                w.push_str(&format!("; stalled inside it: {}", inside.join(", ")));
            }
            w
        } else if unknown {
            "; the store (hosted by rank 0) no longer answers: rank 0 has probably exited".into()
        } else {
            String::new()
        };
        anyhow!(
            "rank {} of {}: {what} #{} failed (timeout {}s){who}: {msg}",
            self.rank,
            self.world,
            self.seq,
            self.timeout.as_secs(),
        )
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: raw came from ryolo_dist_new and is freed once.
        unsafe { ffi::ryolo_dist_free(self.raw) }
    }
}
