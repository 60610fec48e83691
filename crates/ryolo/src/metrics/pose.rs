//! Pose metrics as Ultralytics 8.4 computes them (spec/pose.md §6): OKS (`kpt_iou`), per-image box
//! and pose correct flags, Box and Pose `ap_per_class`, results keys, fitness and the console
//! table. Plain Rust, no libtorch.

use super::segment::{class_ap50_95, side_results};
use super::{correct_flags, table_row, DetMetrics, Stats};
use anyhow::{ensure, Result};

/// The OKS σ per keypoint for `kpt_shape = (K, D)`: the dataset's `kpt_oks_sigmas` when given (K
/// positive values, else an error), else the COCO table for `[17, 3]`
/// ([`crate::nn::pose::coco_sigmas`]), else `1/K` each (computed in float64 as the validator's
/// NumPy array, then float32).
pub fn oks_sigmas(kpt_shape: (usize, usize), custom: Option<&[f64]>) -> Result<Vec<f32>> {
    let k = kpt_shape.0;
    if let Some(s) = custom.filter(|s| !s.is_empty()) {
        ensure!(
            s.len() == k && s.iter().all(|&v| v > 0.0),
            "'kpt_oks_sigmas' must be {k} positive values, got {s:?}"
        );
        return Ok(s.iter().map(|&v| v as f32).collect());
    }
    if kpt_shape == (17, 3) {
        return Ok(crate::nn::pose::coco_sigmas());
    }
    Ok(vec![(1.0 / k.max(1) as f64) as f32; k])
}

/// Ground-truth box `xyxy` in letterboxed-input pixels from a normalised `cx cy w h` row and the
/// batch image `(h, w)`, float32 as the validator computes it (`xywh2xyxy(b) · [w, h, w, h]`).
pub fn gt_box_px(cxcywh: &[f32; 4], img_hw: (usize, usize)) -> [f32; 4] {
    let (w, h) = (img_hw.1 as f32, img_hw.0 as f32);
    let (hw, hh) = (cxcywh[2] / 2.0, cxcywh[3] / 2.0);
    [
        (cxcywh[0] - hw) * w,
        (cxcywh[1] - hh) * h,
        (cxcywh[0] + hw) * w,
        (cxcywh[1] + hh) * h,
    ]
}

/// Ground-truth keypoints `(x, y, flag)` in letterboxed-input pixels from normalised ones
/// (`x · w`, `y · h`, flag unchanged).
pub fn gt_kpts_px(kpts: &[[f32; 3]], img_hw: (usize, usize)) -> Vec<[f32; 3]> {
    let (w, h) = (img_hw.1 as f32, img_hw.0 as f32);
    kpts.iter().map(|k| [k[0] * w, k[1] * h, k[2]]).collect()
}

/// OKS matrix `(n_gt, n_pred)` (`kpt_iou`, float32): for ground truth g with box `xyxy` pixels and
/// keypoints `(x, y, flag)`, `area = w·h·0.53`, `OKS = Σ_k exp(−d²/((2σ)²·(area + 1e-7)·2))·[flag ≠ 0]
/// / (Σ_k [flag ≠ 0] + 1e-7)`. Predicted keypoints are `(x, y)` pairs; a ground truth without
/// labelled keypoints scores 0 everywhere.
pub fn kpt_iou(
    gt_boxes: &[[f32; 4]],
    gt_kpts: &[Vec<[f32; 3]>],
    pred_kpts: &[Vec<[f32; 2]>],
    sigma: &[f32],
) -> Vec<Vec<f32>> {
    const EPS: f32 = 1e-7;
    let s2: Vec<f32> = sigma.iter().map(|s| (2.0 * s) * (2.0 * s)).collect();
    gt_boxes
        .iter()
        .zip(gt_kpts)
        .map(|(b, g)| {
            let area = (b[2] - b[0]) * (b[3] - b[1]) * 0.53;
            let nvis = g.iter().filter(|k| k[2] != 0.0).count() as f32;
            pred_kpts
                .iter()
                .map(|p| {
                    let sum: f32 = g
                        .iter()
                        .zip(p)
                        .zip(&s2)
                        .map(|((gk, pk), s2)| {
                            let (dx, dy) = (gk[0] - pk[0], gk[1] - pk[1]);
                            let e = (dx * dx + dy * dy) / (s2 * (area + EPS) * 2.0);
                            if gk[2] != 0.0 {
                                (-e).exp()
                            } else {
                                0.0
                            }
                        })
                        .sum();
                    sum / (nvis + EPS)
                })
                .collect()
        })
        .collect()
}

/// One image of a pose validation, all in letterboxed-input pixels: predictions (descending
/// confidence) and ground truth.
#[derive(Debug, Clone, Copy)]
pub struct PoseImage<'a> {
    /// Predicted boxes (`xyxy`), confidences and classes.
    pub pred: &'a [([f32; 4], f32, usize)],
    /// Predicted keypoints `(x, y)` per prediction.
    pub pred_kpts: &'a [Vec<[f32; 2]>],
    /// Ground-truth boxes (`xyxy`) and classes.
    pub gt: &'a [([f32; 4], usize)],
    /// Ground-truth keypoints `(x, y, flag)` per object.
    pub gt_kpts: &'a [Vec<[f32; 3]>],
}

/// Validation statistics of a pose run: the box statistics plus the pose correct flags.
#[derive(Debug, Default, Clone)]
pub struct PoseStats {
    /// Box correct flags, confidences, classes and targets (as for detection).
    pub boxes: Stats,
    /// Pose (OKS) correct flags per prediction and threshold (`tp_p`).
    pub tp_p: Vec<[bool; 10]>,
}

impl PoseStats {
    /// Matches one image by box IoU (`tp`) and by OKS with `sigma` (`tp_p`), appends the statistics
    /// and returns the OKS matrix `(n_gt, n_pred)` (empty when either side is empty).
    pub fn add_image(&mut self, im: &PoseImage, sigma: &[f32]) -> Result<Vec<Vec<f32>>> {
        ensure!(
            im.pred.len() == im.pred_kpts.len() && im.gt.len() == im.gt_kpts.len(),
            "pose image: {} predictions with {} keypoint sets, {} objects with {} keypoint sets",
            im.pred.len(),
            im.pred_kpts.len(),
            im.gt.len(),
            im.gt_kpts.len()
        );
        let k = sigma.len();
        ensure!(
            im.pred_kpts.iter().all(|p| p.len() == k) && im.gt_kpts.iter().all(|g| g.len() == k),
            "pose image: every keypoint set needs {k} keypoints"
        );
        let gt_cls: Vec<usize> = im.gt.iter().map(|g| g.1).collect();
        let pred_cls: Vec<usize> = im.pred.iter().map(|p| p.2).collect();
        let oks = if im.gt.is_empty() || im.pred.is_empty() {
            Vec::new()
        } else {
            let gb: Vec<[f32; 4]> = im.gt.iter().map(|g| g.0).collect();
            kpt_iou(&gb, im.gt_kpts, im.pred_kpts, sigma)
        };
        self.tp_p.extend(correct_flags(&pred_cls, &gt_cls, &oks));
        self.boxes.add_image(im.pred, im.gt);
        Ok(oks)
    }

    /// The statistics with the pose correct flags in place of the box ones.
    pub fn pose_stats(&self) -> Stats {
        Stats {
            tp: self.tp_p.clone(),
            ..self.boxes.clone()
        }
    }
}

/// The eight metric columns of `results.csv` (the result keys without fitness).
pub const RESULT_KEYS_NO_FITNESS: [&str; 8] = [
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "metrics/precision(P)",
    "metrics/recall(P)",
    "metrics/mAP50(P)",
    "metrics/mAP50-95(P)",
];

/// The `results_dict` keys of a pose validation, in Ultralytics' order (metric columns, fitness).
pub const RESULT_KEYS: [&str; 9] = {
    let mut k = [""; 9];
    let mut i = 0;
    while i < 8 {
        k[i] = RESULT_KEYS_NO_FITNESS[i];
        i += 1;
    }
    k[8] = "fitness";
    k
};

/// Box and Pose metrics of a pose validation (Ultralytics `PoseMetrics`).
#[derive(Debug, Clone, Default)]
pub struct PoseMetrics {
    /// `ap_per_class` over the box correct flags ("Box" columns).
    pub boxes: DetMetrics,
    /// `ap_per_class` over the OKS correct flags ("Pose" columns).
    pub pose: DetMetrics,
    /// Ground-truth instances per class id `0..nc`.
    pub nt_per_class: Vec<usize>,
    /// Images containing each class id `0..nc`.
    pub nt_per_image: Vec<usize>,
}

impl PoseMetrics {
    /// Computes Box and Pose metrics from collected statistics for `nc` classes.
    pub fn compute(s: &PoseStats, nc: usize) -> Self {
        let count = |v: &[usize]| super::class_counts(v, nc);
        PoseMetrics {
            boxes: DetMetrics::compute(&s.boxes),
            pose: DetMetrics::compute(&s.pose_stats()),
            nt_per_class: count(&s.boxes.target_cls),
            nt_per_image: count(&s.boxes.target_img),
        }
    }

    /// Box P, R, mAP50, mAP50-95, then the same for pose (NumPy's summation order).
    pub fn mean_results(&self) -> [f64; 8] {
        let (b, p) = (side_results(&self.boxes), side_results(&self.pose));
        std::array::from_fn(|i| if i < 4 { b[i] } else { p[i - 4] })
    }

    /// Fitness: box mAP50-95 + pose mAP50-95 (each NaN → 0), in [0, 2].
    pub fn fitness(&self) -> f64 {
        let nan0 = |x: f64| if x.is_nan() { 0.0 } else { x };
        let r = self.mean_results();
        nan0(r[7]) + nan0(r[3])
    }

    /// `results_dict`: [`RESULT_KEYS`] with the mean results and fitness, in order.
    pub fn results_dict(&self) -> Vec<(&'static str, f64)> {
        let mut v = self.mean_results().to_vec();
        v.push(self.fitness());
        RESULT_KEYS.into_iter().zip(v).collect()
    }

    /// Per-class box AP50-95 + pose AP50-95 for class ids `0..nc` (absent classes: the means).
    pub fn maps(&self, nc: usize) -> Vec<f64> {
        let side = |m: &DetMetrics| {
            let (ap, mean) = (class_ap50_95(m), side_results(m)[3]);
            (0..nc)
                .map(|c| {
                    m.classes
                        .iter()
                        .position(|&k| k == c)
                        .map_or(mean, |i| ap[i])
                })
                .collect::<Vec<f64>>()
        };
        side(&self.boxes)
            .into_iter()
            .zip(side(&self.pose))
            .map(|(b, p)| b + p)
            .collect()
    }

    /// The console header: `Class Images Instances Box(P R mAP50 mAP50-95) Pose(P R mAP50 mAP50-95)`.
    pub fn table_header() -> String {
        super::pair_table_header("Pose")
    }

    /// The `all` row (`seen` images, all instances) and, when `per_class` and more than one name,
    /// one row per class present in the ground truth (`%22s%11i%11i` + `%11.3g` × 8).
    pub fn table_rows(&self, names: &[String], seen: usize, per_class: bool) -> Vec<String> {
        let instances: usize = self.nt_per_class.iter().sum();
        let mut out = vec![table_row("all", seen, instances, &self.mean_results())];
        if instances == 0 {
            out.push(
                "WARNING no labels found in pose set, cannot compute metrics without labels".into(),
            );
        }
        if per_class && names.len() > 1 {
            let (b, p) = (&self.boxes, &self.pose);
            let (bap, pap) = (class_ap50_95(b), class_ap50_95(p));
            for (i, &c) in b.classes.iter().enumerate() {
                let name = names.get(c).cloned().unwrap_or_else(|| c.to_string());
                let vals = [
                    b.p[i], b.r[i], b.ap[i][0], bap[i], p.p[i], p.r[i], p.ap[i][0], pap[i],
                ];
                let imgs = self.nt_per_image.get(c).copied().unwrap_or(0);
                let inst = self.nt_per_class.get(c).copied().unwrap_or(0);
                out.push(table_row(&name, imgs, inst, &vals));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_choice() {
        assert_eq!(
            oks_sigmas((17, 3), None).unwrap(),
            crate::nn::pose::coco_sigmas()
        );
        assert_eq!(oks_sigmas((4, 2), None).unwrap(), vec![0.25; 4]);
        assert_eq!(oks_sigmas((17, 2), None).unwrap(), vec![1.0 / 17.0; 17]);
        assert_eq!(
            oks_sigmas((2, 3), Some(&[0.5, 0.1])).unwrap(),
            vec![0.5, 0.1]
        );
        assert!(oks_sigmas((2, 3), Some(&[0.5])).is_err());
        assert!(oks_sigmas((2, 3), Some(&[0.5, 0.0])).is_err());
    }

    #[test]
    fn oks_of_a_perfect_and_an_unlabelled_prediction() {
        let gb = [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]];
        let gk = vec![
            vec![[2.0, 3.0, 2.0], [5.0, 5.0, 1.0]],
            vec![[2.0, 3.0, 0.0], [5.0, 5.0, 0.0]],
        ];
        let pk = vec![vec![[2.0, 3.0], [5.0, 5.0]]];
        let o = kpt_iou(&gb, &gk, &pk, &[0.25, 0.25]);
        assert!((o[0][0] - 1.0).abs() < 1e-6);
        assert_eq!(o[1][0], 0.0);
    }
}
