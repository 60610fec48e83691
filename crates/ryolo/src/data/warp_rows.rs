//! The inner loop of the separable (axis-aligned) bilinear warp on RGB rows with AVX2: each source
//! row resampled horizontally once, then two such rows blended vertically per output row — the
//! same bytes as the scalar vertical-then-horizontal loop (the 8-bit weights multiply out to one
//! integer sum below 2^24, exact in float32, rounded once).

/// One output pixel's horizontal tap: the byte offset of its left source pixel in a fetched row
/// and its 8-bit weight toward the right one.
pub type Tap = (u32, i32);

/// Warps the valid rows of an RGB output (already filled with the border value) when AVX2 is
/// present; returns false (nothing written) otherwise. `taps` are the pixels `xa..xa + taps.len()`
/// of each output row; `row_of(y)` gives output row `y`'s upper source row and vertical weight, or
/// `None` outside the source; `fetch(y, buf)` reads source row `y` (`buf.len() / 3` pixels from the
/// taps' origin, border value outside the source).
pub fn warp_rgb(
    out: &mut [u8],
    out_w: usize,
    xa: usize,
    taps: &[Tap],
    n: usize,
    row_of: impl Fn(usize) -> Option<(i64, i32)>,
    fetch: impl FnMut(i64, &mut [u8]),
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present (checked here); the buffers are sized in `rows`.
            unsafe { avx2::rows(out, out_w, xa, taps, n, row_of, fetch) };
            return true;
        }
    }
    let _ = (out, out_w, xa, taps, n, &row_of, fetch);
    false
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Tap;
    use std::arch::x86_64::*;

    /// Source row `y` resampled at the taps: per output byte, `left * (256 - ax) + right * ax`
    /// as float32 (exact integers up to 65280).
    #[target_feature(enable = "avx2")]
    unsafe fn horizontal(src: &[u8], taps: &[Tap], weights: &[__m128i], h: &mut [f32]) {
        // (left, right) byte pairs of R, G and B as 16-bit lanes; the fourth lane zero.
        let shuf = _mm_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
        // In bounds: checked once in `rows` (every tap's 16 bytes inside `src`, one spare in `h`).
        for (k, (&(o, _), w)) in taps.iter().zip(weights).enumerate() {
            let px = _mm_loadu_si128(src.as_ptr().add(o as usize) as *const __m128i);
            let pairs = _mm_shuffle_epi8(px, shuf);
            let sums = _mm_madd_epi16(pairs, *w);
            // Four lanes stored; the fourth is overwritten by the next pixel (h has one spare).
            _mm_storeu_ps(h.as_mut_ptr().add(3 * k), _mm_cvtepi32_ps(sums));
        }
    }

    /// `(top * (256 - ay) + bottom * ay + 2^15) >> 16` into bytes.
    #[target_feature(enable = "avx2")]
    unsafe fn vertical(top: &[f32], bottom: &[f32], ay: i32, out: &mut [u8]) {
        let n = out.len();
        let (wt, wb) = (_mm256_set1_ps((256 - ay) as f32), _mm256_set1_ps(ay as f32));
        let half = _mm256_set1_ps(32768.0);
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let blend = |i: usize| -> __m256i {
            let t = _mm256_loadu_ps(top.as_ptr().add(i));
            let b = _mm256_loadu_ps(bottom.as_ptr().add(i));
            // Every product and sum is an integer below 2^24: exact in float32.
            let s = _mm256_add_ps(
                _mm256_add_ps(_mm256_mul_ps(t, wt), _mm256_mul_ps(b, wb)),
                half,
            );
            _mm256_srli_epi32(_mm256_cvttps_epi32(s), 16)
        };
        let mut i = 0;
        while i + 32 <= n {
            let (a, b, c, d) = (blend(i), blend(i + 8), blend(i + 16), blend(i + 24));
            let ab = _mm256_packus_epi32(a, b);
            let cd = _mm256_packus_epi32(c, d);
            let bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), order);
            _mm256_storeu_si256(out.as_mut_ptr().add(i) as *mut __m256i, bytes);
            i += 32;
        }
        for j in i..n {
            let s = top[j] * (256 - ay) as f32 + bottom[j] * ay as f32 + 32768.0;
            out[j] = ((s as i32) >> 16) as u8;
        }
    }

    /// See [`super::warp_rgb`].
    #[target_feature(enable = "avx2")]
    pub unsafe fn rows(
        out: &mut [u8],
        out_w: usize,
        xa: usize,
        taps: &[Tap],
        n: usize,
        row_of: impl Fn(usize) -> Option<(i64, i32)>,
        mut fetch: impl FnMut(i64, &mut [u8]),
    ) {
        let weights: Vec<__m128i> = taps
            .iter()
            .map(|&(_, ax)| {
                let (l, r) = ((256 - ax) as i16, ax as i16);
                _mm_setr_epi16(l, r, l, r, l, r, 0, 0)
            })
            .collect();
        let e = taps.len() * 3;
        // Source rows with 16 spare bytes for the last tap's load; resampled rows with one spare.
        let mut src = vec![0u8; n * 3 + 16];
        let (mut h0, mut h1) = (vec![0f32; e + 1], vec![0f32; e + 1]);
        assert!(taps.iter().all(|t| t.0 as usize + 16 <= src.len()) && out_w * 3 >= xa * 3 + e);
        let mut have: Option<i64> = None; // the source row resampled in h0 (h1 holds the next)
        let mut load = |y: i64, h: &mut [f32]| {
            fetch(y, &mut src[..n * 3]);
            horizontal(&src, taps, &weights, h);
        };
        for (y, row) in out.chunks_exact_mut(out_w * 3).enumerate() {
            let Some((y0, ay)) = row_of(y) else {
                continue;
            };
            match have {
                Some(r) if r == y0 => {}
                Some(r) if r + 1 == y0 => {
                    std::mem::swap(&mut h0, &mut h1);
                    load(y0 + 1, &mut h1);
                }
                _ => {
                    load(y0, &mut h0);
                    load(y0 + 1, &mut h1);
                }
            }
            have = Some(y0);
            vertical(&h0[..e], &h1[..e], ay, &mut row[xa * 3..xa * 3 + e]);
        }
    }
}
