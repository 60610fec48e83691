//! Constant-velocity Kalman filters in float64: XYAH (ByteTrack) and XYWH (BoT-SORT, TrackTrack).

#![allow(clippy::needless_range_loop)] // index loops mirror the matrix formulas

/// The 8-value state mean `[p1, p2, p3, p4, v1, v2, v3, v4]`.
pub type Mean = [f64; 8];
/// The 8×8 state covariance, row-major.
pub type Cov = [[f64; 8]; 8];

/// Weight of the position noise (1/20).
const STD_POS: f64 = 1.0 / 20.0;
/// Weight of the velocity noise (1/160).
const STD_VEL: f64 = 1.0 / 160.0;

/// Which box parameterisation the filter works in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KalmanKind {
    /// `(cx, cy, a = w/h, h)`: ByteTrack's `KalmanFilterXYAH`.
    Xyah,
    /// `(cx, cy, w, h)`: BoT-SORT's and TrackTrack's `KalmanFilterXYWH`.
    Xywh,
}

impl KalmanKind {
    /// Standard deviations of the initial covariance for measurement `z`.
    fn init_std(self, z: &[f64; 4]) -> [f64; 8] {
        match self {
            Self::Xyah => {
                let h = z[3];
                [
                    2.0 * STD_POS * h,
                    2.0 * STD_POS * h,
                    1e-2,
                    2.0 * STD_POS * h,
                    10.0 * STD_VEL * h,
                    10.0 * STD_VEL * h,
                    1e-5,
                    10.0 * STD_VEL * h,
                ]
            }
            Self::Xywh => {
                let (w, h) = (z[2], z[3]);
                [
                    2.0 * STD_POS * w,
                    2.0 * STD_POS * h,
                    2.0 * STD_POS * w,
                    2.0 * STD_POS * h,
                    10.0 * STD_VEL * w,
                    10.0 * STD_VEL * h,
                    10.0 * STD_VEL * w,
                    10.0 * STD_VEL * h,
                ]
            }
        }
    }

    /// Standard deviations of the process noise for the mean being predicted.
    fn motion_std(self, m: &Mean) -> [f64; 8] {
        match self {
            Self::Xyah => {
                let h = m[3];
                [
                    STD_POS * h,
                    STD_POS * h,
                    1e-2,
                    STD_POS * h,
                    STD_VEL * h,
                    STD_VEL * h,
                    1e-5,
                    STD_VEL * h,
                ]
            }
            Self::Xywh => {
                let (w, h) = (m[2], m[3]);
                [
                    STD_POS * w,
                    STD_POS * h,
                    STD_POS * w,
                    STD_POS * h,
                    STD_VEL * w,
                    STD_VEL * h,
                    STD_VEL * w,
                    STD_VEL * h,
                ]
            }
        }
    }

    /// Standard deviations of the measurement noise for the mean being projected.
    fn measure_std(self, m: &Mean) -> [f64; 4] {
        match self {
            Self::Xyah => [STD_POS * m[3], STD_POS * m[3], 1e-1, STD_POS * m[3]],
            Self::Xywh => [
                STD_POS * m[2],
                STD_POS * m[3],
                STD_POS * m[2],
                STD_POS * m[3],
            ],
        }
    }

    /// New track from measurement `z`: mean `[z, 0]`, diagonal covariance.
    pub fn initiate(self, z: [f64; 4]) -> (Mean, Cov) {
        let mut mean = [0.0; 8];
        mean[..4].copy_from_slice(&z);
        let std = self.init_std(&z);
        let mut cov = [[0.0; 8]; 8];
        for i in 0..8 {
            cov[i][i] = std[i] * std[i];
        }
        (mean, cov)
    }

    /// One constant-velocity step: `x = F x`, `P = F P Fᵀ + Q` (Q from the state before the step).
    pub fn predict(self, mean: &mut Mean, cov: &mut Cov) {
        let std = self.motion_std(mean);
        for i in 0..4 {
            mean[i] += mean[i + 4];
        }
        // F P: row i (< 4) gains row i + 4.
        let mut fp = *cov;
        for i in 0..4 {
            for j in 0..8 {
                fp[i][j] = cov[i][j] + cov[i + 4][j];
            }
        }
        // (F P) Fᵀ: column j (< 4) gains column j + 4.
        let mut out = fp;
        for row in out.iter_mut() {
            for j in 0..4 {
                row[j] += row[j + 4];
            }
        }
        for i in 0..8 {
            out[i][i] += std[i] * std[i];
        }
        *cov = out;
    }

    /// Kalman correction with measurement `z`; `r_scale` multiplies the measurement variance
    /// (TrackTrack's confidence-scaled noise), 1.0 for the plain filter.
    pub fn update(self, mean: &mut Mean, cov: &mut Cov, z: [f64; 4], r_scale: f64) {
        let std = self.measure_std(mean);
        // S = H P Hᵀ + R.
        let mut s = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                s[i][j] = cov[i][j];
            }
            s[i][i] += std[i] * std[i] * r_scale;
        }
        // K = P Hᵀ S⁻¹, solved as S Kᵀ = (P Hᵀ)ᵀ.
        let mut rhs = [[0.0; 8]; 4];
        for i in 0..4 {
            for j in 0..8 {
                rhs[i][j] = cov[j][i];
            }
        }
        let kt = solve4(s, rhs);
        let mut innov = [0.0; 4];
        for i in 0..4 {
            innov[i] = z[i] - mean[i];
        }
        for j in 0..8 {
            let mut acc = 0.0;
            for i in 0..4 {
                acc += innov[i] * kt[i][j];
            }
            mean[j] += acc;
        }
        // P = P − K S Kᵀ.
        let mut ks = [[0.0; 4]; 8];
        for i in 0..8 {
            for j in 0..4 {
                ks[i][j] = (0..4).map(|k| kt[k][i] * s[k][j]).sum();
            }
        }
        for i in 0..8 {
            for j in 0..8 {
                let v: f64 = (0..4).map(|k| ks[i][k] * kt[k][j]).sum();
                cov[i][j] -= v;
            }
        }
    }
}

/// Solves `S X = B` for a 4×4 `S` and 4×8 `B` by Gaussian elimination with partial pivoting.
fn solve4(mut s: [[f64; 4]; 4], mut b: [[f64; 8]; 4]) -> [[f64; 8]; 4] {
    for c in 0..4 {
        let p = (c..4)
            .max_by(|&a, &bb| s[a][c].abs().total_cmp(&s[bb][c].abs()))
            .unwrap_or(c);
        s.swap(c, p);
        b.swap(c, p);
        for r in c + 1..4 {
            let f = s[r][c] / s[c][c];
            if f == 0.0 {
                continue;
            }
            for k in c..4 {
                s[r][k] -= f * s[c][k];
            }
            for k in 0..8 {
                b[r][k] -= f * b[c][k];
            }
        }
    }
    let mut x = [[0.0; 8]; 4];
    for r in (0..4).rev() {
        for k in 0..8 {
            let mut v = b[r][k];
            for c in r + 1..4 {
                v -= s[r][c] * x[c][k];
            }
            x[r][k] = v / s[r][r];
        }
    }
    x
}

/// Applies a 2×3 camera-motion warp to an XYWH state: `M8 = blockdiag(R, |R|, R, |R|)`,
/// `x = M8 x`, `x[0..2] += t`, `P = M8 P M8ᵀ`.
pub fn warp_xywh(mean: &mut Mean, cov: &mut Cov, h: &[[f64; 3]; 2]) {
    let r = [[h[0][0], h[0][1]], [h[1][0], h[1][1]]];
    let ra = [
        [r[0][0].abs(), r[0][1].abs()],
        [r[1][0].abs(), r[1][1].abs()],
    ];
    let mut m = [[0.0; 8]; 8];
    for (b, blk) in [r, ra, r, ra].iter().enumerate() {
        for i in 0..2 {
            for j in 0..2 {
                m[2 * b + i][2 * b + j] = blk[i][j];
            }
        }
    }
    let mut nm = [0.0; 8];
    for i in 0..8 {
        nm[i] = (0..8).map(|k| m[i][k] * mean[k]).sum();
    }
    nm[0] += h[0][2];
    nm[1] += h[1][2];
    *mean = nm;
    let mut mp = [[0.0; 8]; 8];
    for i in 0..8 {
        for j in 0..8 {
            mp[i][j] = (0..8).map(|k| m[i][k] * cov[k][j]).sum();
        }
    }
    for i in 0..8 {
        for j in 0..8 {
            cov[i][j] = (0..8).map(|k| mp[i][k] * m[j][k]).sum();
        }
    }
}
