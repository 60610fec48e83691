//! The trainer's data-parallel glue (spec: issue 22): joining the ranks, agreeing on the run
//! folder, identical starting weights, the gradient average at each optimizer step, and the
//! epoch end where rank 0 alone validates and saves while the others wait.

use super::Trainer;
use crate::cfg::Args;
use crate::engine::dist::{launch::device_list, Rank, RankEnv};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Duration;

/// This process's rank when it was started as one (torchrun's `RANK` / `WORLD_SIZE`
/// environment), after checking the arguments a rank must have; None for a plain run.
pub(super) fn join(a: &Args) -> Result<Option<Rank>> {
    let listed = device_list(a.str("device").as_deref())?;
    let Some(env) = RankEnv::from_env()? else {
        if let Some(d) = listed {
            bail!("device={} starts one training process per device: run it through the `yolo` binary (`yolo train ... device={}`), or start each rank yourself with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set and one device each", d.join(","), d.join(","));
        }
        return Ok(None);
    };
    if let Some(d) = listed {
        bail!("rank {} of {}: device={} lists several devices; each rank trains on one (device=cpu or device=N)", env.rank, env.world, d.join(","));
    }
    let b = a.num("batch")?;
    crate::engine::dist::launch::check_batch(b, env.world)?;
    let batch = b as usize;
    let backend =
        crate::engine::dist::rank::backend_for(a.str("device").as_deref().unwrap_or("cpu"))?;
    let r = Rank::join(&env, backend)?;
    if env.rank == 0 {
        println!(
            "DDP: rank 0 of {} joined the {} group at {}:{} (batch {} per rank, collective timeout {}s)",
            env.world,
            backend.label(),
            env.addr,
            env.port,
            batch / env.world,
            env.timeout.as_secs()
        );
    }
    Ok(Some(r))
}

/// Rank 0's run folder, adopted by every rank (only rank 0 writes into it).
pub(super) fn agree_save_dir(
    dist: &mut Option<Rank>,
    a: &mut Args,
    mine: PathBuf,
) -> Result<PathBuf> {
    let Some(d) = dist else { return Ok(mine) };
    let s = d.agree_str(
        "save_dir",
        &mine.display().to_string(),
        Duration::from_secs(super::super::dist::rank::EPOCH_END_TIMEOUT_S),
    )?;
    a.0.insert("save_dir".into(), s.clone().into());
    Ok(PathBuf::from(s))
}

impl Trainer {
    /// True on rank 0 and in a one-process run: the process that validates, logs and writes.
    pub(super) fn is_main(&self) -> bool {
        self.dist.as_ref().is_none_or(|d| d.rank() == 0)
    }

    /// Rank 0's weights and buffers on every rank, then the gradients as views of one bucket.
    pub(super) fn ddp_start(&mut self) -> Result<()> {
        let Some(d) = self.dist.as_mut() else {
            return Ok(());
        };
        d.broadcast_vars(&self.model_vars)?;
        d.attach_grads(&self.model_vars)
    }

    /// The loss multiplier of a rank: Ultralytics scales the loss by the world size under DDP
    /// (whose all-reduce averages), so the step sees the sum of the ranks' gradients.
    pub(super) fn ddp_loss_scale(&self) -> f64 {
        self.dist.as_ref().map_or(1.0, |d| d.world() as f64)
    }

    /// Averages the gradients over the ranks before an optimizer step.
    pub(super) fn ddp_average_grads(&mut self) -> Result<()> {
        match self.dist.as_mut() {
            Some(d) => d.average_grads(),
            None => Ok(()),
        }
    }

    /// The epoch's mean training losses over the ranks.
    pub(super) fn ddp_mean_loss(&mut self, tloss: Vec<f64>) -> Result<Vec<f64>> {
        match self.dist.as_mut() {
            Some(d) => d.mean(&tloss),
            None => Ok(tloss),
        }
    }

    /// The end of an epoch: every rank takes rank 0's stop decision and BatchNorm buffers
    /// (trained per rank, as Ultralytics' DDP broadcasts rank 0's), waiting for rank 0's
    /// validation and checkpoint first.
    pub(super) fn ddp_epoch_end(&mut self, epoch: usize, stop: bool) -> Result<bool> {
        let Some(d) = self.dist.as_mut() else {
            return Ok(stop);
        };
        let stop = d.epoch_end(epoch, stop)?;
        let buffers: Vec<(String, tch::Tensor)> = self
            .model_vars
            .iter()
            .filter(|(_, t)| !t.requires_grad())
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        d.broadcast_vars(&buffers)?;
        Ok(stop)
    }

    /// A step with no images on this rank: zero loss items; at an optimizer step the rank's
    /// (accumulated) gradients still join the average, and the step is taken as on the others.
    pub(super) fn step_without_batch(&mut self, ni: i64, acc: i64) -> Result<Vec<f64>> {
        self.optimizer_step(ni, acc)?;
        Ok(vec![0.0; self.task.loss_names().len()])
    }

    /// This rank's slice of every global batch: (rank, world).
    pub(super) fn shard(&self) -> (usize, usize) {
        self.dist.as_ref().map_or((0, 1), |d| (d.rank(), d.world()))
    }

    /// Test hook: `RYOLO_DDP_DUMP` = a folder: each rank writes its final trained weights there
    /// as `rank{N}.safetensors` (to compare the ranks' copies).
    pub(super) fn ddp_dump(&self) -> Result<()> {
        let Some(dir) = std::env::var_os("RYOLO_DDP_DUMP") else {
            return Ok(());
        };
        let rank = self.shard().0;
        let dir = PathBuf::from(dir);
        crate::util::fsio::create_dir_all(&dir)?;
        let named: Vec<(String, tch::Tensor)> = self
            .model_vars
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    t.detach().to_device(tch::Device::Cpu).contiguous(),
                )
            })
            .collect();
        tch::Tensor::write_safetensors(&named, dir.join(format!("rank{rank}.safetensors")))?;
        Ok(())
    }
}
