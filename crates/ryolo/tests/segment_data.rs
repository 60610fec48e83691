//! The data side of instance segmentation (spec/segment.md §2): COCO JSON -> polygon labels as
//! Ultralytics 8.4 `convert_coco(use_segments=True)` writes them, the polygon label scan and its
//! messages, the dataset rule of `task=segment`, and the synthetic polygon dataset.
//!
//! With `RYOLO_ULTRALYTICS_PYTHON` set (a Python importing ultralytics==8.4.190) all 126 coco128
//! label files are compared with what Ultralytics writes; otherwise the 4 fixture files are.

mod common;
use common::tmp;
use ryolo::data::convert::{from_coco_with, CocoOptions};
use ryolo::data::{list_images, scan_with, LabelFormat, Scan};
use std::path::{Path, PathBuf};

const SEG: CocoOptions = CocoOptions {
    use_segments: true,
    cls91to80: false,
};

/// coco128_json converted with polygons into a fresh folder; returns the labels folder.
fn convert_coco128(shared: &Path, tag: &str) -> (PathBuf, ryolo::data::convert::Report) {
    let ds = shared.join("datasets");
    let out = tmp(tag);
    let rep = from_coco_with(
        &ds.join("coco128_json/annotations/instances_train2017.json"),
        Some(&ds.join("coco128/images/train2017")),
        &out,
        SEG,
    )
    .unwrap();
    (out, rep)
}

/// The `.txt` files of a folder, sorted by name.
fn txt_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    v.sort();
    v
}

/// The scan of one split folder of images in `format` (nc 80 unless told).
fn scan_dir(images: &Path, nc: usize, format: LabelFormat) -> Scan {
    let files = list_images(&[images.to_path_buf()]).unwrap();
    scan_with("test", &files, nc, false, format)
}

#[test]
fn coco128_polygons_match_the_ultralytics_fixture_files() {
    let Some(shared) = common::shared() else {
        return;
    };
    let (out, rep) = convert_coco128(&shared, "segconv");
    let labels = out.join("labels/train2017");
    let files = txt_files(&labels);
    let lines: usize = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    println!(
        "coco128_json -> {} label files, {lines} polygons",
        files.len()
    );
    assert_eq!((files.len(), lines, rep.boxes), (126, 929, 929));
    assert_eq!(rep.images, 128);
    assert!(
        rep.dropped.is_empty() && rep.warnings.is_empty(),
        "{:?}",
        rep
    );
    let fixtures = shared.join("fixtures/ultralytics/segment/labels");
    let mut same = 0;
    for f in txt_files(&fixtures) {
        let ours = std::fs::read(labels.join(f.file_name().unwrap())).unwrap();
        assert!(
            ours == std::fs::read(&f).unwrap(),
            "{} differs from Ultralytics",
            f.display()
        );
        same += 1;
    }
    assert_eq!(same, 4);
    // The converted dataset scans clean as segment labels, every box with its polygon.
    let s = scan_dir(&out.join("images/train2017"), 80, LabelFormat::Segment);
    assert_eq!(
        (s.found, s.backgrounds, s.corrupt),
        (126, 2, 0),
        "{:?}",
        s.warnings
    );
    s.check_parts_in("train", LabelFormat::Segment).unwrap();
    let n: usize = s.entries.iter().map(|e| e.boxes.len()).sum();
    assert_eq!(n, 929, "{:?}", s.warnings);
    // The same polygons read for detection give the same boxes.
    let d = scan_dir(&out.join("images/train2017"), 80, LabelFormat::Detect);
    for (a, b) in s.entries.iter().zip(&d.entries) {
        assert_eq!((&a.cls, &a.boxes), (&b.cls, &b.boxes));
    }
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn coco128_polygons_match_ultralytics_everywhere() {
    let Some(shared) = common::shared() else {
        return;
    };
    let Some(python) = std::env::var_os("RYOLO_ULTRALYTICS_PYTHON") else {
        eprintln!(
            "\n!!!!! SKIPPED: set RYOLO_ULTRALYTICS_PYTHON to a Python with ultralytics==8.4.190 \
             to compare all 126 coco128 polygon label files with Ultralytics' convert_coco !!!!!\n"
        );
        return;
    };
    let refdir = tmp("segconv-ul");
    let script = "import sys\nfrom ultralytics.data.converter import convert_coco\n\
                  convert_coco(sys.argv[1], sys.argv[2], use_segments=True)\n";
    let ann = shared.join("datasets/coco128_json/annotations");
    let status = std::process::Command::new(python)
        .env("YOLO_OFFLINE", "1")
        .args(["-c", script])
        .arg(&ann)
        .arg(refdir.join("out"))
        .status()
        .unwrap();
    assert!(status.success());
    let (out, _) = convert_coco128(&shared, "segconv-all");
    let want = txt_files(&refdir.join("out/labels/train2017"));
    let got = txt_files(&out.join("labels/train2017"));
    assert_eq!(want.len(), 126);
    assert_eq!(
        got.iter().map(|p| p.file_name()).collect::<Vec<_>>(),
        want.iter().map(|p| p.file_name()).collect::<Vec<_>>()
    );
    for (g, w) in got.iter().zip(&want) {
        assert!(
            std::fs::read(g).unwrap() == std::fs::read(w).unwrap(),
            "{} differs from Ultralytics' {}",
            g.display(),
            w.display()
        );
    }
    println!(
        "all {} label files byte-identical to Ultralytics",
        got.len()
    );
    std::fs::remove_dir_all(out).unwrap();
    std::fs::remove_dir_all(refdir).unwrap();
}

/// Ultralytics 8.4.190 `convert_coco(use_segments=True)` on `tests/data/instances_rle.json`
/// (`tests/tools/coco_rle_reference.py`): two RLE masks (uncompressed and compressed counts;
/// two blobs, a hole, a one-pixel blob), an RLE of the wrong size and a missing and an empty
/// segmentation (box rectangles; the repeated one written once), an invalid part among valid
/// ones, a crowd and a zero-width annotation (skipped), a three-part polygon.
const RLE_REFERENCE: &str = "\
0 0.625 0.666667 0.625 0.866667 0.9 0.866667 0.9 0.666667 0.625 0.666667 0.35 0.366667 0.35 0.1 0.1 0.1 0.1 0.366667 0.35 0.366667
16 0.25 0.166667 0.25 0.8 0.725 0.8 0.725 0.166667
2 0.05 0.333333 0.15 0.333333 0.15 0.466667 0.05 0.466667
2 0.0375 0.075 0.2875 0.075 0.2875 0.325 0.0375 0.325
79 0.025 0.0333333 0.15 0.0333333 0.15 0.2 0.0375 0.208333
39 0.999997 1 0 0 2.5e-07 0 0.999997 1 0.525 0.733333 0.525 0.666667 0.5 0.666667 0.175 0.833333 0.175 0.966667 0.125 0.833333 0.175 0.833333 0.5 0.666667 0.525 0.733333
";

#[test]
fn rle_masks_fallbacks_and_duplicates_match_ultralytics() {
    let d = tmp("segrle");
    let json = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/instances_rle.json");
    std::fs::create_dir_all(d.join("src")).unwrap();
    image::RgbImage::new(40, 30)
        .save(d.join("src/a.png"))
        .unwrap();
    let opts = CocoOptions {
        use_segments: true,
        cls91to80: true,
    };
    let rep = from_coco_with(&json, Some(&d.join("src")), &d.join("out"), opts).unwrap();
    let got = std::fs::read_to_string(d.join("out/labels/rle/a.txt")).unwrap();
    assert_eq!(got, RLE_REFERENCE);
    assert_eq!(rep.boxes, 6);
    // Dropped: the zero-width box; box rectangles: the wrong-size RLE, missing and empty ones.
    assert_eq!(rep.dropped.len(), 1, "{:?}", rep.dropped);
    assert!(rep.dropped[0].contains("annotation 8 (a.png) has an empty bbox"));
    assert_eq!(rep.warnings.len(), 3, "{:?}", rep.warnings);
    for (w, id) in rep.warnings.iter().zip([3, 4, 5]) {
        assert!(
            w.contains(&format!("annotation {id} (a.png) has no usable polygon")),
            "{w}"
        );
    }
    assert_eq!(rep.names[79], "c90");
    // Without cls91to80 the classes rank the file's 5 category ids; the polygons are the same.
    let rep = from_coco_with(&json, Some(&d.join("src")), &d.join("out2"), SEG).unwrap();
    assert_eq!(rep.names, ["c1", "c3", "c18", "c44", "c90"]);
    let got = std::fs::read_to_string(d.join("out2/labels/rle/a.txt")).unwrap();
    let classes: Vec<&str> = got.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(classes, ["0", "2", "1", "1", "4", "3"]);
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split_once(' ').unwrap().1.to_string())
            .collect()
    };
    assert_eq!(strip(&got), strip(RLE_REFERENCE));
    // The polygons scan clean.
    let s = scan_dir(&d.join("out/images/rle"), 80, LabelFormat::Segment);
    assert_eq!((s.found, s.corrupt), (1, 0), "{:?}", s.warnings);
    assert_eq!(s.entries[0].segments.as_ref().unwrap().len(), 6);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn hostile_coco_segmentations_never_panic() {
    let d = tmp("seghostile");
    std::fs::create_dir_all(d.join("src")).unwrap();
    image::RgbImage::new(16, 16)
        .save(d.join("src/a.png"))
        .unwrap();
    let segs = [
        r#"{"size":[16,16],"counts":"\u007f\u007f"}"#,
        r#"{"size":[16,16],"counts":[4294967295,4294967295,7]}"#,
        r#"{"size":[16,16],"counts":[-3, 5]}"#,
        r#"{"size":[16,16],"counts":null}"#,
        r#"{"size":[16,16]}"#,
        r#"{"size":"x","counts":"0"}"#,
        r#"[[1,2,3,4,5,"6"]]"#,
        r#"[1,2,3,4,5,6]"#,
        r#"[[1e308,1e308,-1e308,1,2,3]]"#,
        r#"[[true,false,3,4,5,6,7,8]]"#,
        r#""polygon""#,
        "null",
    ];
    let anns: Vec<String> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                r#"{{"id":{i},"image_id":1,"category_id":1,"bbox":[1,1,5,5],"segmentation":{s}}}"#
            )
        })
        .collect();
    let json = format!(
        r#"{{"images":[{{"id":1,"file_name":"a.png","width":16,"height":16}},
            {{"id":2,"file_name":"a.png","width":1e300,"height":1e300}}],
            "annotations":[{},{{"id":99,"image_id":2,"category_id":1,"bbox":[1,1,5,5],
            "segmentation":{{"size":[1e300,1e300],"counts":[1]}}}}],
            "categories":[{{"id":1,"name":"a"}}]}}"#,
        anns.join(",")
    );
    std::fs::write(d.join("instances_h.json"), json).unwrap();
    let rep = from_coco_with(
        &d.join("instances_h.json"),
        Some(&d.join("src")),
        &d.join("out"),
        SEG,
    )
    .unwrap();
    let text = std::fs::read_to_string(d.join("out/labels/h/a.txt")).unwrap();
    assert!(rep.boxes >= 1 && !text.is_empty(), "{rep:?}");
    // Every written row has a class and an even number of finite coordinates.
    for l in text.lines() {
        let v: Vec<f64> = l.split(' ').map(|t| t.parse().unwrap()).collect();
        assert!(v.len() >= 7 && v.len() % 2 == 1, "{l}");
    }
    std::fs::remove_dir_all(d).unwrap();
}

/// A one-image dataset with the given label text; returns its images folder.
fn one_image(tag: &str, label: &str) -> PathBuf {
    let d = tmp(tag);
    std::fs::create_dir_all(d.join("images")).unwrap();
    std::fs::create_dir_all(d.join("labels")).unwrap();
    image::RgbImage::new(32, 32)
        .save(d.join("images/im.png"))
        .unwrap();
    std::fs::write(d.join("labels/im.txt"), label).unwrap();
    d.join("images")
}

#[test]
fn scan_messages_name_file_and_line() {
    let cases = [
        (
            "odd",
            "0 0.1 0.1 0.4 0.1 0.4 0.4\n1 0.1 0.1 0.4 0.1 0.4 0.4 0.2\n",
            "im.txt:2: ignoring corrupt image/label: polygon row has 8 values: an odd number of \
             coordinates (7)",
        ),
        (
            "mixed",
            "0 0.1 0.1 0.4 0.1 0.4 0.4\n1 0.5 0.5 0.2 0.2\n",
            "im.txt:2: ignoring corrupt image/label: labels mix segment and detection rows",
        ),
        (
            "range",
            "0 0.1 0.1 0.4 0.1 0.4 0.4\n0 0.5 0.5 1.6 0.5 1.6 0.9\n",
            "im.txt:2: ignoring corrupt image/label: non-normalized or out of bounds coordinates",
        ),
        (
            "neg",
            "0 -0.5 0.1 0.1 0.1 0.1 0.4\n",
            "im.txt:1: ignoring corrupt image/label: negative label values",
        ),
    ];
    for (tag, label, msg) in cases {
        let images = one_image(&format!("segscan-{tag}"), label);
        let s = scan_dir(&images, 3, LabelFormat::Segment);
        assert_eq!((s.found, s.corrupt), (0, 1), "{tag}: {:?}", s.warnings);
        assert!(
            s.warnings.len() == 1 && s.warnings[0].contains(msg),
            "{tag}: {:?}",
            s.warnings
        );
        // Detection on polygon data reads the same rows and drops the same file.
        let s = scan_dir(&images, 3, LabelFormat::Detect);
        assert_eq!(s.corrupt, 1, "{tag}");
        std::fs::remove_dir_all(images.parent().unwrap()).unwrap();
    }
}

#[test]
fn box_dataset_with_task_segment_is_an_error_naming_the_split() {
    let Some(shared) = common::shared() else {
        return;
    };
    // coco8 holds boxes only: scanned for segment, the dataset rule refuses it.
    let s = scan_dir(
        &shared.join("datasets/coco8/images/val"),
        80,
        LabelFormat::Segment,
    );
    assert_eq!(s.corrupt, 0);
    let err = s
        .check_parts_in("val", LabelFormat::Segment)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "val: Segment dataset requires equal numbers of boxes and segments, but got \
             len(segments) = 0, len(boxes) = 17. Please supply a segment dataset, not a detect \
             dataset."
        ),
        "{err}"
    );
    assert!(
        err.contains("labels/val/000000000036.txt has box rows"),
        "{err}"
    );
    // coco8-seg passes; detection on it keeps its boxes.
    let seg = shared.join("datasets/coco8-seg/images/val");
    let s = scan_dir(&seg, 80, LabelFormat::Segment);
    s.check_parts_in("val", LabelFormat::Segment).unwrap();
    let d = scan_dir(&seg, 80, LabelFormat::Detect);
    d.check_parts_in("val", LabelFormat::Detect).unwrap();
    assert!(d.entries.iter().all(|e| e.segments.is_none()));
}

#[test]
fn box_and_polygon_files_mixed_in_a_split_are_an_error() {
    let images = one_image("segsplit", "0 0.1 0.1 0.4 0.1 0.4 0.4\n");
    image::RgbImage::new(32, 32)
        .save(images.join("im2.png"))
        .unwrap();
    std::fs::write(
        images.with_file_name("labels").join("im2.txt"),
        "1 0.5 0.5 0.2 0.2\n",
    )
    .unwrap();
    let s = scan_dir(&images, 3, LabelFormat::Segment);
    assert_eq!((s.found, s.corrupt), (2, 0));
    let err = s
        .check_parts_in("train", LabelFormat::Segment)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train: Segment dataset")
            && err.contains("len(segments) = 1, len(boxes) = 2")
            && err.contains("im2.txt has box rows"),
        "{err}"
    );
    std::fs::remove_dir_all(images.parent().unwrap()).unwrap();
}

/// FNV-1a 64 of all label files under `labels/` (sorted by split, then name).
fn labels_hash(root: &Path) -> (u64, usize) {
    let mut h = 0xcbf29ce484222325u64;
    let mut n = 0;
    for split in ["train", "val"] {
        for f in txt_files(&root.join("labels").join(split)) {
            for b in std::fs::read(f).unwrap() {
                h ^= b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
            n += 1;
        }
    }
    (h, n)
}

#[test]
fn synth_segment_dataset_scans_clean_with_polygons() {
    let d = tmp("segsynth");
    let det = ryolo::data::synth::generate(&d.join("det"), 20, 96, 3).unwrap();
    // The detect dataset is unchanged (hash of the labels written before polygons existed).
    assert_eq!(labels_hash(det.parent().unwrap()), (0x45ff5a81855754c5, 25));
    let yaml = ryolo::data::synth::generate_with(&d.join("seg"), 20, 96, 3, true).unwrap();
    let dc = ryolo::data::load_data_yaml(&yaml).unwrap();
    let format = dc.label_format("segment").unwrap();
    assert_eq!(format, LabelFormat::Segment);
    let mut instances = 0;
    for (split, sources) in &dc.splits {
        let files = list_images(sources).unwrap();
        let s = scan_with(split, &files, dc.nc(), false, format);
        assert_eq!(s.corrupt, 0);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        s.check_parts_in(split, format).unwrap();
        let det_files = list_images(&[d.join("det/images").join(split)]).unwrap();
        let sd = scan_with(split, &det_files, dc.nc(), false, LabelFormat::Detect);
        for (e, b) in s.entries.iter().zip(&sd.entries) {
            // Same images, same shapes: polygons of the drawn shapes around the detect boxes.
            let im = |p: &Path| std::fs::read(p).unwrap();
            assert_eq!(im(&e.im_file), im(&b.im_file));
            assert_eq!(e.cls, b.cls);
            for ((c, poly), (pb, db)) in e
                .cls
                .iter()
                .zip(e.segments.as_ref().unwrap())
                .zip(e.boxes.iter().zip(&b.boxes))
            {
                let want = match c {
                    0 => 4,
                    1 => 32,
                    _ => 3,
                };
                assert_eq!(poly.len(), want);
                // The polygon's box is the drawn box within about a pixel.
                for k in 0..4 {
                    assert!((pb[k] - db[k]).abs() <= 1.5 / 96.0, "{pb:?} {db:?}");
                }
            }
            instances += e.cls.len();
        }
    }
    assert_eq!(instances, 37);
    std::fs::remove_dir_all(d).unwrap();
}
