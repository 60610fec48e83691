//! 8-bit gray images for motion compensation: OpenCV's BGR→gray, 2× downscale and 3×3 Gaussian blur.

/// A single-channel 8-bit image, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Gray {
    /// Width in pixels.
    pub w: usize,
    /// Height in pixels.
    pub h: usize,
    /// `h × w` values.
    pub data: Vec<u8>,
}

impl Gray {
    /// A `w × h` image of `data` (`None` when the length is wrong).
    pub fn new(w: usize, h: usize, data: Vec<u8>) -> Option<Self> {
        (data.len() == w * h).then_some(Self { w, h, data })
    }

    /// The pixel at column `x`, row `y`.
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.data[y * self.w + x]
    }

    /// OpenCV `cvtColor(COLOR_BGR2GRAY)` of an RGB frame: fixed-point weights 3735 (B), 19235 (G), 9798 (R)
    /// over 2^15, rounded half up (the 5.x build's values: checked against every one of the 2^24 colours by
    /// scripts/gmc/reference.py; the 2^14 weights 1868/9617/4899 differ on 0.26 % of them).
    pub fn from_rgb(img: &image::RgbImage) -> Self {
        let data = img
            .pixels()
            .map(|p| {
                let [r, g, b] = p.0;
                ((b as u32 * 3735 + g as u32 * 19235 + r as u32 * 9798 + (1 << 14)) >> 15) as u8
            })
            .collect();
        Self {
            w: img.width() as usize,
            h: img.height() as usize,
            data,
        }
    }

    /// `cv2.resize` to `(w // 2, h // 2)` with INTER_LINEAR, in OpenCV's 8-bit fixed point: per output
    /// column/row the source position `(d + 0.5)·scale − 0.5` in float, weights `1 − f` and `f` in Q11
    /// (clamped to the edge pixel outside), a horizontal pass in integers, then the vertical blend
    /// `((b0·(S0 >> 4)) >> 16) + ((b1·(S1 >> 4)) >> 16) + 2) >> 2`. An exact 2× reduction comes out as the
    /// rounded mean of each 2×2 block (OpenCV's area fast path gives the same values).
    pub fn half(&self) -> Self {
        let (w, h) = (self.w / 2, self.h / 2);
        let xs = linear_taps(self.w, w);
        let ys = linear_taps(self.h, h);
        let last_x = self.w.saturating_sub(1);
        let rows: Vec<Vec<i32>> = (0..self.h)
            .map(|y| {
                let r = &self.data[y * self.w..(y + 1) * self.w];
                xs.iter()
                    .map(|&(x, a, b)| r[x] as i32 * a + r[(x + 1).min(last_x)] as i32 * b)
                    .collect()
            })
            .collect();
        let last_y = self.h.saturating_sub(1);
        let mut data = Vec::with_capacity(w * h);
        for &(y, a, b) in &ys {
            let (r0, r1) = (&rows[y], &rows[(y + 1).min(last_y)]);
            for x in 0..w {
                let v = (((a * (r0[x] >> 4)) >> 16) + ((b * (r1[x] >> 4)) >> 16) + 2) >> 2;
                data.push(v.clamp(0, 255) as u8);
            }
        }
        Self { w, h, data }
    }

    /// `cv2.GaussianBlur(img, (3, 3), 1.5)` on 8-bit data: OpenCV's fixed-point kernel (taps rounded to
    /// 1/256, weights `[h, 256−2h, h]` per axis), border reflect-101, result rounded half up.
    pub fn gaussian3(&self, sigma: f64) -> Self {
        let k = gaussian_taps_q8(sigma);
        let (w, h) = (self.w, self.h);
        let mut rows = vec![0u32; w * h];
        for y in 0..h {
            let r = &self.data[y * w..(y + 1) * w];
            for x in 0..w {
                let (l, c, rr) = (
                    r[reflect101(x as isize - 1, w)],
                    r[x],
                    r[reflect101(x as isize + 1, w)],
                );
                rows[y * w + x] = k[0] * l as u32 + k[1] * c as u32 + k[2] * rr as u32;
            }
        }
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            let (u, d) = (reflect101(y as isize - 1, h), reflect101(y as isize + 1, h));
            for x in 0..w {
                let s = k[0] * rows[u * w + x] + k[1] * rows[y * w + x] + k[2] * rows[d * w + x];
                data.push(((s + (1 << 15)) >> 16).min(255) as u8);
            }
        }
        Self { w, h, data }
    }
}

/// OpenCV's INTER_LINEAR taps from `src` to `dst` samples: `(first source index, weight, weight of the
/// next)` in Q11.
fn linear_taps(src: usize, dst: usize) -> Vec<(usize, i32, i32)> {
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut sx = f.floor() as i64;
            let mut fx = f - sx as f32;
            if sx < 0 {
                (sx, fx) = (0, 0.0);
            }
            if sx >= src as i64 - 1 {
                (sx, fx) = (src as i64 - 1, 0.0);
            }
            let a = ((1.0 - fx) * 2048.0).round_ties_even() as i32;
            let b = (fx * 2048.0).round_ties_even() as i32;
            (sx as usize, a, b)
        })
        .collect()
}

/// The 3-tap Gaussian of `sigma` as OpenCV's bit-exact 8-bit path holds it: Q8 fixed point summing to 256.
fn gaussian_taps_q8(sigma: f64) -> [u32; 3] {
    let e = (-1.0 / (2.0 * sigma * sigma)).exp();
    let side = e / (1.0 + 2.0 * e);
    let s = (side * 256.0).round() as u32;
    [s, 256 - 2 * s, s]
}

/// OpenCV's BORDER_REFLECT_101 index of `i` in `0..n` (0 when `n ≤ 1`).
pub fn reflect101(mut i: isize, n: usize) -> usize {
    let n = n as isize;
    if n <= 1 {
        return 0;
    }
    loop {
        if i < 0 {
            i = -i;
        } else if i >= n {
            i = 2 * n - 2 - i;
        } else {
            return i as usize;
        }
    }
}
