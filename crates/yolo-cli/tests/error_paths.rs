//! Errors name their file: a non-UTF-8 source list, and an output folder that cannot be created
//! (`project=` under a regular file: root ignores permissions, not `Not a directory`) for train,
//! val, predict, track and export, each a non-zero exit with the path in the message, no panic.

mod common;
use common::{tmp, yolo};
use std::path::{Path, PathBuf};

/// A 16x thinner 3-class yolov8n YAML in `d` (fresh weights: quick to build and run).
fn tiny_model(d: &Path) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ryolo/models");
    let text = std::fs::read_to_string(root.join("yolov8.yaml"))
        .unwrap()
        .replace("nc: 80", "nc: 3")
        .replace("n: [0.33, 0.25, 1024]", "n: [0.33, 0.0625, 1024]");
    assert!(text.contains("nc: 3"), "the built-in yaml changed");
    let f = d.join("tiny-yolov8n.yaml");
    std::fs::write(&f, text).unwrap();
    f
}

/// Asserts a failed run whose message names `path` and holds no panic.
fn assert_names(ok: bool, out: &str, path: &str, what: &str) {
    assert!(!ok, "{what}: expected a failure\n{out}");
    assert!(
        out.contains(path),
        "{what}: the error does not name {path}\n{out}"
    );
    assert!(!out.contains("panicked"), "{what}: a panic\n{out}");
}

#[test]
fn a_non_utf8_source_list_is_named_with_its_line() {
    let d = tmp("errpath-list");
    let model = tiny_model(&d);
    std::fs::write(d.join("list.txt"), b"ok.jpg\n\xff\xfe\x00bad.jpg\n").unwrap();
    let (ok, out) = yolo(
        &[
            "predict",
            &format!("model={}", model.display()),
            "source=list.txt",
            "imgsz=32",
        ],
        &d,
    );
    assert_names(ok, &out, "list.txt:2", "predict source=list.txt");
    assert!(out.contains("UTF-8"), "{out}");
}

#[test]
fn an_output_folder_that_cannot_be_created_is_named() {
    let d = tmp("errpath-project");
    let model = tiny_model(&d);
    let m = format!("model={}", model.display());
    let (ok, out) = yolo(&["data", "synth", "out=data", "n=4", "imgsz=64"], &d);
    assert!(ok, "{out}");
    std::fs::write(d.join("file.txt"), "a regular file").unwrap();
    let bad = d.join("file.txt/sub");
    let project = format!("project={}", bad.display());
    let img = "source=data/images/val/val_00000.png";
    let runs: [(&str, Vec<&str>); 6] = [
        (
            "train",
            vec![
                "train",
                &m,
                "data=data/data.yaml",
                "epochs=1",
                "imgsz=32",
                &project,
            ],
        ),
        (
            "val",
            vec!["val", &m, "data=data/data.yaml", "imgsz=32", &project],
        ),
        (
            "val save_json",
            vec![
                "val",
                &m,
                "data=data/data.yaml",
                "imgsz=32",
                "plots=False",
                "save_json=True",
                &project,
            ],
        ),
        ("predict", vec!["predict", &m, img, "imgsz=32", &project]),
        (
            // Nothing is detected by fresh weights: the folder is still made first.
            "predict save_txt",
            vec![
                "predict",
                &m,
                img,
                "imgsz=32",
                "save=False",
                "save_txt=True",
                &project,
            ],
        ),
        ("track", vec!["track", &m, img, "imgsz=32", &project]),
    ];
    let want = bad.display().to_string();
    for (what, args) in runs {
        let (ok, out) = yolo(&args, &d);
        assert_names(ok, &out, &want, what);
    }
    // Export writes beside the model: there a folder stands in the way of the file.
    std::fs::create_dir_all(d.join("tiny-yolov8n.onnx")).unwrap();
    let (ok, out) = yolo(&["export", &m, "format=onnx", "imgsz=32"], &d);
    assert_names(ok, &out, "tiny-yolov8n.onnx", "export");
}
