//! OpenCV's SIFT keypoints and descriptors (`cv2.SIFT_create(nOctaveLayers=3, contrastThreshold=0.02,
//! edgeThreshold=20)`, detect with a mask then compute), in OpenCV's single-precision arithmetic.

use super::features::{Descriptors, Features};
use super::gray::Gray;
use super::sift_pyramid::{gaussian_pyramid, Img, LAYERS, SIGMA};
pub use super::sift_pyramid::{initial_image, second_layer};

/// `contrastThreshold`.
const CONTRAST: f32 = 0.02;
/// `edgeThreshold`.
const EDGE: f32 = 20.0;
/// Keypoints are not searched this close to a border.
const BORDER: usize = 5;
/// Sub-pixel refinement steps before giving up.
const MAX_INTERP: usize = 5;
/// Orientation histogram bins.
const ORI_BINS: usize = 36;
/// Descriptor grid width (4 × 4 cells) and bins per cell.
const D: usize = 4;
/// Orientation bins per descriptor cell.
const N: usize = 8;

/// A SIFT keypoint as OpenCV packs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SiftKeypoint {
    /// Position (input image pixels).
    pub x: f32,
    /// Position (input image pixels).
    pub y: f32,
    /// Diameter of the region.
    pub size: f32,
    /// Orientation in degrees (OpenCV's convention: 360 − the gradient direction).
    pub angle: f32,
    /// |interpolated DoG| at the extremum.
    pub response: f32,
    /// `octave + (layer << 8) + (round((xi + 0.5)·255) << 16)`, octave as a signed byte.
    pub octave: i32,
}

/// Euclidean distance between two descriptors.
pub fn l2(a: &[f32; 128], b: &[f32; 128]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// OpenCV's `fastAtan2` (degrees in [0, 360), polynomial approximation).
fn fast_atan2(y: f32, x: f32) -> f32 {
    const P1: f32 = 57.283627;
    const P3: f32 = -18.667446;
    const P5: f32 = 8.914001;
    const P7: f32 = -2.539725;
    let (ax, ay) = (x.abs(), y.abs());
    let eps = f64::EPSILON as f32;
    let mut a = if ax >= ay {
        let c = ay / (ax + eps);
        let c2 = c * c;
        (((P7 * c2 + P5) * c2 + P3) * c2 + P1) * c
    } else {
        let c = ax / (ay + eps);
        let c2 = c * c;
        90.0 - (((P7 * c2 + P5) * c2 + P3) * c2 + P1) * c
    };
    if x < 0.0 {
        a = 180.0 - a;
    }
    if y < 0.0 {
        a = 360.0 - a;
    }
    a
}

/// The smoothed 36-bin gradient orientation histogram around `(x, y)` and its maximum.
fn orientation_hist(
    img: &Img,
    x: usize,
    y: usize,
    radius: i32,
    sigma: f32,
) -> ([f32; ORI_BINS], f32) {
    let n = ORI_BINS;
    let scale = -1.0 / (2.0 * sigma * sigma);
    let mut t = [0f32; ORI_BINS + 4];
    for i in -radius..=radius {
        let yy = y as i32 + i;
        if yy <= 0 || yy >= img.h as i32 - 1 {
            continue;
        }
        for j in -radius..=radius {
            let xx = x as i32 + j;
            if xx <= 0 || xx >= img.w as i32 - 1 {
                continue;
            }
            let (xu, yu) = (xx as usize, yy as usize);
            let dx = img.at(xu + 1, yu) - img.at(xu - 1, yu);
            let dy = img.at(xu, yu - 1) - img.at(xu, yu + 1);
            let w = (((i * i + j * j) as f32) * scale).exp();
            let ori = fast_atan2(dy, dx);
            let mag = (dx * dx + dy * dy).sqrt();
            let mut bin = ((n as f32 / 360.0) * ori).round_ties_even() as i32;
            if bin >= n as i32 {
                bin -= n as i32;
            }
            if bin < 0 {
                bin += n as i32;
            }
            t[2 + bin as usize] += w * mag;
        }
    }
    t[1] = t[n + 1];
    t[0] = t[n];
    t[n + 2] = t[2];
    t[n + 3] = t[3];
    let mut hist = [0f32; ORI_BINS];
    for i in 0..n {
        hist[i] = (t[i] + t[i + 4]) * (1.0 / 16.0)
            + (t[i + 1] + t[i + 3]) * (4.0 / 16.0)
            + t[i + 2] * (6.0 / 16.0);
    }
    let max = hist.iter().copied().fold(hist[0], f32::max);
    (hist, max)
}

/// Solves the 3×3 system `m · x = v` by LU without pivoting, in f32 (OpenCV SIFT's `solve_LU`).
fn solve3(m: [[f32; 3]; 3], v: [f32; 3]) -> [f32; 3] {
    let (u00, u01, u02) = (m[0][0], m[0][1], m[0][2]);
    let l10 = m[1][0] / u00;
    let l20 = m[2][0] / u00;
    let u11 = m[1][1] - l10 * u01;
    let u12 = m[1][2] - l10 * u02;
    let l21 = (m[2][1] - l20 * u01) / u11;
    let u22 = (m[2][2] - l20 * u02) - l21 * u12;
    let v0 = v[0];
    let v1 = v[1] - l10 * v0;
    let v2 = v[2] - l20 * v0 - l21 * v1;
    let x2 = v2 / u22;
    let x1 = (v1 - x2 * u12) / u11;
    let x0 = (v0 - x2 * u02 - x1 * u01) / u00;
    [x0, x1, x2]
}

/// Sub-pixel / sub-scale refinement of a DoG extremum, contrast and edge tests (Lowe §4). Returns the
/// keypoint (in the octave's doubled-input frame, before the first-octave scaling) and its final
/// `(layer, row, col)`.
fn refine(
    dog: &[Img],
    o: usize,
    layer0: usize,
    r0: usize,
    c0: usize,
) -> Option<(SiftKeypoint, usize, usize, usize)> {
    let per = LAYERS + 2;
    let img_scale = 1.0f32 / 255.0;
    let deriv = img_scale * 0.5;
    let second = img_scale;
    let cross = img_scale * 0.25;
    let (mut layer, mut r, mut c) = (layer0 as i32, r0 as i32, c0 as i32);
    let (mut xi, mut xr, mut xc) = (0f32, 0f32, 0f32);
    let mut converged = false;
    let at = |m: &Img, r: i32, c: i32| m.at(c as usize, r as usize);
    for _ in 0..MAX_INTERP {
        let idx = o * per + layer as usize;
        let (img, prev, next) = (&dog[idx], &dog[idx - 1], &dog[idx + 1]);
        let dd = [
            (at(img, r, c + 1) - at(img, r, c - 1)) * deriv,
            (at(img, r + 1, c) - at(img, r - 1, c)) * deriv,
            (at(next, r, c) - at(prev, r, c)) * deriv,
        ];
        let v2 = at(img, r, c) * 2.0;
        let dxx = (at(img, r, c + 1) + at(img, r, c - 1) - v2) * second;
        let dyy = (at(img, r + 1, c) + at(img, r - 1, c) - v2) * second;
        let dss = (at(next, r, c) + at(prev, r, c) - v2) * second;
        let dxy = (at(img, r + 1, c + 1) - at(img, r + 1, c - 1) - at(img, r - 1, c + 1)
            + at(img, r - 1, c - 1))
            * cross;
        let dxs = (at(next, r, c + 1) - at(next, r, c - 1) - at(prev, r, c + 1)
            + at(prev, r, c - 1))
            * cross;
        let dys = (at(next, r + 1, c) - at(next, r - 1, c) - at(prev, r + 1, c)
            + at(prev, r - 1, c))
            * cross;
        let x = solve3([[dxx, dxy, dxs], [dxy, dyy, dys], [dxs, dys, dss]], dd);
        (xi, xr, xc) = (-x[2], -x[1], -x[0]);
        if xi.abs() < 0.5 && xr.abs() < 0.5 && xc.abs() < 0.5 {
            converged = true;
            break;
        }
        let big = (i32::MAX / 3) as f32;
        if !(xi.abs() <= big && xr.abs() <= big && xc.abs() <= big) {
            return None;
        }
        c += xc.round_ties_even() as i32;
        r += xr.round_ties_even() as i32;
        layer += xi.round_ties_even() as i32;
        if layer < 1
            || layer > LAYERS as i32
            || c < BORDER as i32
            || c >= img.w as i32 - BORDER as i32
            || r < BORDER as i32
            || r >= img.h as i32 - BORDER as i32
        {
            return None;
        }
    }
    if !converged {
        return None;
    }
    let idx = o * per + layer as usize;
    let (img, prev, next) = (&dog[idx], &dog[idx - 1], &dog[idx + 1]);
    let dd = [
        (at(img, r, c + 1) - at(img, r, c - 1)) * deriv,
        (at(img, r + 1, c) - at(img, r - 1, c)) * deriv,
        (at(next, r, c) - at(prev, r, c)) * deriv,
    ];
    let t = dd[0] * xc + dd[1] * xr + dd[2] * xi;
    let contr = at(img, r, c) * img_scale + t * 0.5;
    if contr.abs() * (LAYERS as f32) < CONTRAST {
        return None;
    }
    let v2 = at(img, r, c) * 2.0;
    let dxx = (at(img, r, c + 1) + at(img, r, c - 1) - v2) * second;
    let dyy = (at(img, r + 1, c) + at(img, r - 1, c) - v2) * second;
    let dxy = (at(img, r + 1, c + 1) - at(img, r + 1, c - 1) - at(img, r - 1, c + 1)
        + at(img, r - 1, c - 1))
        * cross;
    let (tr, det) = (dxx + dyy, dxx * dyy - dxy * dxy);
    if det <= 0.0 || tr * tr * EDGE >= (EDGE + 1.0) * (EDGE + 1.0) * det {
        return None;
    }
    let s = (1u32 << o) as f32;
    let kp = SiftKeypoint {
        x: (c as f32 + xc) * s,
        y: (r as f32 + xr) * s,
        size: SIGMA as f32 * 2f32.powf((layer as f32 + xi) / LAYERS as f32) * s * 2.0,
        angle: 0.0,
        response: contr.abs(),
        octave: o as i32 + (layer << 8) + ((((xi + 0.5) * 255.0).round_ties_even() as i32) << 16),
    };
    Some((kp, layer as usize, r as usize, c as usize))
}

/// Whether `v` at `(x, y)` of `dog[idx]` is a 26-neighbour maximum (v > 0) or minimum (v < 0), ties allowed.
fn is_extremum(dog: &[Img], idx: usize, x: usize, y: usize, v: f32) -> bool {
    for m in &dog[idx - 1..=idx + 1] {
        for yy in y - 1..=y + 1 {
            for xx in x - 1..=x + 1 {
                let u = m.at(xx, yy);
                if (v > 0.0 && v < u) || (v < 0.0 && v > u) {
                    return false;
                }
            }
        }
    }
    true
}

/// Detected keypoints (input-image frame, sorted and de-duplicated as OpenCV) and the pyramid they
/// came from (first octave −1).
fn detect(img: &Gray) -> (Vec<SiftKeypoint>, Vec<Img>) {
    let base_min = (img.w * 2).min(img.h * 2);
    if base_min < 2 * (BORDER + 1) + 1 {
        return (Vec::new(), Vec::new());
    }
    let octaves =
        (((base_min as f64).ln() / 2f64.ln() - 2.0).round_ties_even() as i32 + 1).max(1) as usize;
    let gp = gaussian_pyramid(img, -1, octaves);
    let per_g = LAYERS + 3;
    let dog: Vec<Img> = (0..octaves)
        .flat_map(|o| {
            let gp = &gp;
            (0..LAYERS + 2).map(move |i| {
                let (a, b) = (&gp[o * per_g + i], &gp[o * per_g + i + 1]);
                Img {
                    w: a.w,
                    h: a.h,
                    d: b.d.iter().zip(&a.d).map(|(x, y)| x - y).collect(),
                }
            })
        })
        .collect();
    // OpenCV's pre-filter `|v| > floor(0.5 · contrast / layers · 255)` on the float DoG (0 here: every
    // non-zero extremum goes on to the refinement's contrast test).
    let threshold = (0.5 * CONTRAST as f64 / LAYERS as f64 * 255.0).floor() as f32;
    let mut kps = Vec::new();
    for o in 0..octaves {
        for i in 1..=LAYERS {
            let idx = o * (LAYERS + 2) + i;
            let m = &dog[idx];
            if m.w <= 2 * BORDER || m.h <= 2 * BORDER {
                continue;
            }
            for r in BORDER..m.h - BORDER {
                for c in BORDER..m.w - BORDER {
                    let v = m.at(c, r);
                    if v.abs() <= threshold || !is_extremum(&dog, idx, c, r, v) {
                        continue;
                    }
                    let Some((kp, layer, r1, c1)) = refine(&dog, o, i, r, c) else {
                        continue;
                    };
                    let scl = kp.size * 0.5 / (1u32 << o) as f32;
                    let gimg = &gp[o * per_g + layer];
                    let (hist, omax) = orientation_hist(
                        gimg,
                        c1,
                        r1,
                        (4.5 * scl).round_ties_even() as i32,
                        1.5 * scl,
                    );
                    let thr = omax * 0.8;
                    let n = ORI_BINS;
                    for j in 0..n {
                        let l = if j > 0 { j - 1 } else { n - 1 };
                        let r2 = if j < n - 1 { j + 1 } else { 0 };
                        if hist[j] > hist[l] && hist[j] > hist[r2] && hist[j] >= thr {
                            let mut bin = j as f32
                                + 0.5 * (hist[l] - hist[r2]) / (hist[l] - 2.0 * hist[j] + hist[r2]);
                            if bin < 0.0 {
                                bin += n as f32;
                            } else if bin >= n as f32 {
                                bin -= n as f32;
                            }
                            let mut angle = 360.0 - (360.0 / n as f32) * bin;
                            if (angle - 360.0).abs() < f32::EPSILON {
                                angle = 0.0;
                            }
                            kps.push(SiftKeypoint { angle, ..kp });
                        }
                    }
                }
            }
        }
    }
    // KeyPointsFilter::removeDuplicatedSorted: sort (x, y asc; size desc; angle asc; response desc;
    // octave desc), drop repeats of (x, y, size, angle).
    kps.sort_by(|a, b| {
        a.x.total_cmp(&b.x)
            .then(a.y.total_cmp(&b.y))
            .then(b.size.total_cmp(&a.size))
            .then(a.angle.total_cmp(&b.angle))
            .then(b.response.total_cmp(&a.response))
            .then(b.octave.cmp(&a.octave))
    });
    kps.dedup_by(|b, a| a.x == b.x && a.y == b.y && a.size == b.size && a.angle == b.angle);
    for k in &mut kps {
        k.x *= 0.5;
        k.y *= 0.5;
        k.size *= 0.5;
        k.octave = (k.octave & !255) | ((k.octave - 1) & 255);
    }
    (kps, gp)
}

/// OpenCV's `unpackOctave`: (octave, layer, scale to that octave's pixels).
fn unpack(k: &SiftKeypoint) -> (i32, usize, f32) {
    let o = k.octave & 255;
    let o = if o < 128 { o } else { o - 256 };
    let layer = ((k.octave >> 8) & 255) as usize;
    let scale = if o >= 0 {
        1.0 / (1u32 << o) as f32
    } else {
        (1u32 << -o) as f32
    };
    (o, layer, scale)
}

/// The 128-d descriptor of a keypoint at `(x, y)` of `img` with orientation `ori` (degrees) and scale `scl`.
fn descriptor(img: &Img, x: f32, y: f32, ori: f32, scl: f32) -> [f32; 128] {
    let (px, py) = (x.round_ties_even() as i32, y.round_ties_even() as i32);
    let rad = ori * (std::f64::consts::PI / 180.0) as f32;
    let (mut cos_t, mut sin_t) = (rad.cos(), rad.sin());
    let bins_per_rad = N as f32 / 360.0;
    let exp_scale = -1.0 / (D as f32 * D as f32 * 0.5);
    let hist_width = 3.0 * scl;
    let radius =
        ((hist_width * std::f32::consts::SQRT_2 * (D as f32 + 1.0) * 0.5).round_ties_even() as i32)
            .min(((img.w as f64).powi(2) + (img.h as f64).powi(2)).sqrt() as i32);
    cos_t /= hist_width;
    sin_t /= hist_width;
    let mut hist = vec![0f32; (D + 2) * (D + 2) * (N + 2)];
    for i in -radius..=radius {
        for j in -radius..=radius {
            let c_rot = j as f32 * cos_t - i as f32 * sin_t;
            let r_rot = j as f32 * sin_t + i as f32 * cos_t;
            let rbin = r_rot + (D / 2) as f32 - 0.5;
            let cbin = c_rot + (D / 2) as f32 - 0.5;
            let (r, c) = (py + i, px + j);
            if !(rbin > -1.0
                && rbin < D as f32
                && cbin > -1.0
                && cbin < D as f32
                && r > 0
                && r < img.h as i32 - 1
                && c > 0
                && c < img.w as i32 - 1)
            {
                continue;
            }
            let (ru, cu) = (r as usize, c as usize);
            let dx = img.at(cu + 1, ru) - img.at(cu - 1, ru);
            let dy = img.at(cu, ru - 1) - img.at(cu, ru + 1);
            let w = ((c_rot * c_rot + r_rot * r_rot) * exp_scale).exp();
            let o = fast_atan2(dy, dx);
            let mag = (dx * dx + dy * dy).sqrt() * w;
            let obin = (o - ori) * bins_per_rad;
            let (r0, c0, mut o0) = (
                rbin.floor() as i32,
                cbin.floor() as i32,
                obin.floor() as i32,
            );
            let (rb, cb, ob) = (rbin - r0 as f32, cbin - c0 as f32, obin - o0 as f32);
            if o0 < 0 {
                o0 += N as i32;
            }
            if o0 >= N as i32 {
                o0 -= N as i32;
            }
            let v_r1 = mag * rb;
            let v_r0 = mag - v_r1;
            let v_rc11 = v_r1 * cb;
            let v_rc10 = v_r1 - v_rc11;
            let v_rc01 = v_r0 * cb;
            let v_rc00 = v_r0 - v_rc01;
            let v_rco111 = v_rc11 * ob;
            let v_rco110 = v_rc11 - v_rco111;
            let v_rco101 = v_rc10 * ob;
            let v_rco100 = v_rc10 - v_rco101;
            let v_rco011 = v_rc01 * ob;
            let v_rco010 = v_rc01 - v_rco011;
            let v_rco001 = v_rc00 * ob;
            let v_rco000 = v_rc00 - v_rco001;
            let idx = (((r0 + 1) * (D as i32 + 2) + c0 + 1) * (N as i32 + 2) + o0) as usize;
            let (n2, d2) = (N + 2, D + 2);
            hist[idx] += v_rco000;
            hist[idx + 1] += v_rco001;
            hist[idx + n2] += v_rco010;
            hist[idx + n2 + 1] += v_rco011;
            hist[idx + d2 * n2] += v_rco100;
            hist[idx + d2 * n2 + 1] += v_rco101;
            hist[idx + (d2 + 1) * n2] += v_rco110;
            hist[idx + (d2 + 1) * n2 + 1] += v_rco111;
        }
    }
    let mut raw = [0f32; 128];
    for i in 0..D {
        for j in 0..D {
            let idx = ((i + 1) * (D + 2) + (j + 1)) * (N + 2);
            hist[idx] += hist[idx + N];
            hist[idx + 1] += hist[idx + N + 1];
            for k in 0..N {
                raw[(i * D + j) * N + k] = hist[idx + k];
            }
        }
    }
    let nrm: f32 = raw.iter().map(|v| v * v).sum();
    let thr = nrm.sqrt() * 0.2;
    let mut nrm2 = 0f32;
    for v in raw.iter_mut() {
        *v = v.min(thr);
        nrm2 += *v * *v;
    }
    let f = 512.0 / nrm2.sqrt().max(f32::EPSILON);
    raw.map(|v| (v * f).round_ties_even().clamp(0.0, 255.0))
}

/// SIFT keypoints of `img` allowed by `mask` (OpenCV's detect), in OpenCV's order.
fn detect_masked(img: &Gray, mask: &[bool]) -> (Vec<SiftKeypoint>, Vec<Img>) {
    let (kps, gp) = detect(img);
    let kps = kps
        .into_iter()
        .filter(|k| {
            let (x, y) = ((k.x + 0.5) as i64, (k.y + 0.5) as i64);
            x >= 0
                && y >= 0
                && (x as usize) < img.w
                && (y as usize) < img.h
                && mask[y as usize * img.w + x as usize]
        })
        .collect();
    (kps, gp)
}

/// SIFT keypoints of `img` (as [`detect_masked`]) with all fields, for stage checks.
pub fn keypoints(img: &Gray, mask: &[bool]) -> Vec<SiftKeypoint> {
    detect_masked(img, mask).0
}

/// SIFT keypoints allowed by `mask` and their descriptors (OpenCV's detect, then compute on them).
pub fn sift_features(img: &Gray, mask: &[bool]) -> Features {
    let (kps, mut gp) = detect_masked(img, mask);
    let first = kps.iter().map(|k| unpack(k).0).min().unwrap_or(0).min(0);
    if first == 0 && !kps.is_empty() {
        // compute() rebuilds the pyramid from the first octave its keypoints use: here the undoubled input.
        let max_o = kps.iter().map(|k| unpack(k).0).max().unwrap_or(0);
        gp = gaussian_pyramid(img, 0, (max_o + 1) as usize);
    }
    let per = LAYERS + 3;
    let desc = kps
        .iter()
        .map(|k| {
            let (o, layer, scale) = unpack(k);
            let im = &gp[(o - first) as usize * per + layer];
            let mut angle = 360.0 - k.angle;
            if (angle - 360.0).abs() < f32::EPSILON {
                angle = 0.0;
            }
            descriptor(im, k.x * scale, k.y * scale, angle, k.size * scale * 0.5)
        })
        .collect();
    Features {
        pts: kps.iter().map(|k| [k.x, k.y]).collect(),
        desc: Descriptors::Float(desc),
    }
}
