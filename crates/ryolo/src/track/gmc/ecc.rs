//! Ultralytics' `ecc` GMC: OpenCV's `findTransformECC` with a Euclidean motion (5000 iterations, ε 1e-6)
//! between consecutive blurred (3×3, σ 1.5), 2×-downscaled gray frames.

use super::gray::{reflect101, Gray};
use super::{Gmc, Warp, IDENTITY};

/// Most ECC iterations.
const ITERS: usize = 5000;
/// Stop when the correlation coefficient changes less than this.
const EPS: f64 = 1e-6;

/// ECC motion compensation (state: the previous prepared frame).
#[derive(Clone, Debug, Default)]
pub struct Ecc {
    /// The previous frame, blurred and downscaled.
    prev: Option<Gray>,
    /// Whether a failure was reported already.
    warned: bool,
}

impl Ecc {
    /// A fresh instance (the next frame is a first frame).
    pub fn new() -> Self {
        Self::default()
    }

    /// The warp for a full-resolution gray frame.
    pub fn apply_gray(&mut self, gray: &Gray) -> Warp {
        let small = gray.gaussian3(1.5).half();
        let Some(prev) = self.prev.replace(small.clone()) else {
            return IDENTITY;
        };
        match find_transform_euclidean(&prev, &small) {
            Ok(mut h) => {
                h[0][2] *= gray.w as f64 / small.w as f64;
                h[1][2] *= gray.h as f64 / small.h as f64;
                h
            }
            Err(e) => {
                if !self.warned {
                    eprintln!("WARNING: GMC ecc: findTransformECC failed ({e}); using the identity warp (said once per tracker)");
                    self.warned = true;
                }
                IDENTITY
            }
        }
    }
}

impl Gmc for Ecc {
    fn apply(&mut self, frame: &image::RgbImage, _dets: &[[f32; 4]]) -> Warp {
        self.apply_gray(&Gray::from_rgb(frame))
    }

    fn reset(&mut self) {
        self.prev = None;
    }
}

/// A float image.
struct FImg {
    w: usize,
    h: usize,
    d: Vec<f32>,
}

impl FImg {
    /// Bilinear sample at `(x, y)` with zeros outside (OpenCV's BORDER_CONSTANT).
    fn sample(&self, x: f32, y: f32) -> f32 {
        let (x0, y0) = (x.floor(), y.floor());
        let (a, b) = (x - x0, y - y0);
        let (ix, iy) = (x0 as i64, y0 as i64);
        let px = |xx: i64, yy: i64| {
            if xx < 0 || yy < 0 || xx >= self.w as i64 || yy >= self.h as i64 {
                0.0
            } else {
                self.d[yy as usize * self.w + xx as usize]
            }
        };
        px(ix, iy) * ((1.0 - a) * (1.0 - b))
            + px(ix + 1, iy) * (a * (1.0 - b))
            + px(ix, iy + 1) * ((1.0 - a) * b)
            + px(ix + 1, iy + 1) * (a * b)
    }
}

/// `findTransformECC(template, input, I, MOTION_EUCLIDEAN, (COUNT|EPS, 5000, 1e-6), mask None,
/// gaussFiltSize 1)`: the 2×3 warp taking template pixels to input pixels (float32 parameters, as OpenCV).
pub fn find_transform_euclidean(tpl: &Gray, img: &Gray) -> Result<Warp, &'static str> {
    if tpl.w != img.w || tpl.h != img.h || tpl.w < 2 || tpl.h < 2 {
        return Err("images of different or too small sizes");
    }
    let (w, h) = (tpl.w, tpl.h);
    let t: Vec<f32> = tpl.data.iter().map(|&v| v as f32).collect();
    let im = FImg {
        w,
        h,
        d: img.data.iter().map(|&v| v as f32).collect(),
    };
    // Gradients: filter2D with [-0.5, 0, 0.5], border reflect-101.
    let mut gx = vec![0f32; w * h];
    let mut gy = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let l = im.d[y * w + reflect101(x as isize - 1, w)];
            let r = im.d[y * w + reflect101(x as isize + 1, w)];
            let u = im.d[reflect101(y as isize - 1, h) * w + x];
            let d = im.d[reflect101(y as isize + 1, h) * w + x];
            gx[y * w + x] = -0.5 * l + 0.5 * r;
            gy[y * w + x] = -0.5 * u + 0.5 * d;
        }
    }
    let gxi = FImg { w, h, d: gx };
    let gyi = FImg { w, h, d: gy };
    // map: [c, -s, tx; s, c, ty] in float32
    let (mut c, mut s, mut tx, mut ty) = (1f32, 0f32, 0f32, 0f32);
    let (mut rho, mut last_rho) = (-1f64, -EPS);
    let n = w * h;
    let mut iw = vec![0f32; n];
    let mut jx = vec![0f32; n];
    let mut jy = vec![0f32; n];
    let mut mask = vec![false; n];
    let mut i = 1;
    while i <= ITERS && (rho - last_rho).abs() >= EPS {
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f32, y as f32);
                let sx = c * xf - s * yf + tx;
                let sy = s * xf + c * yf + ty;
                let k = y * w + x;
                let (nx, ny) = (sx.round(), sy.round());
                mask[k] = nx >= 0.0 && ny >= 0.0 && nx < w as f32 && ny < h as f32;
                iw[k] = im.sample(sx, sy);
                jx[k] = gxi.sample(sx, sy);
                jy[k] = gyi.sample(sx, sy);
            }
        }
        let cnt = mask.iter().filter(|&&m| m).count();
        if cnt == 0 {
            return Err("the warped image does not overlap the template");
        }
        let mean = |v: &[f32]| {
            let (mut s1, mut s2) = (0f64, 0f64);
            for k in (0..n).filter(|&k| mask[k]) {
                s1 += v[k] as f64;
                s2 += v[k] as f64 * v[k] as f64;
            }
            let m = s1 / cnt as f64;
            (m, (s2 / cnt as f64 - m * m).max(0.0).sqrt())
        };
        let (img_mean, img_std) = mean(&iw);
        let (tpl_mean, tpl_std) = mean(&t);
        let mut izm = vec![0f32; n];
        let mut tzm = vec![0f32; n];
        for k in (0..n).filter(|&k| mask[k]) {
            izm[k] = (iw[k] as f64 - img_mean) as f32;
            tzm[k] = (t[k] as f64 - tpl_mean) as f32;
        }
        // Masked-out pixels keep the warped value in OpenCV (subtract with a mask leaves them): iw there is
        // the zero border, so izm stays as sampled.
        for k in (0..n).filter(|&k| !mask[k]) {
            izm[k] = iw[k];
        }
        let tmp_norm = (cnt as f64 * tpl_std * tpl_std).sqrt();
        let img_norm = (cnt as f64 * img_std * img_std).sqrt();
        // Jacobian columns: rotation, tx, ty.
        let mut jac = [vec![0f32; n], Vec::new(), Vec::new()];
        let (hs, hc) = (s, c);
        for y in 0..h {
            for x in 0..w {
                let k = y * w + x;
                let (xf, yf) = (x as f32, y as f32);
                let hat_x = -(xf * hs) - (yf * hc);
                let hat_y = (xf * hc) - (yf * hs);
                jac[0][k] = jx[k] * hat_x + jy[k] * hat_y;
            }
        }
        jac[1] = jx.clone();
        jac[2] = jy.clone();
        let dot = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(&p, &q)| p as f64 * q as f64)
                .sum::<f64>()
        };
        let mut hess = [[0f64; 3]; 3];
        for p in 0..3 {
            for q in p..3 {
                let v = dot(&jac[p], &jac[q]) as f32 as f64;
                hess[p][q] = v;
                hess[q][p] = v;
            }
        }
        let hinv = inv3(&hess).ok_or("singular Hessian")?;
        let correlation = dot(&tzm, &izm);
        last_rho = rho;
        rho = correlation / (img_norm * tmp_norm);
        if rho.is_nan() {
            return Err("NaN encountered");
        }
        let proj = |v: &[f32]| [dot(&jac[0], v), dot(&jac[1], v), dot(&jac[2], v)];
        let ip = proj(&izm);
        let tp = proj(&tzm);
        let iph = mul3(&hinv, &ip);
        let lambda_n = img_norm * img_norm - (0..3).map(|k| ip[k] * iph[k]).sum::<f64>();
        let lambda_d = correlation - (0..3).map(|k| tp[k] * iph[k]).sum::<f64>();
        if lambda_d <= 0.0 {
            return Err("the correlation is going to be minimized (images may be uncorrelated)");
        }
        let lambda = lambda_n / lambda_d;
        let err: Vec<f32> = tzm
            .iter()
            .zip(&izm)
            .map(|(&a, &b)| (lambda * a as f64 - b as f64) as f32)
            .collect();
        let ep = proj(&err);
        let dp = mul3(&hinv, &ep);
        let theta = dp[0] + (s as f64).asin();
        tx = (tx as f64 + dp[1]) as f32;
        ty = (ty as f64 + dp[2]) as f32;
        c = theta.cos() as f32;
        s = theta.sin() as f32;
        i += 1;
    }
    Ok([
        [c as f64, -s as f64, tx as f64],
        [s as f64, c as f64, ty as f64],
    ])
}

/// Inverse of a 3×3 matrix (`None` when singular).
#[allow(clippy::needless_range_loop)] // index arithmetic of a small dense matrix
fn inv3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det.abs() < f64::MIN_POSITIVE || !det.is_finite() {
        return None;
    }
    let d = 1.0 / det;
    let mut r = [[0f64; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            let (a, b) = ((j + 1) % 3, (j + 2) % 3);
            let (c, e) = ((i + 1) % 3, (i + 2) % 3);
            r[i][j] = (m[a][c] * m[b][e] - m[a][e] * m[b][c]) * d;
        }
    }
    Some(r)
}

/// `m · v`.
fn mul3(m: &[[f64; 3]; 3], v: &[f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
}
