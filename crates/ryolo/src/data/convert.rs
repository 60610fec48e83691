//! Converters into the YOLO layout (`images/<split>`, `labels/<split>`, `data.yaml`): COCO JSON
//! (including Roboflow exports) and Pascal VOC XML. Every dropped box is reported.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What a conversion did.
#[derive(Debug, Default)]
pub struct Report {
    /// Images written.
    pub images: usize,
    /// Boxes written.
    pub boxes: usize,
    /// One line per skipped box or image, naming the file and the reason.
    pub dropped: Vec<String>,
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
    std::fs::write(&p, y)?;
    Ok(p)
}

fn fmt6(v: f64) -> String {
    format!("{v:.6}")
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
        let text = self.label_text(file, anns, (w, h), rep);
        let stem = Path::new(&name)
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if !text.is_empty() {
            std::fs::write(self.ldir.join(format!("{stem}.txt")), text)?;
        }
        rep.images += 1;
        Ok(())
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
    rep: &mut Report,
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
    let (_, cmap) = names.get_or_insert_with(|| coco_classes(cats, &anns));
    let split = coco_split(jf);
    let f = CocoFile {
        jf,
        cmap,
        img_dir: coco_image_dir(jf, images),
        idir: out.join("images").join(&split),
        ldir: out.join("labels").join(&split),
    };
    std::fs::create_dir_all(&f.idir)?;
    std::fs::create_dir_all(&f.ldir)?;
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
    let jsons = coco_jsons(source)?;
    let mut rep = Report::default();
    let mut splits = Vec::new();
    // Class map from the first file; all files must agree.
    let mut names: Option<(Vec<String>, HashMap<i64, usize>)> = None;
    for jf in &jsons {
        let split = coco_convert_file(jf, images, out, &mut names, &mut rep)?;
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
    std::fs::create_dir_all(&idir)?;
    std::fs::create_dir_all(&ldir)?;
    place_image(&src, &idir.join(&v.file))?;
    let text = voc_label_text(v, cmap, rep);
    if !text.is_empty() {
        std::fs::write(ldir.join(format!("{}.txt", file_stem(&v.file))), text)?;
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
