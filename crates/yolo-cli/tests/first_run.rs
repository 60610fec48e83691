//! The quickstart's first lines without a network: absent official weights or a built-in
//! dataset fail with the one-line download error and leave no `runs/` folder; `yolo val` without
//! `data=` validates on the dataset stored in the checkpoint, else on the task's default.

mod common;
use common::{shared, tmp};
use std::path::{Path, PathBuf};

/// Runs `yolo` in `cwd` with settings under `cwd/cfg` and the asset base at `assets`.
fn yolo(args: &[&str], cwd: &Path, assets: &str) -> (bool, String) {
    common::yolo_env(args, cwd, &[("RYOLO_ASSETS_URL", assets)])
}

/// A loopback URL nothing listens on (the offline case).
fn offline() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// Files (not folders) under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn offline_first_run_fails_in_one_line_and_writes_no_run_folder() {
    let d = tmp("first-run");
    let base = offline();
    std::fs::write(
        d.join("data.yaml"),
        "train: images\nval: images\nnames: [a]\n",
    )
    .unwrap();
    // Absent official weights: the download fails, naming the URL and where the file goes.
    let (ok, out) = yolo(
        &[
            "train",
            "model=yolo11n.pt",
            "data=data.yaml",
            "epochs=1",
            "imgsz=64",
        ],
        &d,
        &base,
    );
    assert!(!ok, "{out}");
    let err = out.lines().find(|l| l.starts_with("Error:")).unwrap_or("");
    assert!(err.contains(&format!("{base}/v8.4.0/yolo11n.pt")), "{out}");
    assert!(
        err.contains(&d.join("weights/yolo11n.pt").display().to_string()),
        "{out}"
    );
    assert!(err.contains("offline"), "{out}");
    assert!(
        !d.join("runs").exists(),
        "a failed load wrote a run folder: {out}"
    );
    assert!(files_under(&d.join("weights")).is_empty());
    // An absent file that is no official asset stays "not found".
    let (ok, out) = yolo(&["train", "model=mine.pt", "data=data.yaml"], &d, &base);
    assert!(!ok && out.contains("'mine.pt' not found"), "{out}");
    assert!(!d.join("runs").exists(), "{out}");
    // The built-in coco8.yaml offline: the dataset zip's URL and datasets_dir are named.
    let (ok, out) = yolo(
        &["train", "model=yolo11n.yaml", "data=coco8.yaml"],
        &d,
        &base,
    );
    assert!(
        !ok && out.contains(&format!("{base}/v0.0.0/coco8.zip")),
        "{out}"
    );
    assert!(
        out.contains(&d.join("datasets/coco8").display().to_string()),
        "{out}"
    );
    assert!(!d.join("runs").exists(), "{out}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn val_without_data_uses_the_checkpoint_dataset() {
    let Some(shared) = shared() else {
        return;
    };
    let model = shared.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    let model = format!("model={}", model.display());
    // The fixture was trained with data=shared/datasets/brain-tumor/brain-tumor.yaml: build a
    // two-image copy at that relative path.
    let d = tmp("val-ckpt-data");
    let root = d.join("shared/datasets/brain-tumor");
    let src = shared.join("datasets/brain-tumor/valid");
    for (kind, ext) in [("images", "jpg"), ("labels", "txt")] {
        std::fs::create_dir_all(root.join("valid").join(kind)).unwrap();
        for i in [1, 2] {
            let f = format!("val_1 ({i}).{ext}");
            std::fs::copy(
                src.join(kind).join(&f),
                root.join("valid").join(kind).join(&f),
            )
            .unwrap();
        }
    }
    std::fs::write(
        root.join("brain-tumor.yaml"),
        "train: valid/images\nval: valid/images\nnames: [negative, positive]\n",
    )
    .unwrap();
    let base = offline();
    let (ok, out) = yolo(&["val", &model, "imgsz=160", "plots=False"], &d, &base);
    assert!(ok, "{out}");
    assert!(
        out.contains("brain-tumor/valid/labels... 2 images"),
        "{out}"
    );
    assert!(!out.contains("Using default"), "{out}");
    // Elsewhere that path does not resolve: the task's default (coco8.yaml), here offline.
    let e = tmp("val-default-data");
    let (ok, out) = yolo(&["val", &model, "imgsz=160"], &e, &base);
    assert!(!ok, "{out}");
    assert!(
        out.contains("Checkpoint dataset 'shared/datasets/brain-tumor/brain-tumor.yaml' was not found. Using default 'data=coco8.yaml'"),
        "{out}"
    );
    assert!(out.contains(&format!("{base}/v0.0.0/coco8.zip")), "{out}");
    std::fs::remove_dir_all(&d).unwrap();
    std::fs::remove_dir_all(&e).unwrap();
}
