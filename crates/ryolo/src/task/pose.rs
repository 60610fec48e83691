//! The pose task: `box/pose/kobj/cls/dfl` losses, Box and Pose P/R/mAP columns, fitness = box
//! mAP50-95 + pose mAP50-95 (spec/pose.md §5-6).

use super::{Task, TaskKind};

/// Keypoint estimation (Ultralytics `PoseTrainer` / `PoseValidator`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Pose;

impl Task for Pose {
    fn kind(&self) -> TaskKind {
        TaskKind::Pose
    }

    fn cpu_bf16_by_default(&self) -> bool {
        // Seeds 0-7 on held-out synthetic stick figures: pose mAP50 0.548 in bfloat16 against
        // 0.601 in float32 (README, CPU training precision).
        false
    }

    fn loss_names(&self) -> &'static [&'static str] {
        &["box_loss", "pose_loss", "kobj_loss", "cls_loss", "dfl_loss"]
    }

    fn metric_columns(&self) -> &'static [&'static str] {
        &crate::metrics::pose::RESULT_KEYS_NO_FITNESS
    }

    fn fitness(&self, metrics: &[f64]) -> f64 {
        super::metric_at(metrics, 3) + super::metric_at(metrics, 7)
    }

    fn metrics(&self, r: &crate::engine::val::ValResult) -> Vec<f64> {
        match &r.pose {
            Some(p) => p.mean_results().to_vec(),
            None => vec![0.0; 8],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_ultralytics() {
        assert_eq!(
            Pose.results_header(),
            "epoch,time,train/box_loss,train/pose_loss,train/kobj_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),metrics/precision(P),metrics/recall(P),metrics/mAP50(P),metrics/mAP50-95(P),val/box_loss,val/pose_loss,val/kobj_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2"
        );
        assert_eq!(
            Pose.fitness(&[0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.5]),
            0.75
        );
    }
}
