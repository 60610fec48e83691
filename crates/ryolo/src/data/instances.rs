//! Labels as they travel through the data layer: class ids and boxes with the optional per-instance
//! parts of the other tasks (polygons, keypoints, oriented-box corners), and the geometric operations
//! augmentation applies to all parts at once (spec/data.md §4.2, spec/augment.md, spec/segment.md
//! §2.4 and §3, spec/pose.md §3, spec/obb.md §8).

/// A 3x3 matrix (row-major) acting on `[x, y, 1]` column vectors.
pub type Mat3 = [[f64; 3]; 3];

/// Points per polygon after resampling for segmentation (spec/segment.md §2.4).
pub const SEGMENT_POINTS: usize = 1000;

/// One polygon: its xy points in order.
pub type Polygon = Vec<[f32; 2]>;

/// The four corners of an oriented box, in label order.
pub type Corners = [[f32; 2]; 4];

/// The labels of one image. Every present part has one entry per instance, in the order of `cls`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instances {
    /// Class id per instance.
    pub cls: Vec<u32>,
    /// Boxes: normalised `cx cy w h` while `normalized`, else `xyxy` pixels.
    pub boxes: Vec<[f32; 4]>,
    /// Polygons (segment task), one list of xy points per instance.
    pub segments: Option<Vec<Polygon>>,
    /// Keypoints (pose task): per instance `nkpt` rows of `x, y, visibility` (0 = not labelled).
    pub keypoints: Option<Vec<Vec<[f32; 3]>>>,
    /// Oriented-box corners (obb task), four xy points per instance.
    pub corners: Option<Vec<Corners>>,
    /// Whether coordinates are normalised to the image (`[0, 1]`) rather than pixels.
    pub normalized: bool,
}

/// Clamps like `f32::clamp` (same bits for finite values) without its panic on `lo > hi`.
fn clamp32(v: f32, lo: f32, hi: f32) -> f32 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// Clamps like `f64::clamp` without its panic on `lo > hi`.
fn clamp64(v: f64, lo: f64, hi: f64) -> f64 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// `M [x, y, 1]` divided by its third coordinate.
pub fn apply(m: &Mat3, x: f64, y: f64) -> (f64, f64) {
    let z = m[2][0] * x + m[2][1] * y + m[2][2];
    (
        (m[0][0] * x + m[0][1] * y + m[0][2]) / z,
        (m[1][0] * x + m[1][1] * y + m[1][2]) / z,
    )
}

impl Instances {
    /// Box-only instances (normalised `cx cy w h` when `normalized`, else `xyxy` pixels).
    pub fn from_boxes(cls: Vec<u32>, boxes: Vec<[f32; 4]>, normalized: bool) -> Self {
        Self {
            cls,
            boxes,
            normalized,
            ..Self::default()
        }
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.cls.len()
    }

    /// Whether there are no instances.
    pub fn is_empty(&self) -> bool {
        self.cls.is_empty()
    }

    /// Whether polygons travel with the boxes (segments or OBB corners): boxes then follow the
    /// points after a warp and the area / IoA thresholds drop to 0.01.
    pub fn has_polygons(&self) -> bool {
        self.segments.is_some() || self.corners.is_some()
    }

    /// Applies `f` to every point of every part (keypoint visibility untouched).
    fn map_points(&mut self, f: impl Fn([f32; 2]) -> [f32; 2]) {
        for p in self.segments.iter_mut().flatten().flatten() {
            *p = f(*p);
        }
        for k in self.keypoints.iter_mut().flatten().flatten() {
            let [x, y] = f([k[0], k[1]]);
            *k = [x, y, k[2]];
        }
        for c in self.corners.iter_mut().flatten() {
            *c = c.map(&f);
        }
    }

    /// Normalised `cx cy w h` boxes and `[0, 1]` points to `xyxy` pixels of a `w x h` image.
    pub fn denormalize(&mut self, w: usize, h: usize) {
        if !self.normalized {
            return;
        }
        let (w, h) = (w as f32, h as f32);
        for b in &mut self.boxes {
            *b = [
                (b[0] - b[2] / 2.0) * w,
                (b[1] - b[3] / 2.0) * h,
                (b[0] + b[2] / 2.0) * w,
                (b[1] + b[3] / 2.0) * h,
            ];
        }
        self.map_points(|p| [p[0] * w, p[1] * h]);
        self.normalized = false;
    }

    /// `xyxy` pixel boxes and pixel points of a `w x h` image to normalised `cx cy w h` and `[0, 1]`.
    pub fn normalize(&mut self, w: usize, h: usize) {
        if self.normalized {
            return;
        }
        let (w, h) = (w as f32, h as f32);
        for b in &mut self.boxes {
            *b = [
                (b[0] + b[2]) / 2.0 / w,
                (b[1] + b[3]) / 2.0 / h,
                (b[2] - b[0]) / w,
                (b[3] - b[1]) / h,
            ];
        }
        self.map_points(|p| [p[0] / w, p[1] / h]);
        self.normalized = true;
    }

    /// Multiplies every coordinate by `(sx, sy)` (a resize, e.g. the letterbox scale).
    pub fn scale(&mut self, sx: f32, sy: f32) {
        for b in &mut self.boxes {
            *b = [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy];
        }
        self.map_points(|p| [p[0] * sx, p[1] * sy]);
    }

    /// Shifts every position by `(dx, dy)` (mosaic tile offsets, letterbox padding).
    pub fn translate(&mut self, dx: f32, dy: f32) {
        let whole = !self.normalized; // xyxy: both corners move; cx cy w h: only the centre
        for b in &mut self.boxes {
            b[0] += dx;
            b[1] += dy;
            if whole {
                b[2] += dx;
                b[3] += dy;
            }
        }
        self.map_points(|p| [p[0] + dx, p[1] + dy]);
    }

    /// Clips to the `w x h` image (pixels): see [`Self::clip_to`].
    pub fn clip(&mut self, w: f32, h: f32) {
        self.clip_to([0.0, 0.0, w, h]);
    }

    /// Clips to the `xyxy` pixel rectangle `r`: box sides and polygon points are clamped, keypoints
    /// outside get visibility 0 before being clamped (spec/pose.md §3), OBB corners are cut to the
    /// visible part and re-fitted in their own orientation (spec/obb.md §8, 8.4 `preserve_obb`).
    pub fn clip_to(&mut self, r: [f32; 4]) {
        for b in &mut self.boxes {
            *b = [
                clamp32(b[0], r[0], r[2]),
                clamp32(b[1], r[1], r[3]),
                clamp32(b[2], r[0], r[2]),
                clamp32(b[3], r[1], r[3]),
            ];
        }
        for p in self.segments.iter_mut().flatten().flatten() {
            *p = [clamp32(p[0], r[0], r[2]), clamp32(p[1], r[1], r[3])];
        }
        for k in self.keypoints.iter_mut().flatten().flatten() {
            if k[0] < r[0] || k[0] > r[2] || k[1] < r[1] || k[1] > r[3] {
                k[2] = 0.0;
            }
            *k = [clamp32(k[0], r[0], r[2]), clamp32(k[1], r[1], r[3]), k[2]];
        }
        if let Some(cs) = &mut self.corners {
            for (c, b) in cs.iter_mut().zip(&mut self.boxes) {
                if let Some((nc, nb)) = clip_corners(c, r) {
                    (*c, *b) = (nc, nb);
                }
            }
        }
    }

    /// Keeps the instances whose `keep` flag is set (every part alike).
    pub fn retain(&mut self, keep: &[bool]) {
        fn filter<T>(v: &mut Vec<T>, keep: &[bool]) {
            let mut it = keep.iter();
            v.retain(|_| it.next().copied().unwrap_or(false));
        }
        filter(&mut self.cls, keep);
        filter(&mut self.boxes, keep);
        if let Some(s) = &mut self.segments {
            filter(s, keep);
        }
        if let Some(k) = &mut self.keypoints {
            filter(k, keep);
        }
        if let Some(c) = &mut self.corners {
            filter(c, keep);
        }
    }

    /// The instances in the order `order` (a permutation of `0..len`).
    pub fn permute(&mut self, order: &[usize]) {
        fn pick<T: Clone>(v: &mut Vec<T>, order: &[usize]) {
            *v = order.iter().filter_map(|&i| v.get(i).cloned()).collect();
        }
        pick(&mut self.cls, order);
        pick(&mut self.boxes, order);
        if let Some(s) = &mut self.segments {
            pick(s, order);
        }
        if let Some(k) = &mut self.keypoints {
            pick(k, order);
        }
        if let Some(c) = &mut self.corners {
            pick(c, order);
        }
    }

    /// The instances whose `keep` flag is set.
    pub fn select(&self, keep: &[bool]) -> Self {
        let mut out = self.clone();
        out.retain(keep);
        out
    }

    /// Drops instances whose box has no width or height (`xyxy` pixels).
    pub fn remove_zero_area(&mut self) {
        let keep: Vec<bool> = self
            .boxes
            .iter()
            .map(|b| b[2] - b[0] > 0.0 && b[3] - b[1] > 0.0)
            .collect();
        self.retain(&keep);
    }

    /// The corners of box `i`'s axis-aligned rectangle (in the boxes' own form).
    fn box_corners(&self, i: usize) -> Corners {
        let b = self.boxes[i];
        let [x0, y0, x1, y1] = if self.normalized {
            [
                b[0] - b[2] / 2.0,
                b[1] - b[3] / 2.0,
                b[0] + b[2] / 2.0,
                b[1] + b[3] / 2.0,
            ]
        } else {
            b
        };
        [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    }

    /// Appends `other` (same coordinate form). A part present on one side only is padded for the
    /// other's instances: empty polygons, unlabelled keypoints, box-rectangle corners.
    pub fn extend(&mut self, other: Instances) {
        let (n, m) = (self.len(), other.len());
        let nkpt = |k: &Option<Vec<Vec<[f32; 3]>>>| k.iter().flatten().map(Vec::len).max();
        let nk = nkpt(&self.keypoints)
            .or(nkpt(&other.keypoints))
            .unwrap_or(0);
        let rects = |x: &Instances, k: usize| (0..k).map(|i| x.box_corners(i)).collect::<Vec<_>>();
        let corners = (self.corners.is_some() || other.corners.is_some()).then(|| {
            let mine = self.corners.take().unwrap_or_else(|| rects(self, n));
            (mine, rects(&other, m))
        });
        let Instances {
            cls,
            boxes,
            segments,
            keypoints,
            corners: their_corners,
            ..
        } = other;
        if segments.is_some() || self.segments.is_some() {
            let s = self.segments.get_or_insert_with(|| vec![Vec::new(); n]);
            s.extend(segments.unwrap_or_else(|| vec![Vec::new(); m]));
        }
        if keypoints.is_some() || self.keypoints.is_some() {
            let pad = |k: usize| vec![vec![[0.0; 3]; nk]; k];
            let k = self.keypoints.get_or_insert_with(|| pad(n));
            k.extend(keypoints.unwrap_or_else(|| pad(m)));
        }
        if let Some((mut mine, rects)) = corners {
            mine.extend(their_corners.unwrap_or(rects));
            self.corners = Some(mine);
        }
        self.cls.extend(cls);
        self.boxes.extend(boxes);
    }

    /// All instances of `parts` in order (see [`Self::extend`]).
    pub fn concat(parts: impl IntoIterator<Item = Instances>) -> Self {
        let mut it = parts.into_iter();
        let mut out = it.next().unwrap_or_default();
        for p in it {
            out.extend(p);
        }
        out
    }

    /// Mirrors left-right in an image `w` wide (1.0 when normalised); keypoints are then reordered
    /// through `flip_idx` (new keypoint k = old keypoint `flip_idx[k]`, spec/pose.md §3).
    pub fn flip_lr(&mut self, w: f32, flip_idx: Option<&[usize]>) {
        for b in &mut self.boxes {
            *b = if self.normalized {
                [w - b[0], b[1], b[2], b[3]]
            } else {
                [w - b[2], b[1], w - b[0], b[3]]
            };
        }
        self.map_points(|p| [w - p[0], p[1]]);
        self.permute_keypoints(flip_idx);
    }

    /// Mirrors up-down in an image `h` high (1.0 when normalised); keypoints reorder as in
    /// [`Self::flip_lr`].
    pub fn flip_ud(&mut self, h: f32, flip_idx: Option<&[usize]>) {
        for b in &mut self.boxes {
            *b = if self.normalized {
                [b[0], h - b[1], b[2], b[3]]
            } else {
                [b[0], h - b[3], b[2], h - b[1]]
            };
        }
        self.map_points(|p| [p[0], h - p[1]]);
        self.permute_keypoints(flip_idx);
    }

    /// Reorders every instance's keypoints through `flip_idx` (skipped when it does not fit).
    fn permute_keypoints(&mut self, flip_idx: Option<&[usize]>) {
        let (Some(idx), Some(kps)) = (flip_idx, &mut self.keypoints) else {
            return;
        };
        for k in kps {
            if idx.len() == k.len() && idx.iter().all(|&j| j < k.len()) {
                *k = idx.iter().map(|&j| k[j]).collect();
            }
        }
    }

    /// Maps every point of every part through `m` (divided by the third coordinate); boxes are
    /// left alone (see [`Self::warp`]).
    pub fn transform_points(&mut self, m: &Mat3) {
        self.map_points(|p| {
            let (x, y) = apply(m, p[0] as f64, p[1] as f64);
            [x as f32, y as f32]
        });
    }

    /// Box `i` through `m`: the extent of its four transformed corners (`xyxy`, unclipped).
    fn warped_box(&self, m: &Mat3, i: usize) -> [f64; 4] {
        let b = self.boxes[i];
        let corners = [(b[0], b[1]), (b[2], b[1]), (b[0], b[3]), (b[2], b[3])];
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for (x, y) in corners {
            let (nx, ny) = apply(m, x as f64, y as f64);
            x0 = x0.min(nx);
            y0 = y0.min(ny);
            x1 = x1.max(nx);
            y1 = y1.max(ny);
        }
        [x0, y0, x1, y1]
    }

    /// The random-perspective label step (spec/augment.md §3.2-3.3) for `xyxy` pixel instances:
    /// every part through `m`; boxes from the transformed polygons / OBB corners when present (the
    /// extent inside the `out_w x out_h` image), else from the four box corners; polygons clamped to
    /// their box; everything clipped to the image; then the box-candidate filter against the old
    /// boxes scaled by `sc` (area threshold 0.01 with polygons, else 0.10).
    pub fn warp(&self, m: &Mat3, sc: f64, out_w: usize, out_h: usize) -> Instances {
        let (ow, oh) = (out_w as f64, out_h as f64);
        let mut out = self.clone();
        out.transform_points(m);
        let new: Vec<[f64; 4]> = (0..self.len())
            .map(|i| {
                let seg = out.segments.as_ref().and_then(|s| s.get(i));
                let b = match (seg.filter(|p| !p.is_empty()), out.corners.as_ref()) {
                    (Some(p), _) => polygon_box(p, ow, oh),
                    (None, Some(c)) => c.get(i).map_or([0.0; 4], |c| polygon_box(c, ow, oh)),
                    _ => self.warped_box(m, i),
                };
                [
                    clamp64(b[0], 0.0, ow),
                    clamp64(b[1], 0.0, oh),
                    clamp64(b[2], 0.0, ow),
                    clamp64(b[3], 0.0, oh),
                ]
            })
            .collect();
        out.boxes = new.iter().map(|b| b.map(|v| v as f32)).collect();
        if let Some(segs) = &mut out.segments {
            for (s, b) in segs.iter_mut().zip(&out.boxes) {
                for p in s {
                    *p = [clamp32(p[0], b[0], b[2]), clamp32(p[1], b[1], b[3])];
                }
            }
        }
        out.clip(out_w as f32, out_h as f32);
        let thr = if self.has_polygons() { 0.01 } else { 0.10 };
        let keep: Vec<bool> = self
            .boxes
            .iter()
            .zip(&new)
            .map(|(old, nb)| box_candidate(old, sc, nb, thr))
            .collect();
        out.retain(&keep);
        out
    }

    /// Resamples every polygon to `n` points, or to `L + 1` when the longest has `L > n` points
    /// (spec/segment.md §2.4); polygons already of that length are left untouched.
    pub fn resample_segments(&mut self, n: usize) {
        let Some(segs) = &mut self.segments else {
            return;
        };
        let longest = segs.iter().map(Vec::len).max().unwrap_or(0);
        let n = if longest > n { longest + 1 } else { n };
        for s in segs.iter_mut().filter(|s| !s.is_empty() && s.len() != n) {
            *s = resample_polygon(s, n);
        }
    }

    /// Brings polygons of different point counts (concatenated images) to the largest count
    /// (spec/segment.md §3.2).
    pub fn equalize_segments(&mut self) {
        let Some(segs) = &mut self.segments else {
            return;
        };
        let n = segs.iter().map(Vec::len).max().unwrap_or(0);
        for s in segs.iter_mut().filter(|s| !s.is_empty() && s.len() != n) {
            *s = resample_polygon(s, n);
        }
    }
}

/// Ultralytics' `box_candidates`: the warped box `new` (pixels) is kept iff both sides exceed
/// 2 px, its area is over `area_thr` of the old box scaled by `sc`, and its aspect ratio is under 100.
pub fn box_candidate(old: &[f32; 4], sc: f64, new: &[f64; 4], area_thr: f64) -> bool {
    let (w1, h1) = ((old[2] - old[0]) as f64 * sc, (old[3] - old[1]) as f64 * sc);
    let (w2, h2) = (new[2] - new[0], new[3] - new[1]);
    let ar = (w2 / (h2 + 1e-16)).max(h2 / (w2 + 1e-16));
    w2 > 2.0 && h2 > 2.0 && w2 * h2 / (w1 * h1 + 1e-16) > area_thr && ar < 100.0
}

/// Resamples a closed polygon to `n` points by linear interpolation along the vertex index; every
/// original vertex is kept when `n > len` (spec/segment.md §2.4, Ultralytics `resample_segments`).
pub fn resample_polygon(points: &[[f32; 2]], n: usize) -> Polygon {
    let len = points.len();
    if len == 0 || n == 0 {
        return Vec::new();
    }
    // Closed: L + 1 points with vertex index 0..=L.
    let last = len as f64;
    let linspace = |m: usize| -> Vec<f64> {
        match m {
            0 => Vec::new(),
            1 => vec![0.0],
            _ => {
                let step = last / (m - 1) as f64;
                (0..m)
                    .map(|i| if i == m - 1 { last } else { i as f64 * step })
                    .collect()
            }
        }
    };
    let t: Vec<f64> = if len + 1 < n {
        let mut t = linspace(n - (len + 1));
        t.extend((0..=len).map(|i| i as f64));
        t.sort_by(f64::total_cmp);
        t
    } else {
        linspace(n)
    };
    let at = |i: usize| points[i % len];
    t.iter()
        .map(|&t| {
            if t >= last {
                return at(len);
            }
            let j = t.floor() as usize;
            let f = t - j as f64;
            let (a, b) = (at(j), at(j + 1));
            std::array::from_fn(|c| ((b[c] as f64 - a[c] as f64) * f + a[c] as f64) as f32)
        })
        .collect()
}

/// Whether `(x, y)` lies inside the closed polygon (even-odd rule).
fn inside_polygon(pts: &[[f32; 2]], x: f64, y: f64) -> bool {
    let mut inside = false;
    for i in 0..pts.len() {
        let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
        let (ax, ay, bx, by) = (a[0] as f64, a[1] as f64, b[0] as f64, b[1] as f64);
        if (ay > y) != (by > y) && x < ax + (y - ay) * (bx - ax) / (by - ay) {
            inside = !inside;
        }
    }
    inside
}

/// The `xyxy` extent of the part of a closed polygon inside the `w x h` image, exactly: vertices
/// inside, crossings of the edges with the image border, and image corners inside the polygon
/// (8.4 `segment2box`, spec/data.md §4.3). Zeros when nothing is inside.
pub fn polygon_box(pts: &[[f32; 2]], w: f64, h: f64) -> [f64; 4] {
    let mut ext = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    let mut add = |x: f64, y: f64| {
        ext = [ext[0].min(x), ext[1].min(y), ext[2].max(x), ext[3].max(y)];
    };
    let within = |v: f64, hi: f64| (0.0..=hi).contains(&v);
    for i in 0..pts.len() {
        let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
        let (ax, ay, bx, by) = (a[0] as f64, a[1] as f64, b[0] as f64, b[1] as f64);
        if within(ax, w) && within(ay, h) {
            add(ax, ay);
        }
        for x in [0.0, w] {
            if (ax - x) * (bx - x) < 0.0 {
                let y = ay + (x - ax) / (bx - ax) * (by - ay);
                if within(y, h) {
                    add(x, y);
                }
            }
        }
        for y in [0.0, h] {
            if (ay - y) * (by - y) < 0.0 {
                let x = ax + (y - ay) / (by - ay) * (bx - ax);
                if within(x, w) {
                    add(x, y);
                }
            }
        }
    }
    for (x, y) in [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)] {
        if pts.len() >= 3 && inside_polygon(pts, x, y) {
            add(x, y);
        }
    }
    if ext[0] > ext[2] {
        [0.0; 4]
    } else {
        ext
    }
}

/// Convex hull (monotone chain) of a few points.
fn convex_hull(pts: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut p = pts.to_vec();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross = |o: [f64; 2], a: [f64; 2], b: [f64; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let chain = |seq: &mut dyn Iterator<Item = [f64; 2]>| {
        let mut h: Vec<[f64; 2]> = Vec::new();
        for q in seq {
            while h.len() >= 2 && cross(h[h.len() - 2], h[h.len() - 1], q) <= 0.0 {
                h.pop();
            }
            h.push(q);
        }
        h.pop();
        h
    };
    let mut hull = chain(&mut p.iter().copied());
    hull.extend(chain(&mut p.iter().rev().copied()));
    hull
}

/// A convex polygon cut to the rectangle `r` (Sutherland-Hodgman).
fn clip_convex(poly: &[[f64; 2]], r: [f64; 4]) -> Vec<[f64; 2]> {
    let mut out = poly.to_vec();
    // (axis, bound, keep-greater-or-equal)
    for (axis, bound, ge) in [
        (0, r[0], true),
        (0, r[2], false),
        (1, r[1], true),
        (1, r[3], false),
    ] {
        let inside = |p: &[f64; 2]| {
            if ge {
                p[axis] >= bound
            } else {
                p[axis] <= bound
            }
        };
        let src = std::mem::take(&mut out);
        for i in 0..src.len() {
            let (a, b) = (src[i], src[(i + 1) % src.len()]);
            if inside(&a) {
                out.push(a);
            }
            if inside(&a) != inside(&b) {
                let t = (bound - a[axis]) / (b[axis] - a[axis]);
                let mut q = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
                q[axis] = bound;
                out.push(q);
            }
        }
    }
    out
}

/// The angle of the minimum-area bounding rectangle of a convex polygon (one of its edges).
fn min_area_angle(hull: &[[f64; 2]]) -> f64 {
    let mut best = (f64::MAX, 0.0);
    for i in 0..hull.len() {
        let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
        let th = (b[1] - a[1]).atan2(b[0] - a[0]);
        let (s, e) = extent_along(hull, th);
        let area = (e[0] - s[0]) * (e[1] - s[1]);
        if area < best.0 {
            best = (area, th);
        }
    }
    best.1
}

/// Minimum and maximum projections of `pts` on the axes `u = (cos th, sin th)`, `v = u` turned 90°.
fn extent_along(pts: &[[f64; 2]], th: f64) -> ([f64; 2], [f64; 2]) {
    let (c, s) = (th.cos(), th.sin());
    let mut lo = [f64::MAX; 2];
    let mut hi = [f64::MIN; 2];
    for p in pts {
        let (a, b) = (p[0] * c + p[1] * s, -p[0] * s + p[1] * c);
        lo = [lo[0].min(a), lo[1].min(b)];
        hi = [hi[0].max(a), hi[1].max(b)];
    }
    (lo, hi)
}

/// Preserve-OBB clipping of one oriented box to `r` (spec/obb.md §8): `None` when it is inside;
/// else the rectangle in the box's own orientation bounding its visible part, with the `xyxy`
/// extent of that part (zeros when nothing is visible).
fn clip_corners(c: &Corners, r: [f32; 4]) -> Option<(Corners, [f32; 4])> {
    let inside = |p: &[f32; 2]| p[0] >= r[0] && p[0] <= r[2] && p[1] >= r[1] && p[1] <= r[3];
    if c.iter().all(inside) {
        return None;
    }
    let pts: Vec<[f64; 2]> = c.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    let hull = convex_hull(&pts);
    let vis = clip_convex(&hull, r.map(|v| v as f64));
    if vis.len() < 3 {
        return Some(([[0.0; 2]; 4], [0.0; 4]));
    }
    let ext = vis
        .iter()
        .fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |e, p| {
            [
                e[0].min(p[0]),
                e[1].min(p[1]),
                e[2].max(p[0]),
                e[3].max(p[1]),
            ]
        });
    let th = min_area_angle(&hull);
    let (lo, hi) = extent_along(&vis, th);
    let (co, si) = (th.cos(), th.sin());
    let at = |a: f64, b: f64| [(a * co - b * si) as f32, (a * si + b * co) as f32];
    Some((
        [
            at(lo[0], lo[1]),
            at(hi[0], lo[1]),
            at(hi[0], hi[1]),
            at(lo[0], hi[1]),
        ],
        ext.map(|v| v as f32),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COCO_FLIP: [usize; 17] = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15];

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-3
    }

    /// Two instances with every part, in pixels of a 100 x 80 image.
    fn full() -> Instances {
        let kp: Vec<[f32; 3]> = (0..17)
            .map(|k| [10.0 + k as f32 * 3.1, 20.0 + k as f32 * 1.7, (k % 3) as f32])
            .collect();
        Instances {
            cls: vec![0, 1],
            boxes: vec![[10.0, 20.0, 60.0, 50.0], [5.5, 6.25, 30.0, 40.0]],
            segments: Some(vec![
                vec![[10.0, 20.0], [60.0, 25.0], [40.0, 50.0]],
                vec![[5.5, 6.25], [30.0, 6.25], [30.0, 40.0], [5.5, 40.0]],
            ]),
            keypoints: Some(vec![kp.clone(), kp]),
            corners: Some(vec![
                [[10.0, 20.0], [60.0, 20.0], [60.0, 50.0], [10.0, 50.0]],
                [[20.0, 10.0], [40.0, 30.0], [30.0, 40.0], [10.0, 20.0]],
            ]),
            normalized: false,
        }
    }

    fn same(a: &Instances, b: &Instances) -> bool {
        let f = |x: &Instances| -> Vec<f32> {
            let mut v: Vec<f32> = x.boxes.iter().flatten().copied().collect();
            v.extend(x.segments.iter().flatten().flatten().flatten());
            v.extend(x.keypoints.iter().flatten().flatten().flatten());
            v.extend(x.corners.iter().flatten().flatten().flatten());
            v
        };
        let (p, q) = (f(a), f(b));
        a.cls == b.cls && p.len() == q.len() && p.iter().zip(&q).all(|(x, y)| close(*x, *y))
    }

    #[test]
    fn flipping_twice_is_the_identity_for_every_part() {
        let a = full();
        for ud in [false, true] {
            let mut b = a.clone();
            for _ in 0..2 {
                if ud {
                    b.flip_ud(80.0, Some(&COCO_FLIP));
                } else {
                    b.flip_lr(100.0, Some(&COCO_FLIP));
                }
            }
            assert!(same(&a, &b), "ud {ud}: {b:?}");
            // Keypoints come back in their own order (with their flags).
            assert_eq!(
                a.keypoints.as_ref().unwrap()[0][1][2],
                b.keypoints.unwrap()[0][1][2]
            );
        }
        // One flip swaps left and right keypoints and mirrors them.
        let mut b = a.clone();
        b.flip_lr(100.0, Some(&COCO_FLIP));
        let (ka, kb) = (
            &a.keypoints.as_ref().unwrap()[0],
            &b.keypoints.as_ref().unwrap()[0],
        );
        assert!(close(kb[1][0], 100.0 - ka[2][0]) && kb[1][2] == ka[2][2]);
        assert!(close(kb[0][0], 100.0 - ka[0][0]));
        assert_eq!(b.boxes[0], [40.0, 20.0, 90.0, 50.0]);
    }

    #[test]
    fn normalize_and_denormalize_round_trip() {
        let a = full();
        let mut b = a.clone();
        b.normalize(100, 80);
        assert!(b.normalized);
        assert!(close(b.boxes[0][0], 0.35) && close(b.boxes[0][3], 0.375));
        assert!(close(b.segments.as_ref().unwrap()[0][1][0], 0.6));
        b.denormalize(100, 80);
        assert!(same(&a, &b));
    }

    #[test]
    fn affine_of_a_polygon_gives_the_box_of_the_transformed_polygon() {
        let th = 0.4f64;
        let (c, s) = (th.cos() * 0.9, th.sin() * 0.9);
        let m: Mat3 = [[c, s + 0.1, 20.0], [-s, c, 40.0], [0.0, 0.0, 1.0]];
        let poly: Polygon = (0..40)
            .map(|i| {
                let a = i as f64 / 40.0 * std::f64::consts::TAU;
                [
                    (50.0 + 25.0 * a.cos()) as f32,
                    (40.0 + 15.0 * (2.0 * a).sin()) as f32,
                ]
            })
            .collect();
        let b0 = polygon_box(&poly, 100.0, 80.0).map(|v| v as f32);
        let inst = Instances {
            cls: vec![3],
            boxes: vec![b0],
            segments: Some(vec![poly.clone()]),
            ..Instances::default()
        };
        let out = inst.warp(&m, 0.9, 200, 200);
        assert_eq!(out.len(), 1);
        // The box is the extent of the polygon transformed point by point.
        let moved: Vec<(f64, f64)> = poly
            .iter()
            .map(|p| apply(&m, p[0] as f64, p[1] as f64))
            .collect();
        let ext = moved
            .iter()
            .fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |e, p| {
                [e[0].min(p.0), e[1].min(p.1), e[2].max(p.0), e[3].max(p.1)]
            });
        for k in 0..4 {
            assert!(
                close(out.boxes[0][k], ext[k] as f32),
                "{:?} vs {ext:?}",
                out.boxes[0]
            );
        }
        // ... and equals the box recomputed from the polygon the warp returns.
        let again = polygon_box(&out.segments.as_ref().unwrap()[0], 200.0, 200.0);
        for (got, want) in out.boxes[0].iter().zip(again) {
            assert!(close(*got, want as f32));
        }
        // A box-only instance takes the (larger) extent of its transformed corners.
        let plain = Instances::from_boxes(vec![3], vec![b0], false).warp(&m, 0.9, 200, 200);
        assert!(plain.boxes[0][0] < out.boxes[0][0] && plain.boxes[0][2] > out.boxes[0][2]);
    }

    #[test]
    fn polygon_box_cuts_at_the_image_border() {
        // A triangle poking out of the right border: the extent ends at the border crossings.
        let tri = [[50.0, 10.0], [150.0, 50.0], [50.0, 90.0]];
        let b = polygon_box(&tri, 100.0, 100.0);
        assert_eq!(b, [50.0, 10.0, 100.0, 90.0]);
        // A polygon around the whole image: the image corners are inside it.
        let big = [
            [-10.0, -10.0],
            [200.0, -10.0],
            [200.0, 200.0],
            [-10.0, 200.0],
        ];
        assert_eq!(polygon_box(&big, 100.0, 80.0), [0.0, 0.0, 100.0, 80.0]);
        assert_eq!(
            polygon_box(&[[-5.0, -5.0], [-1.0, -5.0], [-1.0, -1.0]], 10.0, 10.0),
            [0.0; 4]
        );
    }

    #[test]
    fn keypoints_outside_the_image_become_invisible() {
        let inst = Instances {
            cls: vec![0],
            boxes: vec![[10.0, 10.0, 60.0, 60.0]],
            keypoints: Some(vec![vec![
                [20.0, 20.0, 2.0],
                [55.0, 30.0, 1.0],
                [0.0, 0.0, 0.0],
                [30.0, 58.0, 2.0],
            ]]),
            ..Instances::default()
        };
        // Shift right by 40 px into a 80 x 80 output: the second keypoint (x 95) leaves the image.
        let m: Mat3 = [[1.0, 0.0, 40.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let out = inst.warp(&m, 1.0, 80, 80);
        let k = &out.keypoints.as_ref().unwrap()[0];
        assert_eq!(k[0], [60.0, 20.0, 2.0]);
        assert_eq!(k[1], [80.0, 30.0, 0.0], "outside: invisible and clamped");
        assert_eq!(k[2], [40.0, 0.0, 0.0], "unlabelled stays unlabelled");
        assert_eq!(k[3], [70.0, 58.0, 2.0]);
        // The mosaic clip applies the same rule, strictly: a point on the border stays visible.
        let mut c = inst.clone();
        c.translate(-20.0, 0.0);
        c.clip(50.0, 50.0);
        let k = &c.keypoints.as_ref().unwrap()[0];
        assert_eq!(k[0], [0.0, 20.0, 2.0]);
        assert_eq!(k[3], [10.0, 50.0, 0.0]);
        assert_eq!(c.boxes[0], [0.0, 10.0, 40.0, 50.0]);
    }

    #[test]
    fn obb_corners_survive_a_90_degree_rotation() {
        // A 40 x 20 box turned 30 degrees about (50, 50), inside a 100 x 100 image.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let corner =
            |a: f64, b: f64| [(50.0 + a * c - b * s) as f32, (50.0 + a * s + b * c) as f32];
        let cs: Corners = [
            corner(-20.0, -10.0),
            corner(20.0, -10.0),
            corner(20.0, 10.0),
            corner(-20.0, 10.0),
        ];
        let b = polygon_box(&cs, 100.0, 100.0).map(|v| v as f32);
        let inst = Instances {
            cls: vec![2],
            boxes: vec![b],
            corners: Some(vec![cs]),
            ..Instances::default()
        };
        // 90 degrees about the image centre.
        let m: Mat3 = [[0.0, -1.0, 100.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
        let out = inst.warp(&m, 1.0, 100, 100);
        assert_eq!(out.len(), 1);
        let got = out.corners.as_ref().unwrap()[0];
        for (p, q) in cs.iter().zip(&got) {
            // (x, y) -> (100 - y, x), corner by corner.
            assert!(
                close(q[0], 100.0 - p[1]) && close(q[1], p[0]),
                "{p:?} -> {q:?}"
            );
        }
        // Side lengths are kept; the axis-aligned box is the corners' extent.
        let len = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        assert!(close(len(got[0], got[1]), 40.0) && close(len(got[1], got[2]), 20.0));
        let ext = polygon_box(&got, 100.0, 100.0);
        for (got, want) in out.boxes[0].iter().zip(ext) {
            assert!(close(*got, want as f32));
        }
        // Four turns bring the corners home.
        let mut again = inst.clone();
        for _ in 0..4 {
            again = again.warp(&m, 1.0, 100, 100);
        }
        assert!(same(&inst, &again), "{again:?}");
    }

    #[test]
    fn clipped_obb_keeps_its_orientation() {
        // An 80 x 10 box turned 30 degrees about (0, 50): partly left of the image.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let corner = |a: f64, b: f64| [(a * c - b * s) as f32, (50.0 + a * s + b * c) as f32];
        let cs: Corners = [
            corner(-40.0, -5.0),
            corner(40.0, -5.0),
            corner(40.0, 5.0),
            corner(-40.0, 5.0),
        ];
        let mut inst = Instances {
            cls: vec![0],
            boxes: vec![polygon_box(&cs, 1e9, 1e9).map(|v| v as f32)],
            corners: Some(vec![cs]),
            ..Instances::default()
        };
        inst.clip(100.0, 100.0);
        let got = inst.corners.as_ref().unwrap()[0];
        let len = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        let mut sides = [len(got[0], got[1]), len(got[1], got[2])];
        sides.sort_by(f32::total_cmp);
        // Visible along the long axis: a in [-5 tan 30, 40]; the short side stays 10.
        let want = 40.0 + 5.0 * 30f32.to_radians().tan();
        assert!(close(sides[0], 10.0) && close(sides[1], want), "{sides:?}");
        // Still at 30 (or 120) degrees.
        let edge = if close(len(got[0], got[1]), want) {
            (got[0], got[1])
        } else {
            (got[1], got[2])
        };
        let ang = (edge.1[1] - edge.0[1])
            .atan2(edge.1[0] - edge.0[0])
            .to_degrees()
            .rem_euclid(180.0);
        assert!((ang - 30.0).abs() < 1e-3, "{ang}");
        // The box is the extent of the visible part.
        let b = inst.boxes[0];
        assert!(
            b[0] == 0.0 && close(b[2], (40.0 * c + 5.0 * s) as f32),
            "{b:?}"
        );
    }

    #[test]
    fn resampling_gives_the_spec_point_counts() {
        let sq: Polygon = vec![[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]];
        let r = resample_polygon(&sq, SEGMENT_POINTS);
        assert_eq!(r.len(), 1000);
        // Every original vertex is kept, and the polygon closes on its first point.
        for v in &sq {
            assert!(r.contains(v), "{v:?}");
        }
        assert_eq!((r[0], r[999]), ([0.0, 0.0], [0.0, 0.0]));
        // Points are spread along the vertex index: 1000 - 5 = 995 inserted over 4 edges.
        assert!(r
            .iter()
            .all(|p| p[0] == 0.0 || p[0] == 4.0 || p[1] == 0.0 || p[1] == 4.0));
        let mut inst = Instances {
            cls: vec![0, 1, 2],
            boxes: vec![[0.0; 4]; 3],
            segments: Some(vec![
                sq.clone(),
                (0..1200).map(|i| [i as f32, 0.0]).collect(),
                (0..1201).map(|i| [i as f32, 1.0]).collect(),
            ]),
            ..Instances::default()
        };
        inst.resample_segments(SEGMENT_POINTS);
        let lens: Vec<usize> = inst
            .segments
            .as_ref()
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect();
        // The longest has 1201 > 1000 points: all go to 1202.
        assert_eq!(lens, [1202, 1202, 1202]);
        let mut exact = Instances {
            segments: Some(vec![r.clone()]),
            ..inst.clone()
        };
        exact.resample_segments(SEGMENT_POINTS);
        assert_eq!(
            exact.segments.unwrap()[0],
            r,
            "a polygon of exactly n points is untouched"
        );
    }

    #[test]
    fn extend_pads_missing_parts_and_retain_filters_every_part() {
        let mut a = full();
        let b = Instances::from_boxes(vec![7], vec![[1.0, 2.0, 3.0, 4.0]], false);
        a.extend(b);
        assert_eq!(a.len(), 3);
        assert_eq!(a.segments.as_ref().unwrap()[2], Vec::<[f32; 2]>::new());
        assert_eq!(a.keypoints.as_ref().unwrap()[2], vec![[0.0; 3]; 17]);
        assert_eq!(
            a.corners.as_ref().unwrap()[2],
            [[1.0, 2.0], [3.0, 2.0], [3.0, 4.0], [1.0, 4.0]]
        );
        a.retain(&[false, true, true]);
        assert_eq!(a.cls, [1, 7]);
        assert_eq!(a.segments.as_ref().unwrap().len(), 2);
        assert_eq!(a.keypoints.as_ref().unwrap().len(), 2);
        assert_eq!(a.corners.as_ref().unwrap()[0][0], [20.0, 10.0]);
    }
}
