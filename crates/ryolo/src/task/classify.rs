//! The classify task: one `loss` column, top-1 / top-5 accuracy columns, fitness = their mean
//! (spec/classify.md §5-6).

use super::{Task, TaskKind};

/// Image classification (Ultralytics `ClassificationTrainer` / `ClassificationValidator`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Classify;

impl Task for Classify {
    fn kind(&self) -> TaskKind {
        TaskKind::Classify
    }

    fn loss_names(&self) -> &'static [&'static str] {
        &["loss"]
    }

    fn metric_columns(&self) -> &'static [&'static str] {
        &["metrics/accuracy_top1", "metrics/accuracy_top5"]
    }

    fn fitness(&self, metrics: &[f64]) -> f64 {
        let at = |i: usize| metrics.get(i).copied().unwrap_or(0.0);
        (at(0) + at(1)) / 2.0
    }

    fn metrics(&self, r: &crate::engine::val::ValResult) -> Vec<f64> {
        match &r.cls {
            Some(c) => vec![c.top1, c.top5],
            None => vec![0.0, 0.0],
        }
    }
}
