//! The OBB task: `box/cls/dfl/angle` losses, the detection Box columns (ProbIoU matching),
//! fitness = mAP50-95 (spec/obb.md §5, §7).

use super::{Task, TaskKind};

/// Oriented-box detection (Ultralytics `OBBTrainer` / `OBBValidator`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Obb;

impl Task for Obb {
    fn kind(&self) -> TaskKind {
        TaskKind::Obb
    }

    fn loss_names(&self) -> &'static [&'static str] {
        &["box_loss", "cls_loss", "dfl_loss", "angle_loss"]
    }

    fn metric_columns(&self) -> &'static [&'static str] {
        super::detect::Detect.metric_columns()
    }

    fn fitness(&self, metrics: &[f64]) -> f64 {
        super::detect::Detect.fitness(metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_ultralytics() {
        assert_eq!(
            Obb.results_header(),
            "epoch,time,train/box_loss,train/cls_loss,train/dfl_loss,train/angle_loss,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,val/angle_loss,lr/pg0,lr/pg1,lr/pg2"
        );
    }
}
