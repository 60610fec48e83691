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
    assert!(
        d.join("runs/classify/val/confusion_matrix.png").exists(),
        "{out}"
    );
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
