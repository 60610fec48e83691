//! The real `yolo` binary: info, predict with saved outputs, argument errors.

mod common;
use common::{tmp, yolo};
use std::path::PathBuf;
use std::process::Command;

#[test]
fn info_prints_the_ultralytics_summary() {
    let d = tmp("info");
    let (ok, out) = yolo(&["info", "model=yolo11n.yaml"], &d);
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "YOLO11n summary: 181 layers, 2,624,080 parameters, 2,624,064 gradients, 6.7 GFLOPs"
        ),
        "{out}"
    );
}

#[test]
fn bad_arguments_are_named() {
    let d = tmp("bad");
    let (ok, out) = yolo(&["predict", "cnf=0.3"], &d);
    assert!(!ok);
    assert!(
        out.contains("'cnf' is not a valid YOLO argument") && out.contains("conf"),
        "{out}"
    );
    let (ok, out) = yolo(&["predict", "model=missing.pt", "source=x.jpg"], &d);
    assert!(!ok);
    assert!(out.contains("missing.pt"), "{out}");
    let (ok, out) = yolo(&["settings", "runs_dir=elsewhere"], &d);
    assert!(ok, "{out}");
    assert!(out.contains("\"runs_dir\": \"elsewhere\""), "{out}");
    let (ok, out) = yolo(&["settings", "no_such_key=1"], &d);
    assert!(!ok && out.contains("no_such_key"), "{out}");
    // Data tools: a stray word is refused before anything is written; an unknown key is named.
    let (ok, out) = yolo(&["data", "synth", "out=s1", "n=2", "imgsz=32", "help"], &d);
    assert!(!ok && out.contains("unexpected argument 'help'"), "{out}");
    assert!(!d.join("s1").exists());
    let (ok, out) = yolo(&["data", "synth", "out=s2", "n=2", "imgsz=32", "nn=5"], &d);
    assert!(ok, "{out}");
    assert!(
        out.contains("WARNING yolo data synth: 'nn' is not used"),
        "{out}"
    );
}

#[test]
fn predict_saves_images_and_labels_in_incremented_runs() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if !shared.join("fixtures").exists() {
        eprintln!("\n!!!!! SKIPPED: ../shared not found !!!!!\n");
        return;
    }
    let d = tmp("predict");
    let model = shared.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    let src = shared.join("datasets/brain-tumor/valid/images/val_1 (1*.jpg");
    let args = [
        "predict",
        &format!("model={}", model.display()),
        &format!("source={}", src.display()),
        "save_txt=True",
        "save_conf=True",
        "save_crop=True",
    ];
    let (ok, out) = yolo(&args, &d);
    assert!(ok, "{out}");
    assert!(out.contains("image 1/") && out.contains("Speed:"), "{out}");
    assert!(out.contains("1 negative, 1 positive"), "{out}");
    let run = d.join("runs/detect/predict");
    assert!(run.join("val_1 (1).jpg").exists());
    let label = std::fs::read_to_string(run.join("labels/val_1 (1).txt")).unwrap();
    assert!(
        run.join("crops/negative/val_1 (1).jpg").exists()
            && run.join("crops/positive/val_1 (1).jpg").exists()
    );
    let rows: Vec<Vec<f64>> = label
        .lines()
        .map(|l| l.split(' ').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].len(), 6);
    assert!((rows[0][5] - 0.4542).abs() < 2e-3, "{label}");
    let (ok, out) = yolo(&args, &d);
    assert!(ok, "{out}");
    assert!(d.join("runs/detect/predict-2").exists());
    // Machine-readable output: one JSON line per image on stdout.
    let out = Command::new(env!("CARGO_BIN_EXE_yolo"))
        .args([
            "predict",
            &format!("model={}", model.display()),
            &format!("source={}", src.display()),
            "format=json",
            "save=False",
        ])
        .current_dir(&d)
        .env("YOLO_CONFIG_DIR", d.join("cfg"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert_eq!(lines[0]["detections"][0]["name"], "negative");
    // Export next to the weights.
    std::fs::copy(&model, d.join("bt.pt")).unwrap();
    let (ok, out) = yolo(&["export", "model=bt.pt", "format=onnx"], &d);
    assert!(ok, "{out}");
    assert!(out.contains("export success"), "{out}");
    assert!(std::fs::metadata(d.join("bt.onnx")).unwrap().len() > 10_000_000);
    let (ok, out) = yolo(
        &["export", "model=bt.pt", "format=onnx", "dynamic=True"],
        &d,
    );
    assert!(ok && out.contains("(batch, 3, height, width)"), "{out}");
    let (ok, out) = yolo(&["export", "model=bt.pt", "format=onnx", "half"], &d);
    assert!(!ok && out.contains("quantize=16"), "{out}");
}

#[test]
fn sigkill_leaves_a_loadable_resumable_run() {
    let d = tmp("kill");
    let (ok, out) = yolo(&["data", "synth", "out=synth", "n=12", "imgsz=64"], &d);
    assert!(ok, "{out}");
    let project = format!("project={}", d.join("runs").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_yolo"))
        .args([
            "train",
            "model=yolo11n.yaml",
            "data=synth/data.yaml",
            "epochs=12",
            "imgsz=64",
            "batch=4",
            "workers=1",
            "val=False",
            "plots=False",
            &project,
            "name=k",
        ])
        .current_dir(&d)
        .env("YOLO_CONFIG_DIR", d.join("cfg"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let csv = d.join("runs/k/results.csv");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&csv)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 4
    {
        assert!(start.elapsed().as_secs() < 120, "training did not progress");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let last = d.join("runs/k/weights/last.safetensors");
    let (ok, out) = yolo(
        &[
            "val",
            &format!("model={}", last.display()),
            "data=synth/data.yaml",
            "imgsz=64",
            "plots=False",
        ],
        &d,
    );
    assert!(ok, "last checkpoint must load after SIGKILL: {out}");
    let (ok, out) = yolo(
        &["train", "resume", &format!("model={}", last.display())],
        &d,
    );
    assert!(ok, "{out}");
    assert!(out.contains("Resuming training"), "{out}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let epochs: Vec<usize> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        epochs,
        (1..=12).collect::<Vec<_>>(),
        "one row per epoch, no duplicates:\n{text}"
    );
    assert!(leftover_tmp(&d.join("runs/k/weights")).is_empty());
}

fn leftover_tmp(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

#[test]
fn non_finite_loss_stops_with_epoch_and_batch() {
    let d = tmp("nan");
    let (ok, out) = yolo(&["data", "synth", "out=synth", "n=8", "imgsz=64"], &d);
    assert!(ok, "{out}");
    let (ok, out) = yolo(
        &[
            "train",
            "model=yolo11n.yaml",
            "data=synth/data.yaml",
            "epochs=2",
            "imgsz=64",
            "batch=4",
            "box=1e39",
            "plots=False",
            "project=runs",
            "name=n",
        ],
        &d,
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("non-finite loss") && out.contains("epoch 1 batch 1"),
        "{out}"
    );
}

#[test]
fn benchmark_exports_onnx_and_validates_both_formats() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if !shared.join("fixtures").exists() {
        eprintln!("\n!!!!! SKIPPED: ../shared not found !!!!!\n");
        return;
    }
    let shared = shared.canonicalize().unwrap();
    let d = tmp("benchmark");
    std::fs::copy(
        shared.join("fixtures/ultralytics/bt_yolo11n_best.pt"),
        d.join("bt.pt"),
    )
    .unwrap();
    // A 12-image val list keeps it quick.
    let imgs = shared.join("datasets/brain-tumor/valid/images");
    let mut list: Vec<PathBuf> = std::fs::read_dir(&imgs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    list.sort();
    let text: String = list[..12]
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    std::fs::write(d.join("val.txt"), text).unwrap();
    std::fs::write(
        d.join("data.yaml"),
        format!(
            "path: {}\ntrain: val.txt\nval: val.txt\nnames: [negative, positive]\n",
            d.display()
        ),
    )
    .unwrap();
    let (ok, out) = yolo(&["benchmark", "model=bt.pt", "data=data.yaml"], &d);
    assert!(ok, "{out}");
    assert!(d.join("bt.onnx").exists(), "{out}");
    let log = std::fs::read_to_string(d.join("benchmarks.log")).unwrap();
    let map_of = |fmt: &str| -> f64 {
        let line = log
            .lines()
            .find(|l| l.starts_with(fmt))
            .unwrap_or_else(|| panic!("no {fmt} row in {log}"));
        assert!(line.contains('✅'), "{line}");
        line.split_whitespace().nth(3).unwrap().parse().unwrap()
    };
    let (pt, onnx) = (map_of("PyTorch"), map_of("ONNX"));
    // Same weights: the two formats differ only by rect vs square letterboxes.
    assert!(pt > 0.05 && (pt - onnx).abs() < 0.05, "{log}");
}

#[test]
fn predict_on_a_video_writes_an_annotated_video_and_frame_labels() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if !shared.join("fixtures").exists() {
        eprintln!("\n!!!!! SKIPPED: ../shared not found !!!!!\n");
        return;
    }
    let shared = shared.canonicalize().unwrap();
    let d = tmp("video");
    let model = shared.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    let src = shared.join("datasets/samples/car-detection.mp4");
    let args = [
        "predict",
        &format!("model={}", model.display()),
        &format!("source={}", src.display()),
        "vid_stride=60",
        "imgsz=320",
        "conf=0.01",
        "save_txt=True",
        "save_frames=True",
        "format=json",
    ];
    let (ok, out) = yolo(&args, &d);
    assert!(ok, "{out}");
    assert!(out.contains("video 1/1 (frame 61/377)"), "{out}");
    let run = d.join("runs/detect/predict");
    // Frames 1, 61, ..., 361: seven of them.
    let frames: Vec<_> = std::fs::read_dir(run.join("car-detection_frames"))
        .unwrap()
        .collect();
    assert_eq!(frames.len(), 7, "{out}");
    let json_frames = out.lines().filter(|l| l.contains("\"frame\":")).count();
    assert_eq!(json_frames, 7, "{out}");
    let avi = run.join("car-detection.avi");
    let back = ryolo::data::video::VideoReader::open(avi.to_str().unwrap(), false)
        .unwrap()
        .count();
    assert_eq!(back, 7);
    // Labels are named <stem>_<frame>.txt and only exist for frames with detections.
    for e in std::fs::read_dir(run.join("labels")).into_iter().flatten() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        let k: usize = name
            .strip_prefix("car-detection_")
            .and_then(|s| s.strip_suffix(".txt"))
            .unwrap()
            .parse()
            .unwrap();
        assert!((k - 1).is_multiple_of(60), "{name}");
    }
}
