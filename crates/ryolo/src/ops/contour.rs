//! Mask → polygon geometry of instance segmentation (spec/segment.md §2.5 and §6.4): OpenCV-exact
//! external contours (`findContours(RETR_EXTERNAL, CHAIN_APPROX_SIMPLE)`), Ultralytics'
//! `merge_multi_segment` and `masks2segments`, `scale_coords` back to the original image, and the
//! `save_txt` polygon line. Free of libtorch types.

use crate::util::{fmt_g, round_half_even};

/// Chain-code steps `(dx, dy)` in OpenCV's order: E, NE, N, NW, W, SW, S, SE (y grows downwards).
const STEPS: [[i64; 2]; 8] = [
    [1, 0],
    [1, -1],
    [0, -1],
    [-1, -1],
    [-1, 0],
    [-1, 1],
    [0, 1],
    [1, 1],
];

/// Border-pixel marks of the tracer (OpenCV's `nbd = 2` and `nbd | -128` for right-hand borders).
const MARK: i8 = 2;
const MARK_RIGHT: i8 = 2 | -128;

/// Follows the outer border that starts at padded index `i0` (Suzuki–Abe, OpenCV's
/// `icvFetchContour` with `CHAIN_APPROX_SIMPLE`): marks its pixels in `img` and returns the points
/// where the chain direction changes, in unpadded coordinates.
fn trace_outer(img: &mut [i8], stride: usize, i0: usize) -> Vec<[i32; 2]> {
    let deltas: [isize; 8] =
        std::array::from_fn(|s| STEPS[s][1] as isize * stride as isize + STEPS[s][0] as isize);
    let at = |i: usize, s: usize| (i as isize + deltas[s & 7]) as usize;
    let start = [(i0 % stride) as i64 - 1, (i0 / stride) as i64 - 1];
    let mut pts = Vec::new();
    // First neighbour clockwise from the west (always background for an outer border).
    let s_end = 4usize;
    let mut s = s_end;
    let mut i1;
    loop {
        s = (s + 7) & 7;
        i1 = at(i0, s);
        if img[i1] != 0 || s == s_end {
            break;
        }
    }
    if s == s_end {
        img[i0] = MARK_RIGHT;
        pts.push([start[0] as i32, start[1] as i32]);
        return pts;
    }
    let mut pt = start;
    let mut i3 = i0;
    let mut prev_s = s ^ 4;
    // A border visits each pixel at most 4 times (once per side); the cap only guards the loop.
    let cap = 4 * img.len() + 16;
    for _ in 0..cap {
        let s_end = s;
        // Counter-clockwise from the direction we came from: the next border pixel.
        let mut found = None;
        for k in 1..=8 {
            let i4 = at(i3, s_end + k);
            if img[i4] != 0 {
                found = Some((s_end + k, i4));
                break;
            }
        }
        let Some((s_raw, i4)) = found else {
            break;
        };
        s = s_raw & 7;
        if s >= 1 && s - 1 < s_end {
            img[i3] = MARK_RIGHT; // the east neighbour was examined and is background
        } else if img[i3] == 1 {
            img[i3] = MARK;
        }
        if s != prev_s {
            pts.push([pt[0] as i32, pt[1] as i32]);
            prev_s = s;
        }
        pt[0] += STEPS[s][0];
        pt[1] += STEPS[s][1];
        if i4 == i0 && i3 == i1 {
            break;
        }
        i3 = i4;
        s = (s + 4) & 7;
    }
    pts
}

/// OpenCV `findContours(mask, RETR_EXTERNAL, CHAIN_APPROX_SIMPLE)` of an `h x w` mask (non-zero =
/// foreground): the outer border of every 8-connected component not inside a hole of another, each
/// starting at its first pixel in raster order and running counter-clockwise on screen, only the
/// points where the direction changes kept; contours in OpenCV's order (last found first).
pub fn find_external_contours(mask: &[u8], h: usize, w: usize) -> Vec<Vec<[i32; 2]>> {
    if h == 0 || w == 0 || mask.len() < h * w {
        return Vec::new();
    }
    // One-pixel background border, values 0/1 (OpenCV binarises and pads the same way).
    let stride = w + 2;
    let mut img = vec![0i8; stride * (h + 2)];
    for y in 0..h {
        for x in 0..w {
            img[(y + 1) * stride + x + 1] = (mask[y * w + x] != 0) as i8;
        }
    }
    let mut found = Vec::new();
    for y in 1..=h {
        let row = y * stride;
        // Last border pixel met on this row (the padding column to start with).
        let mut lnbd = row;
        for x in 1..=w {
            let (prev, p) = (img[row + x - 1], img[row + x]);
            if p == prev {
                continue;
            }
            if prev == 0 && p == 1 {
                // A new outer border, unless the last border met on the left is an inner one (we are
                // then inside a hole of a traced component: not external).
                if img[lnbd] <= 0 {
                    found.push(trace_outer(&mut img, stride, row + x));
                    lnbd = row + x;
                }
                continue;
            }
            if p == 0 && prev >= 1 && (prev & -2) != 0 {
                lnbd = row + x - 1;
            }
            if (p & -2) != 0 {
                lnbd = row + x;
            }
        }
    }
    found.reverse();
    found
}

/// Ultralytics' `min_index`: the first (row-major) pair `(i, j)` minimising the squared distance
/// between `a[i]` and `b[j]`.
fn min_index(a: &[[f64; 2]], b: &[[f64; 2]]) -> (usize, usize) {
    let mut best = (f64::INFINITY, 0, 0);
    for (i, p) in a.iter().enumerate() {
        for (j, q) in b.iter().enumerate() {
            let d = (p[0] - q[0]) * (p[0] - q[0]) + (p[1] - q[1]) * (p[1] - q[1]);
            // NaN never wins, like NumPy's argmin would return the NaN; a NaN input is garbage anyway.
            if d < best.0 {
                best = (d, i, j);
            }
        }
    }
    (best.1, best.2)
}

/// Ultralytics' `merge_multi_segment` (spec/segment.md §2.5) with the parts concatenated: one closed
/// walk through all parts joined at their closest points by zero-width bridges. Empty parts are
/// ignored; a single part comes back unchanged.
pub fn merge_multi_segment(parts: &[Vec<[f64; 2]>]) -> Vec<[f64; 2]> {
    let mut segs: Vec<Vec<[f64; 2]>> = parts.iter().filter(|p| !p.is_empty()).cloned().collect();
    let m = segs.len();
    if m <= 1 {
        return segs.pop().unwrap_or_default();
    }
    let mut links: Vec<Vec<usize>> = vec![Vec::new(); m];
    for i in 1..m {
        let (a, b) = min_index(&segs[i - 1], &segs[i]);
        links[i - 1].push(a);
        links[i].push(b);
    }
    let mut out: Vec<[f64; 2]> = Vec::new();
    for i in 0..m {
        let k = segs[i].len();
        let mut idx = links[i].clone();
        if idx.len() == 2 && idx[0] > idx[1] {
            idx = idx.iter().map(|&v| k - 1 - v).collect();
            segs[i].reverse();
        }
        segs[i].rotate_left(idx[0] % k);
        let first = segs[i][0];
        segs[i].push(first);
        if i == 0 || i == m - 1 {
            out.extend_from_slice(&segs[i]);
        } else {
            out.extend_from_slice(&segs[i][..=idx[1] - idx[0]]);
        }
    }
    for i in (1..m - 1).rev() {
        let nidx = links[i][1].abs_diff(links[i][0]);
        out.extend_from_slice(&segs[i][nidx..]);
    }
    out
}

/// Ultralytics' `masks2segments` (strategy "all") for one `h x w` mask: its single external contour,
/// or all of them merged by [`merge_multi_segment`]; empty when the mask is empty. Mask-grid
/// pixel coordinates (no +0.5).
pub fn mask_to_polygon(mask: &[u8], h: usize, w: usize) -> Vec<[f32; 2]> {
    let contours = find_external_contours(mask, h, w);
    let to_f64 = |c: &Vec<[i32; 2]>| c.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    match contours.len() {
        0 => Vec::new(),
        1 => contours[0]
            .iter()
            .map(|p| [p[0] as f32, p[1] as f32])
            .collect(),
        _ => {
            let parts: Vec<Vec<[f64; 2]>> = contours.iter().map(to_f64).collect();
            merge_multi_segment(&parts)
                .into_iter()
                .map(|p| [p[0] as f32, p[1] as f32])
                .collect()
        }
    }
}

/// Ultralytics' `scale_coords(mask_hw, poly, orig_hw, normalize)` in float32 as NumPy computes it:
/// `x = (x − pad_x) / gain_x`, `y = (y − pad_y) / gain_y` with LetterBox's rounded content size
/// (`gain_x = round(w0·g) / w0`, pad `round((w − round(w0·g)) / 2 − 0.1)`, `g = min(h/h0, w/w0)`),
/// clipped to `[0, w0] x [0, h0]`, then divided by `(w0, h0)` when `normalize`. Identity scaling
/// (apart from the clip) when the shapes are equal.
pub fn scale_coords(
    poly: &[[f32; 2]],
    mask_hw: (usize, usize),
    orig_hw: (usize, usize),
    normalize: bool,
) -> Vec<[f32; 2]> {
    let (h1, w1) = (mask_hw.0 as f64, mask_hw.1 as f64);
    let (h0, w0) = (orig_hw.0 as f64, orig_hw.1 as f64);
    let gain = (h1 / h0).min(w1 / w0);
    let new_h = round_half_even(h0 * gain).max(1.0);
    let new_w = round_half_even(w0 * gain).max(1.0);
    let (gain_y, gain_x) = ((new_h / h0) as f32, (new_w / w0) as f32);
    let pad_x = round_half_even((w1 - new_w) / 2.0 - 0.1) as f32;
    let pad_y = round_half_even((h1 - new_h) / 2.0 - 0.1) as f32;
    let (cw, ch) = (w0 as f32, h0 as f32);
    // NumPy's clip: min(max(v, lo), hi), NaN passes through.
    let clip = |v: f32, hi: f32| {
        if v < 0.0 {
            0.0
        } else if v > hi {
            hi
        } else {
            v
        }
    };
    poly.iter()
        .map(|p| {
            let x = clip((p[0] - pad_x) / gain_x, cw);
            let y = clip((p[1] - pad_y) / gain_y, ch);
            if normalize {
                [x / cw, y / ch]
            } else {
                [x, y]
            }
        })
        .collect()
}

/// One `save_txt` line of a segmentation result: `cls x1 y1 … xk yk [conf]` with Python `%g`
/// numbers (6 significant digits) of the normalised polygon; None when it has fewer than 3 points
/// (Ultralytics 8.4 skips such detections).
pub fn segment_txt_line(
    cls: usize,
    poly_normalised: &[[f32; 2]],
    conf: Option<f32>,
) -> Option<String> {
    if poly_normalised.len() < 3 {
        return None;
    }
    let mut line = cls.to_string();
    for p in poly_normalised {
        for v in p {
            line.push(' ');
            line.push_str(&fmt_g(*v as f64, 6));
        }
    }
    if let Some(c) = conf {
        line.push(' ');
        line.push_str(&fmt_g(c as f64, 6));
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(h: usize, w: usize, on: &[(usize, usize)]) -> Vec<u8> {
        let mut m = vec![0u8; h * w];
        for &(x, y) in on {
            m[y * w + x] = 1;
        }
        m
    }

    #[test]
    fn contours_match_opencv_small_cases() {
        // Measured with cv2 5.0: two squares and a single pixel; contours come last-found first.
        let mut m = vec![0u8; 100];
        for y in 1..3 {
            for x in 1..3 {
                m[y * 10 + x] = 1;
            }
        }
        for y in 6..8 {
            for x in 6..9 {
                m[y * 10 + x] = 1;
            }
        }
        m[17] = 1;
        assert_eq!(
            find_external_contours(&m, 10, 10),
            vec![
                vec![[6, 6], [6, 7], [8, 7], [8, 6]],
                vec![[7, 1]],
                vec![[1, 1], [1, 2], [2, 2], [2, 1]],
            ]
        );
        let m = mask(4, 4, &[(0, 0), (3, 3), (2, 0), (3, 0)]);
        assert_eq!(
            find_external_contours(&m, 4, 4),
            vec![vec![[3, 3]], vec![[2, 0], [3, 0]], vec![[0, 0]]]
        );
    }

    #[test]
    fn empty_and_tiny_masks() {
        assert!(find_external_contours(&[], 0, 0).is_empty());
        assert!(find_external_contours(&[0; 6], 2, 3).is_empty());
        assert!(find_external_contours(&[1; 3], 2, 3).is_empty()); // short buffer
        assert_eq!(find_external_contours(&[7], 1, 1), vec![vec![[0, 0]]]);
        assert_eq!(
            find_external_contours(&[1; 4], 2, 2),
            vec![vec![[0, 0], [0, 1], [1, 1], [1, 0]]]
        );
        assert!(mask_to_polygon(&[0; 9], 3, 3).is_empty());
        assert_eq!(
            segment_txt_line(0, &[[0.5, 0.5], [0.1, 0.2]], Some(0.5)),
            None
        );
        assert_eq!(
            segment_txt_line(3, &[[0.5, 0.25], [0.1, 0.2], [1.0, 0.0]], Some(0.91)).unwrap(),
            "3 0.5 0.25 0.1 0.2 1 0 0.91"
        );
    }

    #[test]
    fn merge_matches_ultralytics() {
        // Expected outputs printed by Ultralytics 8.4.190 `merge_multi_segment` (concatenated).
        let a = vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]];
        let b = vec![[5.0, 5.0], [3.0, 1.0], [6.0, 0.0]];
        let c = vec![[0.0, 4.0], [1.0, 5.0], [0.0, 6.0], [-1.0, 5.0]];
        let flat = |v: Vec<[f64; 2]>| v.into_iter().flatten().collect::<Vec<f64>>();
        assert_eq!(
            flat(merge_multi_segment(&[a.clone(), b.clone()])),
            [1., 1., 0., 0., 1., 0., 1., 1., 3., 1., 6., 0., 5., 5., 3., 1.]
        );
        assert_eq!(
            flat(merge_multi_segment(&[a.clone(), b.clone(), c.clone()])),
            [
                1., 1., 0., 0., 1., 0., 1., 1., 3., 1., 5., 5., 1., 5., 0., 6., -1., 5., 0., 4.,
                1., 5., 5., 5., 6., 0., 3., 1.
            ]
        );
        assert_eq!(
            flat(merge_multi_segment(&[c.clone(), a.clone(), b, c])),
            [
                0., 4., 1., 5., 0., 6., -1., 5., 0., 4., 1., 1., 3., 1., 5., 5., 1., 5., 0., 6.,
                -1., 5., 0., 4., 1., 5., 5., 5., 6., 0., 3., 1., 1., 1., 0., 0., 1., 0., 1., 1.
            ]
        );
        assert_eq!(merge_multi_segment(std::slice::from_ref(&a)), a);
        assert!(merge_multi_segment(&[]).is_empty());
    }

    #[test]
    fn scale_coords_undoes_the_letterbox() {
        // 500x375 letterboxed into 320x256: gain 0.64, 8 px padding left and right.
        let p = scale_coords(
            &[[8.0, 0.0], [248.0, 320.0], [-3.0, 400.0]],
            (320, 256),
            (500, 375),
            false,
        );
        assert_eq!(p, vec![[0.0, 0.0], [375.0, 500.0], [0.0, 500.0]]);
        let n = scale_coords(&[[8.0, 160.0]], (320, 256), (500, 375), true);
        assert_eq!(n, vec![[0.0, 0.5]]);
    }
}
