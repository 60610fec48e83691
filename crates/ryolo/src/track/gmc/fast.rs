//! OpenCV's FAST-9/16 corner detector (`cv2.FastFeatureDetector_create(threshold)`): segment test, corner
//! score and 3×3 non-maximum suppression.

use super::gray::Gray;

/// A FAST corner: integer position and its score (OpenCV's `KeyPoint.response`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Corner {
    /// Column.
    pub x: usize,
    /// Row.
    pub y: usize,
    /// The largest threshold at which the pixel is still a corner.
    pub score: i32,
}

/// The 16 circle offsets (dx, dy) in OpenCV's order (radius 3 Bresenham circle).
const CIRCLE: [(isize, isize); 16] = [
    (0, 3),
    (1, 3),
    (2, 2),
    (3, 1),
    (3, 0),
    (3, -1),
    (2, -2),
    (1, -3),
    (0, -3),
    (-1, -3),
    (-2, -2),
    (-3, -1),
    (-3, 0),
    (-3, 1),
    (-2, 2),
    (-1, 3),
];

/// The centre minus each circle pixel at `(x, y)`.
#[inline]
fn diffs(img: &Gray, x: usize, y: usize) -> [i32; 16] {
    let v = img.at(x, y) as i32;
    std::array::from_fn(|k| {
        let (dx, dy) = CIRCLE[k];
        v - img.at((x as isize + dx) as usize, (y as isize + dy) as usize) as i32
    })
}

/// Whether 9 contiguous circle pixels are all brighter than `v + t` or all darker than `v − t`.
fn is_corner(d: &[i32; 16], t: i32) -> bool {
    let (mut bright, mut dark) = (0, 0);
    for k in 0..25 {
        let e = d[k % 16];
        if e < -t {
            bright += 1;
            dark = 0;
        } else if e > t {
            dark += 1;
            bright = 0;
        } else {
            bright = 0;
            dark = 0;
        }
        if bright > 8 || dark > 8 {
            return true;
        }
    }
    false
}

/// OpenCV's `cornerScore<16>`: over the 16 arcs of 9 pixels, the best `min(d)` (darker centre… brighter
/// circle) or `min(−d)`, minus one.
fn score(d: &[i32; 16]) -> i32 {
    let mut best = i32::MIN;
    for s in 0..16 {
        let (mut lo, mut hi) = (i32::MAX, i32::MIN);
        for k in s..s + 9 {
            lo = lo.min(d[k % 16]);
            hi = hi.max(d[k % 16]);
        }
        best = best.max(lo).max(-hi);
    }
    best - 1
}

/// FAST-9/16 corners with non-maximum suppression, in OpenCV's order (row by row, left to right): a corner
/// is kept when its score beats all 8 neighbours' (0 for non-corners). Rows and columns 0–2 and the last 3
/// are never tested.
pub fn fast9(img: &Gray, threshold: i32) -> Vec<Corner> {
    let (w, h) = (img.w, img.h);
    if w < 7 || h < 7 {
        return Vec::new();
    }
    let mut scores = vec![0i32; w * h];
    for y in 3..h - 3 {
        for x in 3..w - 3 {
            // Any 9 contiguous circle pixels include two neighbouring compass points (0, 4, 8, 12).
            let v = img.at(x, y) as i32;
            let (mut bright, mut dark) = (0, 0);
            for (dx, dy) in [(0isize, 3isize), (3, 0), (0, -3), (-3, 0)] {
                let u = img.at((x as isize + dx) as usize, (y as isize + dy) as usize) as i32;
                bright += i32::from(u > v + threshold);
                dark += i32::from(u < v - threshold);
            }
            if bright < 2 && dark < 2 {
                continue;
            }
            let d = diffs(img, x, y);
            if is_corner(&d, threshold) {
                scores[y * w + x] = score(&d);
            }
        }
    }
    let mut out = Vec::new();
    for y in 3..h - 3 {
        for x in 3..w - 3 {
            let s = scores[y * w + x];
            if s == 0 {
                continue;
            }
            let beats = (-1isize..=1).all(|dy| {
                (-1isize..=1).all(|dx| {
                    (dx == 0 && dy == 0)
                        || s > scores[(y as isize + dy) as usize * w + (x as isize + dx) as usize]
                })
            });
            if beats {
                out.push(Corner { x, y, score: s });
            }
        }
    }
    out
}
