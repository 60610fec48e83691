//! Instance-segmentation metrics as Ultralytics 8.4 computes them (spec/segment.md §7): mask IoU,
//! per-image box and mask correct flags, Box and Mask `ap_per_class`, results keys, fitness and the
//! console table. Plain Rust, no libtorch.

use super::{correct_flags, np_mean, np_sum, table_row, DetMetrics, Stats};

/// Mask IoU matrix `(n_gt, n_pred)` of binary masks (nonzero = foreground), each flattened to `npix`
/// pixels and stacked row by row: `|g ∩ p| / (|g| + |p| − |g ∩ p| + 1e-7)` in float32, equal to
/// Ultralytics' `mask_iou` on 0/1 float masks.
pub fn mask_iou(gt: &[u8], pred: &[u8], npix: usize) -> Vec<Vec<f32>> {
    let rows = |m: &[u8]| -> Vec<Vec<u64>> {
        if npix == 0 {
            return Vec::new();
        }
        assert_eq!(
            m.len() % npix,
            0,
            "mask data is not a whole number of masks"
        );
        m.chunks(npix)
            .map(|r| {
                r.chunks(64)
                    .map(|w| {
                        w.iter()
                            .enumerate()
                            .fold(0u64, |acc, (i, &v)| acc | (u64::from(v != 0) << i))
                    })
                    .collect()
            })
            .collect()
    };
    let (g, p) = (rows(gt), rows(pred));
    let area = |m: &[u64]| m.iter().map(|w| w.count_ones()).sum::<u32>();
    let pa: Vec<u32> = p.iter().map(|m| area(m)).collect();
    g.iter()
        .map(|gm| {
            let ga = area(gm);
            p.iter()
                .zip(&pa)
                .map(|(pm, &pa)| {
                    let inter: u32 = gm.iter().zip(pm).map(|(a, b)| (a & b).count_ones()).sum();
                    // Counts are exact in f32 below 2^24 pixels, as in Ultralytics' float matmul.
                    let inter = inter as f32;
                    let union = (ga as f32 + pa as f32) - inter;
                    inter / (union + 1e-7)
                })
                .collect()
        })
        .collect()
}

/// Validation statistics of a segmentation run: the box statistics plus the mask correct flags.
#[derive(Debug, Default, Clone)]
pub struct SegStats {
    /// Box correct flags, confidences, classes and targets (as for detection).
    pub boxes: Stats,
    /// Mask correct flags per prediction and threshold (`tp_m`).
    pub tp_m: Vec<[bool; 10]>,
}

impl SegStats {
    /// Matches one image's predictions (`xyxy`, conf, class; descending conf) and their binary masks
    /// (`n_pred × npix`, row-major) against its ground truth boxes and masks (`n_gt × npix`), by box
    /// IoU (`tp`) and by mask IoU (`tp_m`), and appends the statistics.
    pub fn add_image(
        &mut self,
        pred: &[([f32; 4], f32, usize)],
        pred_masks: &[u8],
        gt: &[([f32; 4], usize)],
        gt_masks: &[u8],
        npix: usize,
    ) {
        let gt_cls: Vec<usize> = gt.iter().map(|g| g.1).collect();
        let pred_cls: Vec<usize> = pred.iter().map(|p| p.2).collect();
        let iou = if gt.is_empty() || pred.is_empty() {
            Vec::new()
        } else {
            assert_eq!(pred_masks.len(), pred.len() * npix, "prediction masks");
            assert_eq!(gt_masks.len(), gt.len() * npix, "ground-truth masks");
            mask_iou(gt_masks, pred_masks, npix)
        };
        self.tp_m.extend(correct_flags(&pred_cls, &gt_cls, &iou));
        self.boxes.add_image(pred, gt);
    }

    /// The statistics with the mask correct flags in place of the box ones.
    pub fn mask_stats(&self) -> Stats {
        Stats {
            tp: self.tp_m.clone(),
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
    "metrics/precision(M)",
    "metrics/recall(M)",
    "metrics/mAP50(M)",
    "metrics/mAP50-95(M)",
];

/// The `results_dict` keys of a segmentation validation, in Ultralytics' order: the metric
/// columns, then `fitness`.
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

/// Box and Mask metrics of a segmentation validation (Ultralytics `SegmentMetrics`).
#[derive(Debug, Clone, Default)]
pub struct SegMetrics {
    /// `ap_per_class` over the box correct flags ("Box" columns).
    pub boxes: DetMetrics,
    /// `ap_per_class` over the mask correct flags ("Mask" columns).
    pub masks: DetMetrics,
    /// Ground-truth instances per class id `0..nc`.
    pub nt_per_class: Vec<usize>,
    /// Images containing each class id `0..nc`.
    pub nt_per_image: Vec<usize>,
}

impl SegMetrics {
    /// Computes Box and Mask metrics from collected statistics for `nc` classes.
    pub fn compute(s: &SegStats, nc: usize) -> Self {
        let count = |v: &[usize]| super::class_counts(v, nc);
        SegMetrics {
            boxes: DetMetrics::compute(&s.boxes),
            masks: DetMetrics::compute(&s.mask_stats()),
            nt_per_class: count(&s.boxes.target_cls),
            nt_per_image: count(&s.boxes.target_img),
        }
    }

    /// Box P, R, mAP50, mAP50-95, then the same for masks (NumPy's summation order).
    pub fn mean_results(&self) -> [f64; 8] {
        let (b, m) = (side_results(&self.boxes), side_results(&self.masks));
        std::array::from_fn(|i| if i < 4 { b[i] } else { m[i - 4] })
    }

    /// Fitness: box mAP50-95 + mask mAP50-95 (each NaN → 0), in [0, 2].
    pub fn fitness(&self) -> f64 {
        let nan0 = |x: f64| if x.is_nan() { 0.0 } else { x };
        let r = self.mean_results();
        nan0(r[3]) + nan0(r[7])
    }

    /// `results_dict`: [`RESULT_KEYS`] with the mean results and fitness, in order.
    pub fn results_dict(&self) -> Vec<(&'static str, f64)> {
        let mut v = self.mean_results().to_vec();
        v.push(self.fitness());
        RESULT_KEYS.into_iter().zip(v).collect()
    }

    /// Per-class box AP50-95 + mask AP50-95 for class ids `0..nc` (absent classes: the means).
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
            .zip(side(&self.masks))
            .map(|(b, m)| b + m)
            .collect()
    }

    /// The console header: `Class Images Instances Box(P R mAP50 mAP50-95) Mask(P R mAP50 mAP50-95)`.
    pub fn table_header() -> String {
        super::pair_table_header("Mask")
    }

    /// The `all` row (`seen` images, all instances) and, when `per_class` and more than one name,
    /// one row per class present in the ground truth (`%22s%11i%11i` + `%11.3g` × 8).
    pub fn table_rows(&self, names: &[String], seen: usize, per_class: bool) -> Vec<String> {
        let instances: usize = self.nt_per_class.iter().sum();
        let mut out = vec![table_row("all", seen, instances, &self.mean_results())];
        if instances == 0 {
            out.push(
                "WARNING no labels found in segment set, cannot compute metrics without labels"
                    .into(),
            );
        }
        if per_class && names.len() > 1 {
            let (b, m) = (&self.boxes, &self.masks);
            let (bap, map) = (class_ap50_95(b), class_ap50_95(m));
            for (i, &c) in b.classes.iter().enumerate() {
                let name = names.get(c).cloned().unwrap_or_else(|| c.to_string());
                let vals = [
                    b.p[i], b.r[i], b.ap[i][0], bap[i], m.p[i], m.r[i], m.ap[i][0], map[i],
                ];
                let imgs = self.nt_per_image.get(c).copied().unwrap_or(0);
                let inst = self.nt_per_class.get(c).copied().unwrap_or(0);
                out.push(table_row(&name, imgs, inst, &vals));
            }
        }
        out
    }
}

/// AP50-95 per evaluated class (`all_ap.mean(1)` in NumPy's order).
pub(crate) fn class_ap50_95(m: &DetMetrics) -> Vec<f64> {
    m.ap.iter().map(|a| np_sum(a) / 10.0).collect()
}

/// Mean P, R, AP50 and AP50-95 of one side as Ultralytics' `Metric.mean_results` (0 when empty).
pub(crate) fn side_results(m: &DetMetrics) -> [f64; 4] {
    let ap50: Vec<f64> = m.ap.iter().map(|a| a[0]).collect();
    let all: Vec<f64> = m.ap.iter().flatten().copied().collect();
    [np_mean(&m.p), np_mean(&m.r), np_mean(&ap50), np_mean(&all)]
}
