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

    /// `cv2.resize` to `(w // 2, h // 2)` with INTER_LINEAR: an exact 2× reduction, which OpenCV computes
    /// as the rounded mean of each 2×2 block.
    pub fn half(&self) -> Self {
        let (w, h) = (self.w / 2, self.h / 2);
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            let (r0, r1) = (
                &self.data[2 * y * self.w..],
                &self.data[(2 * y + 1) * self.w..],
            );
            for x in 0..w {
                let s = r0[2 * x] as u32
                    + r0[2 * x + 1] as u32
                    + r1[2 * x] as u32
                    + r1[2 * x + 1] as u32;
                data.push(((s + 2) >> 2) as u8);
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

/// The 3-tap Gaussian of `sigma` as OpenCV's bit-exact 8-bit path holds it: Q8 fixed point summing to 256.
fn gaussian_taps_q8(sigma: f64) -> [u32; 3] {
    let e = (-1.0 / (2.0 * sigma * sigma)).exp();
    let side = e / (1.0 + 2.0 * e);
    let s = (side * 256.0).round() as u32;
    [s, 256 - 2 * s, s]
}

/// OpenCV's BORDER_REFLECT_101 index of `i` in `0..n` (`n ≥ 1`).
pub fn reflect101(mut i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
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
