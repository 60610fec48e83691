//! OBB validation outputs as Ultralytics' OBBValidator writes them: `predictions.json` rows with
//! `rbox` and `poly`, and for DOTA data the Task1 files per class, with tiles merged back per
//! image by rotated Fast-NMS (spec/obb.md §7).

use super::ValResult;
use crate::data::LabelEntry;
use crate::ops::obb::{fast_nms, xywhr_to_corners};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Python `round(x, d)` (correctly rounded, half to even).
pub fn py_round(x: f64, d: usize) -> f64 {
    format!("{x:.d$}").parse().unwrap_or(x)
}

/// Python `repr(float)`: the shortest round-trip digits, fixed notation for exponents -4..16
/// (with `.0` when integral), else `1.5e-05` / `1e+16`.
pub fn py_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{x:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let s = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!(
            "{sign}{m}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// An image id as Ultralytics makes it: `int(stem)` for an all-digit stem, else the stem.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageId {
    /// An all-digit stem, as a number (leading zeros dropped).
    Int(u64),
    /// Any other stem.
    Str(String),
}

impl ImageId {
    /// The id of a file stem.
    pub fn of(stem: &str) -> Self {
        match stem.parse::<u64>() {
            Ok(v) if !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()) => Self::Int(v),
            _ => Self::Str(stem.to_string()),
        }
    }
    /// As Python prints it (`f"{image_id}"` / `str(image_id)`).
    pub fn text(&self) -> String {
        match self {
            Self::Int(v) => v.to_string(),
            Self::Str(s) => s.clone(),
        }
    }
    /// As JSON: a number for an all-digit stem, else the string.
    pub fn json(&self) -> serde_json::Value {
        match self {
            Self::Int(v) => serde_json::json!(v),
            Self::Str(s) => serde_json::json!(s),
        }
    }
}

/// One `predictions.json` row of an OBB run.
#[derive(Debug, Clone, PartialEq)]
pub struct ObbRow {
    /// `int(stem)` or the stem.
    pub image_id: ImageId,
    /// The image's file name.
    pub file_name: String,
    /// Class + 1.
    pub category_id: usize,
    /// Confidence rounded to 5 decimals.
    pub score: f64,
    /// `[cx, cy, w, h, θ]` in original pixels, rounded to 3 decimals.
    pub rbox: [f64; 5],
    /// The corners `x1 y1 … x4 y4` (float32 from the unrounded box), rounded to 3 decimals.
    pub poly: [f64; 8],
}

impl ObbRow {
    /// The row of one rotated detection (`xywhr` in original pixels).
    pub fn new(stem: &str, file_name: &str, xywhr: &[f32; 5], conf: f32, cls: usize) -> Self {
        let c = xywhr_to_corners(xywhr);
        Self {
            image_id: ImageId::of(stem),
            file_name: file_name.to_string(),
            category_id: cls + 1,
            score: py_round(conf as f64, 5),
            rbox: xywhr.map(|v| py_round(v as f64, 3)),
            poly: std::array::from_fn(|i| py_round(c[i / 2][i % 2] as f64, 3)),
        }
    }

    /// The JSON object (`image_id, file_name, category_id, score, rbox, poly`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "image_id": self.image_id.json(), "file_name": self.file_name,
            "category_id": self.category_id, "score": self.score,
            "rbox": self.rbox, "poly": self.poly,
        })
    }
}

/// The rows of a run made with `collect` (rotated boxes kept in `r.rotated`), in image order.
pub fn obb_rows(entries: &[LabelEntry], r: &ValResult) -> Vec<ObbRow> {
    let mut out = Vec::new();
    for ((i, dets), rot) in r.predictions.iter().zip(&r.rotated) {
        let f = &entries[*i].im_file;
        let name = |s: Option<&std::ffi::OsStr>| s.map(|s| s.to_string_lossy().to_string());
        let (stem, file) = (
            name(f.file_stem()).unwrap_or_default(),
            name(f.file_name()).unwrap_or_default(),
        );
        for ((_, conf, cls), b) in dets.iter().zip(rot) {
            out.push(ObbRow::new(&stem, &file, b, *conf, *cls));
        }
    }
    out
}

/// Whether a split is DOTA data for the validator: one source whose path contains `DOTA`
/// (Ultralytics tests the split's path string).
pub fn is_dota(sources: &[PathBuf]) -> bool {
    matches!(sources, [p] if p.to_string_lossy().contains("DOTA"))
}

/// The first `{x}___{y}` (digits) in a tile name, as `re.search(r"\d+___\d+")`.
pub fn tile_offset(id: &str) -> Option<(i64, i64)> {
    let b = id.as_bytes();
    let run = |mut k: usize| {
        let s = k;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        (s, k)
    };
    for i in 0..b.len() {
        if !b[i].is_ascii_digit() {
            continue;
        }
        let (_, e) = run(i);
        if b[e..].starts_with(b"___") {
            let (ys, ye) = run(e + 3);
            if ye > ys {
                let x = id[i..e].parse().ok()?;
                let y = id[ys..ye].parse().ok()?;
                return Some((x, y));
            }
        }
    }
    None
}

/// A class name as a Task1 file name part (spaces become `-`).
fn task1_name(names: &[String], cls: usize) -> String {
    names
        .get(cls)
        .cloned()
        .unwrap_or_else(|| cls.to_string())
        .replace(' ', "-")
}

/// Appends `lines` per class file under `dir` (`Task1_{class}.txt`), creating the folder.
fn write_task1(dir: &Path, files: &[(String, String)]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut by: Vec<(String, String)> = Vec::new();
    for (cls, line) in files {
        match by.iter_mut().find(|(c, _)| c == cls) {
            Some((_, t)) => t.push_str(line),
            None => by.push((cls.clone(), line.clone())),
        }
    }
    for (cls, text) in by {
        let p = dir.join(format!("Task1_{cls}.txt"));
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// The DOTA outputs of a `save_json` run on DOTA data: `predictions_txt/Task1_{class}.txt`
/// (`image_id score x1 y1 … y4` per row) and `predictions_merged_txt/`, where the tiles
/// `{stem}__{size}__{x}___{y}` are shifted back by (x, y) and merged per original image with
/// class-offset Fast-NMS (ProbIoU > 0.3, float32), corners and score rounded to 3 decimals.
/// Task1 files a previous run left are removed first.
pub fn write_dota(dir: &Path, rows: &[ObbRow], names: &[String]) -> Result<()> {
    let (split, merged) = (
        dir.join("predictions_txt"),
        dir.join("predictions_merged_txt"),
    );
    for d in [&split, &merged] {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.starts_with("Task1_") && n.ends_with(".txt") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    let line = |id: &str, score: f64, p: &[f64; 8]| {
        let mut s = format!("{id} {}", py_repr(score));
        for v in p {
            let _ = write!(s, " {}", py_repr(*v));
        }
        s + "\n"
    };
    let tiles: Vec<(String, String)> = rows
        .iter()
        .map(|d| {
            (
                task1_name(names, d.category_id - 1),
                line(&d.image_id.text(), d.score, &d.poly),
            )
        })
        .collect();
    write_task1(&split, &tiles)?;

    // Group per original image (first-seen order), boxes shifted back, as float32 rows.
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<[f32; 7]>> = HashMap::new();
    for d in rows {
        let id = d.image_id.text();
        let (base, (x, y)) = match tile_offset(&id) {
            Some(o) => (id.split("__").next().unwrap_or(&id).to_string(), o),
            None => (id.clone(), (0, 0)),
        };
        let b = d.rbox;
        let row = [
            (b[0] + x as f64) as f32,
            (b[1] + y as f64) as f32,
            b[2] as f32,
            b[3] as f32,
            b[4] as f32,
            d.score as f32,
            (d.category_id - 1) as f32,
        ];
        if !groups.contains_key(&base) {
            order.push(base.clone());
        }
        groups.entry(base).or_default().push(row);
    }
    let mut out = Vec::new();
    for id in order {
        let g = &groups[&id];
        let max_wh = g
            .iter()
            .flat_map(|r| [r[0], r[1]])
            .fold(f32::NEG_INFINITY, f32::max)
            * 2.0;
        let shifted: Vec<[f32; 5]> = g
            .iter()
            .map(|r| {
                let c = r[6] * max_wh;
                [r[0] + c, r[1] + c, r[2], r[3], r[4]]
            })
            .collect();
        let scores: Vec<f32> = g.iter().map(|r| r[5]).collect();
        for i in fast_nms(&shifted, &scores, 0.3) {
            let r = g[i];
            let c = xywhr_to_corners(&[r[0], r[1], r[2], r[3], r[4]]);
            let p: [f64; 8] = std::array::from_fn(|k| py_round(c[k / 2][k % 2] as f64, 3));
            out.push((
                task1_name(names, r[6] as usize),
                line(&id, py_round(r[5] as f64, 3), &p),
            ));
        }
    }
    write_task1(&merged, &out)
}

/// `labels/*.txt` of an OBB validation (`save_txt`), as OBBValidator's `save_one_txt`: for each
/// image with predictions, `cls x1 y1 … x4 y4` rows (corners normalised by the original size,
/// `%g`) plus the confidence with `save_conf`; the file name is the image's path below the
/// images' common folder, parts joined by `_` (`a/1.jpg` → `a_1.txt`). Label files a previous run
/// left are removed first.
pub fn write_obb_labels(
    dir: &Path,
    entries: &[LabelEntry],
    r: &ValResult,
    save_conf: bool,
) -> Result<()> {
    use crate::ops::obb::{obb_txt_line, RotatedDetection};
    let ldir = dir.join("labels");
    if let Ok(rd) = std::fs::read_dir(&ldir) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "txt") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    std::fs::create_dir_all(&ldir).with_context(|| format!("creating {}", ldir.display()))?;
    let parents: Vec<&Path> = entries.iter().filter_map(|e| e.im_file.parent()).collect();
    let root: PathBuf = parents.first().map_or_else(PathBuf::new, |first| {
        first
            .components()
            .enumerate()
            .take_while(|(i, c)| parents.iter().all(|p| p.components().nth(*i) == Some(*c)))
            .map(|(_, c)| c)
            .collect()
    });
    for ((i, dets), rot) in r.predictions.iter().zip(&r.rotated) {
        if dets.is_empty() {
            continue;
        }
        let e = &entries[*i];
        let rel = e
            .im_file
            .strip_prefix(&root)
            .unwrap_or(&e.im_file)
            .with_extension("");
        let name: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect();
        let mut text = String::new();
        for ((_, conf, cls), b) in dets.iter().zip(rot) {
            let d = RotatedDetection {
                xywhr: *b,
                conf: *conf,
                cls: *cls,
            };
            text += &obb_txt_line(&d, (e.shape.0 as usize, e.shape.1 as usize), save_conf);
            text.push('\n');
        }
        let p = ldir.join(format!("{}.txt", name.join("_")));
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
