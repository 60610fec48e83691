//! One training rank's view of a data-parallel run: who it is (the `RANK` / `WORLD_SIZE` /
//! `MASTER_ADDR` / `MASTER_PORT` environment of torchrun), its process group and gradient
//! bucket, and the few agreements the trainer needs (initial weights, epoch end, stop).

use super::{Backend, GradBucket, ProcessGroup};
use anyhow::{anyhow, bail, Context, Result};
use std::time::Duration;
use tch::{Kind, Tensor};

/// The default timeout of a collective (`RYOLO_DDP_TIMEOUT` seconds overrides it): a rank that
/// hangs inside a training step ends the run after this long.
pub const DEFAULT_TIMEOUT_S: u64 = 600;
/// How long the other ranks wait for rank 0's validation and checkpoint at an epoch's end
/// (Ultralytics' DDP timeout, 3 hours); a dead rank 0 ends the wait at once.
pub const EPOCH_END_TIMEOUT_S: u64 = 10800;

/// Where this process sits in a multi-process run, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankEnv {
    /// Global rank (`RANK`).
    pub rank: usize,
    /// Number of ranks (`WORLD_SIZE`).
    pub world: usize,
    /// Rank on this machine (`LOCAL_RANK`, else `RANK`).
    pub local_rank: usize,
    /// Store host (`MASTER_ADDR`, default 127.0.0.1).
    pub addr: String,
    /// Store port (`MASTER_PORT`, default 29500).
    pub port: u16,
    /// A listening socket the launcher bound for rank 0's store (`RYOLO_DDP_LISTEN_FD`).
    pub listen_fd: Option<i32>,
    /// Collective timeout.
    pub timeout: Duration,
}

fn var<T: std::str::FromStr>(name: &str) -> Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow!("environment variable {name}={v:?} is not a valid number")),
        _ => Ok(None),
    }
}

impl RankEnv {
    /// This process's rank when `RANK` and `WORLD_SIZE` (> 1) are set; None for a plain run.
    pub fn from_env() -> Result<Option<Self>> {
        let (Some(rank), Some(world)) = (var::<usize>("RANK")?, var::<usize>("WORLD_SIZE")?) else {
            return Ok(None);
        };
        if world <= 1 {
            return Ok(None);
        }
        if rank >= world {
            bail!("RANK={rank} is not below WORLD_SIZE={world}");
        }
        let timeout = var::<u64>("RYOLO_DDP_TIMEOUT")?.unwrap_or(DEFAULT_TIMEOUT_S);
        if timeout == 0 {
            bail!("RYOLO_DDP_TIMEOUT=0: the collective timeout must be at least one second");
        }
        Ok(Some(Self {
            rank,
            world,
            local_rank: var("LOCAL_RANK")?.unwrap_or(rank),
            addr: std::env::var("MASTER_ADDR")
                .ok()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: var("MASTER_PORT")?.unwrap_or(29500),
            listen_fd: var("RYOLO_DDP_LISTEN_FD")?,
            timeout: Duration::from_secs(timeout),
        }))
    }
}

/// A training rank: its process group and, once attached, its gradient bucket.
pub struct Rank {
    /// The process group.
    pub pg: ProcessGroup,
    bucket: Option<GradBucket>,
}

impl Rank {
    /// Joins the run described by `env` over `backend`.
    pub fn join(env: &RankEnv, backend: Backend) -> Result<Self> {
        let pg = ProcessGroup::with_backend(
            env.rank,
            env.world,
            &env.addr,
            env.port,
            env.listen_fd,
            env.timeout,
            backend,
        )?;
        Ok(Self { pg, bucket: None })
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.pg.rank()
    }

    /// The number of ranks.
    pub fn world(&self) -> usize {
        self.pg.world()
    }

    /// Rank 0 publishes `value` under `key`; every other rank returns rank 0's value.
    pub fn agree_str(&mut self, key: &str, value: &str, wait: Duration) -> Result<String> {
        if self.rank() == 0 {
            self.pg.store_set(key, value.as_bytes())?;
            return Ok(value.to_string());
        }
        let v = self.pg.store_get(key, wait).with_context(|| {
            format!(
                "rank {} waited {}s for rank 0's {key:?}",
                self.rank(),
                wait.as_secs()
            )
        })?;
        Ok(String::from_utf8_lossy(&v).into_owned())
    }

    /// Copies rank 0's values of `vars` (parameters and buffers) to every rank, as one flat
    /// broadcast per dtype.
    pub fn broadcast_vars(&mut self, vars: &[(String, Tensor)]) -> Result<()> {
        let float: Vec<&Tensor> = vars
            .iter()
            .map(|(_, t)| t)
            .filter(|t| t.kind() == Kind::Float)
            .collect();
        let other: Vec<&Tensor> = vars
            .iter()
            .map(|(_, t)| t)
            .filter(|t| t.kind() != Kind::Float)
            .collect();
        for group in [float, other] {
            if group.is_empty() {
                continue;
            }
            // Non-float state (BatchNorm's batch counters) travels as f64, exact for counts.
            let kind = if group[0].kind() == Kind::Float {
                Kind::Float
            } else {
                Kind::Double
            };
            let mut flat = tch::no_grad(|| {
                Tensor::cat(
                    &group
                        .iter()
                        .map(|t| t.detach().to_kind(kind).reshape([-1]))
                        .collect::<Vec<_>>(),
                    0,
                )
                .to_device(tch::Device::Cpu)
            });
            self.pg.broadcast(&mut flat, 0)?;
            let mut off = 0i64;
            tch::no_grad(|| {
                for t in &group {
                    let n = t.numel() as i64;
                    let src = flat.narrow(0, off, n).view(t.size().as_slice());
                    t.shallow_clone().copy_(&src.to_kind(t.kind()));
                    off += n;
                }
            });
        }
        Ok(())
    }

    /// Makes the gradients of `vars` views into one flat bucket (after any resume restored them).
    pub fn attach_grads(&mut self, vars: &[(String, Tensor)]) -> Result<()> {
        self.bucket = Some(GradBucket::attach(vars)?);
        Ok(())
    }

    /// Averages the gradients over the ranks (one all-reduce of the bucket).
    pub fn average_grads(&mut self) -> Result<()> {
        let b = self
            .bucket
            .as_mut()
            .ok_or_else(|| anyhow!("gradient bucket used before it was attached"))?;
        b.all_reduce_mean(&mut self.pg)
    }

    /// The mean over the ranks of `values`.
    pub fn mean(&mut self, values: &[f64]) -> Result<Vec<f64>> {
        let mut t = Tensor::from_slice(values);
        self.pg.all_reduce_sum(&mut t)?;
        let v: Vec<f64> = Vec::<f64>::try_from(t)?;
        Ok(v.iter().map(|x| x / self.world() as f64).collect())
    }

    /// The end of an epoch: rank 0 (which validated and saved) publishes whether to stop; the
    /// others wait for it (a barrier bounded by [`EPOCH_END_TIMEOUT_S`]).
    pub fn epoch_end(&mut self, epoch: usize, stop: bool) -> Result<bool> {
        let v = self.agree_str(
            &format!("epoch_end/{epoch}"),
            if stop { "stop" } else { "go" },
            Duration::from_secs(EPOCH_END_TIMEOUT_S),
        )?;
        Ok(v == "stop")
    }
}

/// The backend of a rank training on `device` (`cpu`, `0`, `cuda:1`): Gloo on the CPU; NCCL on
/// a GPU when it can be loaded, else Gloo with a warning (as Ultralytics picks NCCL when
/// available). `RYOLO_DDP_BACKEND=gloo|nccl` chooses (nccl then fails when unavailable).
pub fn backend_for(device: &str) -> Result<Backend> {
    let d = device.trim().to_ascii_lowercase();
    let gpu = if d == "cpu" || d.is_empty() {
        None
    } else {
        Some(
            d.trim_start_matches("cuda:")
                .parse::<usize>()
                .map_err(|_| anyhow!("device={device}: not cpu nor a GPU index"))?,
        )
    };
    let forced = std::env::var("RYOLO_DDP_BACKEND")
        .ok()
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty());
    match (forced.as_deref(), gpu) {
        (Some("gloo"), _) | (None, None) => Ok(Backend::Gloo),
        (Some("nccl"), None) => {
            bail!("RYOLO_DDP_BACKEND=nccl needs GPU ranks (device=0,1), not device={device}")
        }
        (Some("nccl"), Some(g)) => Ok(Backend::Nccl { device: g }),
        (None, Some(g)) => match super::nccl::factory() {
            Ok(_) => Ok(Backend::Nccl { device: g }),
            Err(why) => {
                eprintln!("WARNING DDP: NCCL is not available ({why}); the GPU ranks use Gloo, gradients staged through host memory");
                Ok(Backend::Gloo)
            }
        },
        (Some(other), _) => {
            bail!("RYOLO_DDP_BACKEND={other}: use gloo or nccl")
        }
    }
}

/// The contiguous slice `[start, end)` of a global batch of `n` items that `rank` of `world`
/// trains on: rank r takes items r*n/W .. (r+1)*n/W, so the ranks together cover the batch once,
/// in order, and a one-process run sees the same images per step.
pub fn shard(n: usize, rank: usize, world: usize) -> (usize, usize) {
    let w = world.max(1);
    (rank * n / w, (rank + 1) * n / w)
}
