//! OpenCV's `cv2.minAreaRect` on float32 points, reproduced bit for bit (the version that made the
//! fixtures, see `tests/data/min_area_rect_cv2.json`): the float convex hull (sorted-point Sklansky
//! scans with normalised edge vectors and the cyclic shift to monotone indices), the rotating
//! calipers that pick the next edge by the sign of a dot product, and the final angle convention
//! (degrees in [-90, 0)). Ultralytics' OBB `Format` step feeds every label polygon through it
//! (spec/obb.md §1).

/// OpenCV's `RotatedRect`: centre, (width, height) and angle in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedRect {
    /// Centre `(x, y)`.
    pub center: [f32; 2],
    /// `(width, height)`: width along the direction of `angle`.
    pub size: [f32; 2],
    /// Rotation of the width axis from +x in degrees (y down, so clockwise on screen).
    pub angle: f32,
}

/// `CV_SIGN`: -1, 0 or 1.
fn sign_f32(v: f32) -> i32 {
    (v > 0.0) as i32 - (v < 0.0) as i32
}

/// `CV_SIGN` of a double.
fn sign_f64(v: f64) -> i32 {
    (v > 0.0) as i32 - (v < 0.0) as i32
}

/// `cv::normalize` of a float 2-vector: the norm in double, each component scaled in double and
/// rounded back to float.
fn normalize(v: [f32; 2]) -> [f32; 2] {
    let nv = ((v[0] as f64) * (v[0] as f64) + (v[1] as f64) * (v[1] as f64)).sqrt();
    let s = if nv != 0.0 { 1.0 / nv } else { 0.0 };
    [(v[0] as f64 * s) as f32, (v[1] as f64 * s) as f32]
}

/// One Sklansky scan over the sorted points `p` from `start` towards `end` (inclusive); pushes
/// the kept indices (into `p`) on `stack` and returns how many belong to the chain.
fn sklansky(p: &[[f32; 2]], start: isize, end: isize, nsign: i32, sign2: i32) -> Vec<isize> {
    let at = |i: isize| p[i as usize];
    let incr: isize = if end > start { 1 } else { -1 };
    if start == end || at(start) == at(end) {
        return vec![start];
    }
    let (mut pprev, mut pcur) = (start, start + incr);
    let mut pnext = pcur + incr;
    let mut stack: Vec<isize> = vec![pprev, pcur, pnext];
    let mut size = 3usize;
    let set = |stack: &mut Vec<isize>, i: usize, v: isize| {
        if stack.len() <= i {
            stack.resize(i + 1, 0);
        }
        stack[i] = v;
    };
    let stop = end + incr;
    while pnext != stop {
        let (cur, next, prev) = (at(pcur), at(pnext), at(pprev));
        let by = next[1] - cur[1];
        if sign_f32(by) != nsign {
            let a = normalize([cur[0] - prev[0], cur[1] - prev[1]]);
            let b = normalize([next[0] - cur[0], by]);
            let convexity = a[1] as f64 * b[0] as f64 - a[0] as f64 * b[1] as f64;
            if sign_f64(convexity) == sign2 && (a[0] != 0.0 || a[1] != 0.0) {
                pprev = pcur;
                pcur = pnext;
                pnext += incr;
                set(&mut stack, size, pnext);
                size += 1;
            } else if pprev == start {
                pcur = pnext;
                set(&mut stack, 1, pcur);
                pnext += incr;
                set(&mut stack, 2, pnext);
            } else {
                set(&mut stack, size - 2, pnext);
                pcur = pprev;
                pprev = stack[size - 4];
                size -= 1;
            }
        } else {
            pnext += incr;
            set(&mut stack, size - 1, pnext);
        }
    }
    stack.truncate(size - 1);
    stack
}

/// OpenCV's `convexHull` of float points (returning points): indices into `pts` in hull order,
/// counter-clockwise in image coordinates unless `clockwise`.
pub fn convex_hull_indices(pts: &[[f32; 2]], clockwise: bool) -> Vec<usize> {
    let total = pts.len();
    if total == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_by(|&a, &b| {
        let (p, q) = (pts[a], pts[b]);
        p[0].partial_cmp(&q[0])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(p[1].partial_cmp(&q[1]).unwrap_or(std::cmp::Ordering::Equal))
            .then(a.cmp(&b))
    });
    let sorted: Vec<[f32; 2]> = order.iter().map(|&i| pts[i]).collect();
    let (mut miny, mut maxy) = (0usize, 0usize);
    for (i, p) in sorted.iter().enumerate().skip(1) {
        if sorted[miny][1] > p[1] {
            miny = i;
        }
        if sorted[maxy][1] < p[1] {
            maxy = i;
        }
    }
    let last = total as isize - 1;
    if sorted[0] == sorted[total - 1] {
        return vec![order[0]];
    }
    let idx = |s: isize| order[s as usize];
    let mut hull: Vec<usize> = Vec::with_capacity(total);
    // upper half
    let mut tl = sklansky(&sorted, 0, maxy as isize, -1, 1);
    let mut tr = sklansky(&sorted, last, maxy as isize, -1, -1);
    if !clockwise {
        std::mem::swap(&mut tl, &mut tr);
    }
    for &s in &tl[..tl.len() - 1] {
        hull.push(idx(s));
    }
    for i in (1..tr.len()).rev() {
        hull.push(idx(tr[i]));
    }
    let stop = if tr.len() > 2 {
        Some(tr[1])
    } else if tl.len() > 2 {
        Some(tl[tl.len() - 2])
    } else {
        None
    };
    // lower half
    let mut bl = sklansky(&sorted, 0, miny as isize, 1, -1);
    let mut br = sklansky(&sorted, last, miny as isize, 1, 1);
    if clockwise {
        std::mem::swap(&mut bl, &mut br);
    }
    let (mut bl_n, mut br_n) = (bl.len(), br.len());
    if let Some(stop) = stop {
        let check = if bl_n > 2 {
            Some(bl[1])
        } else if bl_n + br_n > 2 {
            Some(br[2 - bl_n])
        } else {
            None
        };
        if check.is_some_and(|c| c == stop || sorted[c as usize] == sorted[stop as usize]) {
            // all points on one line: the lower part mirrors the upper one
            bl_n = bl_n.min(2);
            br_n = br_n.min(2);
        }
    }
    for &s in &bl[..bl_n - 1] {
        hull.push(idx(s));
    }
    for i in (1..br_n).rev() {
        hull.push(idx(br[i]));
    }
    monotone_shift(&mut hull);
    hull
}

/// OpenCV's last hull step: a cyclic shift that makes the point indices ascending or descending
/// when some rotation of the sequence is.
fn monotone_shift(h: &mut [usize]) {
    let n = h.len();
    if n < 3 {
        return;
    }
    let (mut min_i, mut max_i, mut lt) = (0usize, 0usize, 0usize);
    for i in 1..n {
        let v = h[i];
        lt += (h[i - 1] < v) as usize;
        if lt > 1 && lt + 2 <= i {
            break;
        }
        if v < h[min_i] {
            min_i = i;
        }
        if v > h[max_i] {
            max_i = i;
        }
    }
    let dist = min_i.abs_diff(max_i);
    if !((dist == 1 || dist == n - 1) && (lt <= 1 || lt + 2 >= n)) {
        return;
    }
    let ascending = (max_i + 1) % n == min_i;
    let i0 = if ascending { min_i } else { max_i };
    if i0 == 0 {
        return;
    }
    let mut out = Vec::with_capacity(n);
    let mut j = i0;
    for i in 0..n {
        let cur = h[j];
        out.push(cur);
        let nj = if j + 1 < n { j + 1 } else { 0 };
        if i + 1 < n && ascending != (cur < h[nj]) {
            return;
        }
        j = nj;
    }
    h.copy_from_slice(&out);
}

/// `v` turned 90° clockwise in OpenCV's convention: `(y, -x)`.
fn rot90cw(v: [f32; 2]) -> [f32; 2] {
    [v[1], -v[0]]
}

/// Whether `a` lies to the right (clockwise) of `b`.
fn is_right_of(a: [f32; 2], b: [f32; 2]) -> bool {
    let t = rot90cw(a);
    t[0] * b[0] + t[1] * b[1] < 0.0
}

/// Rotating calipers over a convex polygon of `n > 2` points: the corner and the two side
/// vectors of the minimum-area rectangle. The four calipers start at the lowest-y, highest-x,
/// highest-y and lowest-x vertices; each step turns to the polygon edge making the smallest angle
/// with its caliper (decided by dot-product signs) and the last rectangle of least area wins.
fn calipers(p: &[[f32; 2]]) -> [[f32; 2]; 3] {
    let n = p.len();
    let mut vect = vec![[0f32; 2]; n];
    let mut inv_len = vec![0f32; n];
    let (mut left, mut bottom, mut right, mut top) = (0usize, 0usize, 0usize, 0usize);
    let mut pt0 = p[0];
    let (mut left_x, mut right_x, mut top_y, mut bottom_y) = (pt0[0], pt0[0], pt0[1], pt0[1]);
    for i in 0..n {
        if pt0[0] < left_x {
            left_x = pt0[0];
            left = i;
        }
        if pt0[0] > right_x {
            right_x = pt0[0];
            right = i;
        }
        if pt0[1] > top_y {
            top_y = pt0[1];
            top = i;
        }
        if pt0[1] < bottom_y {
            bottom_y = pt0[1];
            bottom = i;
        }
        let pt = p[if i + 1 < n { i + 1 } else { 0 }];
        let dx = (pt[0] - pt0[0]) as f64;
        let dy = (pt[1] - pt0[1]) as f64;
        vect[i] = [dx as f32, dy as f32];
        inv_len[i] = (1.0 / (dx * dx + dy * dy).sqrt()) as f32;
        pt0 = pt;
    }
    let mut seq = [bottom, right, top, left];
    let mut min_area = f32::MAX;
    // (left index, base_a, width, base_b, height, bottom index)
    let mut best = (0usize, 0f32, 0f32, 0f32, 0f32, 0usize);
    for _ in 0..n {
        let rv = [
            vect[seq[0]],
            rot90cw(vect[seq[1]]),
            [-vect[seq[2]][0], -vect[seq[2]][1]],
            [-vect[seq[3]][1], vect[seq[3]][0]],
        ];
        let mut main = 0usize;
        for (i, v) in rv.iter().enumerate().skip(1) {
            if is_right_of(*v, rv[main]) {
                main = i;
            }
        }
        let pi = seq[main];
        let (lx, ly) = (vect[pi][0] * inv_len[pi], vect[pi][1] * inv_len[pi]);
        // the new base: the chosen edge's direction turned back to the first caliper
        let (base_a, base_b) = match main {
            0 => (lx, ly),
            1 => (ly, -lx),
            2 => (-lx, -ly),
            _ => (-ly, lx),
        };
        seq[main] = if seq[main] + 1 == n { 0 } else { seq[main] + 1 };
        let dx = p[seq[1]][0] - p[seq[3]][0];
        let dy = p[seq[1]][1] - p[seq[3]][1];
        let width = dx * base_a + dy * base_b;
        let dx = p[seq[2]][0] - p[seq[0]][0];
        let dy = p[seq[2]][1] - p[seq[0]][1];
        let height = -dx * base_b + dy * base_a;
        let area = width * height;
        if area <= min_area {
            min_area = area;
            best = (seq[3], base_a, width, base_b, height, seq[0]);
        }
    }
    let (li, a1, width, b1, height, bi) = best;
    let (a2, b2) = (-b1, a1);
    let c1 = a1 * p[li][0] + p[li][1] * b1;
    let c2 = a2 * p[bi][0] + p[bi][1] * b2;
    let idet = 1.0f32 / (a1 * b2 - a2 * b1);
    let px = (c1 * b2 - c2 * b1) * idet;
    let py = (a1 * c2 - a2 * c1) * idet;
    [
        [px, py],
        [a1 * width, b1 * width],
        [a2 * height, b2 * height],
    ]
}

/// Radians to degrees as OpenCV writes it (`a * 180 / CV_PI` in double, in that order).
fn degrees(a: f64) -> f64 {
    a * 180.0 / std::f64::consts::PI
}

/// `cv2.minAreaRect` of float32 points (empty input gives the zero rectangle).
pub fn min_area_rect(points: &[[f32; 2]]) -> RotatedRect {
    let hull: Vec<[f32; 2]> = convex_hull_indices(points, false)
        .into_iter()
        .map(|i| points[i])
        .collect();
    let mut r = RotatedRect {
        center: [0.0; 2],
        size: [0.0; 2],
        angle: 0.0,
    };
    let mut deg: f64 = match hull.len() {
        0 => 0.0,
        1 => {
            r.center = hull[0];
            0.0
        }
        2 => {
            let (a, b) = (hull[0], hull[1]);
            r.center = [(a[0] + b[0]) * 0.5, (a[1] + b[1]) * 0.5];
            let (dx, dy) = ((b[0] - a[0]) as f64, (b[1] - a[1]) as f64);
            r.size = [(dx * dx + dy * dy).sqrt() as f32, 0.0];
            degrees(dy.atan2(dx))
        }
        _ => {
            let [o, v1, v2] = calipers(&hull);
            r.center = [o[0] + (v1[0] + v2[0]) * 0.5, o[1] + (v1[1] + v2[1]) * 0.5];
            let len = |v: [f32; 2]| {
                ((v[0] as f64) * (v[0] as f64) + (v[1] as f64) * (v[1] as f64)).sqrt() as f32
            };
            r.size = [len(v1), len(v2)];
            degrees((v1[1] as f64).atan2(v1[0] as f64))
        }
    };
    // OpenCV 5 reports the side whose angle lies in [-90, 0), swapping width and height per turn
    while deg >= 0.0 {
        deg -= 90.0;
        r.size = [r.size[1], r.size[0]];
    }
    while deg < -90.0 {
        deg += 90.0;
        r.size = [r.size[1], r.size[0]];
    }
    r.angle = deg as f32;
    r
}
