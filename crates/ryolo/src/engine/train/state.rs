//! The resumable training state (stored as JSON in `last`) and the checkpoint writers.

use crate::nn::DetectionModel;
use crate::weights::{self, CheckpointMeta};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::Tensor;

/// Counters a resumed run continues from (the `train_state` of `last`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// Last completed epoch (0-based).
    pub epoch: usize,
    /// Best fitness so far.
    pub best_fitness: Option<f64>,
    /// 1-based epoch of the best fitness.
    pub best_epoch: usize,
    /// Global batch index of the last optimizer step.
    pub last_opt_step: i64,
    /// EMA updates.
    pub ema_updates: i64,
    /// Optimizer steps.
    pub opt_steps: i64,
    /// Seconds trained so far.
    pub time: f64,
}

impl TrainState {
    /// Reads the state of a resumable checkpoint (missing counters as a fresh run has them).
    pub fn from_json(v: &serde_json::Value) -> Self {
        Self {
            epoch: v["epoch"].as_u64().unwrap_or(0) as usize,
            best_fitness: v["best_fitness"].as_f64(),
            best_epoch: v["best_epoch"].as_u64().unwrap_or(0) as usize,
            last_opt_step: v["last_opt_step"].as_i64().unwrap_or(-1),
            ema_updates: v["ema_updates"].as_i64().unwrap_or(0),
            opt_steps: v["opt_steps"].as_i64().unwrap_or(0),
            time: v["time"].as_f64().unwrap_or(0.0),
        }
    }
}

/// Variables of a model, sorted by state-dict name.
pub fn vars_sorted(m: &DetectionModel) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = m.vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The tensors with a given prefix, the prefix removed.
pub fn strip_prefix(tensors: &HashMap<String, Tensor>, prefix: &str) -> HashMap<String, Tensor> {
    tensors
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(prefix)
                .map(|n| (n.to_string(), v.shallow_clone()))
        })
        .collect()
}

/// Everything `last` holds to resume exactly: EMA weights, raw weights (`train.model.`), optimizer
/// buffers (`train.optim.`) and pending gradients (`train.grad.`).
pub fn resume_tensors(
    ema: &DetectionModel,
    model: &DetectionModel,
    optim_state: &HashMap<String, Tensor>,
    model_vars: &[(String, Tensor)],
) -> Vec<(String, Tensor)> {
    let mut tensors = vars_sorted(ema);
    tensors.extend(
        vars_sorted(model)
            .into_iter()
            .map(|(k, v)| (format!("train.model.{k}"), v)),
    );
    tensors.extend(
        optim_state
            .iter()
            .map(|(k, v)| (format!("train.optim.{k}"), v.shallow_clone())),
    );
    tensors.extend(
        model_vars
            .iter()
            .filter(|(_, p)| p.grad().defined())
            .map(|(k, p)| (format!("train.grad.{k}"), p.grad())),
    );
    tensors
}

/// Drops the training state from a finished `last` (as Ultralytics' `strip_optimizer`).
pub fn strip_training_state(last: &Path) -> Result<bool> {
    let Ok((meta, tensors)) = weights::read_checkpoint(last) else {
        return Ok(false);
    };
    let kept: Vec<(String, Tensor)> = tensors
        .into_iter()
        .filter(|(k, _)| !k.starts_with("train."))
        .collect();
    weights::save_tensors(
        &kept,
        &CheckpointMeta {
            train_state: serde_json::Value::Null,
            epoch: -1,
            ..meta
        },
        last,
    )?;
    Ok(true)
}
