//! Keypoints and skeletons drawn as Ultralytics' `Annotator.kpts` (spec/pose.md §7).

use image::{Rgb, RgbImage};

/// Ultralytics' `pose_palette` rows (used by OpenCV as BGR, so stored here as the drawn RGB).
const POSE_PALETTE: [[u8; 3]; 20] = [
    [255, 128, 0],
    [255, 153, 51],
    [255, 178, 102],
    [230, 230, 0],
    [255, 153, 255],
    [153, 204, 255],
    [255, 102, 255],
    [255, 51, 255],
    [102, 178, 255],
    [51, 153, 255],
    [255, 153, 153],
    [255, 102, 102],
    [255, 51, 51],
    [153, 255, 153],
    [102, 255, 102],
    [51, 255, 51],
    [0, 255, 0],
    [0, 0, 255],
    [255, 0, 0],
    [255, 255, 255],
];

/// Palette row of each COCO keypoint.
const KPT_IDX: [usize; 17] = [16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9];

/// Palette row of each limb.
const LIMB_IDX: [usize; 19] = [
    9, 9, 9, 9, 7, 7, 7, 0, 0, 0, 0, 0, 16, 16, 16, 16, 16, 16, 16,
];

/// The 19 COCO limbs as 1-based keypoint pairs.
pub const SKELETON: [[usize; 2]; 19] = [
    [16, 14],
    [14, 12],
    [17, 15],
    [15, 13],
    [12, 13],
    [6, 12],
    [7, 13],
    [6, 7],
    [6, 8],
    [7, 9],
    [8, 10],
    [9, 11],
    [2, 3],
    [1, 2],
    [1, 3],
    [2, 4],
    [3, 5],
    [4, 6],
    [5, 7],
];

/// A palette colour as drawn: the tuple is read by OpenCV as BGR, so the RGB image gets it reversed.
fn bgr(c: [u8; 3]) -> Rgb<u8> {
    Rgb([c[2], c[1], c[0]])
}

/// Whether keypoint `(x, y, v)` is drawn: D = 3 needs v >= 0.25, D = 2 needs (x, y) != (0, 0).
fn shown(k: [f32; 3], ndim: usize) -> bool {
    if ndim == 3 {
        k[2] >= 0.25
    } else {
        !(k[0] == 0.0 && k[1] == 0.0)
    }
}

/// Draws one instance's keypoints `(x, y, v)` in image pixels (`ndim` 2 or 3): circles of
/// `radius`, and the COCO skeleton (line width `ceil(lw / 2)`) when there are 17 keypoints and
/// `kpt_line` is set.
pub fn draw_keypoints(
    img: &mut RgbImage,
    kpts: &[[f32; 3]],
    ndim: usize,
    radius: i32,
    lw: u32,
    kpt_line: bool,
) {
    let coco = kpts.len() == 17;
    for (k, p) in kpts.iter().enumerate() {
        if !shown(*p, ndim) {
            continue;
        }
        let col = if coco {
            bgr(POSE_PALETTE[KPT_IDX[k]])
        } else {
            super::class_color(k)
        };
        imageproc::drawing::draw_filled_circle_mut(
            img,
            (p[0].round() as i32, p[1].round() as i32),
            radius,
            col,
        );
    }
    if !(coco && kpt_line) {
        return;
    }
    let thick = lw.div_ceil(2).max(1) as f32;
    for (i, [a, b]) in SKELETON.iter().enumerate() {
        let (p, q) = (kpts[a - 1], kpts[b - 1]);
        if !shown(p, ndim)
            || !shown(q, ndim)
            || p[0] < 0.0
            || p[1] < 0.0
            || q[0] < 0.0
            || q[1] < 0.0
        {
            continue;
        }
        thick_line(
            img,
            (p[0], p[1]),
            (q[0], q[1]),
            thick,
            bgr(POSE_PALETTE[LIMB_IDX[i]]),
        );
    }
}

/// Paints keypoint sets `(x, y, v)` in pixels (skeleton for 17 keypoints) onto a batch image, as
/// the batch plots show them (radius 3, limbs 1 px; `ndim` 2 or 3).
pub fn paint_keypoints(img: &mut crate::ops::Rgb, sets: &[Vec<[f32; 3]>], ndim: usize) {
    if sets.is_empty() {
        return;
    }
    let Some(mut canvas) = RgbImage::from_raw(img.w as u32, img.h as u32, img.data.clone()) else {
        return;
    };
    for k in sets {
        draw_keypoints(&mut canvas, k, ndim, 3, 2, true);
    }
    img.data = canvas.into_raw();
}

/// A line segment `thick` pixels wide (a filled quadrilateral).
pub fn thick_line(img: &mut RgbImage, a: (f32, f32), b: (f32, f32), thick: f32, col: Rgb<u8>) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt();
    if thick <= 1.0 || len < 1.0 {
        imageproc::drawing::draw_line_segment_mut(img, a, b, col);
        return;
    }
    let (nx, ny) = (-dy / len * thick / 2.0, dx / len * thick / 2.0);
    let pts = [
        (a.0 + nx, a.1 + ny),
        (b.0 + nx, b.1 + ny),
        (b.0 - nx, b.1 - ny),
        (a.0 - nx, a.1 - ny),
    ]
    .map(|(x, y)| imageproc::point::Point::new(x.round() as i32, y.round() as i32));
    if pts[0] == pts[3] || pts[1] == pts[2] {
        imageproc::drawing::draw_line_segment_mut(img, a, b, col);
        return;
    }
    imageproc::drawing::draw_polygon_mut(img, &pts, col);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_keypoints_and_limbs_are_not_drawn() {
        let mut img = RgbImage::new(64, 64);
        let mut k = vec![[10.0f32, 10.0, 0.9]; 17];
        k[0] = [40.0, 40.0, 0.1]; // nose below the 0.25 visibility threshold
        draw_keypoints(&mut img, &k, 3, 3, 2, true);
        assert_eq!(img.get_pixel(40, 40), &Rgb([0, 0, 0]));
        assert_ne!(img.get_pixel(10, 10), &Rgb([0, 0, 0]));
        // 2-D keypoints at the origin are missing ones.
        let mut img = RgbImage::new(16, 16);
        draw_keypoints(&mut img, &[[0.0, 0.0, 0.0]; 4], 2, 2, 2, true);
        assert!(img.pixels().all(|p| p.0 == [0, 0, 0]));
    }

    #[test]
    fn limbs_join_visible_keypoints() {
        let mut img = RgbImage::new(64, 64);
        let mut k = vec![[0.0f32, 0.0, 0.0]; 17];
        k[5] = [10.0, 30.0, 1.0]; // left shoulder
        k[6] = [50.0, 30.0, 1.0]; // right shoulder: limb [6, 7]
        draw_keypoints(&mut img, &k, 3, 1, 4, true);
        assert_eq!(img.get_pixel(30, 30), &bgr(POSE_PALETTE[0]));
    }
}
