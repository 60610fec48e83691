//! Polygon → mask geometry of instance segmentation (spec/segment.md §2.4 and §3 item 7): polygon
//! resampling, OpenCV-exact `fillPoly` rasterisation, the `INTER_LINEAR` downscale to the mask
//! grid, and the per-image overlap / separate target masks. Free of libtorch types.

use crate::data::instances::{resample_polygon, SEGMENT_POINTS};

/// Point count of an image's resampled polygons: `base` (1000 in training), or `L_max + 1` when the
/// longest polygon has `L_max > base` points (spec/segment.md §2.4).
pub fn resample_count(polys: &[Vec<[f32; 2]>], base: usize) -> usize {
    let longest = polys.iter().map(Vec::len).max().unwrap_or(0);
    if longest > base {
        longest + 1
    } else {
        base
    }
}

/// Ultralytics' `resample_segments(polys, n)`: every polygon becomes `n` points by interpolation
/// along the vertex index of the closed polygon (every original vertex kept when it has fewer than
/// `n` points); a polygon with exactly `n` points, or with none, is returned unchanged.
pub fn resample_segments(polys: &[Vec<[f32; 2]>], n: usize) -> Vec<Vec<[f32; 2]>> {
    polys
        .iter()
        .map(|p| {
            if p.len() == n || p.is_empty() {
                p.clone()
            } else {
                resample_polygon(p, n)
            }
        })
        .collect()
}

/// What the dataset does to one image's polygons before augmentation: [`resample_segments`] to
/// [`resample_count`]`(polys, 1000)` points.
pub fn resample_for_training(polys: &[Vec<[f32; 2]>]) -> Vec<Vec<[f32; 2]>> {
    resample_segments(polys, resample_count(polys, SEGMENT_POINTS))
}

/// NumPy's `float32 → int32` cast on x86-64: truncation toward zero; NaN, infinities and values
/// outside the `i32` range become `i32::MIN` (the "integer indefinite" of `cvttss2si`).
pub fn trunc_i32(v: f32) -> i32 {
    if v.is_finite() && v > -2_147_483_904.0 && v < 2_147_483_648.0 {
        v as i32
    } else {
        i32::MIN
    }
}

const XY_SHIFT: u32 = 16;
const XY_ONE: i64 = 1 << XY_SHIFT;

/// OpenCV's `clipLine` of the segment `a`–`b` to a `w x h` image (integer endpoints; intersections
/// computed in double precision and truncated). Returns whether any part lies inside.
fn clip_line(w: i64, h: i64, a: &mut [i64; 2], b: &mut [i64; 2]) -> bool {
    if w <= 0 || h <= 0 {
        return false;
    }
    let (right, bottom) = (w - 1, h - 1);
    let code = |p: &[i64; 2]| {
        (p[0] < 0) as i32
            + (p[0] > right) as i32 * 2
            + (p[1] < 0) as i32 * 4
            + (p[1] > bottom) as i32 * 8
    };
    let (mut c1, mut c2) = (code(a), code(b));
    let lerp = |num: i64, d1: i64, d2: i64| -> i64 {
        if d2 == 0 {
            return 0;
        }
        (num as f64 * d1 as f64 / d2 as f64) as i64
    };
    if (c1 & c2) == 0 && (c1 | c2) != 0 {
        if c1 & 12 != 0 {
            let t = if c1 < 8 { 0 } else { bottom };
            a[0] = a[0].wrapping_add(lerp(t - a[1], b[0] - a[0], b[1] - a[1]));
            a[1] = t;
            c1 = (a[0] < 0) as i32 + (a[0] > right) as i32 * 2;
        }
        if c2 & 12 != 0 {
            let t = if c2 < 8 { 0 } else { bottom };
            b[0] = b[0].wrapping_add(lerp(t - b[1], b[0] - a[0], b[1] - a[1]));
            b[1] = t;
            c2 = (b[0] < 0) as i32 + (b[0] > right) as i32 * 2;
        }
        if (c1 & c2) == 0 && (c1 | c2) != 0 {
            if c1 != 0 {
                let t = if c1 == 1 { 0 } else { right };
                a[1] = a[1].wrapping_add(lerp(t - a[0], b[1] - a[1], b[0] - a[0]));
                a[0] = t;
                c1 = 0;
            }
            if c2 != 0 {
                let t = if c2 == 1 { 0 } else { right };
                b[1] = b[1].wrapping_add(lerp(t - b[0], b[1] - a[1], b[0] - a[0]));
                b[0] = t;
                c2 = 0;
            }
        }
    }
    (c1 | c2) == 0
}

/// OpenCV's 8-connected `line(..., LINE_8)` of thickness 1 (Bresenham, drawn left to right, clipped
/// to the image first) setting pixels to `color`.
fn draw_line8(img: &mut [u8], w: usize, h: usize, p1: [i64; 2], p2: [i64; 2], color: u8) {
    let (mut a, mut b) = (p1, p2);
    let inside = |p: &[i64; 2]| p[0] >= 0 && p[1] >= 0 && p[0] < w as i64 && p[1] < h as i64;
    let needs_clip = !inside(&a) || !inside(&b);
    if needs_clip && !clip_line(w as i64, h as i64, &mut a, &mut b) {
        return;
    }
    let (mut dx, mut dy) = (b[0] - a[0], b[1] - a[1]);
    if dx < 0 {
        dx = -dx;
        dy = -dy;
        std::mem::swap(&mut a, &mut b);
    }
    let sy = if dy < 0 { -1 } else { 1 };
    dy = dy.abs();
    // Major axis: x unless the line is steeper than 45°.
    let vert = dy > dx;
    let (major, minor, step_major, step_minor) = if vert {
        (dy, dx, [0, sy], [1, 0])
    } else {
        (dx, dy, [1, 0], [0, sy])
    };
    let mut err = major - 2 * minor;
    let mut p = a;
    for _ in 0..=major {
        if inside(&p) {
            img[p[1] as usize * w + p[0] as usize] = color;
        }
        let step = err < 0;
        err += -2 * minor + if step { 2 * major } else { 0 };
        p[0] += step_major[0];
        p[1] += step_major[1];
        if step {
            p[0] += step_minor[0];
            p[1] += step_minor[1];
        }
    }
}

/// One non-horizontal polygon edge for the scanline fill: rows `y0..y1`, x at row `y0` and its
/// per-row increment, both in 16.16 fixed point.
#[derive(Clone, Copy)]
struct PolyEdge {
    y0: i64,
    y1: i64,
    x: i64,
    dx: i64,
}

/// OpenCV's `fillPoly(img, [pts], color, LINE_8, shift=0)` for one polygon on a `w x h` 8-bit image:
/// the 8-connected outline of every edge plus the even-odd scanline fill (edges clipped and filled
/// in 16.16 fixed point exactly as OpenCV does), so self-intersecting and degenerate polygons come
/// out as OpenCV draws them.
pub fn fill_poly(img: &mut [u8], w: usize, h: usize, pts: &[[i32; 2]], color: u8) {
    if pts.is_empty() || w == 0 || h == 0 || img.len() < w * h {
        return;
    }
    let (wi, hi) = (w as i64, h as i64);
    let mut edges: Vec<PolyEdge> = Vec::with_capacity(pts.len());
    let mut prev = pts[pts.len() - 1];
    for &cur in pts {
        let (p0, p1) = (
            [prev[0] as i64, prev[1] as i64],
            [cur[0] as i64, cur[1] as i64],
        );
        prev = cur;
        draw_line8(img, w, h, p0, p1, color);
        let (mut t0, mut t1) = (p0, p1);
        let (mut c0y, mut c1y) = (p0[1], p1[1]);
        let outside = |p: &[i64; 2]| p[0] < 0 || p[1] < 0 || p[0] >= wi || p[1] >= hi;
        if outside(&t0) || outside(&t1) {
            clip_line(wi, hi, &mut t0, &mut t1);
            if t0[1] != t1[1] {
                c0y = t0[1];
                c1y = t1[1];
            }
        }
        let (c0x, c1x) = (t0[0].wrapping_shl(XY_SHIFT), t1[0].wrapping_shl(XY_SHIFT));
        if p0[1] == p1[1] {
            continue;
        }
        let dx = c1x.wrapping_sub(c0x).wrapping_div(c1y - c0y);
        let edge = if p0[1] < p1[1] {
            PolyEdge {
                y0: p0[1],
                y1: p1[1],
                x: c0x.wrapping_add((p0[1] - c0y).wrapping_mul(dx)),
                dx,
            }
        } else {
            PolyEdge {
                y0: p1[1],
                y1: p0[1],
                x: c1x.wrapping_add((p1[1] - c1y).wrapping_mul(dx)),
                dx,
            }
        };
        edges.push(edge);
    }
    fill_edges(img, w, h, &mut edges, color);
}

/// OpenCV's `FillEdgeCollection`: per row, the active edges' x values sorted and filled pairwise
/// (`ceil(left) ..= floor(right)`), rows and spans clipped to the image.
fn fill_edges(img: &mut [u8], w: usize, h: usize, edges: &mut [PolyEdge], color: u8) {
    if edges.len() < 2 {
        return;
    }
    let (mut y_min, mut y_max) = (i64::MAX, i64::MIN);
    let (mut x_min, mut x_max) = (i64::MAX, -1i64);
    for e in edges.iter() {
        let x1 = e.x.wrapping_add((e.y1 - e.y0).wrapping_mul(e.dx));
        y_min = y_min.min(e.y0);
        y_max = y_max.max(e.y1);
        x_min = x_min.min(e.x).min(x1);
        x_max = x_max.max(e.x).max(x1);
    }
    if y_max < 0 || y_min >= h as i64 || x_max < 0 || x_min >= (w as i64) << XY_SHIFT {
        return;
    }
    edges.sort_by_key(|e| e.y0);
    let mut next = 0;
    let mut active: Vec<PolyEdge> = Vec::new();
    let mut xs: Vec<i64> = Vec::new();
    let y_end = y_max.min(h as i64);
    for y in y_min.max(0)..y_end {
        active.retain(|e| e.y1 > y);
        while next < edges.len() && edges[next].y0 <= y {
            if edges[next].y1 > y {
                active.push(edges[next]);
            }
            next += 1;
        }
        xs.clear();
        xs.extend(
            active
                .iter()
                .map(|e| e.x.wrapping_add((y - e.y0).wrapping_mul(e.dx))),
        );
        xs.sort_unstable();
        let row = &mut img[y as usize * w..(y as usize + 1) * w];
        for pair in xs.chunks_exact(2) {
            let x1 = pair[0].wrapping_add(XY_ONE - 1) >> XY_SHIFT;
            let x2 = pair[1] >> XY_SHIFT;
            if x1 < w as i64 && x2 >= 0 {
                let (x1, x2) = (x1.max(0) as usize, x2.min(w as i64 - 1) as usize);
                if x1 <= x2 {
                    row[x1..=x2].fill(color);
                }
            }
        }
    }
}

/// Ultralytics' `polygon2mask` at full resolution: vertices truncated to int32 (NumPy cast), then
/// OpenCV `fillPoly` with value 1 on an `h x w` zero mask (row-major).
pub fn polygon_to_mask(poly: &[[f32; 2]], h: usize, w: usize) -> Vec<u8> {
    let mut mask = vec![0u8; h * w];
    let pts: Vec<[i32; 2]> = poly
        .iter()
        .map(|p| [trunc_i32(p[0]), trunc_i32(p[1])])
        .collect();
    fill_poly(&mut mask, w, h, &pts, 1);
    mask
}

/// OpenCV `cv2.resize(mask, (w / r, h / r))` with `INTER_LINEAR` of an `h x w` 8-bit mask (integer
/// division; `r` = 0 is taken as 1). For a 0/1 mask and `r` = 4 a low-res pixel is 1 iff at least
/// two of the central 2x2 pixels of its 4x4 block are; for `r` = 2 iff two of its 2x2 block are.
/// Returns an empty vector when a side becomes 0 or the input is short.
pub fn downsample_mask(mask: &[u8], h: usize, w: usize, r: usize) -> Vec<u8> {
    let r = r.max(1);
    let (nh, nw) = (h / r, w / r);
    if nh == 0 || nw == 0 || mask.len() < h * w {
        return Vec::new();
    }
    if r == 1 {
        return mask[..h * w].to_vec();
    }
    super::resize_linear_raw::<1>(&mask[..h * w], w, h, nw, nh)
}

/// The low-resolution `(h / r) x (w / r)` mask of one polygon given in pixels of the `h x w` image
/// (Ultralytics' `polygon2mask(..., downsample_ratio=r)`).
pub fn polygon_to_low_mask(poly: &[[f32; 2]], h: usize, w: usize, r: usize) -> Vec<u8> {
    downsample_mask(&polygon_to_mask(poly, h, w), h, w, r)
}

/// `overlap_mask=True` targets of one image (Ultralytics 8.4 `polygons2masks_overlap`): each polygon
/// (pixels of the `h x w` image) rasterised at `1/r`; instances ordered by descending low-res area,
/// with empty masks first (NumPy sorts `-area` of unsigned areas, which leaves 0 at 0); then the
/// `(h / r) x (w / r)` map holds `rank + 1` of the smallest instance covering each pixel (running
/// maximum), 0 for background. Returns the map and `order` (label row `i` of the image ⇔ instance
/// `order[i]` ⇔ map value `i + 1`).
///
/// Ties: Ultralytics uses NumPy's unstable quicksort, whose order among equal areas depends on the
/// array length and the CPU (SIMD sort); here ties keep their label order (a stable sort, which is
/// what NumPy's insertion sort gives for small arrays). The fixture has no ties.
pub fn masks_overlap(
    polys: &[Vec<[f32; 2]>],
    h: usize,
    w: usize,
    r: usize,
) -> (Vec<u32>, Vec<usize>) {
    let r = r.max(1);
    let n = (h / r) * (w / r);
    let masks: Vec<Vec<u8>> = polys
        .iter()
        .map(|p| polygon_to_low_mask(p, h, w, r))
        .collect();
    let areas: Vec<u64> = masks
        .iter()
        .map(|m| m.iter().map(|&v| v as u64).sum())
        .collect();
    let mut order: Vec<usize> = (0..polys.len()).collect();
    order.sort_by_key(|&k| areas[k].wrapping_neg());
    let mut map = vec![0u32; n];
    for (rank, &k) in order.iter().enumerate() {
        let v = rank as u32 + 1;
        for (d, &m) in map.iter_mut().zip(&masks[k]) {
            if m != 0 {
                *d = (*d).max(m as u32 * v);
            }
        }
    }
    (map, order)
}

/// `overlap_mask=False` targets of one image (Ultralytics `polygons2masks`): one full
/// `(h / r) x (w / r)` mask per polygon, in label order, back to back.
pub fn masks_separate(polys: &[Vec<[f32; 2]>], h: usize, w: usize, r: usize) -> Vec<u8> {
    let r = r.max(1);
    let n = (h / r) * (w / r);
    let mut out = Vec::with_capacity(polys.len() * n);
    for p in polys {
        let m = polygon_to_low_mask(p, h, w, r);
        if m.len() == n {
            out.extend_from_slice(&m);
        } else {
            out.resize(out.len() + n, 0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(m: &[u8]) -> usize {
        m.iter().filter(|&&v| v != 0).count()
    }

    #[test]
    fn filled_square_includes_its_outline() {
        let m = polygon_to_mask(&[[2.0, 2.0], [5.9, 2.0], [5.9, 5.0], [2.0, 5.0]], 8, 8);
        // Truncated to 2..=5 on both axes: a 4x4 block.
        assert_eq!(count(&m), 16);
        for y in 0..8 {
            for x in 0..8 {
                assert_eq!(
                    m[y * 8 + x],
                    ((2..=5).contains(&x) && (2..=5).contains(&y)) as u8
                );
            }
        }
    }

    #[test]
    fn degenerate_and_hostile_polygons_do_not_panic() {
        let nan = f32::NAN;
        let cases: Vec<Vec<[f32; 2]>> = vec![
            vec![],
            vec![[3.0, 3.0]],
            vec![[1.0, 1.0], [6.0, 6.0]],
            vec![[nan, 1.0], [2.0, nan], [3.0, 3.0]],
            vec![[-1e30, -1e30], [1e30, 5.0], [4.0, 1e30]],
            vec![[-5e9, 2.0], [5e9, 2.0], [0.0, 7.0]],
            vec![[f32::INFINITY, 0.0], [0.0, f32::NEG_INFINITY], [2.0, 2.0]],
        ];
        for p in &cases {
            let m = polygon_to_mask(p, 8, 8);
            assert_eq!(m.len(), 64);
            assert!(m.iter().all(|&v| v <= 1));
            let _ = masks_overlap(std::slice::from_ref(p), 8, 8, 4);
            let _ = masks_separate(std::slice::from_ref(p), 8, 8, 4);
        }
        assert_eq!(count(&polygon_to_mask(&[[3.0, 3.0]], 8, 8)), 1);
        assert!(polygon_to_mask(&[[1.0, 1.0], [2.0, 2.0], [3.0, 1.0]], 0, 0).is_empty());
        assert!(downsample_mask(&[1, 1, 1], 1, 3, 4).is_empty());
        assert_eq!(masks_overlap(&[], 8, 8, 0).0.len(), 64);
    }

    #[test]
    fn downsample_by_four_needs_two_of_the_central_pixels() {
        let mut m = vec![0u8; 64];
        m[8 + 1] = 1; // (1, 1)
        assert_eq!(downsample_mask(&m, 8, 8, 4), vec![0, 0, 0, 0]);
        m[8 + 2] = 1; // (1, 2)
        assert_eq!(downsample_mask(&m, 8, 8, 4), vec![1, 0, 0, 0]);
    }

    #[test]
    fn overlap_puts_empty_masks_first_then_descending_area() {
        let sq =
            |x0: f32, y0: f32, s: f32| vec![[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s]];
        let polys = vec![
            sq(0.0, 0.0, 3.0),
            sq(0.0, 0.0, 15.0),
            vec![[100.0, 100.0]],
            sq(4.0, 4.0, 7.0),
        ];
        let (map, order) = masks_overlap(&polys, 16, 16, 4);
        assert_eq!(order, vec![2, 1, 3, 0]);
        assert_eq!(map[0], 4); // the smallest square wins where it overlaps
        assert_eq!(map[5], 3);
        assert_eq!(map[15], 2);
    }

    #[test]
    fn resample_keeps_exact_counts_and_vertices() {
        let tri = vec![[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]];
        let out = resample_segments(std::slice::from_ref(&tri), 10);
        assert_eq!(out[0].len(), 10);
        for v in &tri {
            assert!(out[0].contains(v));
        }
        assert_eq!(resample_segments(std::slice::from_ref(&tri), 3)[0], tri);
        // Ultralytics 8.4.190 `resample_segments` outputs: 12 points from 5 (the closed polygon's
        // 6 vertex indices plus linspace(0, 5, 6): every vertex twice), and 4 from 5.
        let p5 = vec![
            [0.1, 0.2],
            [0.7, 0.25],
            [0.9, 0.8],
            [0.4, 0.95],
            [0.05, 0.6],
        ];
        let twice: Vec<[f32; 2]> = p5.iter().chain(&p5[..1]).flat_map(|&v| [v, v]).collect();
        assert_eq!(resample_segments(std::slice::from_ref(&p5), 12)[0], twice);
        assert_eq!(
            resample_segments(std::slice::from_ref(&p5), 4)[0],
            vec![
                [0.1, 0.2],
                [0.833_333_3, 0.616_666_7],
                [0.283_333_33, 0.833_333_3],
                [0.1, 0.2]
            ]
        );
        let long = vec![[0.0f32, 0.0]; 1200];
        assert_eq!(resample_count(&[tri.clone(), long], 1000), 1201);
        assert_eq!(resample_count(&[tri], 1000), 1000);
    }
}
