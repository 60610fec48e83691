//! Detection metrics exactly as Ultralytics 8.4 computes them (spec/metrics.md): IoU matching at 10
//! thresholds, `ap_per_class` with 101-point AP, P/R/F1 at the best mean-F1 confidence, fitness, and
//! the confusion matrix. Plain Rust, no libtorch.

pub mod classify;
pub mod coco;
pub mod hota;
pub mod lsa;
pub mod mot;
mod mot_io;
pub mod obb;
pub mod pose;
pub mod segment;

/// Occurrences of each class id, over at least `nc` classes (`nt_per_class`, `nt_per_image`).
pub(crate) fn class_counts(v: &[usize], nc: usize) -> Vec<usize> {
    let n = nc.max(v.iter().map(|&c| c + 1).max().unwrap_or(0));
    let mut out = vec![0; n];
    for &c in v {
        out[c] += 1;
    }
    out
}

/// The console header of a two-part validation: `Class Images Instances Box(P R mAP50 mAP50-95)`
/// then `{second}(P R mAP50 mAP50-95)` (`%22s` + `%11s` × 10).
pub(crate) fn pair_table_header(second: &str) -> String {
    let mut s = format!("{:>22}", "Class");
    let sec = format!("{second}(P");
    for c in [
        "Images",
        "Instances",
        "Box(P",
        "R",
        "mAP50",
        "mAP50-95)",
        sec.as_str(),
        "R",
        "mAP50",
        "mAP50-95)",
    ] {
        s.push_str(&format!("{c:>11}"));
    }
    s
}

/// The 10 IoU thresholds 0.50, 0.55, ..., 0.95.
pub fn iouv() -> [f64; 10] {
    std::array::from_fn(|i| 0.5 + 0.05 * i as f64)
}

/// IoU matrix `(a.len(), b.len())` of `xyxy` boxes, in f32 with Ultralytics' 1e-7 epsilon.
pub fn box_iou(a: &[[f32; 4]], b: &[[f32; 4]]) -> Vec<Vec<f32>> {
    a.iter()
        .map(|p| {
            let ap = (p[2] - p[0]) * (p[3] - p[1]);
            b.iter()
                .map(|q| {
                    let iw = (p[2].min(q[2]) - p[0].max(q[0])).max(0.0);
                    let ih = (p[3].min(q[3]) - p[1].max(q[1])).max(0.0);
                    let inter = iw * ih;
                    inter / (ap + (q[2] - q[0]) * (q[3] - q[1]) - inter + 1e-7)
                })
                .collect()
        })
        .collect()
}

/// 8.4 greedy matching: predictions (in descending confidence) against ground truth per threshold.
/// `iou` is `(n_gt, n_pred)`. Returns `correct[pred][threshold]`.
pub fn match_predictions(
    pred_cls: &[usize],
    gt_cls: &[usize],
    iou: &[Vec<f32>],
) -> Vec<[bool; 10]> {
    let th = iouv();
    let mut correct = vec![[false; 10]; pred_cls.len()];
    let mut matched = vec![[false; 10]; gt_cls.len()];
    for (j, &pc) in pred_cls.iter().enumerate() {
        let col: Vec<f32> = (0..gt_cls.len())
            .map(|g| if gt_cls[g] == pc { iou[g][j] } else { 0.0 })
            .collect();
        if !col.iter().any(|&v| v as f64 >= 0.5) {
            continue;
        }
        for t in 0..10 {
            let mut best = (0usize, f32::NEG_INFINITY);
            for (g, &v) in col.iter().enumerate() {
                let v = if matched[g][t] { 0.0 } else { v };
                if v > best.1 {
                    best = (g, v);
                }
            }
            if best.1 as f64 >= th[t] {
                correct[j][t] = true;
                matched[best.0][t] = true;
            }
        }
    }
    correct
}

/// NumPy `interp` (x ascending in `xp`; at a repeated `xp` value the right-hand one wins).
pub fn interp(x: f64, xp: &[f64], fp: &[f64], left: f64, right: f64) -> f64 {
    if xp.is_empty() {
        return 0.0;
    }
    if x < xp[0] {
        return left;
    }
    if x > xp[xp.len() - 1] {
        return right;
    }
    let j = xp.partition_point(|&v| v <= x) - 1;
    if j + 1 >= xp.len() {
        return fp[xp.len() - 1];
    }
    let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    slope * (x - xp[j]) + fp[j]
}

/// `np.linspace(a, b, n)`.
pub fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect()
}

/// Sum in NumPy's pairwise order (`np.sum` / `np.mean` of a contiguous float64 array), so means
/// round exactly as Ultralytics' do.
pub fn np_sum(v: &[f64]) -> f64 {
    let n = v.len();
    if n < 8 {
        v.iter().fold(0.0, |s, x| s + x)
    } else if n <= 128 {
        let mut r: [f64; 8] = std::array::from_fn(|j| v[j]);
        let full = n - n % 8;
        for c in v[8..full].chunks_exact(8) {
            for (rj, x) in r.iter_mut().zip(c) {
                *rj += x;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &v[full..] {
            res += x;
        }
        res
    } else {
        let h = n / 2;
        let h = h - h % 8;
        np_sum(&v[..h]) + np_sum(&v[h..])
    }
}

/// `np.mean` (pairwise sum / n); 0 for an empty slice (where NumPy gives NaN, Ultralytics uses 0).
pub fn np_mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        np_sum(v) / v.len() as f64
    }
}

/// Box-filter smoothing with edge padding (`smooth(y, f)`).
pub fn smooth(y: &[f64], f: f64) -> Vec<f64> {
    let nf = ((y.len() as f64 * f * 2.0).round_ties_even() as usize) / 2 + 1;
    let half = nf / 2;
    let mut yp = vec![y[0]; half];
    yp.extend_from_slice(y);
    yp.extend(std::iter::repeat_n(y[y.len() - 1], half));
    (0..y.len())
        .map(|i| yp[i..i + nf].iter().sum::<f64>() / nf as f64)
        .collect()
}

/// 8.4 `compute_ap`: 101-point interpolated AP (trapezoid rule) and the precision envelope samples.
pub fn compute_ap(recall: &[f64], precision: &[f64]) -> (f64, Vec<f64>) {
    let last = recall.last().copied().unwrap_or(1.0);
    let mut mrec = vec![0.0];
    mrec.extend_from_slice(recall);
    mrec.extend([last, 1.0]);
    let mut mpre = vec![1.0];
    mpre.extend_from_slice(precision);
    mpre.extend([0.0, 0.0]);
    for i in (0..mpre.len() - 1).rev() {
        mpre[i] = mpre[i].max(mpre[i + 1]);
    }
    let q = linspace(0.0, 1.0, 101);
    let v: Vec<f64> = q
        .iter()
        .map(|&x| interp(x, &mrec, &mpre, mpre[0], mpre[mpre.len() - 1]))
        .collect();
    let ap = (0..100)
        .map(|k| (q[k + 1] - q[k]) * (v[k] + v[k + 1]) / 2.0)
        .sum();
    (ap, v)
}

/// Per-image statistics collected during validation.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Correct flags per prediction and threshold.
    pub tp: Vec<[bool; 10]>,
    /// Confidence per prediction.
    pub conf: Vec<f64>,
    /// Class per prediction.
    pub pred_cls: Vec<usize>,
    /// Class per ground-truth box.
    pub target_cls: Vec<usize>,
    /// Classes present, per image (for the per-class image count).
    pub target_img: Vec<usize>,
}

impl Stats {
    /// Matches one image's predictions (`xyxy`, conf, class; descending conf) against its ground truth
    /// and appends the statistics.
    pub fn add_image(&mut self, pred: &[([f32; 4], f32, usize)], gt: &[([f32; 4], usize)]) {
        let gt_cls: Vec<usize> = gt.iter().map(|g| g.1).collect();
        let pred_cc: Vec<(f32, usize)> = pred.iter().map(|p| (p.1, p.2)).collect();
        let iou = if gt.is_empty() || pred.is_empty() {
            Vec::new()
        } else {
            let gb: Vec<[f32; 4]> = gt.iter().map(|g| g.0).collect();
            let pb: Vec<[f32; 4]> = pred.iter().map(|p| p.0).collect();
            box_iou(&gb, &pb)
        };
        self.add_image_with_iou(&pred_cc, &gt_cls, &iou);
    }

    /// Appends one image given its predictions' `(conf, class)` (descending conf), its ground-truth
    /// classes and a precomputed IoU matrix `(n_gt, n_pred)` (box or mask IoU; may be empty when
    /// either side is empty).
    pub fn add_image_with_iou(
        &mut self,
        pred: &[(f32, usize)],
        gt_cls: &[usize],
        iou: &[Vec<f32>],
    ) {
        let mut present = gt_cls.to_vec();
        present.sort();
        present.dedup();
        self.target_img.extend(present);
        self.target_cls.extend(gt_cls);
        let pred_cls: Vec<usize> = pred.iter().map(|p| p.1).collect();
        self.tp.extend(correct_flags(&pred_cls, gt_cls, iou));
        self.conf.extend(pred.iter().map(|p| p.0 as f64));
        self.pred_cls.extend(pred_cls);
    }
}

/// Correct flags `(n_pred, 10)` of one image from its IoU matrix `(n_gt, n_pred)`: all false when
/// there is no ground truth or no prediction, else [`match_predictions`].
pub fn correct_flags(pred_cls: &[usize], gt_cls: &[usize], iou: &[Vec<f32>]) -> Vec<[bool; 10]> {
    if gt_cls.is_empty() || pred_cls.is_empty() {
        vec![[false; 10]; pred_cls.len()]
    } else {
        match_predictions(pred_cls, gt_cls, iou)
    }
}

/// Results of `ap_per_class` and the summary numbers.
#[derive(Debug, Clone, Default)]
pub struct DetMetrics {
    /// Evaluated classes (those present in the ground truth), ascending.
    pub classes: Vec<usize>,
    /// Ground-truth instances per evaluated class.
    pub nt: Vec<usize>,
    /// Precision per evaluated class at the chosen confidence.
    pub p: Vec<f64>,
    /// Recall per evaluated class.
    pub r: Vec<f64>,
    /// F1 per evaluated class.
    pub f1: Vec<f64>,
    /// AP per evaluated class and IoU threshold.
    pub ap: Vec<[f64; 10]>,
    /// Confidence grid (1000 points) of the curves.
    pub px: Vec<f64>,
    /// Precision, recall and F1 curves per class over `px`.
    pub p_curve: Vec<Vec<f64>>,
    /// Recall curve per class.
    pub r_curve: Vec<Vec<f64>>,
    /// F1 curve per class.
    pub f1_curve: Vec<Vec<f64>>,
    /// Precision envelope at IoU 0.5 over 101 recall points, per class (PR curve).
    pub pr_curve: Vec<Vec<f64>>,
}

impl DetMetrics {
    /// Computes everything from collected statistics (Ultralytics `ap_per_class`).
    pub fn compute(s: &Stats) -> Self {
        let mut order: Vec<usize> = (0..s.conf.len()).collect();
        order.sort_by(|&a, &b| s.conf[b].total_cmp(&s.conf[a]));
        let mut classes = s.target_cls.clone();
        classes.sort();
        classes.dedup();
        let nt: Vec<usize> = classes
            .iter()
            .map(|c| s.target_cls.iter().filter(|t| *t == c).count())
            .collect();
        let px = linspace(0.0, 1.0, 1000);
        let nc = classes.len();
        let mut m = DetMetrics {
            classes: classes.clone(),
            nt: nt.clone(),
            px: px.clone(),
            ..Default::default()
        };
        m.ap = vec![[0.0; 10]; nc];
        m.p_curve = vec![vec![0.0; 1000]; nc];
        m.r_curve = vec![vec![0.0; 1000]; nc];
        m.pr_curve = vec![vec![0.0; 101]; nc];
        for (ci, &c) in classes.iter().enumerate() {
            let sel: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&i| s.pred_cls[i] == c)
                .collect();
            let n_l = nt[ci] as f64;
            if sel.is_empty() {
                continue;
            }
            let neg_conf: Vec<f64> = sel.iter().map(|&i| -s.conf[i]).collect();
            let mut recall = vec![vec![0.0; sel.len()]; 10];
            let mut precision = vec![vec![0.0; sel.len()]; 10];
            for t in 0..10 {
                let (mut tpc, mut fpc) = (0.0, 0.0);
                for (k, &i) in sel.iter().enumerate() {
                    if s.tp[i][t] {
                        tpc += 1.0;
                    } else {
                        fpc += 1.0;
                    }
                    recall[t][k] = tpc / (n_l + 1e-16);
                    precision[t][k] = tpc / (tpc + fpc);
                }
            }
            let last_r = *recall[0].last().unwrap_or(&0.0);
            let last_p = *precision[0].last().unwrap_or(&0.0);
            for (xi, &x) in px.iter().enumerate() {
                m.r_curve[ci][xi] = interp(-x, &neg_conf, &recall[0], 0.0, last_r);
                m.p_curve[ci][xi] = interp(-x, &neg_conf, &precision[0], 1.0, last_p);
            }
            for t in 0..10 {
                let (ap, env) = compute_ap(&recall[t], &precision[t]);
                m.ap[ci][t] = ap;
                if t == 0 {
                    m.pr_curve[ci] = env;
                }
            }
        }
        m.f1_curve = (0..nc)
            .map(|ci| {
                (0..1000)
                    .map(|k| {
                        2.0 * m.p_curve[ci][k] * m.r_curve[ci][k]
                            / (m.p_curve[ci][k] + m.r_curve[ci][k] + 1e-16)
                    })
                    .collect()
            })
            .collect();
        if nc > 0 {
            let mean_f1: Vec<f64> = (0..1000)
                .map(|k| m.f1_curve.iter().map(|c| c[k]).sum::<f64>() / nc as f64)
                .collect();
            let sm = smooth(&mean_f1, 0.1);
            let i = argmax(&sm);
            m.p = m.p_curve.iter().map(|c| c[i]).collect();
            m.r = m.r_curve.iter().map(|c| c[i]).collect();
            m.f1 = m.f1_curve.iter().map(|c| c[i]).collect();
        }
        m
    }

    fn mean(v: impl Iterator<Item = f64>, n: usize) -> f64 {
        if n == 0 {
            0.0
        } else {
            v.sum::<f64>() / n as f64
        }
    }
    /// Mean precision.
    pub fn mp(&self) -> f64 {
        Self::mean(self.p.iter().copied(), self.p.len())
    }
    /// Mean recall.
    pub fn mr(&self) -> f64 {
        Self::mean(self.r.iter().copied(), self.r.len())
    }
    /// mAP at IoU 0.5.
    pub fn map50(&self) -> f64 {
        Self::mean(self.ap.iter().map(|a| a[0]), self.ap.len())
    }
    /// mAP at IoU 0.75.
    pub fn map75(&self) -> f64 {
        Self::mean(self.ap.iter().map(|a| a[5]), self.ap.len())
    }
    /// mAP50-95.
    pub fn map(&self) -> f64 {
        Self::mean(
            self.ap.iter().map(|a| a.iter().sum::<f64>() / 10.0),
            self.ap.len(),
        )
    }
    /// Fitness: mAP50-95 (8.4), NaN -> 0.
    pub fn fitness(&self) -> f64 {
        let f = self.map();
        if f.is_nan() {
            0.0
        } else {
            f
        }
    }
    /// AP50-95 per class id `0..nc`; classes absent from the ground truth get the mean ([`Self::map`]),
    /// as Ultralytics' `maps`.
    pub fn maps(&self, nc: usize) -> Vec<f64> {
        (0..nc)
            .map(|c| self.class_map(c).unwrap_or_else(|| self.map()))
            .collect()
    }
    /// AP50-95 of one class id (None when the class is not in the ground truth).
    pub fn class_map(&self, cls: usize) -> Option<f64> {
        self.classes
            .iter()
            .position(|&c| c == cls)
            .map(|i| self.ap[i].iter().sum::<f64>() / 10.0)
    }
}

/// One validation table row: name `%22s`, images and instances `%11i`, then each value `%11.3g`.
pub fn table_row(name: &str, images: usize, instances: usize, values: &[f64]) -> String {
    let mut s = format!("{name:>22}{images:>11}{instances:>11}");
    for v in values {
        s.push_str(&format!("{:>11}", crate::util::fmt_g(*v, 3)));
    }
    s
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Confusion matrix `(nc+1) x (nc+1)`: rows predicted class, columns true class, index nc background.
#[derive(Debug, Clone)]
pub struct ConfusionMatrix {
    /// Counts, row-major.
    pub m: Vec<Vec<f64>>,
    /// Number of classes.
    pub nc: usize,
    /// Confidence threshold (8.4: the validator's conf).
    pub conf: f32,
    /// IoU threshold (0.45).
    pub iou: f32,
}

impl ConfusionMatrix {
    /// An empty matrix.
    pub fn new(nc: usize, conf: f32) -> Self {
        Self {
            m: vec![vec![0.0; nc + 1]; nc + 1],
            nc,
            conf,
            iou: 0.45,
        }
    }

    /// Adds one image (8.4 rule: class-agnostic greedy matching by descending confidence).
    pub fn process(&mut self, pred: &[([f32; 4], f32, usize)], gt: &[([f32; 4], usize)]) {
        let conf_cls: Vec<(f32, usize)> = pred.iter().map(|p| (p.1, p.2)).collect();
        let gt_cls: Vec<usize> = gt.iter().map(|g| g.1).collect();
        self.process_with_iou(&conf_cls, &gt_cls, |kept| {
            let gb: Vec<[f32; 4]> = gt.iter().map(|g| g.0).collect();
            let db: Vec<[f32; 4]> = kept.iter().map(|&i| pred[i].0).collect();
            box_iou(&gb, &db)
        });
    }

    /// Adds one image given its predictions' `(conf, class)`, its ground-truth classes and a
    /// function giving the IoU matrix `(n_gt, kept.len())` of the predictions kept by the confidence
    /// threshold (indices into `pred`): box IoU for detection, ProbIoU for OBB.
    pub fn process_with_iou(
        &mut self,
        pred: &[(f32, usize)],
        gt_cls: &[usize],
        iou: impl FnOnce(&[usize]) -> Vec<Vec<f32>>,
    ) {
        let nc = self.nc;
        let kept: Vec<usize> = (0..pred.len()).filter(|&i| pred[i].0 > self.conf).collect();
        if gt_cls.is_empty() {
            for &d in &kept {
                self.m[pred[d].1][nc] += 1.0;
            }
            return;
        }
        if pred.is_empty() {
            for &g in gt_cls {
                self.m[nc][g] += 1.0;
            }
            return;
        }
        let mut iou = iou(&kept);
        let mut gt_match: Vec<Option<usize>> = vec![None; gt_cls.len()];
        let mut order: Vec<usize> = (0..kept.len())
            .filter(|&d| iou.iter().any(|row| row[d] > self.iou))
            .collect();
        order.sort_by(|&a, &b| pred[kept[b]].0.total_cmp(&pred[kept[a]].0));
        for d in order {
            let (mut g, mut best) = (0, f32::NEG_INFINITY);
            for (k, row) in iou.iter().enumerate() {
                if row[d] > best {
                    best = row[d];
                    g = k;
                }
            }
            if best > self.iou {
                gt_match[g] = Some(d);
                iou[g].iter_mut().for_each(|v| *v = 0.0);
            }
        }
        let mut det_done = vec![false; kept.len()];
        for (g, m) in gt_match.iter().enumerate() {
            match m {
                Some(d) => {
                    det_done[*d] = true;
                    self.m[pred[kept[*d]].1][gt_cls[g]] += 1.0;
                }
                None => self.m[nc][gt_cls[g]] += 1.0,
            }
        }
        for (d, done) in det_done.iter().enumerate() {
            if !done {
                self.m[pred[kept[d]].1][nc] += 1.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ap_examples_from_the_spec() {
        // A perfect detector gives 0.995; recall 0.5 at precision 1 gives 0.495 in 8.4.
        assert!((compute_ap(&[1.0], &[1.0]).0 - 0.995).abs() < 1e-12);
        assert!((compute_ap(&[0.5], &[1.0]).0 - 0.495).abs() < 1e-12);
    }

    #[test]
    fn interp_matches_numpy() {
        let xp = [0.0, 1.0, 1.0, 2.0];
        let fp = [0.0, 1.0, 3.0, 4.0];
        assert_eq!(interp(1.0, &xp, &fp, -1.0, 9.0), 3.0);
        assert_eq!(interp(0.5, &xp, &fp, -1.0, 9.0), 0.5);
        assert_eq!(interp(-1.0, &xp, &fp, -1.0, 9.0), -1.0);
        assert_eq!(interp(3.0, &xp, &fp, -1.0, 9.0), 9.0);
    }

    #[test]
    fn greedy_matching_prefers_confident_predictions() {
        // One gt, two predictions of the same class overlapping it; the first (most confident) wins.
        let iou = vec![vec![0.6, 0.9]];
        let c = match_predictions(&[0, 0], &[0], &iou);
        assert!(c[0][0] && !c[1][0]);
        assert!(
            !c[0][3] && c[1][3],
            "at IoU 0.65 the free gt goes to the second"
        );
    }

    #[test]
    fn confusion_matrix_counts() {
        let mut cm = ConfusionMatrix::new(2, 0.25);
        let gt = [([0.0, 0.0, 10.0, 10.0], 0), ([20.0, 20.0, 30.0, 30.0], 1)];
        let pred = [
            ([0.0, 0.0, 10.0, 10.0], 0.9, 1),
            ([50.0, 50.0, 60.0, 60.0], 0.8, 0),
            ([0.0, 0.0, 9.0, 9.0], 0.1, 0),
        ];
        cm.process(&pred, &gt);
        assert_eq!(cm.m[1][0], 1.0); // predicted 1, true 0
        assert_eq!(cm.m[0][2], 1.0); // false positive of class 0
        assert_eq!(cm.m[2][1], 1.0); // missed class 1
    }
}
