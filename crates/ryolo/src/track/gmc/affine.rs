//! 4-DoF similarity (`estimateAffinePartial2D`) by RANSAC with OpenCV's RNG and sampling, then a
//! Levenberg–Marquardt refinement on the inliers.

use super::Warp;

/// OpenCV's `cv::RNG` (multiply-with-carry, multiplier 4164903690).
#[derive(Clone, Copy, Debug)]
pub struct CvRng(u64);

impl CvRng {
    /// `RNG(seed)` (0 becomes 0xffffffff, as OpenCV).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0xffff_ffff } else { seed })
    }

    /// The next 32-bit value.
    pub fn next_u32(&mut self) -> u32 {
        self.0 = (self.0 as u32 as u64)
            .wrapping_mul(4_164_903_690)
            .wrapping_add(self.0 >> 32);
        self.0 as u32
    }

    /// `uniform(a, b)` for integers: `a + next % (b − a)`.
    pub fn uniform(&mut self, a: i32, b: i32) -> i32 {
        if a == b {
            a
        } else {
            (self.next_u32() % (b - a) as u32) as i32 + a
        }
    }
}

/// RANSAC settings (OpenCV defaults of `estimateAffinePartial2D`).
#[derive(Clone, Copy, Debug)]
pub struct RansacParams {
    /// Inlier reprojection threshold (pixels).
    pub threshold: f64,
    /// Most iterations.
    pub max_iters: usize,
    /// Confidence that decides the adaptive iteration count.
    pub confidence: f64,
    /// Levenberg–Marquardt iterations on the inliers (0: none).
    pub refine_iters: usize,
}

impl Default for RansacParams {
    fn default() -> Self {
        Self {
            threshold: 3.0,
            max_iters: 2000,
            confidence: 0.99,
            refine_iters: 10,
        }
    }
}

/// The similarity through two point pairs (OpenCV's closed form), as a 2×3 warp.
fn two_point(f: [[f32; 2]; 2], t: [[f32; 2]; 2]) -> Warp {
    let (x1, y1, x2, y2) = (
        f[0][0] as f64,
        f[0][1] as f64,
        f[1][0] as f64,
        f[1][1] as f64,
    );
    let (xx1, yy1, xx2, yy2) = (
        t[0][0] as f64,
        t[0][1] as f64,
        t[1][0] as f64,
        t[1][1] as f64,
    );
    let d = 1.0 / ((x1 - x2) * (x1 - x2) + (y1 - y2) * (y1 - y2));
    let s0 = d * ((xx1 - xx2) * (x1 - x2) + (yy1 - yy2) * (y1 - y2));
    let s1 = d * ((yy1 - yy2) * (x1 - x2) - (xx1 - xx2) * (y1 - y2));
    let s2 = d
        * ((yy1 - yy2) * (x1 * y2 - x2 * y1)
            - (xx1 * y2 - xx2 * y1) * (y1 - y2)
            - (xx1 * x2 - xx2 * x1) * (x1 - x2));
    let s3 = d
        * (-(xx1 - xx2) * (x1 * y2 - x2 * y1)
            - (yy1 * x2 - yy2 * x1) * (x1 - x2)
            - (yy1 * y2 - yy2 * y1) * (y1 - y2));
    [[s0, -s1, s2], [s1, s0, s3]]
}

/// Inlier flags of `m` (squared error in float ≤ threshold², as OpenCV) and their count.
fn inliers(m: &Warp, from: &[[f32; 2]], to: &[[f32; 2]], thr: f64, mask: &mut [bool]) -> usize {
    let h: Vec<f32> = m.iter().flatten().map(|&v| v as f32).collect();
    let t = (thr * thr) as f32;
    let mut n = 0;
    for ((f, d), k) in from.iter().zip(to).zip(mask.iter_mut()) {
        let a = h[0] * f[0] + h[1] * f[1] + h[2] - d[0];
        let b = h[3] * f[0] + h[4] * f[1] + h[5] - d[1];
        *k = a * a + b * b <= t;
        n += *k as usize;
    }
    n
}

/// OpenCV's `RANSACUpdateNumIters`.
fn update_iters(p: f64, ep: f64, model_points: i32, max_iters: usize) -> usize {
    let p = p.clamp(0.0, 1.0);
    let ep = ep.clamp(0.0, 1.0);
    let num = (1.0 - p).max(f64::MIN_POSITIVE);
    let denom = 1.0 - (1.0 - ep).powi(model_points);
    if denom < f64::MIN_POSITIVE {
        return 0;
    }
    let (num, denom) = (num.ln(), denom.ln());
    if denom >= 0.0 || -num >= max_iters as f64 * -denom {
        max_iters
    } else {
        (num / denom).round_ties_even() as usize
    }
}

/// `estimateAffinePartial2D(from, to, RANSAC)`: the warp and the inlier mask, or `None` when no model
/// was found (fewer than 2 points, or no non-degenerate sample).
pub fn estimate_partial(
    from: &[[f32; 2]],
    to: &[[f32; 2]],
    p: RansacParams,
) -> Option<(Warp, Vec<bool>)> {
    let n = from.len();
    if n < 2 || to.len() != n {
        return None;
    }
    let mut best: Option<Warp> = None;
    let mut best_mask = vec![false; n];
    if n == 2 {
        best = Some(two_point([from[0], from[1]], [to[0], to[1]]));
        best_mask = vec![true; 2];
    } else {
        let mut rng = CvRng::new(u64::MAX);
        let mut mask = vec![false; n];
        let mut max_good = 0usize;
        let mut niters = p.max_iters.max(1);
        let mut iter = 0;
        while iter < niters {
            let Some(idx) = subset(&mut rng, from, to, 10_000) else {
                if iter == 0 {
                    return None;
                }
                break;
            };
            let m = two_point([from[idx[0]], from[idx[1]]], [to[idx[0]], to[idx[1]]]);
            let good = inliers(&m, from, to, p.threshold, &mut mask);
            if good > max_good.max(1) {
                std::mem::swap(&mut mask, &mut best_mask);
                best = Some(m);
                max_good = good;
                niters = update_iters(p.confidence, (n - good) as f64 / n as f64, 2, niters);
            }
            iter += 1;
        }
        if max_good == 0 {
            return None;
        }
    }
    let mut m = best?;
    if n > 2 && p.refine_iters > 0 {
        let src: Vec<[f32; 2]> = (0..n).filter(|&i| best_mask[i]).map(|i| from[i]).collect();
        let dst: Vec<[f32; 2]> = (0..n).filter(|&i| best_mask[i]).map(|i| to[i]).collect();
        if !src.is_empty() {
            let x = refine(
                [m[0][0], m[1][0], m[0][2], m[1][2]],
                &src,
                &dst,
                p.refine_iters,
            );
            m = [[x[0], -x[1], x[2]], [x[1], x[0], x[3]]];
        }
    }
    Some((m, best_mask))
}

/// Two distinct random indices whose points are not degenerate (OpenCV's `getSubset` for 2-point models:
/// only distinctness is checked, no collinearity test exists for two points).
fn subset(
    rng: &mut CvRng,
    from: &[[f32; 2]],
    _to: &[[f32; 2]],
    attempts: usize,
) -> Option<[usize; 2]> {
    let n = from.len() as i32;
    if attempts == 0 {
        return None;
    }
    let a = rng.uniform(0, n);
    let mut b = rng.uniform(0, n);
    while b == a {
        b = rng.uniform(0, n);
    }
    Some([a as usize, b as usize])
}

/// Residuals `[x', y'] − dst` of the similarity `(a, b, tx, ty)` on every pair.
fn residuals(x: &[f64; 4], src: &[[f32; 2]], dst: &[[f32; 2]]) -> Vec<f64> {
    let mut r = Vec::with_capacity(src.len() * 2);
    for (s, d) in src.iter().zip(dst) {
        let (mx, my) = (s[0] as f64, s[1] as f64);
        r.push(x[0] * mx - x[1] * my + x[2] - d[0] as f64);
        r.push(x[1] * mx + x[0] * my + x[3] - d[1] as f64);
    }
    r
}

/// `JᵀJ` and `Jᵀr` of the similarity residuals (the Jacobian does not depend on the parameters).
fn normal_eqs(src: &[[f32; 2]], r: &[f64]) -> ([[f64; 4]; 4], [f64; 4]) {
    let mut a = [[0f64; 4]; 4];
    let mut v = [0f64; 4];
    for (i, s) in src.iter().enumerate() {
        let (mx, my) = (s[0] as f64, s[1] as f64);
        let rows = [[mx, -my, 1.0, 0.0], [my, mx, 0.0, 1.0]];
        for (k, j) in rows.iter().enumerate() {
            let rr = r[2 * i + k];
            for p in 0..4 {
                v[p] += j[p] * rr;
                for q in 0..4 {
                    a[p][q] += j[p] * j[q];
                }
            }
        }
    }
    (a, v)
}

/// Solves the 4×4 system `a·x = b` (Gaussian elimination with partial pivoting); `None` if singular.
#[allow(clippy::needless_range_loop)] // index arithmetic of a small dense matrix
fn solve4(mut a: [[f64; 4]; 4], mut b: [f64; 4]) -> Option<[f64; 4]> {
    for c in 0..4 {
        let p = (c..4).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[p][c].abs() < 1e-300 {
            return None;
        }
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..4 {
            let f = a[r][c] / a[c][c];
            for k in c..4 {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0f64; 4];
    for c in (0..4).rev() {
        let s: f64 = (c + 1..4).map(|k| a[c][k] * x[k]).sum();
        x[c] = (b[c] - s) / a[c][c];
    }
    Some(x)
}

/// Energy `‖r‖²`, `JᵀJ` and `Jᵀr` of the similarity at `x`.
fn linearise(x: &[f64; 4], src: &[[f32; 2]], dst: &[[f32; 2]]) -> (f64, [[f64; 4]; 4], [f64; 4]) {
    let r = residuals(x, src, dst);
    let (a, v) = normal_eqs(src, &r);
    (r.iter().map(|v| v * v).sum(), a, v)
}

/// OpenCV 5's `LevMarq` as `estimateAffinePartial2D` runs it (dense backend, geodesic acceleration on):
/// damping λ from 1e-4 on diag(JᵀJ) clamped to [1e-6, 1e32], λ raised ×2, ×4, … on a failed step and
/// scaled by max(1/3, 1 − (2q − 1)³) on a good one (q: actual over predicted decrease); stops after `iters`
/// steps or when the gradient, the step or the relative energy change falls under 1e-6.
fn refine(x0: [f64; 4], src: &[[f32; 2]], dst: &[[f32; 2]], iters: usize) -> [f64; 4] {
    const H_GEO: f64 = 1e-4;
    let mut x = x0;
    let (mut old, mut jtj, mut jtb) = linearise(&x, src, dst);
    let (mut lambda, mut up) = (1e-4f64, 2.0f64);
    let mut iter = 0;
    let mut done = iters == 0;
    while !done {
        let grad_max = jtb.iter().fold(0f64, |m, v| m.max(v.abs()));
        let diag = [jtj[0][0], jtj[1][1], jtj[2][2], jtj[3][3]];
        let mut enough = false;
        while !enough && !done {
            let lm = diag.map(|d| (d * lambda).clamp(1e-6, 1e32));
            let mut a = jtj;
            for i in 0..4 {
                a[i][i] = lm[i] + diag[i];
            }
            let mut accepted = None;
            if let Some(mut dx) = solve4(a, jtb.map(|v| -v)) {
                let jac_change = -0.5
                    * (0..4)
                        .map(|i| dx[i] * (jtb[i] - lm[i] * dx[i]))
                        .sum::<f64>();
                let x_norm: f64 = dx.iter().map(|v| v * v).sum();
                // Geodesic acceleration: the second directional derivative along dx, by a finite step.
                let geo = [0, 1, 2, 3].map(|i| x[i] + dx[i] * H_GEO);
                let (_, _, jtbv) = linearise(&geo, src, dst);
                let jtrvv = [0, 1, 2, 3].map(|i| {
                    (jtbv[i] + jtb[i] * (H_GEO - 1.0) + lm[i] * dx[i] * H_GEO) / (H_GEO * H_GEO)
                });
                if let Some(xg) = solve4(a, jtrvv.map(|v| -v)) {
                    let dd: f64 = dx.iter().map(|v| v * v).sum();
                    let gg: f64 = xg.iter().map(|v| v * v).sum();
                    if (gg / dd).sqrt() < 1.0 {
                        for i in 0..4 {
                            dx[i] += xg[i] * 0.5;
                        }
                    }
                }
                let probe = [0, 1, 2, 3].map(|i| x[i] + dx[i]);
                let energy: f64 = residuals(&probe, src, dst).iter().map(|v| v * v).sum();
                if !energy.is_finite() {
                    return x;
                }
                let change = old - energy;
                if change >= 0.0 {
                    accepted = Some((probe, energy, change, change / jac_change, x_norm));
                }
            }
            match accepted {
                None => {
                    lambda *= up;
                    up *= 2.0;
                }
                Some((probe, energy, change, quality, x_norm)) => {
                    enough = true;
                    lambda *= (1.0f64 / 3.0).max(1.0 - (2.0 * quality - 1.0).powi(3));
                    up = 2.0;
                    let small = grad_max < 1e-6 || x_norm < 1e-6 || change / energy < 1e-6;
                    x = probe;
                    old = energy;
                    done = small;
                }
            }
            iter += 1;
            done = done || iter >= iters || lambda >= 1e32;
        }
        if !done {
            (_, jtj, jtb) = linearise(&x, src, dst);
        }
    }
    x
}
