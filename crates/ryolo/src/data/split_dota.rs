//! DOTA image splitting into overlapping tiles with their OBB labels, as Ultralytics 8.4
//! `data/split_dota.py` (`split_trainval`, `split_test`; spec/obb.md §12).

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Tiling settings: base crop size and gap, scaled by each rate (`int(crop_size / r)`,
/// `int(gap / r)`), and Ultralytics' fixed thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitOptions {
    /// Base window side in pixels (1024).
    pub crop_size: usize,
    /// Base overlap between neighbouring windows in pixels (200).
    pub gap: usize,
    /// Scaling rates; each gives one window size (`[1.0]`).
    pub rates: Vec<f64>,
}

impl Default for SplitOptions {
    fn default() -> Self {
        Self {
            crop_size: 1024,
            gap: 200,
            rates: vec![1.0],
        }
    }
}

/// Minimum fraction of a window covered by the image for the window to be kept.
pub const IM_RATE_THR: f64 = 0.6;
/// Minimum intersection-over-foreground for an object to belong to a window.
pub const IOF_THR: f64 = 0.7;

impl SplitOptions {
    /// `(window size, gap)` per rate, as Ultralytics truncates `crop_size / r` and `gap / r`;
    /// fails on a rate that is not positive or a gap not smaller than its window.
    pub fn sizes(&self) -> Result<Vec<(i64, i64)>> {
        if self.rates.is_empty() {
            bail!("rates: give at least one scaling rate, e.g. rates=1.0");
        }
        let mut out = Vec::new();
        for &r in &self.rates {
            if !(r.is_finite() && r > 0.0) {
                bail!("rates: {r} is not a positive number");
            }
            let (c, g) = (
                (self.crop_size as f64 / r) as i64,
                (self.gap as f64 / r) as i64,
            );
            if c <= g {
                bail!("invalid crop_size gap pair [{c} {g}] (rate {r}): the window must be larger than the gap");
            }
            out.push((c, g));
        }
        Ok(out)
    }
}

/// Windows `[x0, y0, x1, y1]` over an image of `w x h` pixels (Ultralytics' `get_windows`): per
/// size a grid of `step = size - gap` with the last start moved back inside, all (x, y) pairs
/// with x outer; kept when the image covers more than 0.6 of the window (if none does, those
/// within 0.01 of the best coverage).
pub fn windows(w: i64, h: i64, sizes: &[(i64, i64)]) -> Vec<[i64; 4]> {
    let starts = |len: i64, size: i64, step: i64| -> Vec<i64> {
        let n = if len <= size {
            1
        } else {
            ((len - size) as f64 / step as f64 + 1.0).ceil() as i64
        };
        let mut s: Vec<i64> = (0..n).map(|i| step * i).collect();
        if s.len() > 1 && s[s.len() - 1] + size > len {
            let last = s.len() - 1;
            s[last] = len - size;
        }
        s
    };
    let mut all = Vec::new();
    for &(size, gap) in sizes {
        let step = size - gap;
        let ys = starts(h, size, step);
        for x in starts(w, size, step) {
            for &y in &ys {
                all.push([x, y, x + size, y + size]);
            }
        }
    }
    let mut rates: Vec<f64> = all
        .iter()
        .map(|b| {
            let cw = b[2].clamp(0, w) - b[0].clamp(0, w);
            let ch = b[3].clamp(0, h) - b[1].clamp(0, h);
            (cw * ch) as f64 / ((b[2] - b[0]) * (b[3] - b[1])) as f64
        })
        .collect();
    if !rates.iter().any(|&r| r > IM_RATE_THR) {
        let best = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for r in &mut rates {
            if (*r - best).abs() < 0.01 {
                *r = 1.0;
            }
        }
    }
    all.into_iter()
        .zip(rates)
        .filter(|(_, r)| *r > IM_RATE_THR)
        .map(|(b, _)| b)
        .collect()
}

/// Absolute shoelace area of a polygon.
fn area(p: &[[f64; 2]]) -> f64 {
    let n = p.len();
    let mut s = 0.0;
    for i in 0..n {
        let (a, b) = (p[i], p[(i + 1) % n]);
        s += a[0] * b[1] - b[0] * a[1];
    }
    s.abs() / 2.0
}

/// The part of a (simple) polygon inside the rectangle `[x0, y0, x1, y1]` (Sutherland-Hodgman).
fn clip_to_rect(poly: &[[f64; 2]], r: [f64; 4]) -> Vec<[f64; 2]> {
    // Each edge: keep points where `inside(p)`, cut where the segment crosses `v = c` on axis `k`.
    let edges: [(usize, f64, bool); 4] = [
        (0, r[0], true),
        (0, r[2], false),
        (1, r[1], true),
        (1, r[3], false),
    ];
    let mut out = poly.to_vec();
    for (k, c, low) in edges {
        if out.is_empty() {
            break;
        }
        let inside = |p: &[f64; 2]| if low { p[k] >= c } else { p[k] <= c };
        let input = std::mem::take(&mut out);
        for i in 0..input.len() {
            let (a, b) = (input[(i + input.len() - 1) % input.len()], input[i]);
            let (ia, ib) = (inside(&a), inside(&b));
            if ia != ib {
                let t = (c - a[k]) / (b[k] - a[k]);
                let mut p = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
                p[k] = c;
                out.push(p);
            }
            if ib {
                out.push(b);
            }
        }
    }
    out
}

/// Intersection over foreground of each 4-corner polygon (pixels) with each window: area of the
/// polygon inside the window / the polygon's area (as float32, at least 1e-6), 0 where the
/// polygon's extent does not overlap the window (Ultralytics' `bbox_iof`).
pub fn bbox_iof(polys: &[[f32; 8]], wins: &[[i64; 4]]) -> Vec<Vec<f64>> {
    polys
        .iter()
        .map(|q| {
            let pts: Vec<[f64; 2]> = (0..4)
                .map(|i| [q[2 * i] as f64, q[2 * i + 1] as f64])
                .collect();
            let lo = |k: usize| pts.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min);
            let hi = |k: usize| pts.iter().map(|p| p[k]).fold(f64::NEG_INFINITY, f64::max);
            let (x0, y0, x1, y1) = (lo(0), lo(1), hi(0), hi(1));
            let union = ((area(&pts) as f32) as f64).max(1e-6);
            wins.iter()
                .map(|w| {
                    let r = w.map(|v| v as f64);
                    let ow = (x1.min(r[2]) - x0.max(r[0])).max(0.0);
                    let oh = (y1.min(r[3]) - y0.max(r[1])).max(0.0);
                    if ow * oh == 0.0 {
                        return 0.0;
                    }
                    area(&clip_to_rect(&pts, r)) / union
                })
                .collect()
        })
        .collect()
}

/// One label row of a split input: class and the 4 corners, normalised.
type Row = (f32, [f32; 8]);

/// Reads a YOLO OBB label file for splitting: `class x1 y1 … x4 y4` rows (normalised), parsed as
/// float32 as Ultralytics' numpy array; any other row length is an error naming the line.
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        if parts.len() != 9 {
            bail!(
                "{}:{}: {} values; split_dota needs 'class x1 y1 x2 y2 x3 y3 x4 y4' rows (9 values)",
                path.display(),
                ln + 1,
                parts.len()
            );
        }
        let mut v = [0f32; 9];
        for (d, p) in v.iter_mut().zip(&parts) {
            let x: f64 = p
                .parse()
                .map_err(|_| anyhow!("{}:{}: '{p}' is not a number", path.display(), ln + 1))?;
            *d = x as f32;
        }
        let mut c = [0f32; 8];
        c.copy_from_slice(&v[1..]);
        rows.push((v[0], c));
    }
    Ok(rows)
}

/// The tile name of a window: `{stem}__{size}__{x}___{y}`.
pub fn tile_name(stem: &str, w: &[i64; 4]) -> String {
    format!("{stem}__{}__{}___{}", w[2] - w[0], w[0], w[1])
}

/// A tile's label text: the window's objects shifted by its origin, divided by the patch's actual
/// width and height (float32, as Ultralytics), `%.6g`, not clipped; rows in the file's order.
pub fn tile_labels(rows: &[(f32, [f32; 8])], win: &[i64; 4], pw: u32, ph: u32) -> String {
    let mut s = String::new();
    for (c, q) in rows {
        let _ = write!(s, "{}", *c as i64);
        for (i, v) in q.iter().enumerate() {
            let (o, d) = if i % 2 == 0 {
                (win[0] as f32, pw as f32)
            } else {
                (win[1] as f32, ph as f32)
            };
            let _ = write!(s, " {}", crate::util::fmt_g(((v - o) / d) as f64, 6));
        }
        s.push('\n');
    }
    s
}

/// What a split did for one folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitReport {
    /// Source images tiled.
    pub images: usize,
    /// Tiles written (images).
    pub tiles: usize,
    /// Label files written (tiles with at least one object).
    pub label_files: usize,
    /// Object rows written over all tiles.
    pub objects: usize,
    /// Source files skipped (not decodable as images), each named in a warning.
    pub skipped: Vec<PathBuf>,
}

/// The image files of a folder (accepted suffixes), sorted; other files are named in a warning.
fn folder_images(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!("Can't find {}, please check your data root", dir.display());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let (ims, other): (Vec<_>, Vec<_>) =
        files.into_iter().partition(|p| super::dataset::is_image(p));
    for p in other {
        eprintln!(
            "WARNING split_dota: {} is not an image (suffix), skipped",
            p.display()
        );
    }
    Ok(ims)
}

/// Tiles one image: every window's patch written as JPEG (background tiles too) and, with
/// `labels`, each window's objects (IoF >= 0.7) as a label file. Returns (tiles, label files,
/// rows).
fn split_one(
    im_file: &Path,
    labels: Option<&[Row]>,
    sizes: &[(i64, i64)],
    im_dir: &Path,
    lb_dir: &Path,
) -> Result<(usize, usize, usize)> {
    let img = super::image::load_image(im_file)?;
    let (w, h) = (img.width() as i64, img.height() as i64);
    let stem = im_file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let wins = windows(w, h, sizes);
    // Corners in pixels (float32 products, as Ultralytics denormalises in place).
    let rows: Vec<Row> = labels
        .unwrap_or(&[])
        .iter()
        .map(|(c, q)| {
            let mut p = *q;
            for (i, v) in p.iter_mut().enumerate() {
                *v *= if i % 2 == 0 { w as f32 } else { h as f32 };
            }
            (*c, p)
        })
        .collect();
    let polys: Vec<[f32; 8]> = rows.iter().map(|r| r.1).collect();
    let iof = bbox_iof(&polys, &wins);
    let (mut nl, mut nr) = (0, 0);
    for (j, win) in wins.iter().enumerate() {
        let name = tile_name(&stem, win);
        let (x1, y1) = (win[2].min(w), win[3].min(h));
        let patch = image::imageops::crop_imm(
            &img,
            win[0] as u32,
            win[1] as u32,
            (x1 - win[0]) as u32,
            (y1 - win[1]) as u32,
        )
        .to_image();
        crate::util::fsio::save_rgb(&patch, im_dir.join(format!("{name}.jpg")))?;
        let inside: Vec<Row> = rows
            .iter()
            .zip(&iof)
            .filter(|(_, f)| f[j] >= IOF_THR)
            .map(|(r, _)| *r)
            .collect();
        if labels.is_some() && !inside.is_empty() {
            let text = tile_labels(&inside, win, patch.width(), patch.height());
            let p = lb_dir.join(format!("{name}.txt"));
            std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
            nl += 1;
            nr += inside.len();
        }
    }
    Ok((wins.len(), nl, nr))
}

/// Tiles `root/images/{split}` into `save/images/{split}` and, with `with_labels`, the YOLO OBB
/// labels `root/labels/{split}/{stem}.txt` into `save/labels/{split}` (an image without a label
/// file is a background image). Label rows are checked before any tile is written.
pub fn split_folder(
    root: &Path,
    save: &Path,
    split: &str,
    opts: &SplitOptions,
    with_labels: bool,
) -> Result<SplitReport> {
    let sizes = opts.sizes()?;
    let files = folder_images(&root.join("images").join(split))?;
    let im_dir = save.join("images").join(split);
    let lb_dir = save.join("labels").join(split);
    std::fs::create_dir_all(&im_dir).with_context(|| format!("creating {}", im_dir.display()))?;
    if with_labels {
        std::fs::create_dir_all(&lb_dir)
            .with_context(|| format!("creating {}", lb_dir.display()))?;
    }
    let labels: Vec<Option<Vec<Row>>> = files
        .iter()
        .map(|f| {
            let lf = root
                .join("labels")
                .join(split)
                .join(f.file_stem().unwrap_or_default())
                .with_extension("txt");
            if with_labels && lf.is_file() {
                read_rows(&lf).map(Some)
            } else {
                Ok(with_labels.then(Vec::new))
            }
        })
        .collect::<Result<_>>()?;
    let done: Vec<Result<(usize, usize, usize)>> = files
        .par_iter()
        .zip(&labels)
        .map(|(f, l)| split_one(f, l.as_deref(), &sizes, &im_dir, &lb_dir))
        .collect();
    let mut rep = SplitReport::default();
    for (f, r) in files.iter().zip(done) {
        match r {
            Ok((t, l, n)) => {
                rep.images += 1;
                rep.tiles += t;
                rep.label_files += l;
                rep.objects += n;
            }
            Err(e) => {
                eprintln!("WARNING split_dota: {}: {e:#}; image skipped", f.display());
                rep.skipped.push(f.clone());
            }
        }
    }
    Ok(rep)
}

/// Ultralytics' `split_trainval`: the `train` and `val` folders with their labels.
pub fn split_trainval(root: &Path, save: &Path, opts: &SplitOptions) -> Result<[SplitReport; 2]> {
    Ok([
        split_folder(root, save, "train", opts, true)?,
        split_folder(root, save, "val", opts, true)?,
    ])
}

/// Ultralytics' `split_test`: the `test` folder, images only.
pub fn split_test(root: &Path, save: &Path, opts: &SplitOptions) -> Result<SplitReport> {
    split_folder(root, save, "test", opts, false)
}

/// Keys `yolo data split_dota` reads.
pub const CLI_KEYS: &[&str] = &["source", "out", "crop_size", "gap", "rates", "splits"];

/// `yolo data split_dota source=DOTA_ROOT out=DIR [crop_size=1024 gap=200 rates=1.0
/// splits=train,val,test]`: `train`/`val` tiled with labels (`split_trainval`), `test` without
/// (`split_test`); by default every one of the three whose `images/<split>` folder exists. `get`
/// gives a key's text (lists joined with commas); `keys` are the keys given (others are warned).
pub fn cli(get: &dyn Fn(&str) -> Option<String>, keys: &[String]) -> Result<String> {
    for k in keys {
        if !CLI_KEYS.contains(&k.as_str()) {
            eprintln!(
                "WARNING yolo data split_dota: '{k}' is not used (keys: {})",
                CLI_KEYS.join(", ")
            );
        }
    }
    let root = PathBuf::from(get("source").ok_or_else(|| {
        anyhow!("yolo data split_dota needs source=<DOTA root with images/{{train,val,test}}>")
    })?);
    let out = PathBuf::from(
        get("out")
            .ok_or_else(|| anyhow!("yolo data split_dota needs out=<folder for the tiles>"))?,
    );
    let whole = |k: &str, d: usize| -> Result<usize> {
        get(k).map_or(Ok(d), |v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| anyhow!("{k}={v}: must be a whole number of pixels"))
        })
    };
    let list = |k: &str| -> Option<Vec<String>> {
        get(k).map(|v| {
            v.trim_matches(['[', ']', '(', ')'])
                .split(',')
                .map(|s| s.trim().trim_matches(['\'', '"']).to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
    };
    let rates = match list("rates") {
        None => vec![1.0],
        Some(r) => r
            .iter()
            .map(|s| {
                s.parse::<f64>()
                    .map_err(|_| anyhow!("rates: '{s}' is not a number (e.g. rates=0.5,1.0,1.5)"))
            })
            .collect::<Result<_>>()?,
    };
    let opts = SplitOptions {
        crop_size: whole("crop_size", 1024)?,
        gap: whole("gap", 200)?,
        rates,
    };
    opts.sizes()?;
    let splits = match list("splits") {
        Some(s) => {
            for x in &s {
                if !matches!(x.as_str(), "train" | "val" | "test") {
                    bail!("splits: '{x}' is not train, val or test");
                }
            }
            s
        }
        None => ["train", "val", "test"]
            .iter()
            .filter(|s| root.join("images").join(s).is_dir())
            .map(|s| s.to_string())
            .collect(),
    };
    if splits.is_empty() {
        bail!(
            "{}: no images/train, images/val or images/test folder to split",
            root.display()
        );
    }
    let mut msg = String::new();
    for s in &splits {
        let r = split_folder(&root, &out, s, &opts, s != "test")?;
        let _ = writeln!(
            msg,
            "{s}: {} images -> {} tiles in {}, {} label files ({} objects){}",
            r.images,
            r.tiles,
            out.join("images").join(s).display(),
            r.label_files,
            r.objects,
            if r.skipped.is_empty() {
                String::new()
            } else {
                format!(", {} images skipped (warned above)", r.skipped.len())
            }
        );
    }
    Ok(msg)
}
