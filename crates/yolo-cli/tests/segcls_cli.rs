//! Segment and classify through the real `yolo` binary: benchmark columns per task, ONNX val run
//! folders from the model's metadata task and static ONNX graphs validated at their exported size.

mod common;
use common::{shared, tmp, yolo};
use std::path::{Path, PathBuf};

/// Copies a folder tree (fixtures are read-only; runs write next to their data).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// The fixture classifier and its 3-class ImageFolder set, copied into a fresh folder.
fn cls_setup(name: &str) -> Option<PathBuf> {
    let s = shared()?;
    let fx = s.join("fixtures/ultralytics/classify");
    let d = tmp(name);
    std::fs::copy(fx.join("cls_yolo11n.pt"), d.join("cls.pt")).unwrap();
    copy_tree(&fx.join("dataset"), &d.join("dataset"));
    Some(d)
}

/// The value of a benchmark row's metric column.
fn metric_of(log: &str, fmt: &str) -> f64 {
    let line = log
        .lines()
        .find(|l| l.starts_with(fmt))
        .unwrap_or_else(|| panic!("no {fmt} row in {log}"));
    assert!(line.contains('✅'), "{line}\n{log}");
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[test]
fn classify_benchmark_reports_top1_for_both_formats() {
    let Some(d) = cls_setup("bench-cls") else {
        return;
    };
    // No imgsz: the checkpoint's (224) for the export and both validations.
    let (ok, out) = yolo(&["benchmark", "model=cls.pt", "data=dataset"], &d);
    assert!(ok, "{out}");
    let log = std::fs::read_to_string(d.join("benchmarks.log")).unwrap();
    assert!(log.contains("metrics/accuracy_top1"), "{log}");
    assert!(!log.contains("mAP50-95"), "{log}");
    assert!(log.contains("at imgsz=224"), "{log}");
    // The fixture: Ultralytics' val top1 of this checkpoint is 1/3 (it predicts `chair` for all).
    let (pt, onnx) = (metric_of(&log, "PyTorch"), metric_of(&log, "ONNX"));
    assert!((pt - 1.0 / 3.0).abs() < 1e-4, "{log}");
    assert!((onnx - pt).abs() < 1e-4, "{log}");
}

#[test]
fn static_classify_onnx_validates_at_its_exported_size_in_runs_classify() {
    let Some(d) = cls_setup("val-cls-onnx") else {
        return;
    };
    let (ok, out) = yolo(&["export", "model=cls.pt", "format=onnx", "imgsz=64"], &d);
    assert!(ok, "{out}");
    // No imgsz (default 640): the graph's (64, 64) input is reused, as Ultralytics' validator does.
    let (ok, out) = yolo(&["val", "model=cls.onnx", "data=dataset"], &d);
    assert!(ok, "{out}");
    assert!(out.contains("(1, 3, 64, 64)"), "{out}");
    let run = d.join("runs/classify/val");
    assert!(run.join("confusion_matrix.png").exists(), "{out}");
    // 12 val images at batch 1 (the graph's): the first three batches plotted, as Ultralytics.
    for i in 0..3 {
        for kind in ["labels", "pred"] {
            let f = run.join(format!("val_batch{i}_{kind}.jpg"));
            assert!(f.exists(), "{} missing", f.display());
        }
    }
    assert!(!run.join("val_batch3_labels.jpg").exists());
    // Predict follows the graph's task and input size too.
    let (ok, out) = yolo(
        &["predict", "model=cls.onnx", "source=dataset/val/bowl"],
        &d,
    );
    assert!(ok, "{out}");
    assert!(out.contains("at shape (1, 3, 64, 64)"), "{out}");
    assert!(d.join("runs/classify/predict").is_dir(), "{out}");
    assert!(!d.join("runs/detect").exists(), "{out}");
    // A different imgsz asked is named, not silently dropped.
    let (ok, out) = yolo(
        &[
            "val",
            "model=cls.onnx",
            "data=dataset",
            "imgsz=96",
            "plots=False",
        ],
        &d,
    );
    assert!(ok, "{out}");
    assert!(out.contains("imgsz=") && out.contains("ignored"), "{out}");
}

#[test]
fn segment_onnx_val_goes_to_runs_segment_at_the_exported_size() {
    let Some(s) = shared() else {
        return;
    };
    let d = tmp("val-seg-onnx");
    std::fs::copy(
        s.join("fixtures/ultralytics/segment/yolo11n-seg_seed0.pt"),
        d.join("seg.pt"),
    )
    .unwrap();
    copy_tree(&s.join("datasets/coco8-seg"), &d.join("coco8-seg"));
    let yaml = d.join("coco8-seg/coco8-seg.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("path:") {
                format!("path: {}\n", d.join("coco8-seg").display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&yaml, text).unwrap();
    let (ok, out) = yolo(&["export", "model=seg.pt", "format=onnx", "imgsz=64"], &d);
    assert!(ok, "{out}");
    let data = format!("data={}", yaml.display());
    let (ok, out) = yolo(&["val", "model=seg.onnx", &data], &d);
    assert!(ok, "{out}");
    assert!(out.contains("(1, 3, 64, 64)"), "{out}");
    assert!(out.contains("Mask(P"), "{out}");
    assert!(d.join("runs/segment/val").is_dir(), "{out}");
    assert!(!d.join("runs/detect").exists(), "{out}");
    let (ok, out) = yolo(
        &["predict", "model=seg.onnx", "source=coco8-seg/images/val"],
        &d,
    );
    assert!(ok, "{out}");
    assert!(d.join("runs/segment/predict").is_dir(), "{out}");
}

/// The segment model and Ultralytics' val outputs of `scripts/segcls_seg_ref.py` (a yolo11n-seg
/// with the brain-tumour detector's backbone and Detect head, seed-0 Proto), or None when absent.
fn seg_ref() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/segcls_out");
    if p.join("seg_bt.pt").exists() {
        Some(p.canonicalize().unwrap())
    } else {
        eprintln!("\n!!!!! SKIPPED: scripts/segcls_out (run scripts/segcls_seg_ref.py) !!!!!\n");
        None
    }
}

/// The 4 coco8-seg val images (the reference script's lossless halved PNGs) with their polygons,
/// classes mod 2 (as the reference script).
fn seg_data(s: &Path, refs: &Path, d: &Path) -> PathBuf {
    let data = d.join("data");
    std::fs::create_dir_all(data.join("images")).unwrap();
    std::fs::create_dir_all(data.join("labels")).unwrap();
    let src = s.join("datasets/coco8-seg");
    for e in std::fs::read_dir(refs.join("images")).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        std::fs::copy(&p, data.join("images").join(p.file_name().unwrap())).unwrap();
        let text = std::fs::read_to_string(src.join(format!("labels/val/{stem}.txt"))).unwrap();
        let fixed: String = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut it = l.split_whitespace();
                let c: usize = it.next().unwrap().parse().unwrap();
                format!("{} {}\n", c % 2, it.collect::<Vec<_>>().join(" "))
            })
            .collect();
        std::fs::write(data.join(format!("labels/{stem}.txt")), fixed).unwrap();
    }
    let yaml = data.join("data.yaml");
    std::fs::write(
        &yaml,
        format!(
            "path: {}\ntrain: images\nval: images\nnames:\n  0: negative\n  1: positive\n",
            data.display()
        ),
    )
    .unwrap();
    yaml
}

/// FNV-1a 64 of bytes, as the reference script hashes Ultralytics' label files.
fn fnv1a64(b: &[u8]) -> String {
    let mut h = 0xcbf29ce484222325u64;
    for &x in b {
        h = (h ^ x as u64).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// A decoded RLE mask of a `predictions.json` entry: (h, w, row-major 0/1).
fn mask_of(p: &serde_json::Value) -> (usize, usize, Vec<u8>) {
    let seg = &p["segmentation"];
    let h = seg["size"][0].as_u64().unwrap() as usize;
    let w = seg["size"][1].as_u64().unwrap() as usize;
    let counts = ryolo::ops::rle::rle_from_string(seg["counts"].as_str().unwrap())
        .unwrap_or_else(|| panic!("undecodable counts in {p}"));
    assert_eq!(
        counts.iter().map(|&c| c as usize).sum::<usize>(),
        h * w,
        "{p}"
    );
    (h, w, ryolo::ops::rle::rle_decode(&counts, h, w))
}

#[test]
fn segment_val_save_json_and_save_txt_match_ultralytics() {
    let (Some(s), Some(refs)) = (shared(), seg_ref()) else {
        return;
    };
    let d = tmp("val-seg-json");
    std::fs::copy(refs.join("seg_bt.pt"), d.join("seg.pt")).unwrap();
    let yaml = seg_data(&s, &refs, &d);
    let data = format!("data={}", yaml.display());
    let args = [
        "val",
        "model=seg.pt",
        &data,
        "imgsz=320",
        "batch=4",
        "save_json=True",
        "save_txt=True",
        "plots=False",
        "max_det=10",
    ];
    let (ok, out) = yolo(&args, &d);
    assert!(ok, "{out}");
    let run = d.join("runs/segment/val");
    let read = |p: &Path| -> Vec<serde_json::Value> {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        v.as_array().unwrap().clone()
    };
    let ours = read(&run.join("predictions.json"));
    let want = read(&refs.join("seg_predictions.json"));
    assert_eq!(ours.len(), want.len());
    // Every Ultralytics record has its twin: image id (int for all-digit stems), file name, class,
    // box (3 decimals) and score (5 decimals) up to the last printed digit, and the RLE of the
    // native-resolution mask (save_json: process_mask_native + scale_masks, truncated to bytes).
    // A pixel whose upsampled value sits on the threshold may flip with float rounding (measured: 1
    // pixel of one 12,346-pixel mask, in 2 of 40 records): at most 2 differing pixels per mask.
    let mut flipped: std::collections::BTreeMap<String, usize> = Default::default();
    for w in &want {
        let twin = ours.iter().find(|o| {
            let close = |k: &str, tol: f64| {
                let (a, b) = (&o[k], &w[k]);
                match (a.as_array(), b.as_array()) {
                    (Some(a), Some(b)) => a
                        .iter()
                        .zip(b)
                        .all(|(x, y)| (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= tol),
                    _ => (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= tol,
                }
            };
            o["image_id"] == w["image_id"]
                && o["file_name"] == w["file_name"]
                && o["category_id"] == w["category_id"]
                && close("bbox", 1.5e-3)
                && close("score", 1.5e-5)
        });
        let o = twin.unwrap_or_else(|| panic!("no twin of {w}"));
        if o["segmentation"] != w["segmentation"] {
            let (wh, ww, wm) = mask_of(w);
            let (oh, ow, om) = mask_of(o);
            assert_eq!((oh, ow), (wh, ww), "{o}");
            let diff = wm.iter().zip(&om).filter(|(a, b)| a != b).count();
            println!("{}: mask differs in {diff} pixels", w["file_name"]);
            assert!(diff <= 2, "{diff} pixels differ:\n{o}\n{w}");
            let stem = w["file_name"].as_str().unwrap().replace(".png", ".txt");
            *flipped.entry(stem).or_default() += 1;
        }
    }
    // save_txt: one file per image, polygon lines `cls x y ...` equal to Ultralytics' line for line
    // (hashes), except the lines of masks with a flipped pixel.
    let hashes: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(refs.join("seg_label_lines.json")).unwrap())
            .unwrap();
    let hashes = hashes.as_object().unwrap();
    assert_eq!(
        std::fs::read_dir(run.join("labels")).unwrap().count(),
        hashes.len()
    );
    for (name, theirs) in hashes {
        let theirs: Vec<&str> = theirs
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        let text = std::fs::read_to_string(run.join("labels").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mine: Vec<&str> = text.lines().collect();
        for l in &mine {
            let v: Vec<&str> = l.split_whitespace().collect();
            assert!(matches!(v[0], "0" | "1"), "{l}");
            assert!(v.len() >= 7 && v.len() % 2 == 1, "{l}");
        }
        assert_eq!(mine.len(), theirs.len(), "{name}");
        let differ = mine
            .iter()
            .zip(&theirs)
            .filter(|(l, h)| fnv1a64(l.as_bytes()) != **h)
            .count();
        println!(
            "{name}: {} lines, {differ} differ from Ultralytics'",
            mine.len()
        );
        assert_eq!(differ, flipped.get(name).copied().unwrap_or(0), "{name}");
    }
}

/// The `crops/<class>/<file>` of a predict run with their (h, w).
fn crop_sizes(root: &Path) -> std::collections::BTreeMap<String, (usize, usize)> {
    let mut out = std::collections::BTreeMap::new();
    for c in std::fs::read_dir(root).unwrap() {
        let c = c.unwrap().path();
        for f in std::fs::read_dir(&c).unwrap() {
            let f = f.unwrap().path();
            let (h, w) = ryolo::data::image::probe(&f, true)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let key = format!(
                "{}/{}",
                c.file_name().unwrap().to_string_lossy(),
                f.file_name().unwrap().to_string_lossy()
            );
            out.insert(key, (h as usize, w as usize));
        }
    }
    out
}

/// Our crops against Ultralytics' (`crops.json` of scripts/segcls_seg_ref.py): the same files, sizes
/// within 3 px (the boxes differ by about a pixel; Ultralytics' save_one_box grows them by 2% + 10 px).
fn assert_crops(task: &str, run: &Path, refs: &Path) {
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(refs.join("crops.json")).unwrap()).unwrap();
    let want = want[task].as_object().unwrap();
    let ours = crop_sizes(&run.join("crops"));
    let names: Vec<&String> = ours.keys().collect();
    let wnames: Vec<&String> = want.keys().collect();
    assert_eq!(names, wnames, "{task} crop files");
    for (k, (h, w)) in &ours {
        let wh = want[k][0].as_u64().unwrap() as i64;
        let ww = want[k][1].as_u64().unwrap() as i64;
        println!("{task} {k}: ours {h}x{w}, Ultralytics {wh}x{ww}");
        assert!(
            (*h as i64 - wh).abs() <= 3 && (*w as i64 - ww).abs() <= 3,
            "{task} {k}: {h}x{w} vs {wh}x{ww}"
        );
    }
}

#[test]
fn predict_save_crop_writes_ultralytics_crops_for_detect_and_segment() {
    let (Some(s), Some(refs)) = (shared(), seg_ref()) else {
        return;
    };
    let d = tmp("crops");
    std::fs::copy(refs.join("seg_bt.pt"), d.join("seg.pt")).unwrap();
    seg_data(&s, &refs, &d);
    let args = [
        "predict",
        "model=seg.pt",
        "source=data/images",
        "conf=0.05",
        "imgsz=320",
        "save_crop=True",
        "save=False",
    ];
    let (ok, out) = yolo(&args, &d);
    assert!(ok, "{out}");
    assert_crops("segment", &d.join("runs/segment/predict"), &refs);
    let model = s.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    let src = s.join("datasets/brain-tumor/valid/images/val_1 (1).jpg");
    let args = [
        "predict",
        &format!("model={}", model.display()),
        &format!("source={}", src.display()),
        "save_crop=True",
        "save=False",
    ];
    let (ok, out) = yolo(&args, &d);
    assert!(ok, "{out}");
    assert_crops("detect", &d.join("runs/detect/predict"), &refs);
}

#[test]
fn segment_benchmark_reports_mask_map() {
    let (Some(s), Some(refs)) = (shared(), seg_ref()) else {
        return;
    };
    let d = tmp("bench-seg");
    std::fs::copy(refs.join("seg_bt.pt"), d.join("seg.pt")).unwrap();
    let yaml = seg_data(&s, &refs, &d);
    let data = format!("data={}", yaml.display());
    let (ok, out) = yolo(&["benchmark", "model=seg.pt", &data, "imgsz=320"], &d);
    assert!(ok, "{out}");
    let log = std::fs::read_to_string(d.join("benchmarks.log")).unwrap();
    assert!(log.contains("metrics/mAP50-95(M)"), "{log}");
    for fmt in ["PyTorch", "ONNX"] {
        let m = metric_of(&log, fmt);
        assert!((0.0..=1.0).contains(&m), "{log}");
    }
}
