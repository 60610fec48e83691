//! The segment task: `box/seg/cls/dfl/sem` losses (8.4 prints the always-zero `sem_loss`), Box and
//! Mask P/R/mAP columns, fitness = box mAP50-95 + mask mAP50-95 (spec/segment.md §7).

use super::{Task, TaskKind};

/// Instance segmentation (Ultralytics `SegmentationTrainer` / `SegmentationValidator`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Segment;

impl Task for Segment {
    fn kind(&self) -> TaskKind {
        TaskKind::Segment
    }

    fn loss_names(&self) -> &'static [&'static str] {
        &["box_loss", "seg_loss", "cls_loss", "dfl_loss", "sem_loss"]
    }

    fn metric_columns(&self) -> &'static [&'static str] {
        &crate::metrics::segment::RESULT_KEYS_NO_FITNESS
    }

    fn fitness(&self, metrics: &[f64]) -> f64 {
        super::metric_at(metrics, 3) + super::metric_at(metrics, 7)
    }

    fn metrics(&self, r: &crate::engine::val::ValResult) -> Vec<f64> {
        match &r.seg {
            Some(s) => s.mean_results().to_vec(),
            None => vec![0.0; 8],
        }
    }
}
