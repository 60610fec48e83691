//! A built-in synthetic dataset: coloured shapes of a few classes on textured backgrounds, with exact
//! YOLO labels, generated deterministically (for demos and tests that need nothing outside the repo).

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::path::Path;

/// Class names of the synthetic dataset.
pub const NAMES: [&str; 3] = ["square", "circle", "triangle"];

fn inside(cls: usize, x: f32, y: f32, cx: f32, cy: f32, r: f32) -> bool {
    let (dx, dy) = (x - cx, y - cy);
    match cls {
        0 => dx.abs() <= r && dy.abs() <= r,
        1 => dx * dx + dy * dy <= r * r,
        // Upward triangle with apex at (cx, cy - r) and base at y = cy + r.
        _ => dy >= -r && dy <= r && dx.abs() <= (dy + r) / 2.0,
    }
}

/// Vertices of a circle's outline polygon.
const CIRCLE_POINTS: usize = 32;

/// The outline of a shape as pixel-coordinate points: the drawn square's pixel extent
/// `(x0, y0, x1, y1)`, a 32-gon of the circle, the triangle's three corners.
fn outline(cls: usize, (cx, cy, r): (f32, f32, f32), ext: [f32; 4]) -> Vec<[f32; 2]> {
    match cls {
        0 => vec![
            [ext[0], ext[1]],
            [ext[2], ext[1]],
            [ext[2], ext[3]],
            [ext[0], ext[3]],
        ],
        1 => (0..CIRCLE_POINTS)
            .map(|k| {
                let a = k as f32 * std::f32::consts::TAU / CIRCLE_POINTS as f32;
                [cx + r * a.cos(), cy + r * a.sin()]
            })
            .collect(),
        _ => vec![[cx, cy - r], [cx + r, cy + r], [cx - r, cy + r]],
    }
}

/// Draws one image with its labels: normalised `cls cx cy w h` rows, or with `polygons` the
/// shapes' outlines `cls x1 y1 ... xn yn` (the random draws are the same either way).
fn draw(size: usize, rng: &mut impl Rng, polygons: bool) -> (image::RgbImage, String) {
    let base: [f32; 3] = std::array::from_fn(|_| rng.gen_range(40.0..200.0));
    let freq = rng.gen_range(0.02..0.15f32);
    let mut img = image::RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let t = ((x as f32 * freq).sin() + (y as f32 * freq * 0.7).cos()) * 20.0;
        image::Rgb(std::array::from_fn(|c| {
            (base[c] + t).clamp(0.0, 255.0) as u8
        }))
    });
    for p in img.pixels_mut() {
        let n: i16 = rng.gen_range(-12..=12);
        for c in 0..3 {
            p[c] = (p[c] as i16 + n).clamp(0, 255) as u8;
        }
    }
    let mut labels = String::new();
    let n = rng.gen_range(1..=3);
    let s = size as f32;
    let mut placed: Vec<(f32, f32, f32)> = Vec::new();
    for _ in 0..n {
        let cls = rng.gen_range(0..NAMES.len());
        let r = rng.gen_range(0.08..0.2) * s;
        let (cx, cy) = (rng.gen_range(r..s - r), rng.gen_range(r..s - r));
        if placed
            .iter()
            .any(|&(px, py, pr)| (px - cx).abs() < pr + r && (py - cy).abs() < pr + r)
        {
            continue;
        }
        placed.push((cx, cy, r));
        let color: [u8; 3] = match cls {
            0 => [220, 40, 40],
            1 => [40, 200, 60],
            _ => [40, 80, 230],
        };
        let (x0, x1) = ((cx - r).floor() as i64, (cx + r).ceil() as i64);
        let (y0, y1) = ((cy - r).floor() as i64, (cy + r).ceil() as i64);
        let (mut bx0, mut by0, mut bx1, mut by1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for y in y0.max(0)..y1.min(size as i64) {
            for x in x0.max(0)..x1.min(size as i64) {
                if inside(cls, x as f32 + 0.5, y as f32 + 0.5, cx, cy, r) {
                    img.put_pixel(x as u32, y as u32, image::Rgb(color));
                    bx0 = bx0.min(x as f32);
                    by0 = by0.min(y as f32);
                    bx1 = bx1.max(x as f32 + 1.0);
                    by1 = by1.max(y as f32 + 1.0);
                }
            }
        }
        if bx1 > bx0 && polygons {
            let _ = write!(labels, "{cls}");
            for p in outline(cls, (cx, cy, r), [bx0, by0, bx1, by1]) {
                let _ = write!(
                    labels,
                    " {:.6} {:.6}",
                    (p[0] / s).clamp(0.0, 1.0),
                    (p[1] / s).clamp(0.0, 1.0)
                );
            }
            labels.push('\n');
        } else if bx1 > bx0 {
            let _ = writeln!(
                labels,
                "{cls} {:.6} {:.6} {:.6} {:.6}",
                (bx0 + bx1) / 2.0 / s,
                (by0 + by1) / 2.0 / s,
                (bx1 - bx0) / s,
                (by1 - by0) / s
            );
        }
    }
    (img, labels)
}

/// Writes `n` train and `max(n/4, 4)` val images of `imgsz` pixels, labels and `data.yaml` under `out`.
pub fn generate(out: &Path, n: usize, imgsz: usize, seed: u64) -> Result<std::path::PathBuf> {
    generate_with(out, n, imgsz, seed, false)
}

/// [`generate`] with polygon labels when `polygons` (a segment dataset: the same images, each
/// shape's outline as its row).
pub fn generate_with(
    out: &Path,
    n: usize,
    imgsz: usize,
    seed: u64,
    polygons: bool,
) -> Result<std::path::PathBuf> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for (split, count) in [("train", n), ("val", (n / 4).max(4))] {
        let (idir, ldir) = (
            out.join("images").join(split),
            out.join("labels").join(split),
        );
        std::fs::create_dir_all(&idir).with_context(|| format!("creating {}", idir.display()))?;
        std::fs::create_dir_all(&ldir).with_context(|| format!("creating {}", ldir.display()))?;
        for i in 0..count {
            let (img, labels) = draw(imgsz, &mut rng, polygons);
            let name = format!("{split}_{i:05}");
            img.save(idir.join(format!("{name}.png")))
                .with_context(|| format!("writing {name}.png"))?;
            crate::util::fsio::write(ldir.join(format!("{name}.txt")), labels)?;
        }
    }
    let yaml = out.join("data.yaml");
    let names: Vec<String> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| format!("  {i}: {n}"))
        .collect();
    crate::util::fsio::write(
        &yaml,
        format!(
            "# ryolo synthetic shapes dataset{}\ntrain: images/train\nval: images/val\nnames:\n{}\n",
            if polygons { " (polygon labels)" } else { "" },
            names.join("\n")
        ),
    )?;
    Ok(yaml)
}
