//! Classification metrics (spec/classify.md §6): top-1 / top-5 accuracy, fitness, and the
//! `nc x nc` confusion matrix (rows predicted, columns true).

/// The `min(nc, 5)` class indices of `probs` in descending order (ties: lower index first).
pub fn topk(probs: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    idx.truncate(k.min(probs.len()));
    idx
}

/// Collected predictions of a classification validation.
#[derive(Debug, Clone, Default)]
pub struct ClsStats {
    /// Top-`min(nc, 5)` predicted classes per sample.
    pub pred: Vec<Vec<usize>>,
    /// True class per sample.
    pub target: Vec<usize>,
}

impl ClsStats {
    /// Adds one sample from its probabilities (or logits: only the order matters).
    pub fn add(&mut self, probs: &[f32], target: usize) {
        self.pred.push(topk(probs, 5));
        self.target.push(target);
    }
}

/// Top-1, top-5, fitness and the confusion matrix (Ultralytics `ClassifyMetrics`).
#[derive(Debug, Clone, Default)]
pub struct ClsMetrics {
    /// Fraction of samples whose best class is right.
    pub top1: f64,
    /// Fraction of samples whose true class is among the best `min(nc, 5)`.
    pub top5: f64,
    /// `M[pred][true]` counts.
    pub confusion: Vec<Vec<f64>>,
}

impl ClsMetrics {
    /// Computes the metrics of `nc` classes (float32 means, as Ultralytics).
    pub fn compute(s: &ClsStats, nc: usize) -> Self {
        let n = s.target.len();
        let mut confusion = vec![vec![0.0; nc]; nc];
        let (mut c1, mut c5) = (0f32, 0f32);
        for (p, &t) in s.pred.iter().zip(&s.target) {
            if p.first() == Some(&t) {
                c1 += 1.0;
            }
            if p.contains(&t) {
                c5 += 1.0;
            }
            if let Some(&top) = p.first() {
                if top < nc && t < nc {
                    confusion[top][t] += 1.0;
                }
            }
        }
        let mean = |c: f32| if n == 0 { 0.0 } else { (c / n as f32) as f64 };
        Self {
            top1: mean(c1),
            top5: mean(c5),
            confusion,
        }
    }

    /// `(top1 + top5) / 2` of the float32 accuracies, in double precision (as Ultralytics).
    pub fn fitness(&self) -> f64 {
        (self.top1 + self.top5) / 2.0
    }

    /// The validation header `classes top1_acc top5_acc`.
    pub fn table_header() -> String {
        format!("{:>22}{:>11}{:>11}", "classes", "top1_acc", "top5_acc")
    }

    /// The single `all` row (`%22s%11.3g%11.3g`).
    pub fn table_row(&self) -> String {
        format!(
            "{:>22}{:>11}{:>11}",
            "all",
            crate::util::fmt_g(self.top1, 3),
            crate::util::fmt_g(self.top5, 3)
        )
    }
}
