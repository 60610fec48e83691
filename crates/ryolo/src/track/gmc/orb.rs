//! OpenCV's ORB descriptors on given keypoints (`cv2.ORB_create().compute`): border filter, 7×7 σ2
//! smoothing and the rotated 256-pair binary test.

use super::gray::{reflect101, Gray};
use super::orb_pattern::ORB_PATTERN;

/// A 256-bit ORB descriptor.
pub type OrbDesc = [u8; 32];

/// ORB's default `edgeThreshold`: keypoints closer than this to a border are dropped.
pub const EDGE: usize = 31;

/// The 7-tap Gaussian of σ 2 (`getGaussianKernel(7, 2)`, double precision, normalised).
fn taps7() -> [f64; 7] {
    let mut k: [f64; 7] = std::array::from_fn(|i| {
        let d = i as f64 - 3.0;
        (-(d * d) / 8.0).exp()
    });
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k
}

/// The image ORB samples: 7×7 Gaussian of σ 2, border reflect-101, computed in floating point and rounded
/// to nearest (cv2 5.x's ORB smoothing: measured equal to a double-precision separable convolution by
/// scripts/gmc/orb_pattern.py, unlike the 8-bit fixed-point `cv2.GaussianBlur`).
pub fn smooth7(img: &Gray) -> Gray {
    let k = taps7();
    let (w, h) = (img.w, img.h);
    let mut rows = vec![0f64; w * h];
    for y in 0..h {
        for x in 0..w {
            rows[y * w + x] = (0..7)
                .map(|i| k[i] * img.at(reflect101(x as isize + i as isize - 3, w), y) as f64)
                .sum();
        }
    }
    let mut data = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let v: f64 = (0..7)
                .map(|i| k[i] * rows[reflect101(y as isize + i as isize - 3, h) * w + x])
                .sum();
            data.push(v.round_ties_even().clamp(0.0, 255.0) as u8);
        }
    }
    Gray { w, h, data }
}

/// Whether a keypoint at `(x, y)` survives ORB's border filter (`edgeThreshold` 31) in a `w × h` image.
pub fn inside(x: f32, y: f32, w: usize, h: usize) -> bool {
    let e = EDGE as f32;
    w > 2 * EDGE
        && h > 2 * EDGE
        && x >= e
        && y >= e
        && x < (w - EDGE) as f32
        && y < (h - EDGE) as f32
}

/// The descriptor of the keypoint at `(x, y)` with orientation `angle_deg` on the smoothed image `s`
/// (the keypoint must pass [`inside`]).
pub fn describe(s: &Gray, x: f32, y: f32, angle_deg: f32) -> OrbDesc {
    let (cx, cy) = (x.round_ties_even() as isize, y.round_ties_even() as isize);
    describe_with(angle_deg, |dx, dy| {
        s.at((cx + dx) as usize, (cy + dy) as usize)
    })
}

/// The binary tests of the pattern rotated by `angle_deg`, sampling the smoothed image at offsets from the
/// keypoint through `at` (OpenCV: float rotation, offsets rounded half to even).
fn describe_with(angle_deg: f32, at: impl Fn(isize, isize) -> u8) -> OrbDesc {
    let ang = angle_deg * (std::f64::consts::PI / 180.0) as f32;
    let (a, b) = ((ang as f64).cos() as f32, (ang as f64).sin() as f32);
    let sample = |px: i8, py: i8| -> u8 {
        let (px, py) = (px as f32, py as f32);
        let ix = (px * a - py * b).round_ties_even() as isize;
        let iy = (px * b + py * a).round_ties_even() as isize;
        at(ix, iy)
    };
    let mut d = [0u8; 32];
    for (i, p) in ORB_PATTERN.iter().enumerate() {
        if sample(p[0], p[1]) < sample(p[2], p[3]) {
            d[i / 8] |= 1 << (i % 8);
        }
    }
    d
}

/// Half side of the smoothed patch a descriptor can read (pattern offsets ≤ 13, rotated: ≤ 13·√2).
const PATCH: isize = 19;

/// [`smooth7`] restricted to the `(2·PATCH + 1)²` window around `(cx, cy)` (same values, same order of
/// summation), row-major.
fn smooth_patch(img: &Gray, cx: isize, cy: isize) -> Vec<u8> {
    let k = taps7();
    let side = (2 * PATCH + 1) as usize;
    let (w, h) = (img.w, img.h);
    let rows: Vec<f64> = (cy - PATCH - 3..=cy + PATCH + 3)
        .flat_map(|y| {
            let yy = reflect101(y, h);
            (cx - PATCH..=cx + PATCH).map(move |x| {
                (0..7)
                    .map(|i| k[i] * img.at(reflect101(x + i as isize - 3, w), yy) as f64)
                    .sum::<f64>()
            })
        })
        .collect();
    let mut out = Vec::with_capacity(side * side);
    for y in 0..side {
        for x in 0..side {
            let v: f64 = (0..7).map(|i| k[i] * rows[(y + i) * side + x]).sum();
            out.push(v.round_ties_even().clamp(0.0, 255.0) as u8);
        }
    }
    out
}

/// `ORB.compute(img, keypoints)` for keypoints of angle `angle_deg` (FAST gives −1): the kept keypoint
/// indices (border filter, order kept) and their descriptors.
pub fn compute(img: &Gray, pts: &[[f32; 2]], angle_deg: f32) -> (Vec<usize>, Vec<OrbDesc>) {
    let keep: Vec<usize> = (0..pts.len())
        .filter(|&i| inside(pts[i][0], pts[i][1], img.w, img.h))
        .collect();
    let side = 2 * PATCH + 1;
    let desc = keep
        .iter()
        .map(|&i| {
            let (cx, cy) = (
                pts[i][0].round_ties_even() as isize,
                pts[i][1].round_ties_even() as isize,
            );
            let patch = smooth_patch(img, cx, cy);
            describe_with(angle_deg, |dx, dy| {
                let (dx, dy) = (dx.clamp(-PATCH, PATCH), dy.clamp(-PATCH, PATCH));
                patch[((dy + PATCH) * side + dx + PATCH) as usize]
            })
        })
        .collect();
    (keep, desc)
}
