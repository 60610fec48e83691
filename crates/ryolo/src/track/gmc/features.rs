//! Ultralytics' feature-based GMC (`orb`, `sift`): masked keypoints on the 2×-downscaled frame, 2-NN
//! matching to the previous frame, ratio / distance / 2.5σ filters and a RANSAC similarity.

use super::affine::{estimate_partial, RansacParams};
use super::gray::Gray;
use super::{fast, orb, sift, Gmc, Warp, IDENTITY};

/// Which detector/descriptor pair runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureKind {
    /// FAST(20) keypoints with ORB descriptors, Hamming matching.
    Orb,
    /// SIFT(3 layers, contrast 0.02, edge 20) keypoints and descriptors, L2 matching.
    Sift,
}

/// Descriptors of one frame.
#[derive(Clone, Debug)]
pub enum Descriptors {
    /// ORB: 256-bit strings.
    Binary(Vec<orb::OrbDesc>),
    /// SIFT: 128 floats each.
    Float(Vec<[f32; 128]>),
}

impl Descriptors {
    /// How many descriptors there are.
    pub fn len(&self) -> usize {
        match self {
            Self::Binary(d) => d.len(),
            Self::Float(d) => d.len(),
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keypoint positions and descriptors of one frame.
#[derive(Clone, Debug)]
pub struct Features {
    /// Keypoint positions (downscaled frame pixels), in the order of `desc`.
    pub pts: Vec<[f32; 2]>,
    /// One descriptor per point.
    pub desc: Descriptors,
}

/// Ultralytics' detection mask: 255 on `[int(0.02 h), int(0.98 h)) × [int(0.02 w), int(0.98 w))`, 0 on each
/// box `(xyxy / 2)` truncated to integers (numpy slicing: negative indices count from the end).
pub fn mask(w: usize, h: usize, dets: &[[f32; 4]], downscale: f32) -> Vec<bool> {
    let mut m = vec![false; w * h];
    let (y0, y1) = ((0.02 * h as f64) as usize, (0.98 * h as f64) as usize);
    let (x0, x1) = ((0.02 * w as f64) as usize, (0.98 * w as f64) as usize);
    if x0 < x1.min(w) {
        for y in y0..y1.min(h) {
            m[y * w + x0..y * w + x1.min(w)].fill(true);
        }
    }
    let slice = |a: f32, b: f32, n: usize| -> (usize, usize) {
        let idx = |v: f32| -> usize {
            let i = (v / downscale) as i64; // truncation toward zero, as astype(np.int_)
            let i = if i < 0 { i + n as i64 } else { i };
            i.clamp(0, n as i64) as usize
        };
        (idx(a), idx(b))
    };
    for d in dets {
        if !d.iter().all(|v| v.is_finite()) {
            continue;
        }
        let (bx0, bx1) = slice(d[0], d[2], w);
        let (by0, by1) = slice(d[1], d[3], h);
        for y in by0..by1 {
            if bx0 < bx1 {
                m[y * w + bx0..y * w + bx1].fill(false);
            }
        }
    }
    m
}

/// FAST(20) keypoints allowed by `mask`, then ORB descriptors (keypoints near the border dropped).
pub fn orb_features(img: &Gray, mask: &[bool]) -> Features {
    let pts: Vec<[f32; 2]> = fast::fast9(img, 20)
        .into_iter()
        .filter(|c| mask[c.y * img.w + c.x])
        .map(|c| [c.x as f32, c.y as f32])
        .collect();
    let (keep, desc) = orb::compute(img, &pts, -1.0);
    Features {
        pts: keep.iter().map(|&i| pts[i]).collect(),
        desc: Descriptors::Binary(desc),
    }
}

/// The two nearest train descriptors of each query (`BFMatcher.knnMatch(k=2)`: earlier index first on
/// ties), as `(train index, distance)` pairs; `None` when the train set has fewer than 2.
pub fn knn2(query: &Descriptors, train: &Descriptors) -> Vec<Option<[(usize, f32); 2]>> {
    fn best2(n: usize, dist: impl Fn(usize) -> f32) -> Option<[(usize, f32); 2]> {
        if n < 2 {
            return None;
        }
        let mut b = [(usize::MAX, f32::INFINITY); 2];
        for j in 0..n {
            let d = dist(j);
            if d < b[1].1 {
                if d < b[0].1 {
                    b[1] = b[0];
                    b[0] = (j, d);
                } else {
                    b[1] = (j, d);
                }
            }
        }
        Some(b)
    }
    match (query, train) {
        (Descriptors::Binary(q), Descriptors::Binary(t)) => q
            .iter()
            .map(|a| {
                best2(t.len(), |j| {
                    a.iter()
                        .zip(&t[j])
                        .map(|(x, y)| (x ^ y).count_ones())
                        .sum::<u32>() as f32
                })
            })
            .collect(),
        (Descriptors::Float(q), Descriptors::Float(t)) => q
            .iter()
            .map(|a| best2(t.len(), |j| sift::l2(a, &t[j])))
            .collect(),
        _ => Vec::new(),
    }
}

/// Ultralytics' match filters: ratio 0.9, |displacement| under a quarter of the (downscaled) frame per
/// axis, then every displacement within 2.5 σ of the mean per axis. Returns the kept (previous, current)
/// point pairs.
pub fn filter_matches(
    prev: &Features,
    cur: &Features,
    w: usize,
    h: usize,
) -> (Vec<[f32; 2]>, Vec<[f32; 2]>) {
    let max = [0.25 * w as f64, 0.25 * h as f64];
    let (mut from, mut to, mut disp) = (Vec::new(), Vec::new(), Vec::new());
    for (qi, m) in knn2(&prev.desc, &cur.desc).into_iter().enumerate() {
        let Some([(ti, d0), (_, d1)]) = m else {
            continue;
        };
        if (d0 as f64) < 0.9 * d1 as f64 {
            let (p, c) = (prev.pts[qi], cur.pts[ti]);
            let s = [p[0] as f64 - c[0] as f64, p[1] as f64 - c[1] as f64];
            if s[0].abs() < max[0] && s[1].abs() < max[1] {
                disp.push(s);
                from.push(p);
                to.push(c);
            }
        }
    }
    if disp.is_empty() {
        return (from, to);
    }
    let n = disp.len() as f64;
    let mean: [f64; 2] = std::array::from_fn(|a| disp.iter().map(|s| s[a]).sum::<f64>() / n);
    let std: [f64; 2] = std::array::from_fn(|a| {
        (disp.iter().map(|s| (s[a] - mean[a]).powi(2)).sum::<f64>() / n).sqrt()
    });
    let good: Vec<bool> = disp
        .iter()
        .map(|s| (0..2).all(|a| (s[a] - mean[a]).abs() <= 2.5 * std[a]))
        .collect();
    let keep = |v: Vec<[f32; 2]>| -> Vec<[f32; 2]> {
        v.into_iter()
            .zip(&good)
            .filter(|(_, &g)| g)
            .map(|(p, _)| p)
            .collect()
    };
    (keep(from), keep(to))
}

/// Feature-based motion compensation (state: the previous frame's features).
#[derive(Clone, Debug)]
pub struct FeatureGmc {
    /// The detector/descriptor.
    kind: FeatureKind,
    /// The previous frame's features (`None` before the first frame).
    prev: Option<Features>,
    /// Whether a warning was said (once per instance).
    warned: bool,
    /// The last frame's keypoint count and the point pairs handed to RANSAC (0 when it did not run).
    pub last: (usize, usize),
}

impl FeatureGmc {
    /// A fresh instance of `kind` (the next frame is a first frame).
    pub fn new(kind: FeatureKind) -> Self {
        Self {
            kind,
            prev: None,
            warned: false,
            last: (0, 0),
        }
    }

    /// The features of a downscaled frame under `mask`.
    pub fn features(&self, small: &Gray, mask: &[bool]) -> Features {
        match self.kind {
            FeatureKind::Orb => orb_features(small, mask),
            FeatureKind::Sift => sift::sift_features(small, mask),
        }
    }

    /// The warp for a full-resolution gray frame and its detection boxes (`xyxy`, full-resolution pixels).
    pub fn apply_gray(&mut self, gray: &Gray, dets: &[[f32; 4]]) -> Warp {
        let small = gray.half();
        let m = mask(small.w, small.h, dets, 2.0);
        let cur = self.features(&small, &m);
        self.last = (cur.pts.len(), 0);
        let Some(prev) = self.prev.replace(cur) else {
            return IDENTITY;
        };
        let cur = self.prev.as_ref().expect("just stored");
        let (from, to) = filter_matches(&prev, cur, small.w, small.h);
        if from.is_empty() {
            return IDENTITY;
        }
        if from.len() <= 4 {
            self.warn("not enough matching points");
            return IDENTITY;
        }
        self.last.1 = from.len();
        match estimate_partial(&from, &to, RansacParams::default()) {
            Some((mut h, _)) => {
                h[0][2] *= 2.0;
                h[1][2] *= 2.0;
                h
            }
            None => {
                self.warn("affine estimation failed");
                IDENTITY
            }
        }
    }

    /// Says `what` once per instance (Ultralytics warns on every frame).
    fn warn(&mut self, what: &str) {
        if !self.warned {
            let name = match self.kind {
                FeatureKind::Orb => "orb",
                FeatureKind::Sift => "sift",
            };
            eprintln!(
                "WARNING: GMC {name}: {what}; using the identity warp (said once per tracker)"
            );
            self.warned = true;
        }
    }
}

impl Gmc for FeatureGmc {
    fn apply(&mut self, frame: &image::RgbImage, dets: &[[f32; 4]]) -> Warp {
        self.apply_gray(&Gray::from_rgb(frame), dets)
    }

    fn reset(&mut self) {
        self.prev = None;
    }
}
