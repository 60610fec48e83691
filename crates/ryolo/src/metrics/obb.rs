//! OBB metrics as Ultralytics 8.4 computes them (spec/obb.md §7): ProbIoU matching at 10
//! thresholds, Box `ap_per_class`, results keys, fitness = mAP50-95, the console table and the
//! ProbIoU confusion matrix. Plain Rust, no libtorch.

use super::segment::{class_ap50_95, side_results};
use super::{table_row, ConfusionMatrix, DetMetrics, Stats};
use crate::ops::obb::batch_probiou;

/// Ground-truth `xywhr` in letterboxed-input pixels from the normalised batch row (x/W, y/H, w/W,
/// h/H, θ) and the batch image `(h, w)`: `[x, y, w, h] · [W, H, W, H]` in float32, θ unchanged.
pub fn gt_rbox_px(norm: &[f32; 5], img_hw: (usize, usize)) -> [f32; 5] {
    let (w, h) = (img_hw.1 as f32, img_hw.0 as f32);
    [norm[0] * w, norm[1] * h, norm[2] * w, norm[3] * h, norm[4]]
}

/// Adds one OBB image to `stats`: predictions `(xywhr, conf, class)` (descending confidence) and
/// ground truth `(xywhr, class)`, both in letterboxed-input pixels, matched by ProbIoU. Returns the
/// ProbIoU matrix `(n_gt, n_pred)` (empty when either side is empty).
pub fn add_obb_image(
    stats: &mut Stats,
    pred: &[([f32; 5], f32, usize)],
    gt: &[([f32; 5], usize)],
) -> Vec<Vec<f32>> {
    let gt_cls: Vec<usize> = gt.iter().map(|g| g.1).collect();
    let conf_cls: Vec<(f32, usize)> = pred.iter().map(|p| (p.1, p.2)).collect();
    let iou = if gt.is_empty() || pred.is_empty() {
        Vec::new()
    } else {
        let gb: Vec<[f32; 5]> = gt.iter().map(|g| g.0).collect();
        let pb: Vec<[f32; 5]> = pred.iter().map(|p| p.0).collect();
        batch_probiou(&gb, &pb)
    };
    stats.add_image_with_iou(&conf_cls, &gt_cls, &iou);
    iou
}

/// Adds one OBB image to a confusion matrix (class-agnostic greedy matching by descending
/// confidence at ProbIoU > 0.45, predictions above the matrix's confidence threshold).
pub fn confusion_obb(
    cm: &mut ConfusionMatrix,
    pred: &[([f32; 5], f32, usize)],
    gt: &[([f32; 5], usize)],
) {
    let conf_cls: Vec<(f32, usize)> = pred.iter().map(|p| (p.1, p.2)).collect();
    let gt_cls: Vec<usize> = gt.iter().map(|g| g.1).collect();
    cm.process_with_iou(&conf_cls, &gt_cls, |kept| {
        let gb: Vec<[f32; 5]> = gt.iter().map(|g| g.0).collect();
        let db: Vec<[f32; 5]> = kept.iter().map(|&i| pred[i].0).collect();
        batch_probiou(&gb, &db)
    });
}

/// The four metric columns of `results.csv` (the result keys without fitness).
pub const RESULT_KEYS_NO_FITNESS: [&str; 4] = [
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
];

/// The `results_dict` keys of an OBB validation, in Ultralytics' order.
pub const RESULT_KEYS: [&str; 5] = [
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "fitness",
];

/// Box metrics of an OBB validation (Ultralytics `OBBMetrics`).
#[derive(Debug, Clone, Default)]
pub struct ObbMetrics {
    /// `ap_per_class` over the ProbIoU correct flags.
    pub boxes: DetMetrics,
    /// Ground-truth instances per class id `0..nc`.
    pub nt_per_class: Vec<usize>,
    /// Images containing each class id `0..nc`.
    pub nt_per_image: Vec<usize>,
}

impl ObbMetrics {
    /// Computes the metrics from collected statistics for `nc` classes.
    pub fn compute(s: &Stats, nc: usize) -> Self {
        let count = |v: &[usize]| super::class_counts(v, nc);
        ObbMetrics {
            boxes: DetMetrics::compute(s),
            nt_per_class: count(&s.target_cls),
            nt_per_image: count(&s.target_img),
        }
    }

    /// P, R, mAP50, mAP50-95 (NumPy's summation order).
    pub fn mean_results(&self) -> [f64; 4] {
        side_results(&self.boxes)
    }

    /// Fitness: mAP50-95 (NaN → 0).
    pub fn fitness(&self) -> f64 {
        let f = self.mean_results()[3];
        if f.is_nan() {
            0.0
        } else {
            f
        }
    }

    /// `results_dict`: [`RESULT_KEYS`] with the mean results and fitness, in order.
    pub fn results_dict(&self) -> Vec<(&'static str, f64)> {
        let mut v = self.mean_results().to_vec();
        v.push(self.fitness());
        RESULT_KEYS.into_iter().zip(v).collect()
    }

    /// AP50-95 per class id `0..nc` (absent classes: the mean).
    pub fn maps(&self, nc: usize) -> Vec<f64> {
        let (ap, mean) = (class_ap50_95(&self.boxes), self.mean_results()[3]);
        (0..nc)
            .map(|c| {
                self.boxes
                    .classes
                    .iter()
                    .position(|&k| k == c)
                    .map_or(mean, |i| ap[i])
            })
            .collect()
    }

    /// The console header: `Class Images Instances Box(P R mAP50 mAP50-95)`.
    pub fn table_header() -> String {
        let cols = ["Images", "Instances", "Box(P", "R", "mAP50", "mAP50-95)"];
        let mut s = format!("{:>22}", "Class");
        for c in cols {
            s.push_str(&format!("{c:>11}"));
        }
        s
    }

    /// The `all` row (`seen` images, all instances) and, when `per_class` and more than one name,
    /// one row per class present in the ground truth (`%22s%11i%11i` + `%11.3g` × 4).
    pub fn table_rows(&self, names: &[String], seen: usize, per_class: bool) -> Vec<String> {
        let instances: usize = self.nt_per_class.iter().sum();
        let mut out = vec![table_row("all", seen, instances, &self.mean_results())];
        if instances == 0 {
            out.push(
                "WARNING no labels found in obb set, cannot compute metrics without labels".into(),
            );
        }
        if per_class && names.len() > 1 {
            let b = &self.boxes;
            let bap = class_ap50_95(b);
            for (i, &c) in b.classes.iter().enumerate() {
                let name = names.get(c).cloned().unwrap_or_else(|| c.to_string());
                let imgs = self.nt_per_image.get(c).copied().unwrap_or(0);
                let inst = self.nt_per_class.get(c).copied().unwrap_or(0);
                out.push(table_row(
                    &name,
                    imgs,
                    inst,
                    &[b.p[i], b.r[i], b.ap[i][0], bap[i]],
                ));
            }
        }
        out
    }
}
