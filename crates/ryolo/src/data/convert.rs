//! Converters into the YOLO layout (`images/<split>`, `labels/<split>`, `data.yaml`): COCO JSON
//! (including Roboflow exports) and Pascal VOC XML. Every dropped box is reported.

pub use super::dota::{from_dota, DotaReport};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What a conversion did.
#[derive(Debug, Default)]
pub struct Report {
    /// Images written.
    pub images: usize,
    /// Rows written (boxes, or polygons with `use_segments`).
    pub boxes: usize,
    /// One line per skipped box or image, naming the file and the reason.
    pub dropped: Vec<String>,
    /// One line per kept row that needed a fallback (a polygon written as its box rectangle).
    pub warnings: Vec<String>,
    /// Class names, index = class id.
    pub names: Vec<String>,
    /// The data.yaml written.
    pub yaml: PathBuf,
}

fn norm_split(s: &str) -> String {
    match s {
        "valid" | "validation" => "val".into(),
        other => other.to_string(),
    }
}

fn place_image(src: &Path, dst: &Path) -> Result<()> {
    if dst.exists() {
        return Ok(());
    }
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst)
            .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
    }
    Ok(())
}

fn write_yaml(out: &Path, splits: &[String], names: &[String]) -> Result<PathBuf> {
    let has = |s: &str| splits.iter().any(|x| x == s);
    let train = if has("train") {
        "train".to_string()
    } else {
        splits.first().cloned().unwrap_or_else(|| "train".into())
    };
    let val = if has("val") {
        "val".to_string()
    } else {
        train.clone()
    };
    let mut y = format!("# converted by ryolo\ntrain: images/{train}\nval: images/{val}\n");
    if has("test") {
        y.push_str("test: images/test\n");
    }
    y.push_str("names:\n");
    for (i, n) in names.iter().enumerate() {
        let _ = writeln!(
            y,
            "  {i}: {}",
            serde_json::to_string(n).unwrap_or_else(|_| n.clone())
        );
    }
    let p = out.join("data.yaml");
    crate::util::fsio::write(&p, y)?;
    Ok(p)
}

fn fmt6(v: f64) -> String {
    format!("{v:.6}")
}

/// Python's `"%g" % v` (6 significant digits; `-0` keeps its sign).
fn fmt_pg(v: f64) -> String {
    if v == 0.0 && v.is_sign_negative() {
        "-0".into()
    } else {
        crate::util::fmt_g(v, 6)
    }
}

/// Python truthiness of a JSON value (`iscrowd` may be 0/1, a bool, or absent).
fn truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(o) => !o.is_empty(),
    }
}

/// COCO category ids of the 80 classes, in class order (Ultralytics' `coco91_to_coco80_class`).
const COCO80_IDS: [i64; 80] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90,
];

/// The largest mask an RLE segmentation is decoded into (pixels); larger ones use the box.
const MAX_RLE_PIXELS: f64 = (1u64 << 28) as f64;

/// Options of [`from_coco_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CocoOptions {
    /// Write polygon rows `cls x1 y1 ... xn yn` as Ultralytics' `convert_coco(use_segments=True)`.
    pub use_segments: bool,
    /// Classes by COCO's fixed 91 -> 80 id map (`cls91to80`) instead of the rank of the file's
    /// category ids (the same for a file listing all 80 COCO categories).
    pub cls91to80: bool,
}

/// The COCO JSON files of `source`: the file itself, or those in a folder (two levels deep), sorted.
fn coco_jsons(source: &Path) -> Result<Vec<PathBuf>> {
    let mut jsons = Vec::new();
    if source.is_file() {
        jsons.push(source.to_path_buf());
    } else if source.is_dir() {
        let mut stack = vec![(source.to_path_buf(), 0)];
        while let Some((d, depth)) = stack.pop() {
            for e in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
                let p = e?.path();
                if p.is_dir() && depth < 2 {
                    stack.push((p, depth + 1));
                } else if p.extension().and_then(|x| x.to_str()) == Some("json") {
                    jsons.push(p);
                }
            }
        }
        jsons.sort();
    } else {
        bail!("COCO source {} does not exist", source.display());
    }
    if jsons.is_empty() {
        bail!("no .json annotation files found in {}", source.display());
    }
    Ok(jsons)
}

/// Class names (sorted by category id) and the category id -> class index map; a Roboflow
/// super-category (no annotations, parent of others) is not a class.
fn coco_classes(
    cats: &[serde_json::Value],
    anns: &[serde_json::Value],
) -> (Vec<String>, HashMap<i64, usize>) {
    let used: std::collections::HashSet<i64> = anns
        .iter()
        .filter_map(|a| a["category_id"].as_i64())
        .collect();
    let supers: std::collections::HashSet<&str> = cats
        .iter()
        .filter_map(|c| c["supercategory"].as_str())
        .collect();
    let mut list: Vec<(i64, String)> = cats
        .iter()
        .filter_map(|c| Some((c["id"].as_i64()?, c["name"].as_str()?.to_string())))
        .filter(|(id, name)| used.contains(id) || !supers.contains(name.as_str()))
        .collect();
    list.sort();
    let map = list
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    (list.into_iter().map(|(_, n)| n).collect(), map)
}

/// The 80 COCO classes (names from the file's categories, else the id) and the fixed id map.
fn coco80_classes(cats: &[serde_json::Value]) -> (Vec<String>, HashMap<i64, usize>) {
    let named: HashMap<i64, &str> = cats
        .iter()
        .filter_map(|c| Some((c["id"].as_i64()?, c["name"].as_str()?)))
        .collect();
    let names = COCO80_IDS
        .iter()
        .map(|id| {
            named
                .get(id)
                .map_or_else(|| id.to_string(), |n| n.to_string())
        })
        .collect();
    let map = COCO80_IDS
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i))
        .collect();
    (names, map)
}

/// The numbers of a JSON polygon when it is usable as Ultralytics requires (a list of at least 6
/// numbers, even length; booleans count as 0/1 as in Python).
fn polygon_numbers(p: &serde_json::Value) -> Option<Vec<f64>> {
    let list = p.as_array()?;
    if list.len() < 6 || list.len() % 2 != 0 {
        return None;
    }
    list.iter()
        .map(|c| match c {
            serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
            other => other.as_f64(),
        })
        .collect()
}

/// The outer contours of a non-crowd RLE segmentation of an `h x w` image, as flat pixel lists
/// (`findContours(RETR_EXTERNAL, CHAIN_APPROX_SIMPLE)`); empty when it cannot be decoded.
fn rle_parts(
    seg: &serde_json::Map<String, serde_json::Value>,
    (w, h): (f64, f64),
) -> Vec<Vec<f64>> {
    let size: Vec<f64> = seg
        .get("size")
        .and_then(|s| s.as_array())
        .map(|s| s.iter().filter_map(|v| v.as_f64()).collect())
        .unwrap_or_default();
    let whole = |v: f64| v >= 1.0 && v.fract() == 0.0;
    if size != [h, w] || !whole(h) || !whole(w) || h * w > MAX_RLE_PIXELS {
        return Vec::new();
    }
    let counts = match seg.get("counts") {
        Some(serde_json::Value::String(s)) => crate::ops::rle::rle_from_string(s),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|v| v.as_u64().and_then(|c| u32::try_from(c).ok()))
            .collect(),
        _ => None,
    };
    let Some(counts) = counts else {
        return Vec::new();
    };
    let (h, w) = (h as usize, w as usize);
    let mask = crate::ops::rle::rle_decode(&counts, h, w);
    crate::ops::contour::find_external_contours(&mask, h, w)
        .into_iter()
        .map(|c| c.iter().flat_map(|p| [p[0] as f64, p[1] as f64]).collect())
        .collect()
}

/// The usable polygons (pixel coordinates, flat) of an annotation's `segmentation`: a list of
/// polygons, or a non-crowd RLE mask the size of the image decoded to its outer contours; each
/// needs at least 3 points (spec/segment.md §2.5).
fn coco_parts(seg: &serde_json::Value, wh: (f64, f64)) -> Vec<Vec<f64>> {
    match seg {
        serde_json::Value::Object(o) => rle_parts(o, wh)
            .into_iter()
            .filter(|p| p.len() >= 6)
            .collect(),
        serde_json::Value::Array(list) => list.iter().filter_map(polygon_numbers).collect(),
        _ => Vec::new(),
    }
}

/// The normalised polygon of an annotation: its single polygon, its parts joined by
/// `merge_multi_segment`, or (`None`) nothing usable.
fn coco_polygon(seg: &serde_json::Value, (w, h): (f64, f64)) -> Option<Vec<f64>> {
    let parts = coco_parts(seg, (w, h));
    let points: Vec<[f64; 2]> = match parts.len() {
        0 => return None,
        1 => parts[0].chunks_exact(2).map(|p| [p[0], p[1]]).collect(),
        _ => {
            let parts: Vec<Vec<[f64; 2]>> = parts
                .iter()
                .map(|p| p.chunks_exact(2).map(|q| [q[0], q[1]]).collect())
                .collect();
            crate::ops::contour::merge_multi_segment(&parts)
        }
    };
    Some(points.iter().flat_map(|p| [p[0] / w, p[1] / h]).collect())
}

/// The split a COCO JSON describes: `instances_<split>.json`, else its folder's name.
fn coco_split(jf: &Path) -> String {
    let stem = jf.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    norm_split(match stem.strip_prefix("instances_") {
        Some(s) => s,
        None => jf
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|s| s.to_str())
            .unwrap_or("train"),
    })
}

/// Where a COCO JSON's images are: `images` if given, else the JSON's folder (or its `images/`).
fn coco_image_dir(jf: &Path, images: Option<&Path>) -> PathBuf {
    match images {
        Some(d) => d.to_path_buf(),
        None => {
            let dir = jf.parent().unwrap_or(Path::new("."));
            if dir.join("images").is_dir() {
                dir.join("images")
            } else {
                dir.to_path_buf()
            }
        }
    }
}

/// One COCO JSON file being converted: its path, class map and output folders.
struct CocoFile<'a> {
    jf: &'a Path,
    opts: CocoOptions,
    cmap: &'a HashMap<i64, usize>,
    img_dir: PathBuf,
    idir: PathBuf,
    ldir: PathBuf,
}

impl CocoFile<'_> {
    /// Converts one `images` entry with its annotations: places the image, writes its label file.
    fn image(
        &self,
        im: &serde_json::Value,
        anns: &[&serde_json::Value],
        rep: &mut Report,
    ) -> Result<()> {
        let jf = self.jf;
        let (Some(_), Some(file)) = (im["id"].as_i64(), im["file_name"].as_str()) else {
            rep.dropped.push(format!(
                "{}: image entry without id/file_name skipped",
                jf.display()
            ));
            return Ok(());
        };
        let (w, h) = (
            im["width"].as_f64().unwrap_or(0.0),
            im["height"].as_f64().unwrap_or(0.0),
        );
        let src = self.img_dir.join(file);
        if !src.exists() {
            rep.dropped.push(format!(
                "{}: image {} not found, skipped",
                jf.display(),
                src.display()
            ));
            return Ok(());
        }
        if w <= 0.0 || h <= 0.0 {
            rep.dropped.push(format!(
                "{}: image {file} has no width/height, skipped",
                jf.display()
            ));
            return Ok(());
        }
        let name = Path::new(file)
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        place_image(&src, &self.idir.join(&name))?;
        let text = if self.opts.use_segments {
            self.polygon_text(file, anns, (w, h), rep)
        } else {
            self.label_text(file, anns, (w, h), rep)
        };
        let stem = Path::new(&name)
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        // With polygons, as Ultralytics: a file for every image with annotations (even if empty).
        if !text.is_empty() || (self.opts.use_segments && !anns.is_empty()) {
            crate::util::fsio::write(self.ldir.join(format!("{stem}.txt")), text)?;
        }
        rep.images += 1;
        Ok(())
    }

    /// The polygon rows of one image's annotations as Ultralytics' `convert_coco(use_segments=True)`
    /// writes them (spec/segment.md §2.5): crowd ones skipped, empty boxes and unknown categories
    /// dropped (reported), the box rectangle where no polygon is usable (reported), `%g` values,
    /// repeated rows written once.
    fn polygon_text(
        &self,
        file: &str,
        anns: &[&serde_json::Value],
        (w, h): (f64, f64),
        rep: &mut Report,
    ) -> String {
        let jf = self.jf;
        let mut text = String::new();
        let mut seen = std::collections::HashSet::new();
        for a in anns {
            if truthy(&a["iscrowd"]) {
                continue;
            }
            let aid = a["id"].as_i64().unwrap_or(-1);
            let b: Vec<f64> = a["bbox"]
                .as_array()
                .map(|v| v.iter().filter_map(|x| x.as_f64()).collect())
                .unwrap_or_default();
            let (bw, bh) = match b.as_slice() {
                [_, _, bw, bh] => (bw / w, bh / h),
                _ => (0.0, 0.0),
            };
            if !(bw > 0.0 && bh > 0.0) {
                rep.dropped.push(format!(
                    "{}: annotation {aid} ({file}) has an empty bbox {b:?}, dropped",
                    jf.display()
                ));
                continue;
            }
            let Some(&cls) = a["category_id"].as_i64().and_then(|c| self.cmap.get(&c)) else {
                rep.dropped.push(format!(
                    "{}: annotation {aid} has an unknown category, dropped",
                    jf.display()
                ));
                continue;
            };
            let coords = coco_polygon(&a["segmentation"], (w, h)).unwrap_or_else(|| {
                rep.warnings.push(format!(
                    "{}: annotation {aid} ({file}) has no usable polygon (segmentation missing, \
                     empty, or not a point list or RLE mask of the image's size); its box \
                     rectangle is written",
                    jf.display()
                ));
                let (cx, cy) = ((b[0] + b[2] / 2.0) / w, (b[1] + b[3] / 2.0) / h);
                let (x1, y1, x2, y2) = (cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0);
                vec![x1, y1, x2, y1, x2, y2, x1, y2]
            });
            // Rows equal in value (as Python tuples: -0 equals 0) are written once.
            let key: Vec<u64> = std::iter::once(cls as u64)
                .chain(coords.iter().map(|v| (v + 0.0).to_bits()))
                .collect();
            if !seen.insert(key) {
                continue;
            }
            text.push_str(&cls.to_string());
            for v in &coords {
                text.push(' ');
                text.push_str(&fmt_pg(*v));
            }
            text.push('\n');
            rep.boxes += 1;
        }
        text
    }

    /// The label rows of one image's annotations (crowd ones skipped, bad ones reported).
    fn label_text(
        &self,
        file: &str,
        anns: &[&serde_json::Value],
        (w, h): (f64, f64),
        rep: &mut Report,
    ) -> String {
        let jf = self.jf;
        let mut text = String::new();
        for a in anns {
            if a["iscrowd"].as_i64() == Some(1) {
                continue;
            }
            let aid = a["id"].as_i64().unwrap_or(-1);
            let Some(&cls) = a["category_id"].as_i64().and_then(|c| self.cmap.get(&c)) else {
                rep.dropped.push(format!(
                    "{}: annotation {aid} has an unknown category, dropped",
                    jf.display()
                ));
                continue;
            };
            let b: Vec<f64> = a["bbox"]
                .as_array()
                .map(|v| v.iter().filter_map(|x| x.as_f64()).collect())
                .unwrap_or_default();
            if b.len() != 4 || b[2] <= 0.0 || b[3] <= 0.0 {
                rep.dropped.push(format!(
                    "{}: annotation {aid} ({file}) has an empty bbox {:?}, dropped",
                    jf.display(),
                    b
                ));
                continue;
            }
            let (cx, cy) = ((b[0] + b[2] / 2.0) / w, (b[1] + b[3] / 2.0) / h);
            let _ = writeln!(
                text,
                "{cls} {} {} {} {}",
                fmt6(cx),
                fmt6(cy),
                fmt6(b[2] / w),
                fmt6(b[3] / h)
            );
            rep.boxes += 1;
        }
        text
    }
}

/// Converts one COCO JSON file into its split; the class map comes from the first file.
fn coco_convert_file(
    jf: &Path,
    images: Option<&Path>,
    out: &Path,
    names: &mut Option<(Vec<String>, HashMap<i64, usize>)>,
    (opts, rep): (CocoOptions, &mut Report),
) -> Result<String> {
    let text = std::fs::read_to_string(jf).with_context(|| format!("reading {}", jf.display()))?;
    let j: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{}: invalid JSON at line {}: {e}", jf.display(), e.line()))?;
    let cats = j["categories"]
        .as_array()
        .ok_or_else(|| anyhow!("{}: no 'categories' list", jf.display()))?;
    let anns = j["annotations"].as_array().cloned().unwrap_or_default();
    let imgs = j["images"]
        .as_array()
        .ok_or_else(|| anyhow!("{}: no 'images' list", jf.display()))?;
    let (_, cmap) = names.get_or_insert_with(|| {
        if opts.cls91to80 {
            coco80_classes(cats)
        } else {
            coco_classes(cats, &anns)
        }
    });
    let split = coco_split(jf);
    let f = CocoFile {
        jf,
        opts,
        cmap,
        img_dir: coco_image_dir(jf, images),
        idir: out.join("images").join(&split),
        ldir: out.join("labels").join(&split),
    };
    crate::util::fsio::create_dir_all(&f.idir)?;
    crate::util::fsio::create_dir_all(&f.ldir)?;
    let mut by_img: BTreeMap<i64, Vec<&serde_json::Value>> = BTreeMap::new();
    for a in &anns {
        if let Some(id) = a["image_id"].as_i64() {
            by_img.entry(id).or_default().push(a);
        }
    }
    for im in imgs {
        let anns = im["id"]
            .as_i64()
            .and_then(|id| by_img.get(&id))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        f.image(im, anns, rep)?;
    }
    Ok(split)
}

/// Converts COCO JSON files. `source` is a `.json` file or a folder searched (one level deep) for
/// them; `images` optionally names the image folder (default: the JSON's folder, or its `images/`).
pub fn from_coco(source: &Path, images: Option<&Path>, out: &Path) -> Result<Report> {
    from_coco_with(source, images, out, CocoOptions::default())
}

/// [`from_coco`] with options: polygon rows (`use_segments`) and the COCO 91 -> 80 class map.
pub fn from_coco_with(
    source: &Path,
    images: Option<&Path>,
    out: &Path,
    opts: CocoOptions,
) -> Result<Report> {
    let jsons = coco_jsons(source)?;
    let mut rep = Report::default();
    let mut splits = Vec::new();
    // Class map from the first file; all files must agree.
    let mut names: Option<(Vec<String>, HashMap<i64, usize>)> = None;
    for jf in &jsons {
        let split = coco_convert_file(jf, images, out, &mut names, (opts, &mut rep))?;
        if !splits.contains(&split) {
            splits.push(split);
        }
    }
    rep.names = names.map(|n| n.0).unwrap_or_default();
    rep.yaml = write_yaml(out, &splits, &rep.names)?;
    Ok(rep)
}

/// One VOC object: its class name and `xmin ymin xmax ymax` box.
struct VocObj {
    name: String,
    b: [f64; 4],
}

/// One parsed VOC annotation: the XML, its image file name, the image size and the objects.
struct VocFile {
    xml: PathBuf,
    file: String,
    w: f64,
    h: f64,
    objs: Vec<VocObj>,
}

/// The first child element of `n` named `tag`.
fn xml_child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(tag))
}

/// The trimmed text of an element.
fn xml_text(n: Option<roxmltree::Node>) -> Option<String> {
    n.and_then(|n| n.text()).map(|t| t.trim().to_string())
}

/// The number in child `tag` of `n`.
fn xml_num(n: Option<roxmltree::Node>, tag: &str) -> Option<f64> {
    xml_text(n.and_then(|n| xml_child(n, tag))).and_then(|v| v.parse::<f64>().ok())
}

/// Parses one VOC XML (`None`, reported, when it is invalid or the image size is unknown).
fn parse_voc(x: &Path, img_dir: &Path, rep: &mut Report) -> Result<Option<VocFile>> {
    let text = std::fs::read_to_string(x).with_context(|| format!("reading {}", x.display()))?;
    let doc = match roxmltree::Document::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            rep.dropped
                .push(format!("{}: invalid XML ({e}), skipped", x.display()));
            return Ok(None);
        }
    };
    let root = doc.root_element();
    let file = xml_text(xml_child(root, "filename")).unwrap_or_else(|| {
        format!(
            "{}.jpg",
            x.file_stem().unwrap_or_default().to_string_lossy()
        )
    });
    let size = xml_child(root, "size");
    let (mut w, mut h) = (
        xml_num(size, "width").unwrap_or(0.0),
        xml_num(size, "height").unwrap_or(0.0),
    );
    if w <= 0.0 || h <= 0.0 {
        if let Ok((iw, ih)) = image::image_dimensions(img_dir.join(&file)) {
            w = iw as f64;
            h = ih as f64;
        } else {
            rep.dropped.push(format!(
                "{}: no image size and {} unreadable, skipped",
                x.display(),
                file
            ));
            return Ok(None);
        }
    }
    let mut objs = Vec::new();
    for (k, o) in root
        .children()
        .filter(|c| c.has_tag_name("object"))
        .enumerate()
    {
        let name = xml_text(xml_child(o, "name")).unwrap_or_default();
        let bb = xml_child(o, "bndbox");
        let v: Vec<Option<f64>> = ["xmin", "ymin", "xmax", "ymax"]
            .iter()
            .map(|t| xml_num(bb, t))
            .collect();
        match (v[0], v[1], v[2], v[3]) {
            (Some(a), Some(b), Some(c), Some(d)) => objs.push(VocObj {
                name,
                b: [a, b, c, d],
            }),
            _ => rep.dropped.push(format!(
                "{}: object {} ({name}) has no complete bndbox, dropped",
                x.display(),
                k + 1
            )),
        }
    }
    Ok(Some(VocFile {
        xml: x.to_path_buf(),
        file,
        w,
        h,
        objs,
    }))
}

/// Image id -> split from `ImageSets/Main/{train,val,test}.txt` (empty when there are none).
fn voc_splits(source: &Path) -> HashMap<String, String> {
    let mut split_of: HashMap<String, String> = HashMap::new();
    let sets = source.join("ImageSets").join("Main");
    for s in ["train", "val", "test"] {
        if let Ok(t) = std::fs::read_to_string(sets.join(format!("{s}.txt"))) {
            for id in t.lines().map(str::trim).filter(|l| !l.is_empty()) {
                split_of.insert(id.to_string(), s.to_string());
            }
        }
    }
    split_of
}

/// The label rows of one VOC file's objects (unknown classes and empty boxes dropped, boxes
/// outside the image clipped; both reported).
fn voc_label_text(v: &VocFile, cmap: &HashMap<&str, usize>, rep: &mut Report) -> String {
    let (x, w, h) = (&v.xml, v.w, v.h);
    let mut text = String::new();
    for (k, o) in v.objs.iter().enumerate() {
        let Some(&cls) = cmap.get(o.name.as_str()) else {
            rep.dropped.push(format!(
                "{}: object {} has class '{}' not in names, dropped",
                x.display(),
                k + 1,
                o.name
            ));
            continue;
        };
        let [x0, y0, x1, y1] = o.b;
        let (cx0, cy0, cx1, cy1) = (
            x0.clamp(0.0, w),
            y0.clamp(0.0, h),
            x1.clamp(0.0, w),
            y1.clamp(0.0, h),
        );
        if cx1 - cx0 <= 0.0 || cy1 - cy0 <= 0.0 {
            rep.dropped.push(format!(
                "{}: object {} ({}) has zero area {:?}, dropped",
                x.display(),
                k + 1,
                o.name,
                o.b
            ));
            continue;
        }
        if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1) {
            rep.dropped.push(format!(
                "{}: object {} ({}) extends outside the image, clipped (kept)",
                x.display(),
                k + 1,
                o.name
            ));
        }
        // Ultralytics' VOC conversion: the centre moves 1 px up-left (1-based VOC pixels).
        let _ = writeln!(
            text,
            "{cls} {} {} {} {}",
            fmt6(((cx0 + cx1) / 2.0 - 1.0) / w),
            fmt6(((cy0 + cy1) / 2.0 - 1.0) / h),
            fmt6((cx1 - cx0) / w),
            fmt6((cy1 - cy0) / h)
        );
        rep.boxes += 1;
    }
    text
}

/// Writes one VOC file's image and labels into its split; `None` (reported) when the image is
/// missing.
fn voc_write(
    v: &VocFile,
    split: String,
    img_dir: &Path,
    out: &Path,
    cmap: &HashMap<&str, usize>,
    rep: &mut Report,
) -> Result<Option<String>> {
    let src = img_dir.join(&v.file);
    if !src.exists() {
        rep.dropped.push(format!(
            "{}: image {} not found, skipped",
            v.xml.display(),
            src.display()
        ));
        return Ok(None);
    }
    let (idir, ldir) = (
        out.join("images").join(&split),
        out.join("labels").join(&split),
    );
    crate::util::fsio::create_dir_all(&idir)?;
    crate::util::fsio::create_dir_all(&ldir)?;
    place_image(&src, &idir.join(&v.file))?;
    let text = voc_label_text(v, cmap, rep);
    if !text.is_empty() {
        crate::util::fsio::write(ldir.join(format!("{}.txt", file_stem(&v.file))), text)?;
    }
    rep.images += 1;
    Ok(Some(split))
}

/// The stem of a file name, as a string.
fn file_stem(file: &str) -> String {
    Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Whether a folder directly holds files with one of `exts` (lower-case, no dot).
fn holds(dir: &Path, exts: &[&str]) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok()).any(|e| {
            e.path()
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| exts.contains(&x.to_ascii_lowercase().as_str()))
        })
    })
}

/// The first folder at or under `root` (breadth-first, 3 levels) that holds files of `exts`.
fn find_folder(root: &Path, exts: &[&str]) -> Option<PathBuf> {
    let mut level = vec![root.to_path_buf()];
    for _ in 0..=3 {
        let mut next = Vec::new();
        for d in level {
            if holds(&d, exts) {
                return Some(d);
            }
            let mut subs: Vec<PathBuf> = std::fs::read_dir(&d)
                .map(|rd| {
                    rd.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_dir())
                        .collect()
                })
                .unwrap_or_default();
            subs.sort();
            next.extend(subs);
        }
        level = next;
    }
    None
}

/// The XML folder of a VOC export: `source` itself when it holds `.xml` files, its
/// `Annotations/` (`annotations/`, `annots/`), or the first folder below holding XML.
fn voc_xml_dir(source: &Path) -> Result<PathBuf> {
    if holds(source, &["xml"]) {
        return Ok(source.to_path_buf());
    }
    ["Annotations", "annotations", "annots", "Annots"]
        .iter()
        .map(|d| source.join(d))
        .find(|d| holds(d, &["xml"]))
        .or_else(|| find_folder(source, &["xml"]))
        .ok_or_else(|| anyhow!("no Pascal VOC .xml files in or under {}", source.display()))
}

/// The image folder of a VOC export: `images` when given, else `JPEGImages/` (`images/`,
/// `imgs/`) beside the XML folder or under `source`, else the first folder holding images.
fn voc_image_dir(source: &Path, xml_dir: &Path, images: Option<&Path>) -> Result<PathBuf> {
    if let Some(i) = images {
        return if i.is_dir() {
            Ok(i.to_path_buf())
        } else {
            Err(anyhow!("images={} is not a folder", i.display()))
        };
    }
    let exts = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];
    let bases = [Some(source), xml_dir.parent()];
    bases
        .iter()
        .flatten()
        .flat_map(|b| ["JPEGImages", "images", "imgs", "Images"].map(|d| b.join(d)))
        .find(|d| holds(d, &exts))
        .or_else(|| find_folder(source, &exts))
        .or_else(|| xml_dir.parent().and_then(|p| find_folder(p, &exts)))
        .ok_or_else(|| {
            anyhow!(
                "no image folder found for {} (pass images=<folder>)",
                source.display()
            )
        })
}

/// Converts Pascal VOC: `source` is the export's folder or its XML folder (`Annotations/`,
/// `annotations/`, `annots/`, or any folder of `.xml`); the images are in `images` when given,
/// else `JPEGImages/` / `images/` found beside or below. `ImageSets/Main/{train,val,test}.txt`
/// define splits when present (otherwise everything goes to `train`). Classes are sorted by name
/// unless `names` is given. Boxes convert as Ultralytics' VOC script does (centre minus 1 px,
/// VOC pixels being 1-based).
pub fn from_voc(source: &Path, names: Option<Vec<String>>, out: &Path) -> Result<Report> {
    from_voc_with(source, None, names, out)
}

/// [`from_voc`] with an explicit image folder.
pub fn from_voc_with(
    source: &Path,
    images: Option<&Path>,
    names: Option<Vec<String>>,
    out: &Path,
) -> Result<Report> {
    let ann_dir = voc_xml_dir(source)?;
    let img_dir = voc_image_dir(source, &ann_dir, images)?;
    let mut xmls: Vec<PathBuf> = std::fs::read_dir(&ann_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("xml"))
        .collect();
    xmls.sort();
    let mut rep = Report::default();
    let mut parsed: Vec<VocFile> = Vec::new();
    for x in &xmls {
        parsed.extend(parse_voc(x, &img_dir, &mut rep)?);
    }
    let names = names.unwrap_or_else(|| {
        let mut n: Vec<String> = parsed
            .iter()
            .flat_map(|p| p.objs.iter().map(|o| o.name.clone()))
            .collect();
        n.sort();
        n.dedup();
        n
    });
    let cmap: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let split_of = voc_splits(ann_dir.parent().unwrap_or(source));
    let mut splits: Vec<String> = Vec::new();
    for v in &parsed {
        let split = split_of
            .get(&file_stem(&v.file))
            .cloned()
            .unwrap_or_else(|| "train".into());
        if let Some(split) = voc_write(v, split, &img_dir, out, &cmap, &mut rep)? {
            if !splits.contains(&split) {
                splits.push(split);
            }
        }
    }
    rep.names = names;
    rep.yaml = write_yaml(out, &splits, &rep.names)?;
    Ok(rep)
}

/// Ultralytics `autosplit`: assigns each image of `dir` to train/val/test with the given weights
/// (seeded), writing `autosplit_{train,val,test}.txt` next to `dir`. With `annotated_only`, images
/// without a label file are skipped. Returns the three counts.
pub fn autosplit(
    dir: &Path,
    weights: [f64; 3],
    annotated_only: bool,
    seed: u64,
) -> Result<[usize; 3]> {
    use rand::{Rng, SeedableRng};
    let files: Vec<PathBuf> = super::list_images(&[dir.to_path_buf()])?;
    let parent = dir.parent().unwrap_or(Path::new("."));
    let names = [
        "autosplit_train.txt",
        "autosplit_val.txt",
        "autosplit_test.txt",
    ];
    let mut texts = [String::new(), String::new(), String::new()];
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        bail!("split weights must not all be zero");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut counts = [0usize; 3];
    for f in &files {
        let r: f64 = rng.gen::<f64>() * total;
        let k = if r < weights[0] {
            0
        } else if r < weights[0] + weights[1] {
            1
        } else {
            2
        };
        if annotated_only && !super::img2label_path(f).exists() {
            continue;
        }
        let rel = f
            .strip_prefix(parent)
            .map(|p| format!("./{}", p.display()))
            .unwrap_or_else(|_| f.display().to_string());
        texts[k].push_str(&rel);
        texts[k].push('\n');
        counts[k] += 1;
    }
    for (n, t) in names.iter().zip(&texts) {
        let p = parent.join(n);
        if t.is_empty() {
            let _ = std::fs::remove_file(&p);
        } else {
            std::fs::write(&p, t).with_context(|| format!("writing {}", p.display()))?;
        }
    }
    Ok(counts)
}
