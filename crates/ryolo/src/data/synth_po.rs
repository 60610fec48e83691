//! Built-in synthetic pose and OBB datasets (`yolo data synth task=pose|obb`): COCO-layout stick
//! figures with 17 keypoints (`kpt_shape [17, 3]`, `flip_idx`), and filled rotated rectangles of
//! three classes with corner labels. Deterministic for a seed; simple enough to be learnt quickly.

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Class names of the synthetic OBB dataset (they differ in colour and aspect ratio).
pub const OBB_NAMES: [&str; 3] = ["bar", "plate", "strip"];

/// COCO keypoint order after a horizontal flip.
pub const COCO_FLIP_IDX: [usize; 17] = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15];

/// The 17 COCO keypoints of an upright figure of height 2 centred at 0 (the person's left at +x):
/// nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles.
const FIGURE: [[f32; 2]; 17] = [
    [0.0, -0.80],
    [0.06, -0.86],
    [-0.06, -0.86],
    [0.12, -0.82],
    [-0.12, -0.82],
    [0.25, -0.55],
    [-0.25, -0.55],
    [0.36, -0.20],
    [-0.36, -0.20],
    [0.42, 0.12],
    [-0.42, 0.12],
    [0.15, 0.15],
    [-0.15, 0.15],
    [0.17, 0.55],
    [-0.17, 0.55],
    [0.18, 0.95],
    [-0.18, 0.95],
];

/// Limbs drawn between keypoints (0-based COCO skeleton).
const LIMBS: [(usize, usize); 16] = [
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (3, 4),
];

/// A noisy gradient background.
fn background(size: usize, rng: &mut impl Rng) -> image::RgbImage {
    let base: [f32; 3] = std::array::from_fn(|_| rng.gen_range(40.0..180.0));
    let g: [f32; 3] = std::array::from_fn(|_| rng.gen_range(-30.0..30.0));
    let mut img = image::RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let t = (x + y) as f32 / (2 * size) as f32;
        image::Rgb(std::array::from_fn(|c| {
            (base[c] + g[c] * t).clamp(0.0, 255.0) as u8
        }))
    });
    for p in img.pixels_mut() {
        let n: i16 = rng.gen_range(-8..=8);
        for c in 0..3 {
            p[c] = (p[c] as i16 + n).clamp(0, 255) as u8;
        }
    }
    img
}

/// Paints every pixel whose centre satisfies `inside` within the `[x0, y0, x1, y1]` window.
fn paint(
    img: &mut image::RgbImage,
    win: [f32; 4],
    col: [u8; 3],
    inside: impl Fn(f32, f32) -> bool,
) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let x0 = (win[0].floor() as i64).max(0);
    let y0 = (win[1].floor() as i64).max(0);
    let x1 = (win[2].ceil() as i64).min(w);
    let y1 = (win[3].ceil() as i64).min(h);
    for y in y0..y1 {
        for x in x0..x1 {
            if inside(x as f32 + 0.5, y as f32 + 0.5) {
                img.put_pixel(x as u32, y as u32, image::Rgb(col));
            }
        }
    }
}

/// A thick line segment from `a` to `b`.
fn line(img: &mut image::RgbImage, a: [f32; 2], b: [f32; 2], t: f32, col: [u8; 3]) {
    let win = [
        a[0].min(b[0]) - t,
        a[1].min(b[1]) - t,
        a[0].max(b[0]) + t,
        a[1].max(b[1]) + t,
    ];
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l2 = (dx * dx + dy * dy).max(1e-6);
    paint(img, win, col, |x, y| {
        let s = (((x - a[0]) * dx + (y - a[1]) * dy) / l2).clamp(0.0, 1.0);
        let (px, py) = (a[0] + s * dx - x, a[1] + s * dy - y);
        px * px + py * py <= t * t
    });
}

/// One pose image: 1-3 figures, rows `0 cx cy w h` + 17 × `x y v` (v 2 inside the image, else
/// `0 0 0`); the box is the extent of the labelled keypoints plus a margin.
fn draw_pose(size: usize, rng: &mut impl Rng) -> (image::RgbImage, String) {
    let mut img = background(size, rng);
    let s = size as f32;
    let mut labels = String::new();
    let mut placed: Vec<(f32, f32, f32)> = Vec::new();
    for _ in 0..rng.gen_range(1..=3) {
        let scale = rng.gen_range(0.14..0.3) * s;
        let (cx, cy) = (rng.gen_range(0.15..0.85) * s, rng.gen_range(0.2..0.8) * s);
        if placed.iter().any(|&(px, py, ps)| {
            (px - cx).abs() < (ps + scale) * 0.6 && (py - cy).abs() < ps + scale
        }) {
            continue;
        }
        placed.push((cx, cy, scale));
        let a = rng.gen_range(-0.3..0.3f32);
        let (ca, sa) = (a.cos(), a.sin());
        let pts: Vec<[f32; 2]> = FIGURE
            .iter()
            .map(|p| {
                let (x, y) = (
                    p[0] + rng.gen_range(-0.03..0.03),
                    p[1] + rng.gen_range(-0.03..0.03),
                );
                [
                    cx + (x * ca - y * sa) * scale,
                    cy + (x * sa + y * ca) * scale,
                ]
            })
            .collect();
        let col: [u8; 3] = std::array::from_fn(|_| rng.gen_range(0..80));
        let t = (scale * 0.035).max(1.0);
        for &(i, j) in &LIMBS {
            line(&mut img, pts[i], pts[j], t, col);
        }
        for p in &pts {
            line(&mut img, *p, *p, t * 1.8, [250, 250, 250]);
        }
        let vis: Vec<bool> = pts
            .iter()
            .map(|p| p[0] >= 0.0 && p[0] < s && p[1] >= 0.0 && p[1] < s)
            .collect();
        let m = 0.06 * scale;
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for (p, _) in pts.iter().zip(&vis).filter(|(_, v)| **v) {
            (x0, y0, x1, y1) = (x0.min(p[0]), y0.min(p[1]), x1.max(p[0]), y1.max(p[1]));
        }
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        let (x0, y0) = ((x0 - m).max(0.0), (y0 - m).max(0.0));
        let (x1, y1) = ((x1 + m).min(s), (y1 + m).min(s));
        let _ = write!(
            labels,
            "0 {:.6} {:.6} {:.6} {:.6}",
            (x0 + x1) / 2.0 / s,
            (y0 + y1) / 2.0 / s,
            (x1 - x0) / s,
            (y1 - y0) / s
        );
        for (p, v) in pts.iter().zip(&vis) {
            if *v {
                let _ = write!(labels, " {:.6} {:.6} 2", p[0] / s, p[1] / s);
            } else {
                labels.push_str(" 0 0 0");
            }
        }
        labels.push('\n');
    }
    (img, labels)
}

/// One OBB image: 1-4 filled rotated rectangles fully inside the image, rows `cls x1 y1 ... x4 y4`.
fn draw_obb(size: usize, rng: &mut impl Rng) -> (image::RgbImage, String) {
    let mut img = background(size, rng);
    let s = size as f32;
    let mut labels = String::new();
    let mut placed: Vec<(f32, f32, f32)> = Vec::new();
    for _ in 0..rng.gen_range(1..=4) {
        let cls = rng.gen_range(0..OBB_NAMES.len());
        let (aspect, col) = match cls {
            0 => (3.0, [220, 50, 40]),
            1 => (1.5, [40, 190, 70]),
            _ => (5.0, [40, 80, 230]),
        };
        let w = rng.gen_range(0.18..0.4) * s;
        let h = w / aspect;
        let r = (w * w + h * h).sqrt() / 2.0;
        if 2.0 * r + 2.0 >= s {
            continue;
        }
        let (cx, cy) = (
            rng.gen_range(r + 1.0..s - r - 1.0),
            rng.gen_range(r + 1.0..s - r - 1.0),
        );
        if placed
            .iter()
            .any(|&(px, py, pr)| (px - cx).hypot(py - cy) < pr + r)
        {
            continue;
        }
        placed.push((cx, cy, r));
        let t = rng.gen_range(-std::f32::consts::PI..std::f32::consts::PI);
        let b = crate::ops::obb::xywhr_to_corners(&[cx, cy, w, h, t]);
        let (c, sn) = (t.cos(), t.sin());
        paint(&mut img, [cx - r, cy - r, cx + r, cy + r], col, |x, y| {
            let (dx, dy) = (x - cx, y - cy);
            (dx * c + dy * sn).abs() <= w / 2.0 && (-dx * sn + dy * c).abs() <= h / 2.0
        });
        let _ = write!(labels, "{cls}");
        for p in b {
            let _ = write!(labels, " {:.6} {:.6}", p[0] / s, p[1] / s);
        }
        labels.push('\n');
    }
    (img, labels)
}

/// Writes `n` train and `max(n/4, 4)` val images with `draw`'s labels under `out`; returns the
/// folders' common root.
fn write_splits(
    out: &Path,
    n: usize,
    imgsz: usize,
    seed: u64,
    draw: impl Fn(usize, &mut rand::rngs::StdRng) -> (image::RgbImage, String),
) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for (split, count) in [("train", n), ("val", (n / 4).max(4))] {
        let (idir, ldir) = (
            out.join("images").join(split),
            out.join("labels").join(split),
        );
        std::fs::create_dir_all(&idir).with_context(|| format!("creating {}", idir.display()))?;
        std::fs::create_dir_all(&ldir).with_context(|| format!("creating {}", ldir.display()))?;
        for i in 0..count {
            let (img, labels) = draw(imgsz, &mut rng);
            let name = format!("{split}_{i:05}");
            img.save(idir.join(format!("{name}.png")))
                .with_context(|| format!("writing {name}.png"))?;
            std::fs::write(ldir.join(format!("{name}.txt")), labels)
                .with_context(|| format!("writing {name}.txt"))?;
        }
    }
    Ok(())
}

/// The synthetic pose dataset (`kpt_shape [17, 3]`, COCO `flip_idx`, class `person`); returns its
/// data.yaml.
pub fn generate_pose(out: &Path, n: usize, imgsz: usize, seed: u64) -> Result<PathBuf> {
    write_splits(out, n, imgsz, seed, draw_pose)?;
    let yaml = out.join("data.yaml");
    let flip: Vec<String> = COCO_FLIP_IDX.iter().map(|i| i.to_string()).collect();
    std::fs::write(
        &yaml,
        format!(
            "# ryolo synthetic stick figures (COCO keypoint layout)\ntrain: images/train\nval: images/val\nkpt_shape: [17, 3]\nflip_idx: [{}]\nnames:\n  0: person\n",
            flip.join(", ")
        ),
    )
    .with_context(|| format!("writing {}", yaml.display()))?;
    Ok(yaml)
}

/// The synthetic OBB dataset (rotated rectangles, corner labels); returns its data.yaml.
pub fn generate_obb(out: &Path, n: usize, imgsz: usize, seed: u64) -> Result<PathBuf> {
    write_splits(out, n, imgsz, seed, draw_obb)?;
    let yaml = out.join("data.yaml");
    let names: Vec<String> = OBB_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| format!("  {i}: {n}"))
        .collect();
    std::fs::write(
        &yaml,
        format!(
            "# ryolo synthetic rotated rectangles (OBB corner labels)\ntrain: images/train\nval: images/val\nnames:\n{}\n",
            names.join("\n")
        ),
    )
    .with_context(|| format!("writing {}", yaml.display()))?;
    Ok(yaml)
}
