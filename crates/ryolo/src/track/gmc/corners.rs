//! Shi–Tomasi corners as OpenCV's `goodFeaturesToTrack` (min-eigenvalue response, `minDistance` 0).

use super::gray::{reflect101, Gray};

/// Parameters of the corner search (Ultralytics' GMC: 400 corners, quality 0.01, block 3).
#[derive(Clone, Copy, Debug)]
pub struct CornerParams {
    /// Most corners returned (strongest first).
    pub max_corners: usize,
    /// Corners weaker than `quality × strongest` are dropped.
    pub quality: f64,
}

impl Default for CornerParams {
    fn default() -> Self {
        Self {
            max_corners: 400,
            quality: 0.01,
        }
    }
}

/// OpenCV `cornerMinEigenVal(img, blockSize=3, ksize=3)`: 3×3 Sobel gradients scaled by 1/(4·3·255), their
/// products summed over a 3×3 box (border reflect-101), then the smaller eigenvalue of the 2×2 matrix.
pub fn min_eigen(img: &Gray) -> Vec<f32> {
    let (w, h) = (img.w, img.h);
    let scale = (1.0f64 / (4.0 * 3.0 * 255.0)) as f32;
    let (s1, s2) = (scale, 2.0 * scale);
    let px = |x: isize, y: isize| img.at(reflect101(x, w), reflect101(y, h)) as f32;
    // Sobel as OpenCV's separable filter: a row pass in float, then the column pass.
    let mut dx = vec![0f32; w * h];
    let mut dy = vec![0f32; w * h];
    let mut rdx = vec![0f32; w * h]; // row pass of d/dx: [-1, 0, 1]
    let mut rdy = vec![0f32; w * h]; // row pass of d/dy: [s, 2s, s]
    for y in 0..h as isize {
        for x in 0..w as isize {
            let (l, c, r) = (px(x - 1, y), px(x, y), px(x + 1, y));
            let i = y as usize * w + x as usize;
            rdx[i] = r - l;
            rdy[i] = s1 * l + s2 * c + s1 * r;
        }
    }
    for y in 0..h as isize {
        let (u, d) = (reflect101(y - 1, h) * w, reflect101(y + 1, h) * w);
        let c = y as usize * w;
        for x in 0..w {
            dx[c + x] = s2 * rdx[c + x] + s1 * (rdx[u + x] + rdx[d + x]);
            dy[c + x] = rdy[d + x] - rdy[u + x];
        }
    }
    // Covariance products, box-summed 3×3 in double as OpenCV's boxFilter (sum type double).
    let prod = |i: usize| {
        let (a, b) = (dx[i], dy[i]);
        [(a * a) as f64, (a * b) as f64, (b * b) as f64]
    };
    let mut rows = vec![[0f64; 3]; w * h];
    for y in 0..h {
        for x in 0..w as isize {
            let mut s = [0f64; 3];
            for k in -1..=1 {
                let p = prod(y * w + reflect101(x + k, w));
                for j in 0..3 {
                    s[j] += p[j];
                }
            }
            rows[y * w + x as usize] = s;
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h as isize {
        for x in 0..w {
            let mut s = [0f64; 3];
            for k in -1..=1 {
                let p = rows[reflect101(y + k, h) * w + x];
                for j in 0..3 {
                    s[j] += p[j];
                }
            }
            let a = s[0] as f32 * 0.5;
            let b = s[1] as f32;
            let c = s[2] as f32 * 0.5;
            out[y as usize * w + x] = (a + c) - ((a - c) * (a - c) + b * b).sqrt();
        }
    }
    out
}

/// `goodFeaturesToTrack(img, maxCorners, qualityLevel, minDistance=0, blockSize=3)`: local maxima (3×3) of
/// the min-eigenvalue response above `quality × max`, inner pixels only, strongest first (equal responses:
/// the later raster position first, as OpenCV's pointer-ordered sort), at most `max_corners`, as `(x, y)`.
pub fn good_features(img: &Gray, p: CornerParams) -> Vec<[f32; 2]> {
    let (w, h) = (img.w, img.h);
    if w < 3 || h < 3 || p.max_corners == 0 {
        return Vec::new();
    }
    let mut eig = min_eigen(img);
    let max = eig.iter().copied().fold(f32::MIN, f32::max);
    let thr = (max as f64 * p.quality) as f32;
    for v in &mut eig {
        if *v <= thr {
            *v = 0.0;
        }
    }
    let mut cand: Vec<(f32, usize)> = Vec::new();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let v = eig[y * w + x];
            if v == 0.0 {
                continue;
            }
            let mut m = v;
            for yy in y - 1..=y + 1 {
                for xx in x - 1..=x + 1 {
                    m = m.max(eig[yy * w + xx]);
                }
            }
            if v == m {
                cand.push((v, y * w + x));
            }
        }
    }
    cand.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    cand.truncate(p.max_corners);
    cand.iter()
        .map(|&(_, i)| [(i % w) as f32, (i / w) as f32])
        .collect()
}
