//! The detect task: `box/cls/dfl` losses, Box P/R/mAP columns, fitness = mAP50-95.

use super::{Task, TaskKind};

/// Object detection (Ultralytics `DetectionTrainer` / `DetectionValidator`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Detect;

impl Task for Detect {
    fn kind(&self) -> TaskKind {
        TaskKind::Detect
    }

    fn loss_names(&self) -> &'static [&'static str] {
        &["box_loss", "cls_loss", "dfl_loss"]
    }

    fn metric_columns(&self) -> &'static [&'static str] {
        &[
            "metrics/precision(B)",
            "metrics/recall(B)",
            "metrics/mAP50(B)",
            "metrics/mAP50-95(B)",
        ]
    }

    fn fitness(&self, metrics: &[f64]) -> f64 {
        metrics.get(3).copied().unwrap_or(0.0)
    }
}
