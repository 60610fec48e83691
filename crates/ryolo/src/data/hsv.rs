//! Random HSV gains on 8-bit RGB (spec/augment.md §7): OpenCV's integer RGB -> HSV, per-channel
//! lookup tables, integer HSV -> RGB; AVX2 when the CPU has it, with the same bytes as the scalar path.

use crate::ops::Rgb;
use rand::Rng;

/// OpenCV's fixed-point division tables for 8-bit RGB -> HSV (`hsv_shift` 12).
struct DivTables {
    sdiv: [i32; 256],
    hdiv: [i32; 256],
}

fn div_tables() -> &'static DivTables {
    static T: std::sync::OnceLock<DivTables> = std::sync::OnceLock::new();
    T.get_or_init(|| DivTables {
        sdiv: std::array::from_fn(|i| {
            if i == 0 {
                0
            } else {
                ((255 << 12) as f64 / i as f64).round_ties_even() as i32
            }
        }),
        hdiv: std::array::from_fn(|i| {
            if i == 0 {
                0
            } else {
                ((180 << 12) as f64 / (6 * i) as f64).round_ties_even() as i32
            }
        }),
    })
}

/// 8-bit RGB -> HSV exactly as OpenCV's `COLOR_RGB2HSV` (H in [0, 180), S and V in [0, 255]).
#[inline(always)]
fn rgb_to_hsv_t(r: u8, g: u8, b: u8, t: &DivTables) -> (i32, i32, i32) {
    let (r, g, b) = (r as i32, g as i32, b as i32);
    let v = r.max(g).max(b);
    let diff = v - r.min(g).min(b);
    let s = (diff * t.sdiv[v as usize] + (1 << 11)) >> 12;
    let h = if v == r {
        g - b
    } else if v == g {
        b - r + 2 * diff
    } else {
        r - g + 4 * diff
    };
    let mut h = (h * t.hdiv[diff as usize] + (1 << 11)) >> 12;
    if h < 0 {
        h += 180;
    }
    (h, s, v)
}

/// Per hue sector: which of (v, p, q, t) become R, G and B (OpenCV's HSV -> RGB).
const SECTOR_ORDER: [[usize; 3]; 6] = [
    [0, 3, 1],
    [2, 0, 1],
    [1, 0, 3],
    [1, 2, 0],
    [3, 1, 0],
    [0, 1, 2],
];

/// The H, S and V lookup tables of one random draw (§7); `None`, drawing nothing, when every gain
/// is zero.
pub(crate) fn hsv_luts(gains: [f64; 3], rng: &mut impl Rng) -> Option<[[u8; 256]; 3]> {
    if gains.iter().all(|&g| g == 0.0) {
        return None;
    }
    let r: [f64; 3] = std::array::from_fn(|i| rng.gen_range(-1.0..1.0) * gains[i]);
    Some([
        std::array::from_fn(|x| (x as f64 + r[0] * 180.0).rem_euclid(180.0) as u8),
        std::array::from_fn(|x| {
            if x == 0 {
                0
            } else {
                (x as f64 * (1.0 + r[1])).clamp(0.0, 255.0) as u8
            }
        }),
        std::array::from_fn(|x| (x as f64 * (1.0 + r[2])).clamp(0.0, 255.0) as u8),
    ])
}

/// One draw's tables in the form both kernels read: per input hue the shifted hue's sector and
/// position in it (`sector << 8 | f`, 1/256 steps, as OpenCV's HSV -> RGB), the S and V tables;
/// and the draw as arithmetic (hue rotation, f32 gains) when that reproduces the tables exactly.
struct Shift {
    secf: [i32; 256],
    lut_s: [i32; 256],
    lut_v: [i32; 256],
    /// `(hue rotation, S gain, V gain)` reproducing the tables, for the vector kernel.
    arith: Option<(i32, f32, f32)>,
}

impl Shift {
    fn new([lut_h, lut_s, lut_v]: &[[u8; 256]; 3]) -> Self {
        let lut_s = lut_s.map(i32::from);
        let lut_v = lut_v.map(i32::from);
        let k = lut_h[0] as usize;
        let rotation = (0..180).all(|x| lut_h[x] as usize == (x + k) % 180);
        let arith = match (rotation, f32_gain(&lut_s), f32_gain(&lut_v)) {
            (true, Some(gs), Some(gv)) => Some((k as i32, gs, gv)),
            _ => None,
        };
        Self {
            secf: std::array::from_fn(|h| {
                let h6 = lut_h[h.min(179)] as i32 * 6 * 256 / 180;
                (((h6 >> 8) % 6) << 8) | (h6 & 255)
            }),
            lut_s,
            lut_v,
            arith,
        }
    }
}

/// `floor(x g)` clamped to [0, 255] in f32, as the vector kernel computes a table entry.
#[inline(always)]
fn gain_f32(x: i32, g: f32) -> i32 {
    (x as f32 * g).floor().clamp(0.0, 255.0) as i32
}

/// An f32 gain whose [`gain_f32`] equals `lut` on all 256 entries, if one in the middle of the
/// gains the table allows does (nearly always; otherwise the scalar kernel runs).
fn f32_gain(lut: &[i32; 256]) -> Option<f32> {
    // Each entry bounds the gain: floor(x g) = lut[x] inside (0, 255), >= 255 or < 1 at the ends.
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    for (x, &y) in lut.iter().enumerate().skip(1) {
        let x = x as f64;
        if y < 255 {
            hi = hi.min((y as f64 + 1.0) / x);
        }
        if y > 0 {
            lo = lo.max(y as f64 / x);
        }
    }
    let mid = match (lo.is_finite(), hi.is_finite()) {
        (true, true) => (lo + hi) / 2.0,
        (true, false) => lo * 2.0,
        (false, true) => hi - 1.0,
        (false, false) => return None,
    } as f32;
    (-2i32..=2)
        .map(|d| f32::from_bits((mid.to_bits() as i32 + d) as u32))
        .find(|&g| (0..256).all(|x| gain_f32(x as i32, g) == lut[x]))
}

/// Random HSV gains through lookup tables in OpenCV's 8-bit HSV space (§7).
pub fn random_hsv(img: &mut Rgb, gains: [f64; 3], rng: &mut impl Rng) {
    if let Some(d) = HsvDraw::draw(gains, rng) {
        d.apply(&mut img.data);
    }
}

/// One random HSV draw (§7), kept to be applied to any pixels later (a row at a time, say).
pub(crate) struct HsvDraw {
    shift: Shift,
    lut_v: [u8; 256],
}

impl HsvDraw {
    /// Draws as [`random_hsv`] does; `None`, drawing nothing, when every gain is zero.
    pub(crate) fn draw(gains: [f64; 3], rng: &mut impl Rng) -> Option<Self> {
        hsv_luts(gains, rng).map(|luts| Self {
            shift: Shift::new(&luts),
            lut_v: luts[2],
        })
    }

    /// Applies the draw to interleaved RGB bytes.
    pub(crate) fn apply(&self, rgb: &mut [u8]) {
        apply(rgb, &self.shift);
    }

    /// The V table: the whole draw on a grey pixel (S = 0).
    pub(crate) fn lut_v(&self) -> &[u8; 256] {
        &self.lut_v
    }
}

/// Applies one draw to interleaved RGB bytes (AVX2 for whole blocks of 16 pixels when present and
/// the draw has its arithmetic form).
fn apply(data: &mut [u8], sh: &Shift) {
    let done = simd(data, sh);
    scalar(&mut data[done..], div_tables(), sh);
}

#[cfg(target_arch = "x86_64")]
fn simd(data: &mut [u8], sh: &Shift) -> usize {
    match sh.arith {
        // SAFETY: AVX2 is present (checked here).
        Some(a) if std::is_x86_feature_detected!("avx2") => unsafe { avx2::apply(data, a) },
        _ => 0,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn simd(_: &mut [u8], _: &Shift) -> usize {
    0
}

/// The per-pixel reference: RGB -> HSV, the tables, HSV -> RGB in integers.
fn scalar(data: &mut [u8], t: &DivTables, sh: &Shift) {
    for px in data.as_chunks_mut::<3>().0 {
        if px[0] == px[1] && px[1] == px[2] {
            // Grey (S = 0, H = 0, and lut_s[0] = 0): only V changes. Exact, and the common case
            // for grey datasets and the 114 padding.
            let v = sh.lut_v[px[0] as usize] as u8;
            *px = [v, v, v];
            continue;
        }
        let (h, s, v) = rgb_to_hsv_t(px[0], px[1], px[2], t);
        let sf = sh.secf[h as usize];
        let (sector, f) = (sf >> 8, sf & 255);
        let s = sh.lut_s[s as usize];
        // The coefficients (in 1/65280) of v, p, q and t: a channel is (v' K + 32512) / 65280.
        let k = [
            255 * 256,
            (255 - s) * 256,
            255 * 256 - s * f,
            255 * 256 - s * (256 - f),
        ];
        let order = SECTOR_ORDER[sector as usize];
        let v = sh.lut_v[v as usize] as u32;
        *px = order.map(|i| ((v * k[i] as u32 + 127 * 256) / (255 * 256)) as u8);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The scalar kernel on 16 pixels per register (16-bit lanes), without table reads: OpenCV's
    //! division tables as f32 divisions (equal on all 255 entries), the draw as a hue rotation and
    //! f32 gains (checked against its tables by `Shift::new`), and the HSV -> RGB step rewritten
    //! so that every intermediate fits 16 bits (derivations inline; exact on every colour: test).

    use super::SECTOR_ORDER;
    use std::arch::x86_64::*;

    /// Byte shuffles that split 48 interleaved bytes into R, G, B (16 each): `SPLIT[chunk][ch]`.
    const SPLIT: [[[u8; 16]; 3]; 3] = split_masks();
    /// Byte shuffles that interleave R, G, B back: `JOIN[chunk][ch]`.
    const JOIN: [[[u8; 16]; 3]; 3] = join_masks();

    const fn split_masks() -> [[[u8; 16]; 3]; 3] {
        let mut m = [[[0x80u8; 16]; 3]; 3];
        let mut ch = 0;
        while ch < 3 {
            let mut i = 0;
            while i < 16 {
                let j = 3 * i + ch;
                m[j / 16][ch][i] = (j % 16) as u8;
                i += 1;
            }
            ch += 1;
        }
        m
    }

    const fn join_masks() -> [[[u8; 16]; 3]; 3] {
        let mut m = [[[0x80u8; 16]; 3]; 3];
        let mut j = 0;
        while j < 48 {
            m[j / 16][j % 3][j % 16] = (j / 3) as u8;
            j += 1;
        }
        m
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn mask(m: &[u8; 16]) -> __m128i {
        _mm_loadu_si128(m.as_ptr().cast())
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn set(x: i32) -> __m256i {
        _mm256_set1_epi16(x as i16)
    }

    /// OpenCV's division table entry `e = round_ties_even(num / max(d, 1))` of 16 lanes, split
    /// as `(e >> 12, e & 4095)`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn div_entry(num: f32, d: __m256i) -> (__m256i, __m256i) {
        let z = _mm256_setzero_si256();
        let d = _mm256_max_epi16(d, set(1));
        let n = _mm256_set1_ps(num);
        // In-lane unpacks: the packs below restore the lane order.
        let lo = _mm256_cvtps_epi32(_mm256_div_ps(
            n,
            _mm256_cvtepi32_ps(_mm256_unpacklo_epi16(d, z)),
        ));
        let hi = _mm256_cvtps_epi32(_mm256_div_ps(
            n,
            _mm256_cvtepi32_ps(_mm256_unpackhi_epi16(d, z)),
        ));
        let m = _mm256_set1_epi32(4095);
        (
            _mm256_packus_epi32(_mm256_srli_epi32::<12>(lo), _mm256_srli_epi32::<12>(hi)),
            _mm256_packus_epi32(_mm256_and_si256(lo, m), _mm256_and_si256(hi, m)),
        )
    }

    /// `(a e + 2048) >> 12` (arithmetic shift) for the split entry `e` of [`div_entry`], with
    /// `|8 a| < 2^15` and a result within 16 bits: `a (e >> 12)` exactly, plus the rounded
    /// `(a (e & 4095) + 2048) >> 12 = (8 a (e & 4095) + 2^14) >> 15`, one rounding multiply.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn mul_q12(a: __m256i, (hi, lo): (__m256i, __m256i)) -> __m256i {
        _mm256_add_epi16(
            _mm256_mullo_epi16(a, hi),
            _mm256_mulhrs_epi16(_mm256_slli_epi16::<3>(a), lo),
        )
    }

    /// `floor(x g)` clamped to [0, 255] (`super::gain_f32` per lane) for 16 lanes in [0, 255]
    /// (truncation equals floor wherever the clamp keeps the value).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn gain(x: __m256i, g: __m256) -> __m256i {
        let z = _mm256_setzero_si256();
        let lo = _mm256_cvttps_epi32(_mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_unpacklo_epi16(x, z)),
            g,
        ));
        let hi = _mm256_cvttps_epi32(_mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_unpackhi_epi16(x, z)),
            g,
        ));
        _mm256_min_epu16(_mm256_packus_epi32(lo, hi), set(255))
    }

    /// `floor(y / 255)` for `0 <= y <= 65153`, as `(y * 32897) >> 23`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn div255(y: __m256i) -> __m256i {
        _mm256_srli_epi16::<7>(_mm256_mulhi_epu16(y, set(32897)))
    }

    /// The draw: hue rotation, S and V gains.
    #[derive(Clone, Copy)]
    struct Draw {
        k: __m256i,
        gs: __m256,
        gv: __m256,
    }

    /// Sixteen pixels (R, G, B as 16-bit lanes) through RGB -> HSV -> draw -> RGB.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn pixels16(r: __m256i, g: __m256i, b: __m256i, d: Draw) -> [__m256i; 3] {
        let v = _mm256_max_epi16(_mm256_max_epi16(r, g), b);
        let diff = _mm256_sub_epi16(v, _mm256_min_epi16(_mm256_min_epi16(r, g), b));
        // diff (e >> 12) <= 255 since diff <= v.
        let s = mul_q12(diff, div_entry((255 << 12) as f32, v));
        let h_r = _mm256_sub_epi16(g, b);
        let h_g = _mm256_add_epi16(_mm256_sub_epi16(b, r), _mm256_slli_epi16::<1>(diff));
        let h_b = _mm256_add_epi16(_mm256_sub_epi16(r, g), _mm256_slli_epi16::<2>(diff));
        let hn = _mm256_blendv_epi8(
            _mm256_blendv_epi8(h_b, h_g, _mm256_cmpeq_epi16(v, g)),
            h_r,
            _mm256_cmpeq_epi16(v, r),
        );
        // |hn| <= 5 diff: 8 |hn| < 2^15 and |hn (e >> 12)| <= 150.
        let h = mul_q12(hn, div_entry(((180 << 12) / 6) as f32, diff));
        let neg = _mm256_cmpgt_epi16(_mm256_setzero_si256(), h);
        let h = _mm256_add_epi16(h, _mm256_and_si256(neg, set(180)));
        // The shifted hue, then its sector and position:
        // h' * 1536 / 180 = floor(h' * 128 / 15) = (h' * 128 * 34953) >> 19 for h' < 180.
        let h = _mm256_add_epi16(_mm256_min_epi16(h, set(179)), d.k);
        let over = _mm256_cmpgt_epi16(h, set(179));
        let h = _mm256_sub_epi16(h, _mm256_and_si256(over, set(180)));
        let h6 = _mm256_srli_epi16::<3>(_mm256_mulhi_epu16(_mm256_slli_epi16::<7>(h), set(34953)));
        let sector = _mm256_srli_epi16::<8>(h6);
        let f = _mm256_and_si256(h6, set(255));
        let s2 = gain(s, d.gs);
        let v2 = gain(v, d.gv);
        // With w = v s (< 2^16) and w f = 256 a + b (b < 256), the scalar kernel's
        // (v K + 32512) / 65280 is, per coefficient K:
        //   p: K = 256 (255 - s)       -> v - floor((w + 127) / 255)
        //   q: K = 65280 - s f         -> v - floor((a + 127 + [b > 0]) / 255)
        //   t: K = 65280 - s (256 - f) -> v - floor((w - a + 127) / 255)
        // (v - ceil((u - 32512) / 65280) with u = v s f or v s (256 - f), and
        // floor(x / 65280) = floor(floor(x / 256) / 255)).
        let w = _mm256_mullo_epi16(v2, s2);
        let a = _mm256_mulhi_epu16(w, _mm256_slli_epi16::<8>(f));
        let b_zero = _mm256_cmpeq_epi16(
            _mm256_and_si256(_mm256_mullo_epi16(w, f), set(255)),
            _mm256_setzero_si256(),
        );
        let p = _mm256_sub_epi16(v2, div255(_mm256_add_epi16(w, set(127))));
        let q = _mm256_sub_epi16(
            v2,
            div255(_mm256_add_epi16(_mm256_add_epi16(a, set(128)), b_zero)),
        );
        let t = _mm256_sub_epi16(
            v2,
            div255(_mm256_add_epi16(_mm256_sub_epi16(w, a), set(127))),
        );
        let vals = [v2, p, q, t];
        let in_sector: [__m256i; 6] =
            std::array::from_fn(|k| _mm256_cmpeq_epi16(sector, set(k as i32)));
        let mut out = [p; 3];
        for (ch, o) in out.iter_mut().enumerate() {
            for (i, &val) in vals.iter().enumerate() {
                if i == 1 {
                    continue;
                }
                let mut hit = _mm256_setzero_si256();
                for (sec, order) in SECTOR_ORDER.iter().enumerate() {
                    if order[ch] == i {
                        hit = _mm256_or_si256(hit, in_sector[sec]);
                    }
                }
                *o = _mm256_blendv_epi8(*o, val, hit);
            }
        }
        out
    }

    /// Sixteen 16-bit lanes (values 0..=255) as 16 bytes in lane order.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn pack(x: __m256i) -> __m128i {
        _mm_packus_epi16(_mm256_castsi256_si128(x), _mm256_extracti128_si256::<1>(x))
    }

    /// Whole blocks of 16 pixels of `data` under the draw `(hue rotation, S gain, V gain)`;
    /// returns the bytes done.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn apply(data: &mut [u8], (k, gs, gv): (i32, f32, f32)) -> usize {
        let d = Draw {
            k: set(k),
            gs: _mm256_set1_ps(gs),
            gv: _mm256_set1_ps(gv),
        };
        let blocks = data.len() / 48;
        for blk in data.chunks_exact_mut(48) {
            let p = blk.as_mut_ptr();
            let c: [__m128i; 3] = std::array::from_fn(|k| _mm_loadu_si128(p.add(16 * k).cast()));
            let ch: [__m128i; 3] = std::array::from_fn(|n| {
                _mm_or_si128(
                    _mm_or_si128(
                        _mm_shuffle_epi8(c[0], mask(&SPLIT[0][n])),
                        _mm_shuffle_epi8(c[1], mask(&SPLIT[1][n])),
                    ),
                    _mm_shuffle_epi8(c[2], mask(&SPLIT[2][n])),
                )
            });
            let grey = _mm_and_si128(_mm_cmpeq_epi8(ch[0], ch[1]), _mm_cmpeq_epi8(ch[1], ch[2]));
            let out: [__m128i; 3] = if _mm_movemask_epi8(grey) == 0xffff {
                // Sixteen grey pixels (the padding, grey images): S = 0, only V changes.
                let v = pack(gain(_mm256_cvtepu8_epi16(ch[0]), d.gv));
                [v, v, v]
            } else {
                let w = ch.map(|x| _mm256_cvtepu8_epi16(x));
                pixels16(w[0], w[1], w[2], d).map(|x| pack(x))
            };
            for (k, m) in JOIN.iter().enumerate() {
                let v = _mm_or_si128(
                    _mm_or_si128(
                        _mm_shuffle_epi8(out[0], mask(&m[0])),
                        _mm_shuffle_epi8(out[1], mask(&m[1])),
                    ),
                    _mm_shuffle_epi8(out[2], mask(&m[2])),
                );
                _mm_storeu_si128(p.add(16 * k).cast(), v);
            }
        }
        blocks * 48
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// 8-bit RGB -> HSV as OpenCV (the test's view of [`rgb_to_hsv_t`]).
    fn rgb_to_hsv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
        let (h, s, v) = rgb_to_hsv_t(r, g, b, div_tables());
        (h as u8, s as u8, v as u8)
    }

    /// OpenCV-style 8-bit HSV -> RGB (the reference the coefficient tables reproduce).
    fn hsv_to_rgb(h: u8, s: u8, v: u8) -> [u8; 3] {
        if s == 0 {
            return [v, v, v];
        }
        let h6 = h as i32 * 6 * 256 / 180; // sector position in 1/256 steps
        let sector = (h6 >> 8) % 6;
        let f = h6 & 255;
        let (s, v) = (s as i32, v as i32);
        let p = (v * (255 - s) + 127) / 255;
        let q = (v * (255 * 256 - s * f) + 127 * 256) / (255 * 256);
        let t = (v * (255 * 256 - s * (256 - f)) + 127 * 256) / (255 * 256);
        let (r, g, b) = match sector {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
        [r as u8, g as u8, b as u8]
    }

    #[test]
    fn random_hsv_equals_the_per_pixel_conversion() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..5 {
            let data: Vec<u8> = (0..3 * 20000).map(|_| rng.gen()).collect();
            let mut img = Rgb {
                w: 20000,
                h: 1,
                data: data.clone(),
            };
            let state = rng.clone();
            random_hsv(&mut img, [0.015, 0.7, 0.4], &mut rng);
            // Reference: the same draws, then per pixel RGB -> HSV -> LUT -> RGB.
            let mut r2 = state;
            let g: [f64; 3] =
                std::array::from_fn(|i| r2.gen_range(-1.0..1.0) * [0.015, 0.7, 0.4][i]);
            for (px, out) in data.chunks_exact(3).zip(img.data.chunks_exact(3)) {
                let (h, s, v) = rgb_to_hsv(px[0], px[1], px[2]);
                let h = (h as f64 + g[0] * 180.0).rem_euclid(180.0) as u8;
                let s = if s == 0 {
                    0
                } else {
                    (s as f64 * (1.0 + g[1])).clamp(0.0, 255.0) as u8
                };
                let v = (v as f64 * (1.0 + g[2])).clamp(0.0, 255.0) as u8;
                assert_eq!(out, hsv_to_rgb(h, s, v), "{px:?}");
            }
        }
    }

    /// The vector kernel gives the scalar kernel's bytes on every 8-bit colour (and on the grey
    /// ramp), for draws including the extreme gains.
    #[test]
    fn vector_kernel_equals_scalar_on_every_colour() {
        let mut all: Vec<u8> = (0..1u32 << 24)
            .flat_map(|c| [(c >> 16) as u8, (c >> 8) as u8, c as u8])
            .collect();
        // Whole grey blocks of 16 pixels (every level), then blocks with one coloured pixel.
        all.extend((0..256 * 16).flat_map(|i| [(i / 16) as u8; 3]));
        all.extend((0..256 * 16).flat_map(|i| {
            let v = (i / 16) as u8;
            if i % 16 == 7 {
                [v, v.wrapping_add(1), v]
            } else {
                [v; 3]
            }
        }));
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for gains in [[0.015, 0.7, 0.4], [0.5, 1.0, 1.0], [1.0, 1.5, 1.5]] {
            let luts = hsv_luts(gains, &mut rng).unwrap();
            let sh = Shift::new(&luts);
            assert!(sh.arith.is_some(), "{gains:?}");
            let (mut a, mut b) = (all.clone(), all.clone());
            apply(&mut a, &sh);
            scalar(&mut b, div_tables(), &sh);
            if let Some(i) = (0..a.len() / 3).find(|&i| a[3 * i..3 * i + 3] != b[3 * i..3 * i + 3])
            {
                panic!(
                    "colour {:?}: vector {:?}, scalar {:?}",
                    &all[3 * i..3 * i + 3],
                    &a[3 * i..3 * i + 3],
                    &b[3 * i..3 * i + 3]
                );
            }
        }
    }

    #[test]
    fn integer_divisions_by_multiplication_are_exact_in_range() {
        for h in 0..180u32 {
            assert_eq!((h * 128 * 34953) >> 19, h * 6 * 256 / 180, "{h}");
        }
        for y in 0..=65153u32 {
            assert_eq!((y * 32897) >> 23, y / 255, "{y}");
        }
    }

    #[test]
    fn division_tables_equal_f32_division() {
        let t = div_tables();
        for i in 1..256 {
            let f = |num: f32| (num / i as f32).round_ties_even() as i32;
            assert_eq!(t.sdiv[i], f((255 << 12) as f32), "sdiv[{i}]");
            assert_eq!(t.hdiv[i], f(((180 << 12) / 6) as f32), "hdiv[{i}]");
        }
    }

    /// Nearly every draw has the arithmetic form the vector kernel needs.
    #[test]
    fn draws_have_their_arithmetic_form() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let n = 2000;
        let found = (0..n)
            .filter(|_| {
                let luts = hsv_luts([0.015, 0.7, 0.4], &mut rng).unwrap();
                Shift::new(&luts).arith.is_some()
            })
            .count();
        assert!(found * 100 >= n * 99, "{found} of {n}");
    }

    #[test]
    fn rgb_to_hsv_equals_opencv() {
        // cv2.cvtColor(RGB2HSV) of these pixels (OpenCV 4.x, recorded).
        let px = [
            ((10, 200, 30), (63, 242, 200)),
            ((255, 0, 0), (0, 255, 255)),
            ((0, 0, 0), (0, 0, 0)),
            ((128, 128, 128), (0, 0, 128)),
            ((3, 7, 250), (119, 252, 250)),
            ((200, 100, 101), (0, 127, 200)),
            ((1, 2, 3), (105, 170, 3)),
            ((255, 255, 254), (30, 1, 255)),
            ((17, 250, 249), (90, 238, 250)),
            ((90, 10, 200), (133, 242, 200)),
        ];
        for ((r, g, b), want) in px {
            assert_eq!(rgb_to_hsv(r, g, b), want, "{r},{g},{b}");
        }
    }

    #[test]
    fn hsv_to_rgb_is_within_two_levels_of_opencv() {
        // cv2.cvtColor(HSV2RGB) of these pixels (OpenCV 4.x, recorded). Over the whole 8-bit HSV
        // space our integer version differs from OpenCV's by at most 2 levels (checked offline).
        let px = [
            ((63, 242, 200), [10, 200, 29]),
            ((0, 255, 255), [255, 0, 0]),
            ((0, 0, 0), [0, 0, 0]),
            ((0, 0, 128), [128, 128, 128]),
            ((119, 252, 250), [3, 11, 250]),
            ((0, 127, 200), [200, 100, 100]),
            ((105, 170, 3), [1, 2, 3]),
            ((30, 1, 255), [255, 255, 254]),
            ((90, 238, 250), [17, 250, 250]),
            ((133, 242, 200), [92, 10, 200]),
        ];
        for ((h, s, v), want) in px {
            let got = hsv_to_rgb(h, s, v);
            for (a, b) in got.iter().zip(want) {
                assert!(
                    (*a as i32 - b).abs() <= 2,
                    "{h},{s},{v} -> {got:?}, OpenCV {want:?}"
                );
            }
        }
    }
}
