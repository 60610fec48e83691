//! Training augmentation in Ultralytics' order (spec/augment.md): mosaic, copy-paste, random affine
//! with the box-candidate filter, mixup, cutmix, HSV, flips. Images are RGB `Rgb` buffers; labels are [`Instances`]
//! in pixels (`xyxy` boxes), every part transformed with the image.

use super::instances::{Instances, Mat3};
use crate::ops::Rgb;
use rand::Rng;

use super::hsv::hsv_luts;
pub use super::hsv::random_hsv;

/// Augmentation hyper-parameters (Ultralytics names and defaults).
#[derive(Debug, Clone)]
pub struct AugConfig {
    /// Mosaic probability.
    pub mosaic: f64,
    /// MixUp probability.
    pub mixup: f64,
    /// CutMix probability.
    pub cutmix: f64,
    /// Copy-paste fraction of eligible instances (also the probability in `mixup` mode).
    pub copy_paste: f64,
    /// Where copy-paste takes its instances from (`copy_paste_mode`).
    pub copy_paste_mode: CopyPasteMode,
    /// Rotation range in degrees.
    pub degrees: f64,
    /// Translation fraction.
    pub translate: f64,
    /// Scale gain range.
    pub scale: f64,
    /// Shear in degrees.
    pub shear: f64,
    /// Perspective.
    pub perspective: f64,
    /// HSV gains.
    pub hsv: [f64; 3],
    /// Up-down flip probability.
    pub flipud: f64,
    /// Left-right flip probability.
    pub fliplr: f64,
    /// Probability of handing the image over in BGR channel order (`bgr`).
    pub bgr: f64,
}

impl Default for AugConfig {
    fn default() -> Self {
        Self {
            mosaic: 1.0,
            mixup: 0.0,
            cutmix: 0.0,
            copy_paste: 0.0,
            copy_paste_mode: CopyPasteMode::Flip,
            degrees: 0.0,
            translate: 0.1,
            scale: 0.5,
            shear: 0.0,
            perspective: 0.0,
            hsv: [0.015, 0.7, 0.4],
            flipud: 0.0,
            fliplr: 0.5,
            bgr: 0.0,
        }
    }
}

impl AugConfig {
    /// No augmentation at all (for overfitting and rect training).
    pub fn none() -> Self {
        Self {
            mosaic: 0.0,
            mixup: 0.0,
            cutmix: 0.0,
            copy_paste: 0.0,
            copy_paste_mode: CopyPasteMode::Flip,
            degrees: 0.0,
            translate: 0.0,
            scale: 0.0,
            shear: 0.0,
            perspective: 0.0,
            hsv: [0.0; 3],
            flipud: 0.0,
            fliplr: 0.0,
            bgr: 0.0,
        }
    }
}

/// Where copy-paste takes the pasted instances from (Ultralytics' `copy_paste_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyPasteMode {
    /// The sample's own instances mirrored left-right, between mosaic and the affine step.
    #[default]
    Flip,
    /// Another random sample (mosaic + affine), after the affine step, with probability `copy_paste`.
    Mixup,
}

impl CopyPasteMode {
    /// `flip` or `mixup` (Ultralytics' names); None for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "flip" => Some(Self::Flip),
            "mixup" => Some(Self::Mixup),
            _ => None,
        }
    }
}

/// An image with its labels in pixels (`xyxy` boxes).
#[derive(Debug, Clone)]
pub struct Sample {
    /// Pixels.
    pub img: Rgb,
    /// Labels in pixels of `img`.
    pub instances: Instances,
}

impl Sample {
    /// From a loaded (resized) image and its labels (normalised ones are brought to its pixels).
    pub fn new(img: Rgb, mut instances: Instances) -> Self {
        instances.denormalize(img.w, img.h);
        Self { img, instances }
    }

    /// The labels normalised to the final image (`cx cy w h` boxes).
    pub fn normalized(&self) -> Instances {
        let mut n = self.instances.clone();
        n.normalize(self.img.w, self.img.h);
        n
    }
}

/// A virtual canvas: gray (114) with images placed on it without copying them (a mosaic's four
/// tiles, or one image at the origin). Warps read it row by row.
#[derive(Debug, Clone)]
pub struct Canvas<'a> {
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
    tiles: Vec<Placed<'a>>,
}

/// An image visible in the canvas region `[x0, x1) x [y0, y1)`; canvas `(x, y)` shows its pixel
/// `(x - dx, y - dy)`.
#[derive(Debug, Clone)]
struct Placed<'a> {
    img: &'a Rgb,
    x0: i64,
    y0: i64,
    x1: i64,
    y1: i64,
    dx: i64,
    dy: i64,
}

impl<'a> Canvas<'a> {
    /// One image filling the canvas.
    pub fn single(img: &'a Rgb) -> Self {
        Self {
            w: img.w,
            h: img.h,
            tiles: vec![Placed {
                img,
                x0: 0,
                y0: 0,
                x1: img.w as i64,
                y1: img.h as i64,
                dx: 0,
                dy: 0,
            }],
        }
    }

    /// Visits the tile runs of canvas row `y` within columns `[x, x + n)`: `(first pixel in the
    /// range, tile, first tile byte, pixels)`.
    fn for_runs(&self, y: i64, x: i64, n: i64, mut f: impl FnMut(usize, &Rgb, usize, usize)) {
        for t in &self.tiles {
            if y < t.y0 || y >= t.y1 {
                continue;
            }
            let (a, b) = (t.x0.max(x), t.x1.min(x + n));
            if a < b {
                let src = ((y - t.dy) as usize * t.img.w + (a - t.dx) as usize) * 3;
                f((a - x) as usize, t.img, src, (b - a) as usize);
            }
        }
    }

    /// Canvas row `y` from column `x` into `out` (`out.len() / 3` pixels), 114 outside the tiles.
    fn row(&self, y: i64, x: i64, out: &mut [u8]) {
        self.row_with::<3>(y, x, out, |out, img, src, len| {
            out.copy_from_slice(&img.data[src..src + len * 3]);
        });
    }

    /// Like [`Self::row`] but one channel: the first of each (grey) tile pixel.
    fn row_grey(&self, y: i64, x: i64, out: &mut [u8]) {
        self.row_with::<1>(y, x, out, |out, img, src, len| {
            for (o, px) in out
                .iter_mut()
                .zip(img.data[src..src + len * 3].chunks_exact(3))
            {
                *o = px[0];
            }
        });
    }

    /// Row `y` from column `x` into `out` (`C` bytes a pixel): `put(dst, tile, first tile byte,
    /// pixels)` for each tile run in tile order, then 114 in the columns no run covered.
    fn row_with<const C: usize>(
        &self,
        y: i64,
        x: i64,
        out: &mut [u8],
        put: impl Fn(&mut [u8], &Rgb, usize, usize),
    ) {
        let n = out.len() / C;
        let mut runs = [(0usize, 0usize); 16];
        let mut k = 0;
        self.for_runs(y, x, n as i64, |d, img, src, len| {
            put(&mut out[d * C..(d + len) * C], img, src, len);
            if let Some(r) = runs.get_mut(k) {
                *r = (d, d + len);
            }
            k += 1;
        });
        if k > runs.len() {
            // More runs than tracked (never for mosaics): the plain way.
            out.fill(114);
            self.for_runs(y, x, n as i64, |d, img, src, len| {
                put(&mut out[d * C..(d + len) * C], img, src, len)
            });
            return;
        }
        let runs = &mut runs[..k];
        runs.sort_unstable();
        let mut at = 0;
        for &(a, b) in runs.iter() {
            if a > at {
                out[at * C..a * C].fill(114);
            }
            at = at.max(b);
        }
        if at < n {
            out[at * C..n * C].fill(114);
        }
    }

    /// The canvas as an image.
    pub fn materialize(&self) -> Rgb {
        if let [t] = self.tiles.as_slice() {
            if (t.x0, t.y0, t.dx, t.dy) == (0, 0, 0, 0)
                && (t.img.w, t.img.h) == (self.w, self.h)
                && (t.x1, t.y1) == (self.w as i64, self.h as i64)
            {
                return t.img.clone();
            }
        }
        let mut data = vec![0u8; self.w * self.h * 3];
        for (y, row) in data.chunks_exact_mut(self.w * 3).enumerate() {
            self.row(y as i64, 0, row);
        }
        Rgb {
            w: self.w,
            h: self.h,
            data,
        }
    }
}

/// One mosaic tile: its image and its labels in its pixels.
pub type Tile<'a> = (&'a Rgb, &'a Instances);

/// Normalised `cx cy w h` boxes to `xyxy` pixels of a `w x h` image.
pub fn to_pixels(boxes: &[[f32; 4]], w: usize, h: usize) -> Vec<[f32; 4]> {
    let (w, h) = (w as f32, h as f32);
    boxes
        .iter()
        .map(|b| {
            [
                (b[0] - b[2] / 2.0) * w,
                (b[1] - b[3] / 2.0) * h,
                (b[0] + b[2] / 2.0) * w,
                (b[1] + b[3] / 2.0) * h,
            ]
        })
        .collect()
}

/// `xyxy` pixel boxes of a `w x h` image to normalised `cx cy w h`.
pub fn to_normalized(boxes: &[[f32; 4]], w: usize, h: usize) -> Vec<[f32; 4]> {
    let (w, h) = (w as f32, h as f32);
    boxes
        .iter()
        .map(|b| {
            [
                (b[0] + b[2]) / 2.0 / w,
                (b[1] + b[3]) / 2.0 / h,
                (b[2] - b[0]) / w,
                (b[3] - b[1]) / h,
            ]
        })
        .collect()
}

/// Where tile `k` of a mosaic with centre `(xc, yc)` lands: the canvas region `a` and the tile
/// region `b`, both `x0 y0 x1 y1` (spec/augment.md §2).
fn tile_regions(k: usize, (w, h): (i64, i64), (xc, yc): (i64, i64), s2: i64) -> [[i64; 4]; 2] {
    match k {
        0 => {
            let a = [(xc - w).max(0), (yc - h).max(0), xc, yc];
            [a, [w - (a[2] - a[0]), h - (a[3] - a[1]), w, h]]
        }
        1 => {
            let a = [xc, (yc - h).max(0), (xc + w).min(s2), yc];
            [a, [0, h - (a[3] - a[1]), w.min(a[2] - a[0]), h]]
        }
        2 => {
            let a = [(xc - w).max(0), yc, xc, s2.min(yc + h)];
            [a, [w - (a[2] - a[0]), 0, w, (a[3] - a[1]).min(h)]]
        }
        _ => {
            let a = [xc, yc, (xc + w).min(s2), s2.min(yc + h)];
            [a, [0, 0, w.min(a[2] - a[0]), (a[3] - a[1]).min(h)]]
        }
    }
}

/// Four-image mosaic layout on a `2s x 2s` canvas (spec/augment.md §2); `imgs[0]` is the current
/// sample. Returns the canvas and the labels (canvas pixels, clipped, empty boxes dropped).
pub fn mosaic4_layout<'a>(
    imgs: [Tile<'a>; 4],
    s: usize,
    rng: &mut impl Rng,
) -> (Canvas<'a>, Instances) {
    let s2 = 2 * s;
    let yc = rng.gen_range(s as f64 / 2.0..(s2 as f64 - s as f64 / 2.0)) as i64;
    let xc = rng.gen_range(s as f64 / 2.0..(s2 as f64 - s as f64 / 2.0)) as i64;
    let mut tiles = Vec::with_capacity(4);
    let mut labels = Vec::with_capacity(4);
    for (k, (img, inst)) in imgs.into_iter().enumerate() {
        let [a, b] = tile_regions(k, (img.w as i64, img.h as i64), (xc, yc), s2 as i64);
        if a[2] > a[0] && a[3] > a[1] {
            tiles.push(Placed {
                img,
                x0: a[0],
                y0: a[1],
                x1: a[2],
                y1: a[3],
                dx: a[0] - b[0],
                dy: a[1] - b[1],
            });
        }
        let mut inst = inst.clone();
        inst.translate((a[0] - b[0]) as f32, (a[1] - b[1]) as f32);
        labels.push(inst);
    }
    let mut inst = Instances::concat(labels);
    inst.equalize_segments();
    inst.clip(s2 as f32, s2 as f32);
    inst.remove_zero_area();
    let canvas = Canvas {
        w: s2,
        h: s2,
        tiles,
    };
    (canvas, inst)
}

/// Four-image mosaic on a `2s x 2s` canvas (spec/augment.md §2); `imgs[0]` is the current sample.
pub fn mosaic4(imgs: [Sample; 4], s: usize, rng: &mut impl Rng) -> Sample {
    let refs: [Tile; 4] = std::array::from_fn(|k| (&imgs[k].img, &imgs[k].instances));
    let (canvas, instances) = mosaic4_layout(refs, s, rng);
    Sample {
        img: canvas.materialize(),
        instances,
    }
}

fn matmul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

fn invert(m: &Mat3) -> Option<Mat3> {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det.abs() < 1e-12 {
        return None;
    }
    let c =
        |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    Some([
        [
            c(1, 1, 2, 2) / det,
            -c(0, 1, 2, 2) / det,
            c(0, 1, 1, 2) / det,
        ],
        [
            -c(1, 0, 2, 2) / det,
            c(0, 0, 2, 2) / det,
            -c(0, 0, 1, 2) / det,
        ],
        [
            c(1, 0, 2, 1) / det,
            -c(0, 0, 2, 1) / det,
            c(0, 0, 1, 1) / det,
        ],
    ])
}

/// Warps with a 3x3 matrix (inverse mapping, bilinear, border 114) into `(out_h, out_w)`. Affine
/// matrices take an incremental fast path.
pub fn warp(img: &Rgb, m: &Mat3, out_w: usize, out_h: usize) -> Rgb {
    let inv = invert(m).unwrap_or([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    let mut out = vec![114u8; out_w * out_h * 3];
    let (w, h) = (img.w as i64, img.h as i64);
    let src = &img.data;
    let affine = inv[2][0] == 0.0 && inv[2][1] == 0.0 && inv[2][2] == 1.0;
    let (wf, hf) = (w as f32, h as f32);
    let sample = |sx: f32, sy: f32, d: &mut [u8]| {
        if !(sx > -1.0 && sy > -1.0 && sx < wf && sy < hf) {
            return;
        }
        // floor for values > -1 without a libm call.
        let (x0, y0) = ((sx + 1.0) as i64 - 1, (sy + 1.0) as i64 - 1);
        let ax = ((sx - x0 as f32) * 256.0) as u32;
        let ay = ((sy - y0 as f32) * 256.0) as u32;
        if x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h {
            let i00 = ((y0 * w + x0) * 3) as usize;
            let i10 = i00 + (w as usize) * 3;
            let (p, q) = (&src[i00..i00 + 6], &src[i10..i10 + 6]);
            for c in 0..3 {
                let top = p[c] as u32 * (256 - ax) + p[3 + c] as u32 * ax;
                let bot = q[c] as u32 * (256 - ax) + q[3 + c] as u32 * ax;
                d[c] = ((top * (256 - ay) + bot * ay + (1 << 15)) >> 16) as u8;
            }
        } else {
            let px = |xx: i64, yy: i64, c: usize| -> u32 {
                if xx < 0 || yy < 0 || xx >= w || yy >= h {
                    114
                } else {
                    src[((yy * w + xx) * 3) as usize + c] as u32
                }
            };
            for (c, o) in d.iter_mut().enumerate() {
                let top = px(x0, y0, c) * (256 - ax) + px(x0 + 1, y0, c) * ax;
                let bot = px(x0, y0 + 1, c) * (256 - ax) + px(x0 + 1, y0 + 1, c) * ax;
                *o = ((top * (256 - ay) + bot * ay + (1 << 15)) >> 16) as u8;
            }
        }
    };
    for (y, row) in out.chunks_exact_mut(out_w * 3).enumerate() {
        let fy = y as f64;
        if affine {
            // Incremental source coordinates along the row; pixels whose 2x2 neighbourhood lies
            // inside the source take a tight 16.16 fixed-point loop.
            let (sx0, sy0) = (inv[0][1] * fy + inv[0][2], inv[1][1] * fy + inv[1][2]);
            let (dx, dy) = (inv[0][0], inv[1][0]);
            let inside = |x: usize| {
                let (sx, sy) = (sx0 + dx * x as f64, sy0 + dy * x as f64);
                // A margin larger than the fixed-point drift over a row (640 / 65536 px) keeps the
                // neighbourhood inside even when increments are negative (rotation, shear).
                const M: f64 = 0.05;
                sx >= M && sy >= M && sx < (w - 1) as f64 - M && sy < (h - 1) as f64 - M
            };
            let mut x = 0;
            while x < out_w {
                if !inside(x) {
                    sample(
                        (sx0 + dx * x as f64) as f32,
                        (sy0 + dy * x as f64) as f32,
                        &mut row[x * 3..x * 3 + 3],
                    );
                    x += 1;
                    continue;
                }
                // Longest run of inside pixels from x (the inside set of a line is an interval).
                let mut end = x + 1;
                while end < out_w && inside(end) {
                    end += 1;
                }
                let (fxs, fys) = (
                    ((sx0 + dx * x as f64) * 65536.0) as i64,
                    ((sy0 + dy * x as f64) * 65536.0) as i64,
                );
                let (fdx, fdy) = ((dx * 65536.0) as i64, (dy * 65536.0) as i64);
                let stride = w as usize * 3;
                for (k, d) in row[x * 3..end * 3].chunks_exact_mut(3).enumerate() {
                    let (fx, fy) = (fxs + fdx * k as i64, fys + fdy * k as i64);
                    let (x0, y0) = ((fx >> 16) as usize, (fy >> 16) as usize);
                    let (ax, ay) = (((fx >> 8) & 255) as u32, ((fy >> 8) & 255) as u32);
                    let i00 = (y0 * w as usize + x0) * 3;
                    let (p, q) = (&src[i00..i00 + 6], &src[i00 + stride..i00 + stride + 6]);
                    for c in 0..3 {
                        let top = p[c] as u32 * (256 - ax) + p[3 + c] as u32 * ax;
                        let bot = q[c] as u32 * (256 - ax) + q[3 + c] as u32 * ax;
                        d[c] = ((top * (256 - ay) + bot * ay + (1 << 15)) >> 16) as u8;
                    }
                }
                x = end;
            }
        } else {
            for (x, d) in row.chunks_exact_mut(3).enumerate() {
                let fx = x as f64;
                let z = inv[2][0] * fx + inv[2][1] * fy + inv[2][2];
                sample(
                    ((inv[0][0] * fx + inv[0][1] * fy + inv[0][2]) / z) as f32,
                    ((inv[1][0] * fx + inv[1][1] * fy + inv[1][2]) / z) as f32,
                    d,
                );
            }
        }
    }
    Rgb {
        w: out_w,
        h: out_h,
        data: out,
    }
}

/// Warps a canvas with a 3x3 matrix into `(out_h, out_w)` (bilinear, border 114). Axis-aligned
/// affine matrices (no rotation, shear or perspective: Ultralytics' defaults) read the canvas row
/// by row, separably, without building it; others go through [`warp`].
pub fn warp_canvas(c: &Canvas, m: &Mat3, out_w: usize, out_h: usize) -> Rgb {
    match aligned_inverse(m) {
        Some(inv) => Rgb {
            w: out_w,
            h: out_h,
            data: warp_aligned::<3>(c, &inv, out_w, out_h),
        },
        None => warp(&c.materialize(), m, out_w, out_h),
    }
}

/// The inverse of an axis-aligned affine matrix (no rotation, shear or perspective), else `None`.
fn aligned_inverse(m: &Mat3) -> Option<Mat3> {
    let inv = invert(m).unwrap_or([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    (inv[0][1] == 0.0 && inv[1][0] == 0.0 && inv[2] == [0.0, 0.0, 1.0]).then_some(inv)
}

/// The separable warp of [`warp_canvas`] on `C` channels (3: RGB; 1: grey tiles, first channel).
fn warp_aligned<const C: usize>(c: &Canvas, inv: &Mat3, out_w: usize, out_h: usize) -> Vec<u8> {
    warp_aligned_on::<C>(c, inv, out_w, out_h, true)
}

/// [`warp_aligned`], on the vector path when `simd` and the CPU allows (the same bytes).
fn warp_aligned_on<const C: usize>(
    c: &Canvas,
    inv: &Mat3,
    out_w: usize,
    out_h: usize,
    simd: bool,
) -> Vec<u8> {
    let mut out = vec![114u8; out_w * out_h * C];
    let (wf, hf) = (c.w as f64, c.h as f64);
    // Columns: the source column left of each output pixel and its 8-bit weight.
    let valid = |x: usize| {
        let sx = inv[0][0] * x as f64 + inv[0][2];
        sx > -1.0 && sx < wf
    };
    let Some(xa) = (0..out_w).find(|&x| valid(x)) else {
        return out;
    };
    let xb = (xa..out_w).find(|&x| !valid(x)).unwrap_or(out_w);
    let cols: Vec<(i64, i32)> = (xa..xb)
        .map(|x| {
            let sx = inv[0][0] * x as f64 + inv[0][2];
            let x0 = sx.floor() as i64;
            (x0, ((sx - x0 as f64) * 256.0) as i32)
        })
        .collect();
    let lo = cols.iter().map(|c| c.0).min().unwrap_or(0);
    let hi = cols.iter().map(|c| c.0).max().unwrap_or(0) + 1;
    let n = (hi - lo + 1) as usize;
    let taps: Vec<(u32, i32)> = cols
        .iter()
        .map(|&(x0, ax)| ((x0 - lo) as u32 * C as u32, ax))
        .collect();
    let fetch = |y: i64, buf: &mut [u8]| {
        if C == 3 {
            c.row(y, lo, buf)
        } else {
            c.row_grey(y, lo, buf)
        }
    };
    // Output row y: the canvas row above its source point and the 8-bit weight of the one below.
    let row_of = |y: usize| {
        let sy = inv[1][1] * y as f64 + inv[1][2];
        if !(sy > -1.0 && sy < hf) {
            return None;
        }
        let y0 = sy.floor() as i64;
        Some((y0, ((sy - y0 as f64) * 256.0) as i32))
    };
    if C == 3 && simd && super::warp_rows::warp_rgb(&mut out, out_w, xa, &taps, n, row_of, fetch) {
        return out;
    }
    let (mut r0, mut r1) = (vec![0u8; n * C], vec![0u8; n * C]);
    let mut vb = vec![0u16; n * C];
    let mut have: Option<i64> = None; // canvas row held in r0 (r1 holds the next one)
    for (y, row) in out.chunks_exact_mut(out_w * C).enumerate() {
        let Some((y0, ay)) = row_of(y) else {
            continue;
        };
        let ay = ay as u16;
        match have {
            Some(h) if h == y0 => {}
            Some(h) if h + 1 == y0 => {
                std::mem::swap(&mut r0, &mut r1);
                fetch(y0 + 1, &mut r1);
            }
            _ => {
                fetch(y0, &mut r0);
                fetch(y0 + 1, &mut r1);
            }
        }
        have = Some(y0);
        for ((v, &p), &q) in vb.iter_mut().zip(&r0).zip(&r1) {
            *v = p as u16 * (256 - ay) + q as u16 * ay;
        }
        for (d, &(o, ax)) in row[xa * C..xb * C]
            .as_chunks_mut::<C>()
            .0
            .iter_mut()
            .zip(&taps)
        {
            let o = o as usize;
            let Some(v) = vb.get(o..o + 2 * C) else {
                continue;
            };
            // p * (256 - ax) + q * ax with one multiply (all terms fit an i32).
            *d = std::array::from_fn(|ch| {
                let (p, q) = (v[ch] as i32, v[C + ch] as i32);
                ((p * 256 + (q - p) * ax + (1 << 15)) >> 16) as u8
            });
        }
    }
    out
}

/// Random perspective / affine to `(out_w, out_h)` with the box-candidate filter (§3).
pub fn random_perspective(
    s: Sample,
    cfg: &AugConfig,
    out_w: usize,
    out_h: usize,
    rng: &mut impl Rng,
) -> Sample {
    random_perspective_on(
        &Canvas::single(&s.img),
        &s.instances,
        cfg,
        out_w,
        out_h,
        rng,
    )
}

/// Draws the random perspective matrix for a canvas (spec draw order) and its scale.
fn perspective_matrix(
    canvas: &Canvas,
    cfg: &AugConfig,
    out_w: usize,
    out_h: usize,
    rng: &mut impl Rng,
) -> (Mat3, f64) {
    let (wi, hi) = (canvas.w as f64, canvas.h as f64);
    let mut u = |a: f64, b: f64| if b > a { rng.gen_range(a..b) } else { a };
    let c: Mat3 = [
        [1.0, 0.0, -wi / 2.0],
        [0.0, 1.0, -hi / 2.0],
        [0.0, 0.0, 1.0],
    ];
    let p: Mat3 = [
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [
            u(-cfg.perspective, cfg.perspective),
            u(-cfg.perspective, cfg.perspective),
            1.0,
        ],
    ];
    let angle = u(-cfg.degrees, cfg.degrees).to_radians();
    let sc = u(1.0 - cfg.scale, 1.0 + cfg.scale);
    let r: Mat3 = [
        [sc * angle.cos(), sc * angle.sin(), 0.0],
        [-sc * angle.sin(), sc * angle.cos(), 0.0],
        [0.0, 0.0, 1.0],
    ];
    let shx = u(-cfg.shear, cfg.shear).to_radians().tan();
    let shy = u(-cfg.shear, cfg.shear).to_radians().tan();
    let sh: Mat3 = [[1.0, shx, 0.0], [shy, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let tx = u(0.5 - cfg.translate, 0.5 + cfg.translate) * out_w as f64;
    let ty = u(0.5 - cfg.translate, 0.5 + cfg.translate) * out_h as f64;
    let t: Mat3 = [[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]];
    let m = matmul(&t, &matmul(&sh, &matmul(&r, &matmul(&p, &c))));
    (m, sc)
}

/// [`random_perspective`] of a canvas (a mosaic) and its labels (canvas pixels).
pub fn random_perspective_on(
    canvas: &Canvas,
    inst: &Instances,
    cfg: &AugConfig,
    out_w: usize,
    out_h: usize,
    rng: &mut impl Rng,
) -> Sample {
    let (m, sc) = perspective_matrix(canvas, cfg, out_w, out_h, rng);
    let img = warp_canvas(canvas, &m, out_w, out_h);
    let instances = inst.warp(&m, sc, out_w, out_h);
    Sample { img, instances }
}

/// The grey version of [`random_perspective_on`] for a canvas of grey tiles: the same draws and
/// labels, one output channel. `Err` (an RGB sample, after the draws) when the matrix is not
/// axis-aligned.
pub fn random_perspective_grey(
    canvas: &Canvas,
    inst: &Instances,
    cfg: &AugConfig,
    out: usize,
    rng: &mut impl Rng,
) -> Result<GreySample, Box<Sample>> {
    let (m, sc) = perspective_matrix(canvas, cfg, out, out, rng);
    let instances = inst.warp(&m, sc, out, out);
    match aligned_inverse(&m) {
        Some(inv) => Ok(GreySample {
            w: out,
            h: out,
            data: warp_aligned::<1>(canvas, &inv, out, out),
            instances,
        }),
        None => Err(Box::new(Sample {
            img: warp(&canvas.materialize(), &m, out, out),
            instances,
        })),
    }
}

/// A one-channel sample (grey images stay grey through the warp; expanded to RGB at the end).
#[derive(Debug, Clone)]
pub struct GreySample {
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
    /// `h * w` grey bytes.
    pub data: Vec<u8>,
    /// Labels in pixels.
    pub instances: Instances,
}

impl GreySample {
    /// The RGB sample (each grey value three times).
    pub fn into_rgb(self) -> Sample {
        Sample {
            img: Rgb {
                w: self.w,
                h: self.h,
                data: crate::ops::grey_to_rgb(&self.data),
            },
            instances: self.instances,
        }
    }

    /// [`random_hsv`] on grey pixels: the same draws; only V changes (S = 0), exactly.
    pub fn random_hsv(&mut self, gains: [f64; 3], rng: &mut impl Rng) {
        if let Some([_, _, lut_v]) = hsv_luts(gains, rng) {
            for v in &mut self.data {
                *v = lut_v[*v as usize];
            }
        }
    }

    /// Flips left-right (keypoints reorder through `flip_idx`).
    pub fn fliplr(&mut self, flip_idx: Option<&[usize]>) {
        flip_lr::<1>(&mut self.data, self.w);
        self.instances.flip_lr(self.w as f32, flip_idx);
    }

    /// Flips up-down (keypoints reorder through `flip_idx`).
    pub fn flipud(&mut self, flip_idx: Option<&[usize]>) {
        flip_ud(&mut self.data, self.w, self.h);
        self.instances.flip_ud(self.h as f32, flip_idx);
    }
}

/// Mixes two samples with `r ~ Beta(32, 32)` (§4).
pub fn mixup(a: Sample, b: Sample, rng: &mut impl Rng) -> Sample {
    use rand_distr::{Beta, Distribution};
    let r = Beta::new(32.0, 32.0).map(|d| d.sample(rng)).unwrap_or(0.5) as f32;
    let data = a
        .img
        .data
        .iter()
        .zip(&b.img.data)
        .map(|(&x, &y)| (x as f32 * r + y as f32 * (1.0 - r)) as u8)
        .collect();
    let mut instances = a.instances;
    instances.extend(b.instances);
    instances.equalize_segments();
    Sample {
        img: Rgb {
            w: a.img.w,
            h: a.img.h,
            data,
        },
        instances,
    }
}

/// Intersection of `a` with `b` over the area of `b` (Ultralytics' `bbox_ioa`).
fn ioa(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    iw * ih / ((b[2] - b[0]) * (b[3] - b[1]) + 1e-7)
}

/// CutMix (§5): three random rectangles (`cut = sqrt(1 - U(0, 1))` of each side, random centre);
/// one that overlaps none of `a`'s boxes gets `b`'s pixels, with `b`'s instances whose box is at
/// least 10% inside it (1% with polygons), clipped to it. Unchanged when no rectangle is free or no
/// instance of `b` qualifies.
pub fn cutmix(mut a: Sample, b: &Sample, rng: &mut impl Rng) -> Sample {
    let (w, h) = (a.img.w as i64, a.img.h as i64);
    let areas: Vec<[f32; 4]> = (0..3)
        .map(|_| {
            let lam: f64 = rng.gen_range(0.0..1.0);
            let cut = (1.0 - lam).sqrt();
            let (cw, ch) = ((w as f64 * cut) as i64, (h as f64 * cut) as i64);
            let (cx, cy) = (rng.gen_range(0..w), rng.gen_range(0..h));
            [
                (cx - cw / 2).clamp(0, w) as f32,
                (cy - ch / 2).clamp(0, h) as f32,
                (cx + cw / 2).clamp(0, w) as f32,
                (cy + ch / 2).clamp(0, h) as f32,
            ]
        })
        .collect();
    let free: Vec<&[f32; 4]> = areas
        .iter()
        .filter(|r| {
            let boxes = &a.instances.boxes;
            boxes.iter().map(|bx| ioa(r, bx)).sum::<f32>() <= 0.0
        })
        .collect();
    if free.is_empty() {
        return a;
    }
    let r = *free[rng.gen_range(0..free.len())];
    let polygons = a.instances.has_polygons() || b.instances.has_polygons();
    let thr: f32 = if polygons { 0.01 } else { 0.1 };
    let keep: Vec<bool> = b
        .instances
        .boxes
        .iter()
        .map(|bx| ioa(&r, bx) >= thr)
        .collect();
    if !keep.contains(&true) {
        return a;
    }
    let (x1, y1, x2, y2) = (r[0] as usize, r[1] as usize, r[2] as usize, r[3] as usize);
    for y in y1..y2 {
        let (s, e) = ((y * a.img.w + x1) * 3, (y * a.img.w + x2) * 3);
        a.img.data[s..e].copy_from_slice(&b.img.data[s..e]);
    }
    let mut add = b.instances.select(&keep);
    add.clip_to(r);
    add.remove_zero_area();
    a.instances.extend(add);
    a.instances.equalize_segments();
    a
}

/// Whether copy-paste acts on these labels: some instance carries an outline (a polygon, or OBB
/// corners; Ultralytics: `len(instances.segments) > 0`). Box-only labels are left alone.
pub fn pastes(inst: &Instances) -> bool {
    inst.segments.as_ref().is_some_and(|s| !s.is_empty())
        || inst.corners.as_ref().is_some_and(|c| !c.is_empty())
}

/// The outline of instance `j` that copy-paste draws: its polygon, else its OBB corners.
fn outline(inst: &Instances, j: usize) -> &[[f32; 2]] {
    match (&inst.segments, &inst.corners) {
        (Some(s), _) => s.get(j).map_or(&[][..], |p| &p[..]),
        (None, Some(c)) => c.get(j).map_or(&[][..], |p| &p[..]),
        _ => &[],
    }
}

/// Copy-paste's choice (spec/segment.md §3 item 3): the indices of `src` boxes whose IoA with every
/// `dst` box is under 0.30 (float32 as NumPy), by ascending largest IoA, the first
/// `round(p · candidates)` (half to even, as Python). Ties keep index order (a stable sort; NumPy's
/// unstable `argsort` orders them arbitrarily).
pub fn copy_paste_selection(src: &[[f32; 4]], dst: &[[f32; 4]], p: f64) -> Vec<usize> {
    let mut cand: Vec<(usize, f32)> = src
        .iter()
        .enumerate()
        .filter_map(|(j, a)| {
            let v: Vec<f32> = dst.iter().map(|b| ioa(a, b)).collect();
            v.iter()
                .all(|&x| x < 0.30f32)
                .then(|| (j, v.iter().copied().fold(0.0f32, f32::max)))
        })
        .collect();
    cand.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n = (p * cand.len() as f64).round_ties_even().max(0.0) as usize;
    cand.into_iter().take(n).map(|c| c.0).collect()
}

/// Pastes the `selected` instances of `from` (pixels of `dst`) onto `dst`: their outlines, truncated
/// to int32, filled as OpenCV's `drawContours(FILLED)` (the same pixels as `fillPoly`) form a mask
/// where `dst` takes the pixels of `src` (None: `dst` mirrored left-right); then the instances are
/// appended in selection order.
fn paste(dst: &mut Sample, src: Option<&Rgb>, from: &Instances, selected: &[usize]) {
    use crate::ops::raster::{fill_poly, trunc_i32};
    let (w, h) = (dst.img.w, dst.img.h);
    let fits = |img: &Rgb| (img.w, img.h) == (w, h) && img.data.len() == w * h * 3;
    if selected.is_empty() || !fits(&dst.img) || src.is_some_and(|s| !fits(s)) {
        return;
    }
    let mut mask = vec![0u8; w * h];
    for &j in selected {
        let pts: Vec<[i32; 2]> = outline(from, j)
            .iter()
            .map(|p| [trunc_i32(p[0]), trunc_i32(p[1])])
            .collect();
        fill_poly(&mut mask, w, h, &pts, 1);
    }
    let mut orig = vec![0u8; w * 3];
    for (y, (row, m)) in dst
        .img
        .data
        .chunks_exact_mut(w * 3)
        .zip(mask.chunks_exact(w))
        .enumerate()
    {
        if !m.contains(&1) {
            continue;
        }
        let from_row: &[u8] = match src {
            Some(s) => &s.data[y * w * 3..(y + 1) * w * 3],
            None => {
                orig.copy_from_slice(row);
                &orig
            }
        };
        for x in (0..w).filter(|&x| m[x] != 0) {
            let sx = if src.is_some() { x } else { w - 1 - x };
            row[x * 3..x * 3 + 3].copy_from_slice(&from_row[sx * 3..sx * 3 + 3]);
        }
    }
    let mut add = from.clone();
    add.permute(selected);
    dst.instances.extend(add);
    dst.instances.equalize_segments();
}

/// Copy-paste, `flip` mode (spec/segment.md §3 item 3): the sample's instances mirrored left-right
/// are chosen by [`copy_paste_selection`] against its own boxes (fraction `p`) and pasted with the
/// mirrored pixels. No random draw; nothing happens without outlines or with `p = 0`.
pub fn copy_paste_flip(s: &mut Sample, p: f64) {
    if p == 0.0 || !pastes(&s.instances) {
        return;
    }
    let mut flipped = s.instances.clone();
    flipped.flip_lr(s.img.w as f32, None);
    let selected = copy_paste_selection(&flipped.boxes, &s.instances.boxes, p);
    paste(s, None, &flipped, &selected);
}

/// Copy-paste, `mixup` mode once applied (its probability draw and the partner are the caller's):
/// `other`'s instances chosen by [`copy_paste_selection`] against `s`'s boxes are pasted with
/// `other`'s pixels. Unchanged when the images differ in size (Ultralytics fails there).
pub fn copy_paste_from(s: &mut Sample, other: &Sample, p: f64) {
    if p == 0.0 || !pastes(&s.instances) {
        return;
    }
    let selected = copy_paste_selection(&other.instances.boxes, &s.instances.boxes, p);
    paste(s, Some(&other.img), &other.instances, &selected);
}

/// Flips image and labels left-right (keypoints reorder through `flip_idx`).
pub fn fliplr(s: &mut Sample, flip_idx: Option<&[usize]>) {
    flip_lr::<3>(&mut s.img.data, s.img.w);
    s.instances.flip_lr(s.img.w as f32, flip_idx);
}

/// Flips image and labels up-down (keypoints reorder through `flip_idx`).
pub fn flipud(s: &mut Sample, flip_idx: Option<&[usize]>) {
    flip_ud(&mut s.img.data, s.img.w * 3, s.img.h);
    s.instances.flip_ud(s.img.h as f32, flip_idx);
}

/// Mirrors `C`-channel rows of width `w` left-right.
fn flip_lr<const C: usize>(data: &mut [u8], w: usize) {
    if C == 3 && w > 0 {
        // Through a row buffer (with the spare bytes `mirror_rgb` writes past the row).
        let mut tmp = vec![0u8; w * 3 + 16];
        for row in data.chunks_exact_mut(w * 3) {
            mirror_rgb(row, &mut tmp);
            row.copy_from_slice(&tmp[..w * 3]);
        }
        return;
    }
    for row in data.chunks_exact_mut(w * C) {
        if C == 1 {
            row.reverse(); // the byte reverse is vectorised
        } else {
            row.as_chunks_mut::<C>().0.reverse();
        }
    }
}

/// `out[..row.len()]` = the RGB pixels of `row` in reverse order (`out` has 16 spare bytes).
pub(crate) fn mirror_rgb(row: &[u8], out: &mut [u8]) {
    let w = row.len() / 3;
    assert!(out.len() >= w * 3 + 16);
    #[cfg(target_arch = "x86_64")]
    let done = if std::is_x86_feature_detected!("ssse3") {
        // SAFETY: SSSE3 is present; the bounds are the ones asserted above.
        unsafe { mirror_rgb_ssse3(row, out) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for i in done..w {
        out[3 * (w - 1 - i)..3 * (w - i)].copy_from_slice(&row[3 * i..3 * i + 3]);
    }
}

/// [`mirror_rgb`] five pixels per shuffle for the pixels `[0, returned)` of `row`: 16 bytes read
/// from pixel `i`, 16 written at pixel `w - 5 - i`, right to left so that each store's spare byte
/// is rewritten by the next.
///
/// # Safety
/// The CPU must have SSSE3 and `out.len() >= row.len() + 16`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn mirror_rgb_ssse3(row: &[u8], out: &mut [u8]) -> usize {
    use std::arch::x86_64::*;
    let w = row.len() / 3;
    if w < 6 {
        return 0;
    }
    // Chunks start at pixels 0, 5, ... while the 16-byte read stays in the row (i + 6 <= w).
    let chunks = (w - 6) / 5 + 1;
    let rev = _mm_setr_epi8(12, 13, 14, 9, 10, 11, 6, 7, 8, 3, 4, 5, 0, 1, 2, -128);
    for k in (0..chunks).rev() {
        let i = 5 * k;
        let v = _mm_loadu_si128(row.as_ptr().add(3 * i).cast());
        _mm_storeu_si128(
            out.as_mut_ptr().add(3 * (w - 5 - i)).cast(),
            _mm_shuffle_epi8(v, rev),
        );
    }
    5 * chunks
}

/// Mirrors `h` rows of `row_bytes` bytes up-down.
fn flip_ud(data: &mut [u8], row_bytes: usize, h: usize) {
    for y in 0..h / 2 {
        let (top, bottom) = data.split_at_mut((h - 1 - y) * row_bytes);
        top[y * row_bytes..(y + 1) * row_bytes].swap_with_slice(&mut bottom[..row_bytes]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_mirror_equals_the_pixel_reverse_at_every_width() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        for w in 1..70 {
            for h in [1, 3] {
                let data: Vec<u8> = (0..w * h * 3).map(|_| rng.gen()).collect();
                let mut want = data.clone();
                for row in want.chunks_exact_mut(w * 3) {
                    row.as_chunks_mut::<3>().0.reverse();
                }
                let mut got = data.clone();
                flip_lr::<3>(&mut got, w);
                assert_eq!(got, want, "w={w} h={h}");
            }
        }
    }
    use rand::SeedableRng;

    fn sample(w: usize, h: usize) -> Sample {
        let mut data = vec![0u8; w * h * 3];
        for (i, v) in data.iter_mut().enumerate() {
            *v = (i % 251) as u8;
        }
        Sample {
            img: Rgb { w, h, data },
            instances: Instances::from_boxes(vec![1], vec![[10.0, 10.0, 30.0, 40.0]], false),
        }
    }

    #[test]
    fn mosaic_keeps_boxes_inside_and_shifts_them() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let m = mosaic4(
            [
                sample(64, 48),
                sample(64, 48),
                sample(64, 48),
                sample(64, 48),
            ],
            64,
            &mut rng,
        );
        assert_eq!((m.img.w, m.img.h), (128, 128));
        assert!(!m.instances.is_empty());
        for b in &m.instances.boxes {
            assert!(b[0] >= 0.0 && b[2] <= 128.0 && b[2] > b[0] && b[3] > b[1]);
        }
    }

    #[test]
    fn separable_canvas_warp_equals_the_materialized_warp() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let imgs = [
            sample(64, 48),
            sample(40, 64),
            sample(64, 64),
            sample(17, 23),
        ];
        for _ in 0..20 {
            let refs: [Tile; 4] = std::array::from_fn(|k| (&imgs[k].img, &imgs[k].instances));
            let (canvas, _) = mosaic4_layout(refs, 64, &mut rng);
            let sc = rng.gen_range(0.5..1.5);
            let (tx, ty) = (rng.gen_range(-20.0..60.0), rng.gen_range(-20.0..60.0));
            let m = [
                [sc, 0.0, tx - 64.0 * sc],
                [0.0, sc, ty - 64.0 * sc],
                [0.0, 0.0, 1.0],
            ];
            let a = warp_canvas(&canvas, &m, 64, 64);
            let b = warp(&canvas.materialize(), &m, 64, 64);
            let diff: Vec<i32> = a
                .data
                .iter()
                .zip(&b.data)
                .map(|(x, y)| (*x as i32 - *y as i32).abs())
                .collect();
            let exact = diff.iter().filter(|&&d| d == 0).count() as f64 / diff.len() as f64;
            // Same bilinear weights up to the fixed-point rounding of the source coordinate.
            assert!(
                diff.iter().all(|&d| d <= 1) && exact > 0.99,
                "exact {exact}"
            );
        }
    }

    #[test]
    fn canvas_rows_fill_only_the_gaps_and_equal_fill_then_copy() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for case in 0..100 {
            let imgs: Vec<Sample> = (0..4)
                .map(|_| {
                    let mut s = sample(rng.gen_range(1..50), rng.gen_range(1..50));
                    s.img.data.iter_mut().for_each(|v| *v = rng.gen());
                    s
                })
                .collect();
            let refs: [Tile; 4] = std::array::from_fn(|k| (&imgs[k].img, &imgs[k].instances));
            let (canvas, _) = mosaic4_layout(refs, rng.gen_range(4..40), &mut rng);
            let (x, n) = (rng.gen_range(-10..30), rng.gen_range(1..120usize));
            for y in -2..canvas.h as i64 + 2 {
                let mut want = vec![114u8; n * 3];
                canvas.for_runs(y, x, n as i64, |d, img, src, len| {
                    want[d * 3..(d + len) * 3].copy_from_slice(&img.data[src..src + len * 3]);
                });
                let mut got = vec![7u8; n * 3];
                canvas.row(y, x, &mut got);
                assert_eq!(got, want, "case {case} y {y}");
                let mut grey = vec![7u8; n];
                canvas.row_grey(y, x, &mut grey);
                let firsts: Vec<u8> = want.chunks_exact(3).map(|p| p[0]).collect();
                assert_eq!(grey, firsts, "case {case} y {y}");
            }
        }
    }

    #[test]
    fn vector_warp_rows_equal_the_scalar_ones() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let imgs: Vec<Sample> = (0..8)
            .map(|_| {
                let (w, h) = (rng.gen_range(1..90), rng.gen_range(1..90));
                let mut s = sample(w, h);
                s.img.data.iter_mut().for_each(|v| *v = rng.gen());
                s
            })
            .collect();
        let mut warped = 0;
        for case in 0..200 {
            let k = case % 5;
            let refs: [Tile; 4] = std::array::from_fn(|j| {
                let im = &imgs[(k + j) % imgs.len()];
                (&im.img, &im.instances)
            });
            let s = rng.gen_range(8..80);
            let (canvas, _) = mosaic4_layout(refs, s, &mut rng);
            let (sx, sy) = (rng.gen_range(0.3..2.5), rng.gen_range(0.3..2.5));
            let (tx, ty) = (rng.gen_range(-60.0..30.0), rng.gen_range(-60.0..30.0));
            let m = [[sx, 0.0, tx], [0.0, sy, ty], [0.0, 0.0, 1.0]];
            let inv = aligned_inverse(&m).unwrap();
            let (ow, oh) = (rng.gen_range(1..120), rng.gen_range(1..120));
            let a = warp_aligned_on::<3>(&canvas, &inv, ow, oh, true);
            let b = warp_aligned_on::<3>(&canvas, &inv, ow, oh, false);
            assert_eq!(
                a, b,
                "case {case}: scale {sx} {sy} shift {tx} {ty} out {ow}x{oh}"
            );
            warped += a.iter().any(|&v| v != 114) as usize;
        }
        // Most cases see the canvas (the others test the all-border output).
        assert!(warped > 100, "{warped}");
    }

    #[test]
    fn cutmix_pastes_a_free_rectangle_with_its_boxes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let a = Sample {
            img: Rgb {
                w: 64,
                h: 48,
                data: vec![10; 64 * 48 * 3],
            },
            instances: Instances::from_boxes(vec![0], vec![[2.0, 2.0, 12.0, 10.0]], false),
        };
        let b = Sample {
            img: Rgb {
                w: 64,
                h: 48,
                data: vec![200; 64 * 48 * 3],
            },
            instances: Instances::from_boxes(
                vec![1, 2, 1],
                vec![
                    [20.0, 20.0, 40.0, 40.0],
                    [40.0, 5.0, 60.0, 15.0],
                    [0.0, 30.0, 20.0, 47.0],
                ],
                false,
            ),
        };
        let mut pasted = 0;
        for _ in 0..50 {
            let out = cutmix(a.clone(), &b, &mut rng);
            let (ob, oc) = (&out.instances.boxes, &out.instances.cls);
            assert_eq!(ob[0], a.instances.boxes[0]);
            // a's own box is never covered.
            for y in 2..10 {
                for x in 2..12 {
                    assert_eq!(out.img.data[(y * 64 + x) * 3], 10);
                }
            }
            if ob.len() > 1 {
                pasted += 1;
                // The pasted pixels cover every added box.
                for (c, bx) in oc[1..].iter().zip(&ob[1..]) {
                    assert!(*c == 1 || *c == 2);
                    let (cx, cy) = (
                        ((bx[0] + bx[2]) / 2.0) as usize,
                        ((bx[1] + bx[3]) / 2.0) as usize,
                    );
                    assert_eq!(out.img.data[(cy * 64 + cx) * 3], 200, "{bx:?}");
                }
            } else {
                assert_eq!(out.img.data, a.img.data);
            }
        }
        assert!(pasted > 5, "{pasted}");
    }

    #[test]
    fn identity_affine_keeps_the_image() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let s = sample(40, 50);
        let out = random_perspective(s.clone(), &AugConfig::none(), 40, 50, &mut rng);
        assert_eq!(out.img.data, s.img.data);
        assert_eq!(out.instances, s.instances);
    }

    #[test]
    fn rotated_and_sheared_warps_stay_in_bounds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let cfg = AugConfig {
            degrees: 180.0,
            shear: 30.0,
            scale: 0.9,
            translate: 0.5,
            ..AugConfig::default()
        };
        for (w, h) in [(640, 480), (97, 641), (33, 31)] {
            for _ in 0..20 {
                let s = sample(w, h);
                let out = random_perspective(s, &cfg, 128, 96, &mut rng);
                assert_eq!(out.img.data.len(), 128 * 96 * 3);
            }
        }
    }

    #[test]
    fn flips_are_involutions() {
        let s = sample(40, 50);
        let mut t = s.clone();
        fliplr(&mut t, None);
        assert_eq!(t.instances.boxes[0], [10.0, 10.0, 30.0, 40.0]);
        flipud(&mut t, None);
        assert_eq!(t.instances.boxes[0], [10.0, 10.0, 30.0, 40.0]);
        flipud(&mut t, None);
        fliplr(&mut t, None);
        flipud(&mut t, None);
        flipud(&mut t, None);
        assert_eq!(t.img.data, s.img.data);
        assert_eq!(t.instances, s.instances);
    }
}
