//! HOTA (Higher Order Tracking Accuracy) as TrackEval computes it: 19 localisation thresholds
//! α = 0.05…0.95, DetA, AssA, LocA, per sequence and combined (sums, TP-weighted AssA/LocA).

use super::lsa::min_cost_assignment;
use std::collections::HashMap;

/// Number of α thresholds (`np.arange(0.05, 0.99, 0.05)`).
pub const ALPHAS: usize = 19;

/// α number `a` as NumPy's `arange` makes it (`start + a · step`).
pub fn alpha(a: usize) -> f64 {
    0.05 + a as f64 * 0.05
}

/// One frame: GT ids, tracker ids and their IoU similarities (row-major, GT × tracker).
#[derive(Clone, Debug, Default)]
pub struct HotaFrame {
    /// GT ids.
    pub gt: Vec<i64>,
    /// Tracker ids.
    pub hyp: Vec<i64>,
    /// `gt.len() × hyp.len()` similarities.
    pub sim: Vec<f64>,
}

/// Per-α sums from which HOTA is computed; they add across sequences (TrackEval's `combine_sequences`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HotaSums {
    /// Matched detections per α.
    pub tp: [f64; ALPHAS],
    /// Unmatched GT detections per α.
    pub fn_: [f64; ALPHAS],
    /// Unmatched tracker detections per α.
    pub fp: [f64; ALPHAS],
    /// AssA · TP per α (the TP-weighted association accuracy).
    pub ass: [f64; ALPHAS],
    /// Sum of the matched similarities per α.
    pub loc: [f64; ALPHAS],
}

impl HotaSums {
    /// Adds another sequence's sums.
    pub fn add(&mut self, o: &HotaSums) {
        for a in 0..ALPHAS {
            self.tp[a] += o.tp[a];
            self.fn_[a] += o.fn_[a];
            self.fp[a] += o.fp[a];
            self.ass[a] += o.ass[a];
            self.loc[a] += o.loc[a];
        }
    }
    /// DetA at α number `a`.
    pub fn det_a_at(&self, a: usize) -> f64 {
        self.tp[a] / (self.tp[a] + self.fn_[a] + self.fp[a]).max(1.0)
    }
    /// AssA at α number `a`.
    pub fn ass_a_at(&self, a: usize) -> f64 {
        self.ass[a] / self.tp[a].max(1.0)
    }
    /// LocA at α number `a`.
    pub fn loc_a_at(&self, a: usize) -> f64 {
        self.loc[a].max(1e-10) / self.tp[a].max(1e-10)
    }
    /// HOTA at α number `a`.
    pub fn hota_at(&self, a: usize) -> f64 {
        (self.det_a_at(a) * self.ass_a_at(a)).sqrt()
    }
    fn mean(&self, f: impl Fn(usize) -> f64) -> f64 {
        (0..ALPHAS).map(f).sum::<f64>() / ALPHAS as f64
    }
    /// HOTA averaged over the α thresholds.
    pub fn hota(&self) -> f64 {
        self.mean(|a| self.hota_at(a))
    }
    /// DetA averaged over α.
    pub fn det_a(&self) -> f64 {
        self.mean(|a| self.det_a_at(a))
    }
    /// AssA averaged over α.
    pub fn ass_a(&self) -> f64 {
        self.mean(|a| self.ass_a_at(a))
    }
    /// LocA averaged over α.
    pub fn loc_a(&self) -> f64 {
        self.mean(|a| self.loc_a_at(a))
    }
}

/// HOTA sums of one sequence.
pub fn hota(frames: &[HotaFrame]) -> HotaSums {
    let mut s = HotaSums::default();
    let eps = f64::EPSILON;
    let mut gid: HashMap<i64, usize> = HashMap::new();
    let mut hid: HashMap<i64, usize> = HashMap::new();
    for f in frames {
        for &g in &f.gt {
            let n = gid.len();
            gid.entry(g).or_insert(n);
        }
        for &h in &f.hyp {
            let n = hid.len();
            hid.entry(h).or_insert(n);
        }
    }
    let (ng, nt) = (gid.len(), hid.len());
    let mut potential = vec![0.0f64; ng * nt];
    let mut gcount = vec![0.0f64; ng];
    let mut tcount = vec![0.0f64; nt];
    for f in frames {
        let (no, nh) = (f.gt.len(), f.hyp.len());
        let rows: Vec<f64> = (0..no)
            .map(|i| f.sim[i * nh..(i + 1) * nh].iter().sum())
            .collect();
        let cols: Vec<f64> = (0..nh)
            .map(|j| (0..no).map(|i| f.sim[i * nh + j]).sum())
            .collect();
        for i in 0..no {
            for j in 0..nh {
                let v = f.sim[i * nh + j];
                let den = cols[j] + rows[i] - v;
                if den > eps {
                    potential[gid[&f.gt[i]] * nt + hid[&f.hyp[j]]] += v / den;
                }
            }
        }
        for g in &f.gt {
            gcount[gid[g]] += 1.0;
        }
        for h in &f.hyp {
            tcount[hid[h]] += 1.0;
        }
    }
    let mut gas = vec![0.0f64; ng * nt];
    for g in 0..ng {
        for t in 0..nt {
            let p = potential[g * nt + t];
            gas[g * nt + t] = p / (gcount[g] + tcount[t] - p);
        }
    }
    let mut matches = vec![vec![0.0f64; ng * nt]; ALPHAS];
    for f in frames {
        let (no, nh) = (f.gt.len(), f.hyp.len());
        if no == 0 || nh == 0 {
            for a in 0..ALPHAS {
                s.fp[a] += nh as f64;
                s.fn_[a] += no as f64;
            }
            continue;
        }
        let gi: Vec<usize> = f.gt.iter().map(|g| gid[g]).collect();
        let hi: Vec<usize> = f.hyp.iter().map(|h| hid[h]).collect();
        let neg: Vec<f64> = (0..no * nh)
            .map(|k| -(gas[gi[k / nh] * nt + hi[k % nh]] * f.sim[k]))
            .collect();
        let pairs = min_cost_assignment(no, nh, &neg);
        for (a, m) in matches.iter_mut().enumerate() {
            let thr = alpha(a) - eps;
            let mut n = 0.0;
            for &(i, j) in &pairs {
                let v = f.sim[i * nh + j];
                if v >= thr {
                    n += 1.0;
                    s.loc[a] += v;
                    m[gi[i] * nt + hi[j]] += 1.0;
                }
            }
            s.tp[a] += n;
            s.fn_[a] += no as f64 - n;
            s.fp[a] += nh as f64 - n;
        }
    }
    for (a, m) in matches.iter().enumerate() {
        let mut sum = 0.0;
        for g in 0..ng {
            for t in 0..nt {
                let c = m[g * nt + t];
                sum += c * (c / (gcount[g] + tcount[t] - c).max(1.0));
            }
        }
        // TrackEval stores AssA = sum / max(1, TP) and weights it by TP when combining.
        let ass_a = sum / s.tp[a].max(1.0);
        s.ass[a] = ass_a * s.tp[a];
    }
    s
}
