//! Label verification with a verdict per file, the dataset scan and its cache (spec/data.md §3;
//! polygon, keypoint and OBB rows per spec/segment.md §2, spec/pose.md §1, spec/obb.md §1).

use super::dataset::img2label_path;
use super::instances::{Corners, Instances, Polygon};
use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Cache format version; bump when the scan rules change.
const CACHE_VERSION: &str = "ryolo-labels-6";

/// How label rows are read; the caller picks it from the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LabelFormat {
    /// `cls cx cy w h`; polygon rows become their boxes (the polygons are not kept).
    #[default]
    Detect,
    /// Polygon rows `cls x1 y1 ... xn yn` kept with their boxes.
    Segment,
    /// `cls cx cy w h` then `nkpt` keypoints of `ndim` values (`x y` or `x y visibility`).
    Pose {
        /// Keypoints per instance.
        nkpt: usize,
        /// Values per keypoint: 2 or 3.
        ndim: usize,
    },
    /// `cls x1 y1 x2 y2 x3 y3 x4 y4`: the corners of an oriented box.
    Obb,
}

/// One verified image with its labels.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabelEntry {
    /// The image file.
    pub im_file: PathBuf,
    /// EXIF-aware `(h, w)`.
    pub shape: (u32, u32),
    /// Class id per box.
    pub cls: Vec<u32>,
    /// Normalised `cx, cy, w, h` per box.
    pub boxes: Vec<[f32; 4]>,
    /// Normalised polygon per box (segment format, polygon files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<Polygon>>,
    /// Normalised `x, y, visibility` keypoints per box (pose format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keypoints: Option<Vec<Vec<[f32; 3]>>>,
    /// Normalised oriented-box corners per box (obb format, corner files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corners: Option<Vec<Corners>>,
}

impl LabelEntry {
    /// An entry without objects; the parts of `format` are present and empty.
    fn background(im_file: &Path, shape: (u32, u32), format: LabelFormat) -> Self {
        Self {
            im_file: im_file.to_path_buf(),
            shape,
            cls: vec![],
            boxes: vec![],
            segments: (format == LabelFormat::Segment).then(Vec::new),
            keypoints: matches!(format, LabelFormat::Pose { .. }).then(Vec::new),
            corners: (format == LabelFormat::Obb).then(Vec::new),
        }
    }

    /// The labels as normalised [`Instances`].
    pub fn instances(&self) -> Instances {
        Instances {
            cls: self.cls.clone(),
            boxes: self.boxes.clone(),
            segments: self.segments.clone(),
            keypoints: self.keypoints.clone(),
            corners: self.corners.clone(),
            normalized: true,
        }
    }
}

/// What the scan concluded for one image.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Verdict {
    /// Label file found with objects.
    Found,
    /// No label file: a background image.
    Missing,
    /// Empty label file: a background image.
    Empty,
    /// Dropped.
    Corrupt,
}

/// The result of checking one image and its label file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checked {
    /// The entry, unless corrupt.
    pub entry: Option<LabelEntry>,
    /// Verdict.
    pub verdict: Verdict,
    /// Warnings (file, line, reason), possibly with a kept entry.
    pub warnings: Vec<String>,
}

/// Whether a JPEG file ends with its `FF D9` end marker.
fn jpeg_complete(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut tail = [0u8; 2];
    f.seek(SeekFrom::End(-2)).is_ok() && f.read_exact(&mut tail).is_ok() && tail == [0xFF, 0xD9]
}

impl Checked {
    /// A dropped image with its one warning.
    fn corrupt(warning: String) -> Self {
        Self {
            entry: None,
            verdict: Verdict::Corrupt,
            warnings: vec![warning],
        }
    }
}

/// Checks the image itself: a regular file in a known format, within the pixel limit, at least
/// 10 px a side, and decoding in full (a truncated file is caught here, not in training or
/// validation). Returns its `(h, w)` and warnings, or the corrupt-image warning.
fn check_image(im_file: &Path) -> Result<((u32, u32), Vec<String>), String> {
    let name = im_file.display();
    let ext = im_file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let jpeg = ext == "jpg" || ext == "jpeg";
    let shape = match super::image::probe(im_file, true) {
        Ok(s) => s,
        Err(e) if jpeg && !jpeg_complete(im_file) => {
            return Err(format!(
                "{name}: ignoring corrupt image: truncated JPEG that does not decode: {e:#}"
            ))
        }
        Err(e) => return Err(format!("{name}: ignoring corrupt image: {e:#}")),
    };
    if shape.0 < 10 || shape.1 < 10 {
        return Err(format!(
            "{name}: ignoring corrupt image: size {}x{} is under 10 pixels",
            shape.1, shape.0
        ));
    }
    let mut warnings = Vec::new();
    if jpeg && !jpeg_complete(im_file) {
        warnings.push(format!(
            "{name}: truncated JPEG (no end marker) still decodes, kept"
        ));
    }
    Ok((shape, warnings))
}

/// The largest label file read (64 MiB); larger files are refused with their name.
pub const MAX_LABEL_BYTES: u64 = 64 << 20;

/// The label file's text without a BOM; `None` when there is no file. A label path that is not a
/// regular file, cannot be read, is over [`MAX_LABEL_BYTES`] or is not UTF-8 is an error naming it.
fn read_label(lb: &Path) -> Result<Option<String>, String> {
    let corrupt = |why: String| format!("{}: ignoring corrupt label: {why}", lb.display());
    match std::fs::symlink_metadata(lb) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(corrupt(format!("cannot read: {e}"))),
        Ok(_) => {}
    }
    let bytes = super::dataset::read_bounded(lb, MAX_LABEL_BYTES).map_err(corrupt)?;
    match String::from_utf8(bytes) {
        Ok(t) => Ok(Some(t.trim_start_matches('\u{feff}').to_string())),
        Err(e) => {
            let ok = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = ok.iter().filter(|&&b| b == b'\n').count() + 1;
            Err(format!(
                "{}:{line}: ignoring corrupt label: not UTF-8 text",
                lb.display()
            ))
        }
    }
}

/// One label row after its checks.
#[derive(Debug, Clone)]
struct Row {
    /// Class id (0 with `single_cls`).
    cls: u32,
    /// The class value as read (as float32; the duplicate check uses it, also with `single_cls`).
    raw_cls: f32,
    /// Normalised `cx cy w h`.
    bx: [f32; 4],
    /// The polygon of a polygon row (every format but pose; kept in the entry for segment).
    poly: Option<Polygon>,
    /// Keypoints with visibility (pose format).
    kpts: Option<Vec<[f32; 3]>>,
    /// Corners (obb format, corner rows).
    corners: Option<Corners>,
}

impl Row {
    /// The row as Ultralytics' label array holds it: class, box, keypoints (`-0` read as `0`).
    fn values(&self) -> Vec<f32> {
        let mut v = vec![self.raw_cls];
        v.extend(self.bx);
        v.extend(self.kpts.iter().flatten().flatten());
        v.into_iter().map(|x| x + 0.0).collect()
    }

    /// The class and polygon as float32 little-endian bytes (8.4's second duplicate check).
    fn poly_bytes(&self) -> Vec<u8> {
        let mut b = self.raw_cls.to_le_bytes().to_vec();
        b.extend(
            self.poly
                .iter()
                .flatten()
                .flatten()
                .flat_map(|v| v.to_le_bytes()),
        );
        b
    }
}

/// A row's values before the checks: class, box, optional parts and whether it was a polygon.
struct RawRow {
    /// The class value as read.
    cls: f64,
    /// Normalised `cx cy w h` (a polygon's extent).
    bx: [f64; 4],
    /// The polygon (polygon rows).
    poly: Option<Polygon>,
    /// Keypoints with visibility (pose format).
    kpts: Option<Vec<[f32; 3]>>,
    /// Corners (obb format).
    corners: Option<Corners>,
    /// Whether the row was a polygon row (its file has a row of more than 6 values).
    is_poly: bool,
}

/// The numbers of one line (finite, also once stored as f32).
fn numbers(line: &str) -> Result<Vec<f64>, String> {
    line.split_whitespace()
        .map(|tok| match tok.parse::<f64>() {
            Ok(v) if (v as f32).is_finite() => Ok(v),
            Ok(_) => Err(format!("non-finite value '{tok}'")),
            Err(_) => Err(format!("'{tok}' is not a number")),
        })
        .collect()
}

/// The `cx cy w h` extent of a float32 polygon, computed in float32 as `segments2boxes` does.
fn extent(pts: &[[f32; 2]]) -> [f64; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in pts {
        (x0, x1) = (x0.min(p[0]), x1.max(p[0]));
        (y0, y1) = (y0.min(p[1]), y1.max(p[1]));
    }
    [(x0 + x1) / 2.0, (y0 + y1) / 2.0, x1 - x0, y1 - y0].map(f64::from)
}

/// The xy points of `class x y x y ...` values.
fn points(xy: &[f64]) -> Polygon {
    xy.chunks_exact(2)
        .map(|p| [p[0] as f32, p[1] as f32])
        .collect()
}

/// Splits a box or polygon row (detect, segment, obb). In a polygon file (`poly_file`: some row
/// has more than 6 values) every row is a polygon: a 5-value box row there is refused (8.4), as is
/// an odd number of coordinates; the box is the polygon's float32 extent (spec/segment.md §2.1).
fn split_row(vals: &[f64], format: LabelFormat, poly_file: bool) -> Result<RawRow, String> {
    let n = vals.len();
    let mut raw = RawRow {
        cls: vals.first().copied().unwrap_or(0.0),
        bx: [0.0; 4],
        poly: None,
        kpts: None,
        corners: None,
        is_poly: poly_file,
    };
    if poly_file {
        if n == 5 {
            return Err(
                "labels mix segment and detection rows (a 5-value box row in a polygon file)"
                    .into(),
            );
        }
        if n.is_multiple_of(2) {
            return Err(format!(
                "polygon row has {n} values: an odd number of coordinates ({}); expected class \
                 then x y pairs",
                n - 1
            ));
        }
        if n < 3 {
            return Err("polygon row has a class but no points".into());
        }
        let pts = points(&vals[1..]);
        raw.bx = extent(&pts);
        if format == LabelFormat::Obb {
            // Other point counts are fitted in pixels once the image size is known (`fill`).
            raw.corners = <[[f32; 2]; 4]>::try_from(pts.as_slice()).ok();
        }
        raw.poly = Some(pts);
    } else if n == 5 {
        // Checked as Ultralytics does, on the float32 values.
        raw.bx = [vals[1], vals[2], vals[3], vals[4]].map(|v| f64::from(v as f32));
    } else {
        return Err(format!("labels require 5 columns, {n} columns detected"));
    }
    Ok(raw)
}

/// Splits a pose row `cls cx cy w h` + keypoints; a 2-value keypoint gets visibility 0 when a
/// coordinate is negative, else 1 (spec/pose.md §1).
fn split_pose_row(vals: &[f64], nkpt: usize, ndim: usize) -> Result<RawRow, String> {
    let want = 5 + nkpt * ndim;
    if vals.len() != want || ndim < 2 {
        return Err(format!(
            "labels require {want} columns each, {} columns detected",
            vals.len()
        ));
    }
    let kpts = vals[5..]
        .chunks_exact(ndim)
        .map(|k| {
            let v = match k.get(2) {
                Some(&v) => v as f32,
                None if k[0] < 0.0 || k[1] < 0.0 => 0.0,
                None => 1.0,
            };
            [k[0] as f32, k[1] as f32, v]
        })
        .collect();
    Ok(RawRow {
        cls: vals[0],
        bx: [vals[1], vals[2], vals[3], vals[4]],
        poly: None,
        kpts: Some(kpts),
        corners: None,
        is_poly: false,
    })
}

/// The class checks: an integer, not negative, below `nc` (unless `single_cls`).
fn check_class(c: f64, nc: usize, single_cls: bool) -> Result<u32, String> {
    if c.fract() != 0.0 {
        return Err(format!("class id {c} is not an integer"));
    }
    if c < 0.0 {
        return Err(format!("negative class id {c}"));
    }
    if !single_cls && c as usize >= nc {
        return Err(format!(
            "class id {c} exceeds dataset class count {nc} (valid ids 0-{})",
            nc.saturating_sub(1)
        ));
    }
    Ok(if single_cls { 0 } else { c as u32 })
}

/// The coordinate checks (8.4): the checked values at most 1.01 (pose: the keypoint x, y only; else
/// the box), and the minimum (pose: of the whole row) at least 0, or at least -0.01 with w, h >= 0.
fn check_coords(raw: &RawRow, vals: &[f64], format: LabelFormat) -> Result<(), String> {
    let b = raw.bx;
    let (upper, lowest) = match format {
        LabelFormat::Pose { ndim, .. } => {
            let xy = vals[5..].chunks_exact(ndim).flat_map(|k| [k[0], k[1]]);
            let min = vals.iter().cloned().fold(f64::MAX, f64::min);
            (xy.fold(f64::MIN, f64::max), min)
        }
        _ => (
            b.iter().cloned().fold(f64::MIN, f64::max),
            b.iter().cloned().fold(f64::MAX, f64::min),
        ),
    };
    if upper > 1.01 {
        return Err(format!(
            "non-normalized or out of bounds coordinates {:?}",
            b
        ));
    }
    if !(lowest >= 0.0 || (lowest >= -0.01 && b[2] >= 0.0 && b[3] >= 0.0)) {
        return Err(format!("negative label values {:?}", b));
    }
    Ok(())
}

/// What one line held.
enum Line {
    /// A checked row.
    Row(Row, bool),
    /// A box with no width or height (ignored with a warning).
    ZeroArea(bool),
}

/// Parses and checks one non-empty line (`poly_file`: see [`split_row`]).
fn parse_line(
    line: &str,
    format: LabelFormat,
    (nc, single_cls): (usize, bool),
    poly_file: bool,
) -> Result<Line, String> {
    let vals = numbers(line)?;
    let raw = match format {
        LabelFormat::Pose { nkpt, ndim } => split_pose_row(&vals, nkpt, ndim)?,
        _ => split_row(&vals, format, poly_file)?,
    };
    let cls = check_class(raw.cls, nc, single_cls)?;
    check_coords(&raw, &vals, format)?;
    // Checked as stored (f32): a width of 1e-320 is zero once narrowed.
    let bx = raw.bx.map(|v| v as f32);
    if bx[2] <= 0.0 || bx[3] <= 0.0 {
        return Ok(Line::ZeroArea(raw.is_poly));
    }
    let row = Row {
        cls,
        raw_cls: raw.cls as f32,
        bx,
        poly: raw.poly,
        kpts: raw.kpts,
        corners: raw.corners,
    };
    Ok(Line::Row(row, raw.is_poly))
}

/// The checked rows of a label file, zero-area warnings added to `warnings`, and whether box rows
/// and polygon rows occur; `Err` is the corrupt-label warning (file and line).
fn parse_rows(
    text: &str,
    lb: &Path,
    format: LabelFormat,
    (nc, single_cls): (usize, bool),
    warnings: &mut Vec<String>,
) -> Result<(Vec<Row>, (bool, bool)), String> {
    let mut rows = Vec::new();
    let mut kinds = (false, false);
    // Ultralytics' rule: a file is a polygon file when any row has more than 6 values (not pose).
    let poly_file = !matches!(format, LabelFormat::Pose { .. })
        && text.lines().any(|l| l.split_whitespace().nth(6).is_some());
    // The first zero-area line is named; the others are counted in the same warning.
    let mut zero_area: Option<(usize, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parsed = parse_line(line, format, (nc, single_cls), poly_file).map_err(|reason| {
            format!(
                "{}:{ln}: ignoring corrupt image/label: {reason}",
                lb.display()
            )
        })?;
        let is_poly = match parsed {
            Line::Row(row, p) => {
                rows.push(row);
                p
            }
            Line::ZeroArea(p) => {
                match &mut zero_area {
                    Some((_, more)) => *more += 1,
                    None => {
                        warnings.push(format!("{}:{ln}: zero-area box ignored", lb.display()));
                        zero_area = Some((warnings.len() - 1, 0));
                    }
                }
                p
            }
        };
        if is_poly {
            kinds.1 = true;
        } else {
            kinds.0 = true;
        }
    }
    if let Some((at, more)) = zero_area.filter(|z| z.1 > 0) {
        warnings[at].push_str(&format!(" (and {more} more zero-area boxes)"));
    }
    Ok((rows, kinds))
}

/// The first index of each distinct key, in sorted key order (NumPy's `unique(return_index=True)`).
fn unique_first<K, F: Fn(&K, &K) -> std::cmp::Ordering>(keys: &[K], cmp: F) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| cmp(&keys[a], &keys[b])); // stable: the first occurrence leads
    let mut kept: Vec<usize> = Vec::with_capacity(order.len());
    for i in order {
        if kept
            .last()
            .is_none_or(|&k| cmp(&keys[k], &keys[i]) != std::cmp::Ordering::Equal)
        {
            kept.push(i);
        }
    }
    kept
}

/// Removes duplicate rows as 8.4 does (spec/segment.md §2.2): rows equal in class and box
/// (and keypoints) are duplicates unless their polygons differ (re-checked on the float32 bytes of
/// class and polygon); when any go, the kept rows take the sorted-unique order. Returns how many
/// went.
fn dedup(rows: &mut Vec<Row>) -> usize {
    let n = rows.len();
    let vals: Vec<Vec<f32>> = rows.iter().map(Row::values).collect();
    let by_value = |a: &Vec<f32>, b: &Vec<f32>| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal))
            .find(|o| o.is_ne())
            .unwrap_or(a.len().cmp(&b.len()))
    };
    let mut kept = unique_first(&vals, by_value);
    if kept.len() < n && rows.iter().any(|r| r.poly.is_some()) {
        let bytes: Vec<Vec<u8>> = rows.iter().map(Row::poly_bytes).collect();
        kept = unique_first(&bytes, |a, b| a.cmp(b));
    }
    if kept.len() == n {
        return 0;
    }
    let mut slots: Vec<Option<Row>> = std::mem::take(rows).into_iter().map(Some).collect();
    *rows = kept.iter().filter_map(|&i| slots[i].take()).collect();
    n - rows.len()
}

/// Fills the entry from the kept rows: parts per format (a segment or obb file of box rows carries
/// no polygons, so the dataset check can reject it).
fn fill(entry: &mut LabelEntry, rows: Vec<Row>, format: LabelFormat, box_rows: bool) {
    entry.cls = rows.iter().map(|r| r.cls).collect();
    entry.boxes = rows.iter().map(|r| r.bx).collect();
    let parts = !box_rows || rows.is_empty();
    match format {
        LabelFormat::Detect => {}
        LabelFormat::Segment => {
            entry.segments = parts.then(|| rows.into_iter().filter_map(|r| r.poly).collect());
        }
        LabelFormat::Pose { .. } => {
            entry.keypoints = Some(rows.into_iter().filter_map(|r| r.kpts).collect());
        }
        LabelFormat::Obb => {
            let (h, w) = (entry.shape.0 as f32, entry.shape.1 as f32);
            entry.corners = parts.then(|| {
                rows.into_iter()
                    .filter_map(|r| {
                        r.corners
                            .or_else(|| r.poly.map(|p| min_area_corners(&p, w, h)))
                    })
                    .collect()
            });
        }
    }
}

/// The corners (normalised) of the minimum-area rectangle of a normalised polygon, fitted in the
/// pixels of a `w x h` image: an OBB row with other than 4 points is a polygon whose rotated box
/// Ultralytics fits with `minAreaRect` (spec/obb.md §1).
fn min_area_corners(poly: &[[f32; 2]], w: f32, h: f32) -> Corners {
    let px: Vec<[f32; 2]> = poly.iter().map(|p| [p[0] * w, p[1] * h]).collect();
    let r = super::obb::xywhr_from_points(&px);
    crate::ops::obb::xywhr_to_corners(&r).map(|p| [p[0] / w, p[1] / h])
}

/// Checks an image and its label file as detection labels (spec/data.md §3); never panics.
pub fn verify(im_file: &Path, nc: usize, single_cls: bool) -> Checked {
    verify_with(im_file, nc, single_cls, LabelFormat::Detect)
}

/// Checks an image and its label file read in `format` (spec/data.md §3); never panics, never
/// aborts the scan. Problems name the file and line.
pub fn verify_with(im_file: &Path, nc: usize, single_cls: bool, format: LabelFormat) -> Checked {
    let (shape, mut warnings) = match check_image(im_file) {
        Ok(v) => v,
        Err(w) => return Checked::corrupt(w),
    };
    let lb = img2label_path(im_file);
    let mut entry = LabelEntry::background(im_file, shape, format);
    let text = match read_label(&lb) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Checked {
                entry: Some(entry),
                verdict: Verdict::Missing,
                warnings,
            }
        }
        Err(w) => return Checked::corrupt(w),
    };
    let (mut rows, kinds) = match parse_rows(&text, &lb, format, (nc, single_cls), &mut warnings) {
        Ok(r) => r,
        Err(w) => return Checked::corrupt(w),
    };
    if format == LabelFormat::Obb {
        let fitted = rows
            .iter()
            .filter(|r| r.corners.is_none() && r.poly.is_some())
            .count();
        if fitted > 0 {
            warnings.push(format!(
                "{}: {fitted} OBB rows with other than 4 points taken as polygons and fitted with \
                 their minimum-area rectangle (as Ultralytics)",
                lb.display()
            ));
        }
    }
    let removed = dedup(&mut rows);
    if removed > 0 {
        warnings.push(format!(
            "{}: {removed} duplicate labels removed",
            lb.display()
        ));
    }
    let empty = rows.is_empty() && removed == 0 && !kinds.0 && !kinds.1;
    let verdict = if empty && warnings.iter().all(|w| !w.contains("zero-area")) {
        Verdict::Empty
    } else {
        Verdict::Found
    };
    fill(&mut entry, rows, format, kinds.0);
    Checked {
        entry: Some(entry),
        verdict,
        warnings,
    }
}

/// The outcome of scanning a split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scan {
    /// Kept images (found + backgrounds), in file order.
    pub entries: Vec<LabelEntry>,
    /// Images with a label file.
    pub found: usize,
    /// Background images (missing or empty label files).
    pub backgrounds: usize,
    /// Dropped images.
    pub corrupt: usize,
    /// One line per problem file.
    pub warnings: Vec<String>,
}

/// How many parts (polygons, corners) an entry carries, if any.
type PartsOf = fn(&LabelEntry) -> Option<usize>;

impl Scan {
    /// The dataset-level rule of the segment and obb tasks (8.4): every box has its polygon, so
    /// files of plain box rows (or a pure box dataset) are an error naming one such file.
    pub fn check_parts(&self, format: LabelFormat) -> Result<()> {
        self.parts_rule(None, format)
    }

    /// [`Scan::check_parts`] for the split `split`, named in the error.
    pub fn check_parts_in(&self, split: &str, format: LabelFormat) -> Result<()> {
        self.parts_rule(Some(split), format)
    }

    /// Totals boxes and parts; an error (Ultralytics 8.4's `ValueError` text, then the split and
    /// the first file of box rows) when they differ.
    fn parts_rule(&self, split: Option<&str>, format: LabelFormat) -> Result<()> {
        let (task, what, parts): (&str, &str, PartsOf) = match format {
            LabelFormat::Segment => ("Segment", "a segment", |e| {
                e.segments.as_ref().map(Vec::len)
            }),
            LabelFormat::Obb => ("OBB", "an OBB", |e| e.corners.as_ref().map(Vec::len)),
            _ => return Ok(()),
        };
        let boxes: usize = self.entries.iter().map(|e| e.boxes.len()).sum();
        let with: usize = self.entries.iter().filter_map(parts).sum();
        if boxes == with {
            return Ok(());
        }
        let first = self
            .entries
            .iter()
            .find(|e| parts(e) != Some(e.boxes.len()))
            .map(|e| img2label_path(&e.im_file).display().to_string())
            .unwrap_or_default();
        let split = split.map(|s| format!("{s}: ")).unwrap_or_default();
        bail!(
            "{split}{task} dataset requires equal numbers of boxes and segments, but got \
             len(segments) = {with}, len(boxes) = {boxes}. Please supply {what} dataset, not a \
             detect dataset. {first} has box rows (cls cx cy w h) instead of polygons"
        )
    }
}

/// FNV-1a over `bytes`, continuing `h`.
fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= *b as u64;
        *h = h.wrapping_mul(0x100000001b3);
    }
}

/// Hashes a file's path, size and modification time into `h`.
fn stamp(h: &mut u64, p: &Path) {
    fnv(h, p.to_string_lossy().as_bytes());
    if let Ok(m) = std::fs::metadata(p) {
        fnv(h, &m.len().to_le_bytes());
        if let Ok(t) = m.modified().and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_err(std::io::Error::other)
        }) {
            fnv(h, &t.as_nanos().to_le_bytes());
        }
    }
}

/// The largest label cache read back (2 GiB); a larger file is ignored and the split rescanned.
const MAX_CACHE_BYTES: u64 = 2 << 30;

impl Scan {
    /// Whether a cached scan could have come from this scan's rules: class ids below `nc`, finite
    /// boxes, parts matching their boxes (a damaged or forged cache is rescanned instead).
    fn plausible(&self, nc: usize, format: LabelFormat) -> bool {
        let parts = |e: &LabelEntry| match format {
            LabelFormat::Segment => e.segments.as_ref().map(Vec::len),
            LabelFormat::Pose { .. } => e.keypoints.as_ref().map(Vec::len),
            LabelFormat::Obb => e.corners.as_ref().map(Vec::len),
            LabelFormat::Detect => None,
        };
        self.entries.iter().all(|e| {
            e.cls.len() == e.boxes.len()
                && e.cls.iter().all(|&c| (c as usize) < nc)
                && e.boxes.iter().flatten().all(|v| v.is_finite())
                && parts(e).is_none_or(|n| n == e.boxes.len())
        })
    }
}

/// The cache file: version, scan hash and the scan.
#[derive(Serialize, Deserialize)]
struct CacheFile {
    /// [`CACHE_VERSION`] when written.
    version: String,
    /// The scan's [`scan_hash`].
    hash: u64,
    /// The cached result.
    scan: Scan,
}

/// Where the cache of a split lives: next to the labels folder when writable, else the user cache dir.
fn cache_paths(files: &[PathBuf], hash: u64) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(dir) = files
        .first()
        .map(|f| img2label_path(f))
        .and_then(|l| l.parent().map(Path::to_path_buf))
    {
        // Honour read-only permission bits even as root: never write into a read-only dataset.
        let writable = dir
            .parent()
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| !m.permissions().readonly());
        if writable {
            v.push(dir.with_extension("ryolo.cache"));
        }
    }
    let base = dirs::cache_dir().unwrap_or_else(std::env::temp_dir);
    v.push(base.join("ryolo").join(format!("labels-{hash:016x}.cache")));
    v
}

/// The cache key of a scan: version, arguments, and every image and label file's path, size and
/// modification time.
fn scan_hash(files: &[PathBuf], nc: usize, single_cls: bool, format: LabelFormat) -> u64 {
    let mut hash = 0xcbf29ce484222325u64;
    fnv(&mut hash, CACHE_VERSION.as_bytes());
    fnv(&mut hash, &(nc as u64).to_le_bytes());
    fnv(&mut hash, &[single_cls as u8]);
    fnv(&mut hash, format!("{format:?}").as_bytes());
    for f in files {
        stamp(&mut hash, f);
        stamp(&mut hash, &img2label_path(f));
    }
    hash
}

/// Verifies every file in parallel (with a progress bar) and tallies the verdicts.
fn scan_files(
    prefix: &str,
    label_dir: &Path,
    files: &[PathBuf],
    (nc, single_cls): (usize, bool),
    format: LabelFormat,
) -> Scan {
    let pb = crate::util::progress_bar(
        files.len(),
        &format!("{prefix}: Scanning {}", label_dir.display()),
    );
    let checked: Vec<Checked> = files
        .par_iter()
        .map(|f| {
            let c = verify_with(f, nc, single_cls, format);
            pb.inc(1);
            c
        })
        .collect();
    pb.finish_and_clear();
    let mut s = Scan {
        entries: vec![],
        found: 0,
        backgrounds: 0,
        corrupt: 0,
        warnings: vec![],
    };
    for c in checked {
        match c.verdict {
            Verdict::Found => s.found += 1,
            Verdict::Missing | Verdict::Empty => s.backgrounds += 1,
            Verdict::Corrupt => s.corrupt += 1,
        }
        s.warnings.extend(c.warnings);
        s.entries.extend(c.entry);
    }
    s
}

/// Scans a split as detection labels: [`scan_with`] in [`LabelFormat::Detect`].
pub fn scan(prefix: &str, files: &[PathBuf], nc: usize, single_cls: bool) -> Scan {
    scan_with(prefix, files, nc, single_cls, LabelFormat::Detect)
}

/// Scans a split (in parallel) reading labels in `format`, reusing a valid cache. Prints the
/// Ultralytics summary line and one warning line per problem file.
pub fn scan_with(
    prefix: &str,
    files: &[PathBuf],
    nc: usize,
    single_cls: bool,
    format: LabelFormat,
) -> Scan {
    let hash = scan_hash(files, nc, single_cls, format);
    let label_dir = files
        .first()
        .map(|f| img2label_path(f))
        .and_then(|l| l.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let paths = cache_paths(files, hash);
    for p in &paths {
        if let Some(c) = super::dataset::read_bounded(p, MAX_CACHE_BYTES)
            .ok()
            .and_then(|b| serde_json::from_slice::<CacheFile>(&b).ok())
        {
            if c.version == CACHE_VERSION && c.hash == hash && c.scan.plausible(nc, format) {
                report(prefix, &label_dir, &c.scan, Some(p));
                return c.scan;
            }
        }
    }
    let s = scan_files(prefix, &label_dir, files, (nc, single_cls), format);
    report(prefix, &label_dir, &s, None);
    let bytes = serde_json::to_vec(&CacheFile {
        version: CACHE_VERSION.into(),
        hash,
        scan: s.clone(),
    })
    .unwrap_or_default();
    for p in &paths {
        if crate::util::write_atomic(p, &bytes).is_ok() {
            println!("{prefix}: New cache created: {}", p.display());
            break;
        }
    }
    s
}

/// Prints the summary line, the cache used and one line per warning.
fn report(prefix: &str, dir: &Path, s: &Scan, cache: Option<&Path>) {
    println!(
        "{prefix}: Scanning {}... {} images, {} backgrounds, {} corrupt",
        dir.display(),
        s.found,
        s.backgrounds,
        s.corrupt
    );
    if let Some(c) = cache {
        println!("{prefix}: using label cache {}", c.display());
    }
    for w in &s.warnings {
        println!("{prefix}: WARNING {w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(label: &[u8], tag: &str) -> (PathBuf, PathBuf) {
        let d = std::env::temp_dir().join(format!(
            "ryolo-lbl-{tag}-{}-{}",
            std::process::id(),
            fnv_name(label)
        ));
        std::fs::create_dir_all(d.join("images")).unwrap();
        std::fs::create_dir_all(d.join("labels")).unwrap();
        let img = d.join("images/a.png");
        image::RgbImage::new(32, 24).save(&img).unwrap();
        std::fs::write(d.join("labels/a.txt"), label).unwrap();
        (d, img)
    }
    fn fnv_name(b: &[u8]) -> u64 {
        let mut h = 0xcbf29ce484222325u64;
        fnv(&mut h, b);
        h
    }

    #[test]
    fn verdicts() {
        let cases: &[(&[u8], Verdict, &str)] = &[
            (b"0 0.5 0.5 0.2 0.2\n", Verdict::Found, ""),
            (b"", Verdict::Empty, ""),
            (
                b"\xef\xbb\xbf1 0.5 0.5 0.2 0.2\r\n1 0.5 0.5 0.2 0.2  \r\n",
                Verdict::Found,
                "1 duplicate labels removed",
            ),
            (
                b"0 nan 0.5 0.2 0.2\n",
                Verdict::Corrupt,
                ":1: ignoring corrupt image/label: non-finite",
            ),
            (
                b"0 0.5 0.5 0.2 0.2\n0 1e30 0.5 0.2 0.2\n",
                Verdict::Corrupt,
                ":2: ignoring corrupt image/label: non-normalized",
            ),
            (b"-1 0.5 0.5 0.2 0.2\n", Verdict::Corrupt, "negative class"),
            (
                b"5 0.5 0.5 0.2 0.2\n",
                Verdict::Corrupt,
                "exceeds dataset class count 3",
            ),
            (b"0 0.5 0.5 0.2\n", Verdict::Corrupt, "5 columns, 4 columns"),
            (
                b"0 0.5 0.5 0 0.2\n0 0.5 0.5 0.2 0.2\n",
                Verdict::Found,
                ":1: zero-area box ignored",
            ),
            (b"0.5 0.5 0.5 0.2 0.2\n", Verdict::Corrupt, "not an integer"),
        ];
        for (label, want, msg) in cases {
            let (d, img) = setup(label, "verdicts");
            let c = verify(&img, 3, false);
            assert_eq!(
                c.verdict,
                *want,
                "{:?}: {:?}",
                String::from_utf8_lossy(label),
                c.warnings
            );
            assert!(
                c.warnings.iter().any(|w| w.contains(msg)) || msg.is_empty(),
                "{:?}",
                c.warnings
            );
            if *want == Verdict::Found {
                assert!(!c.entry.unwrap().boxes.is_empty());
            }
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    /// `../shared/datasets/<name>`, or None (loudly) when absent.
    fn shared_dataset(name: &str) -> Option<PathBuf> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
        let d = p.join(name);
        if d.exists() {
            Some(d)
        } else {
            eprintln!("\n!!!!! SKIPPED: {} not found !!!!!\n", d.display());
            None
        }
    }

    #[test]
    fn coco8_seg_polygons_are_kept_in_segment_format() {
        let Some(d) = shared_dataset("coco8-seg") else {
            return;
        };
        let im = d.join("images/train/000000000009.jpg");
        let c = verify_with(&im, 80, false, LabelFormat::Segment);
        assert_eq!(c.verdict, Verdict::Found, "{:?}", c.warnings);
        let e = c.entry.unwrap();
        let segs = e.segments.as_ref().unwrap();
        let lens: Vec<usize> = segs.iter().map(Vec::len).collect();
        assert_eq!(lens, [12, 14, 50, 55, 13, 13, 18, 12]);
        assert_eq!(e.cls[0], 45);
        assert_eq!(segs[0][0], [0.782016, 0.986521]);
        // The boxes are the polygons' extents, exactly those of the detect format.
        let det = verify(&im, 80, false).entry.unwrap();
        assert_eq!((&det.cls, &det.boxes), (&e.cls, &e.boxes));
        assert!(det.segments.is_none() && det.keypoints.is_none() && det.corners.is_none());
        let inst = e.instances();
        assert!(inst.normalized && inst.segments.is_some() && inst.len() == 8);
    }

    #[test]
    fn coco8_pose_keypoints_follow_kpt_shape() {
        let Some(d) = shared_dataset("coco8-pose") else {
            return;
        };
        let fmt = LabelFormat::Pose { nkpt: 17, ndim: 3 };
        let c = verify_with(&d.join("images/train/000000000036.jpg"), 1, false, fmt);
        assert_eq!(c.verdict, Verdict::Found, "{:?}", c.warnings);
        let e = c.entry.unwrap();
        assert_eq!(e.boxes, [[0.671279, 0.617945, 0.645759, 0.726859]]);
        let k = &e.keypoints.as_ref().unwrap()[0];
        assert_eq!(k.len(), 17);
        assert_eq!(k[0], [0.519751, 0.38125, 2.0]);
        assert_eq!(k[16], [0.0, 0.0, 0.0], "unlabelled");
        let c = verify_with(&d.join("images/train/000000000077.jpg"), 1, false, fmt);
        assert_eq!(c.entry.unwrap().keypoints.unwrap().len(), 3);
        // Read with the wrong kpt_shape, the row length is named with file and line.
        let c = verify_with(
            &d.join("images/train/000000000036.jpg"),
            1,
            false,
            LabelFormat::Pose { nkpt: 17, ndim: 2 },
        );
        assert_eq!(c.verdict, Verdict::Corrupt);
        assert!(
            c.warnings[0].contains("000000000036.txt:1:")
                && c.warnings[0].contains("require 39 columns each, 56"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn dota8_rows_become_corners() {
        let Some(d) = shared_dataset("dota8") else {
            return;
        };
        let im = d.join("images/train/P1053__1024__0___90.jpg");
        let c = verify_with(&im, 15, false, LabelFormat::Obb);
        assert_eq!(c.verdict, Verdict::Found, "{:?}", c.warnings);
        let e = c.entry.unwrap();
        let cs = e.corners.as_ref().unwrap();
        assert_eq!((e.cls.len(), cs.len()), (13, 13));
        assert_eq!(
            cs[0],
            [
                [0.166016, 0.492188],
                [0.15039, 0.500977],
                [0.132812, 0.467773],
                [0.148438, 0.458007]
            ]
        );
        assert_eq!(e.cls[0], 10);
        let b = e.boxes[0];
        assert!((b[0] - (0.132812 + 0.166016) / 2.0).abs() < 1e-6 && b[2] > 0.0);
    }

    #[test]
    fn mixed_box_and_polygon_file_is_rejected_with_its_name() {
        let (d, img) = setup(b"0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.3 0.1 0.2 0.4\n", "mixed");
        for fmt in [LabelFormat::Segment, LabelFormat::Detect] {
            let c = verify_with(&img, 3, false, fmt);
            assert_eq!(c.verdict, Verdict::Corrupt);
            assert!(
                c.warnings[0].contains("labels/a.txt:1:")
                    && c.warnings[0].contains("labels mix segment and detection rows"),
                "{:?}",
                c.warnings
            );
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn segment_and_obb_datasets_need_polygons_everywhere() {
        let (d, img) = setup(b"0 0.5 0.5 0.2 0.2\n", "boxseg");
        for fmt in [LabelFormat::Segment, LabelFormat::Obb] {
            let c = verify_with(&img, 3, false, fmt);
            let e = c.entry.unwrap();
            assert!(e.segments.is_none() && e.corners.is_none());
            let s = Scan {
                entries: vec![e],
                found: 1,
                backgrounds: 0,
                corrupt: 0,
                warnings: vec![],
            };
            let err = s.check_parts(fmt).unwrap_err().to_string();
            assert!(
                err.contains("labels/a.txt")
                    && err.contains("len(segments) = 0, len(boxes) = 1")
                    && err.contains("dataset requires equal numbers of boxes and segments"),
                "{err}"
            );
            assert!(s.check_parts(LabelFormat::Detect).is_ok());
        }
        // Backgrounds carry empty parts.
        std::fs::remove_file(d.join("labels/a.txt")).unwrap();
        let c = verify_with(&img, 3, false, LabelFormat::Segment);
        assert_eq!(c.entry.unwrap().segments, Some(vec![]));
        std::fs::remove_dir_all(d).unwrap();
    }

    /// The verdict and warnings of one label text read as segment labels (nc 3).
    fn seg_check(label: &[u8], tag: &str) -> Checked {
        let (d, img) = setup(label, tag);
        let c = verify_with(&img, 3, false, LabelFormat::Segment);
        std::fs::remove_dir_all(d).unwrap();
        c
    }

    #[test]
    fn polygon_rows_bad_cases_name_file_and_line() {
        let cases: &[(&[u8], &str)] = &[
            // Odd coordinate count (7 values after the class).
            (
                b"0 0.1 0.1 0.3 0.1 0.3 0.3\n0 0.1 0.1 0.3 0.1 0.3 0.3 0.2\n",
                "a.txt:2: ignoring corrupt image/label: polygon row has 8 values: an odd number",
            ),
            // A box row among polygon rows, before or after them (8.4).
            (
                b"0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.3 0.1 0.2 0.4\n",
                "a.txt:1: ignoring corrupt image/label: labels mix segment and detection rows",
            ),
            (
                b"1 0.1 0.1 0.3 0.1 0.2 0.4\n\n0 0.5 0.5 0.2 0.2\n",
                "a.txt:3: ignoring corrupt image/label: labels mix segment and detection rows",
            ),
            // A 6-value row in a polygon file: 5 coordinates.
            (
                b"1 0.1 0.1 0.3 0.1 0.2 0.4\n0 0.5 0.5 0.2 0.2 0.1\n",
                "a.txt:2: ignoring corrupt image/label: polygon row has 6 values",
            ),
            // Derived box out of range: x up to 1.3 gives cx 0.7, w 1.2.
            (
                b"0 0.1 0.1 0.3 0.1 0.3 0.3 0.9 0.5 1.3 0.5\n",
                "a.txt:1: ignoring corrupt image/label: non-normalized or out of bounds",
            ),
            (
                b"0 -0.5 0.1 0.3 0.1 0.3 0.3\n",
                "a.txt:1: ignoring corrupt image/label: negative label values",
            ),
            (
                b"3 0.1 0.1 0.3 0.1 0.3 0.3\n",
                "a.txt:1: ignoring corrupt image/label: class id 3 exceeds",
            ),
            (b"1 0.1 0.1 0.3 0.1 nan 0.3\n", "a.txt:1: ignoring corrupt"),
        ];
        for (label, msg) in cases {
            for fmt in [LabelFormat::Segment, LabelFormat::Detect] {
                let (d, img) = setup(label, "polybad");
                let c = verify_with(&img, 3, false, fmt);
                std::fs::remove_dir_all(d).unwrap();
                assert_eq!(c.verdict, Verdict::Corrupt, "{:?}", c.warnings);
                assert!(
                    c.warnings.len() == 1 && c.warnings[0].contains(msg),
                    "{msg}: {:?}",
                    c.warnings
                );
            }
        }
    }

    #[test]
    fn polygon_points_outside_are_fine_while_the_derived_box_passes() {
        // A point at x -0.2 still gives a box inside the image (cx 0.05, w 0.5).
        let c = seg_check(b"0 -0.2 0.1 0.3 0.1 0.3 0.3\n", "polyneg");
        assert_eq!(c.verdict, Verdict::Found, "{:?}", c.warnings);
        // x in [0.1, 1.1]: cx 0.6, w 1.0 -- within 1.01 (spec/segment.md §2.2).
        let c = seg_check(b"0 0.1 0.1 0.3 0.1 0.3 0.3 0.9 0.5 1.1 0.5\n", "polyout");
        assert_eq!(c.verdict, Verdict::Found, "{:?}", c.warnings);
        let e = c.entry.unwrap();
        // Ultralytics 8.4 verify_image_label: [[0, 0.6, 0.3, 1, 0.4]] (float32).
        assert_eq!(e.boxes, [[0.6, 0.3, 1.0, 0.4]]);
        assert_eq!(e.segments.unwrap()[0][4], [1.1, 0.5]);
        // A one-point polygon has no area: ignored with a warning, like a zero-size box.
        let c = seg_check(b"0 0.1 0.1 0.3 0.1 0.3 0.3\n1 0.5 0.5\n", "polypoint");
        assert_eq!(c.verdict, Verdict::Found);
        assert!(
            c.warnings[0].contains("a.txt:2: zero-area"),
            "{:?}",
            c.warnings
        );
        assert_eq!(c.entry.unwrap().segments.unwrap().len(), 1);
    }

    #[test]
    fn polygon_duplicates_recheck_polygon_bytes_and_sort() {
        // Reference: Ultralytics 8.4.190 verify_image_label on this file keeps 4 rows in this
        // order (boxes [0 .25 .2 .1 .2], [0 .2 .2 .2 .2], [1 .6 .6 .2 .2] twice): the repeated
        // square goes, the triangle sharing its class and box stays.
        let c = seg_check(
            b"1 0.5 0.5 0.7 0.5 0.7 0.7 0.5 0.7\n0 0.1 0.1 0.3 0.1 0.3 0.3\n\
              1 0.5 0.5 0.7 0.5 0.7 0.7 0.5 0.7\n1 0.5 0.5 0.7 0.5 0.7 0.7\n\
              0 0.2 0.1 0.3 0.1 0.3 0.3 0.25 0.2\n",
            "polydup",
        );
        assert!(
            c.warnings[0].contains("1 duplicate labels removed"),
            "{:?}",
            c.warnings
        );
        let e = c.entry.unwrap();
        assert_eq!(e.cls, [0, 0, 1, 1]);
        // The float32 extents exactly as Ultralytics computes them (printed as doubles).
        let b64 = |b: [f32; 4]| b.map(f64::from);
        assert_eq!(
            b64(e.boxes[0]),
            [
                0.25,
                0.20000000298023224,
                0.10000000894069672,
                0.20000001788139343
            ]
        );
        assert_eq!(
            b64(e.boxes[2]),
            [
                0.6000000238418579,
                0.6000000238418579,
                0.19999998807907104,
                0.19999998807907104
            ]
        );
        assert_eq!(e.boxes[1][0], 0.2);
        let lens: Vec<usize> = e.segments.unwrap().iter().map(Vec::len).collect();
        assert_eq!(lens, [4, 3, 3, 4]);
        // Without duplicates the file order stays.
        let c = seg_check(
            b"1 0.5 0.5 0.7 0.5 0.7 0.7\n0 0.1 0.1 0.3 0.1 0.3 0.3\n",
            "polynodup",
        );
        assert_eq!(c.entry.unwrap().cls, [1, 0]);
    }

    #[test]
    fn segment_dataset_error_names_the_split() {
        let (d, img) = setup(b"0 0.5 0.5 0.2 0.2\n", "boxsplit");
        let e = verify_with(&img, 3, false, LabelFormat::Segment)
            .entry
            .unwrap();
        std::fs::remove_dir_all(d).unwrap();
        let s = Scan {
            entries: vec![e],
            found: 1,
            backgrounds: 0,
            corrupt: 0,
            warnings: vec![],
        };
        let err = s
            .check_parts_in("val", LabelFormat::Segment)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "val: Segment dataset requires equal numbers of boxes and segments, but got \
                 len(segments) = 0, len(boxes) = 1. Please supply a segment dataset, not a detect \
                 dataset."
            ),
            "{err}"
        );
        assert!(s.check_parts_in("val", LabelFormat::Detect).is_ok());
    }

    #[test]
    fn pose_rows_checks_and_two_value_keypoints() {
        let fmt = LabelFormat::Pose { nkpt: 2, ndim: 2 };
        // Box columns are not upper-checked; keypoints are; -0.005 marks a missing 2-D keypoint.
        let (d, img) = setup(b"0 0.5 0.5 0.2 0.2 0.4 -0.005 0.6 0.6\n", "pose2");
        let c = verify_with(&img, 1, false, fmt);
        assert_eq!(c.verdict, Verdict::Found, "{:?}", c.warnings);
        let k = c.entry.unwrap().keypoints.unwrap();
        assert_eq!(k, [vec![[0.4, -0.005, 0.0], [0.6, 0.6, 1.0]]]);
        std::fs::remove_dir_all(d).unwrap();
        let (d, img) = setup(b"0 0.5 0.5 0.2 0.2 0.4 0.4 1.2 0.6\n", "pose2bad");
        let c = verify_with(&img, 1, false, fmt);
        assert_eq!(c.verdict, Verdict::Corrupt);
        assert!(c.warnings[0].contains("a.txt:1:") && c.warnings[0].contains("non-normalized"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn old_cache_entries_without_parts_still_load() {
        let json = r#"{"im_file":"a.jpg","shape":[10,20],"cls":[1],"boxes":[[0.5,0.5,0.1,0.1]]}"#;
        let e: LabelEntry = serde_json::from_str(json).unwrap();
        assert_eq!(e.cls, [1]);
        assert!(e.segments.is_none() && e.keypoints.is_none() && e.corners.is_none());
        assert_eq!(serde_json::to_string(&e).unwrap(), json);
    }

    #[test]
    fn missing_label_is_background_and_bad_image_is_corrupt() {
        let (d, img) = setup(b"", "missing");
        std::fs::remove_file(d.join("labels/a.txt")).unwrap();
        assert_eq!(verify(&img, 3, false).verdict, Verdict::Missing);
        std::fs::write(&img, b"not a png").unwrap();
        let c = verify(&img, 3, false);
        assert_eq!(c.verdict, Verdict::Corrupt);
        assert!(c.warnings[0].contains("a.png"), "{:?}", c.warnings);
        std::fs::remove_dir_all(d).unwrap();
    }
}
