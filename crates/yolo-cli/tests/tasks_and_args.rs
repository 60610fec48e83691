//! Tasks and arguments through the real `yolo` binary: tasks ryolo does not implement (8.4's
//! semantic and depth) stop with a message that names them (before anything is written),
//! unimplemented arguments are each named in a warning, and the newly honoured arguments
//! (classes, verbose, save) do what they say.

mod common;
use common::{shared, tmp, yolo};
use std::path::PathBuf;

#[test]
fn unimplemented_tasks_stop_with_a_clear_message() {
    let d = tmp("tasks");
    // Ultralytics 8.4's semantic-segmentation and depth tasks are recognised, not implemented.
    let cases: [(&[&str], &str); 3] = [
        (
            &["semantic", "train", "model=yolo11n.yaml", "data=x.yaml"],
            "'semantic'",
        ),
        (&["train", "task=depth", "data=x.yaml"], "'depth'"),
        (
            &["depth", "predict", "model=yolo11n.yaml", "source=x.jpg"],
            "'depth'",
        ),
    ];
    for (args, task) in cases {
        let (ok, out) = yolo(args, &d);
        assert!(!ok, "{args:?} must fail: {out}");
        assert!(
            out.contains(task) && out.contains("not supported by ryolo yet"),
            "{args:?}: {out}"
        );
        assert!(!d.join("runs").exists(), "{args:?} wrote a run folder");
    }
    // Classify training on a folder without train/ stops before anything is written.
    let empty = d.join("nodata");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, out) = yolo(
        &[
            "classify",
            "train",
            "model=yolo11n-cls.yaml",
            &format!("data={}", empty.display()),
        ],
        &d,
    );
    assert!(!ok && out.contains("'train' folder"), "{out}");
    assert!(
        !d.join("runs").exists(),
        "classify train wrote a run folder: {out}"
    );
    // A YAML whose OBB head is malformed (one input instead of P3, P4, P5) stops with a message
    // naming the module, before anything is written.
    let y = d.join("mymodel.yaml");
    std::fs::write(
        &y,
        "nc: 2\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n  - [[0], 1, OBB, [2, 1]]\n",
    )
    .unwrap();
    let (ok, out) = yolo(&["info", &format!("model={}", y.display())], &d);
    assert!(!ok && out.contains("OBB needs 3 inputs"), "{out}");
    // The task word and task= must agree.
    let (ok, out) = yolo(&["detect", "train", "task=pose"], &d);
    assert!(!ok && out.contains("contradicts"), "{out}");
}

#[test]
fn every_unimplemented_argument_is_named_once() {
    let d = tmp("unimpl");
    let set = [
        "profile=True",
        "compile=True",
        "multi_scale=0.5",
        "rle=2.0",
        "dlog=2.0",
        "dgrad=1.0",
        "dlam=2.0",
        "cls_pw=1.0",
        "distill_model=teacher.pt",
        "dis=2.0",
        "dnn=True",
        "nms=True",
        "visualize=True",
        "embed=[1]",
        "show=True",
        "optimize=True",
        "simplify=False",
        "workspace=4",
    ];
    let mut args = vec!["info", "model=yolo11n.yaml"];
    args.extend(set);
    let (ok, out) = yolo(&args, &d);
    assert!(ok, "{out}");
    for kv in set {
        let key = kv.split('=').next().unwrap();
        let n = out.matches(&format!("WARNING {key}=")).count();
        assert_eq!(n, 1, "{key} must be named in exactly one warning:\n{out}");
    }
    // Defaults warn about nothing.
    let (ok, out) = yolo(&["info", "model=yolo11n.yaml"], &d);
    assert!(ok && !out.contains("WARNING"), "{out}");
}

#[test]
fn val_honours_classes_and_verbose() {
    let Some(shared) = shared() else { return };
    let d = tmp("valargs");
    let model = shared.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    // A small split: 12 validation images of brain-tumor (both classes present).
    let src = shared.join("datasets/brain-tumor/valid/images");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let list: Vec<String> = files[..12]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    std::fs::write(d.join("val.txt"), list.join("\n")).unwrap();
    std::fs::write(
        d.join("data.yaml"),
        format!(
            "path: {}\ntrain: val.txt\nval: val.txt\nnames:\n  0: negative\n  1: positive\n",
            d.display()
        ),
    )
    .unwrap();
    let base = [
        "val".to_string(),
        format!("model={}", model.display()),
        "data=data.yaml".into(),
        "imgsz=320".into(),
        "plots=False".into(),
    ];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.iter().map(String::as_str).collect();
        a.extend(extra);
        yolo(&a, &d)
    };
    let instances = |out: &str, name: &str| -> usize {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap_or(usize::MAX)
    };
    let (ok, all) = run(&[]);
    assert!(ok, "{all}");
    let (neg, pos) = (instances(&all, "negative"), instances(&all, "positive"));
    assert!(
        neg > 0 && pos > 0 && neg != usize::MAX && pos != usize::MAX,
        "{all}"
    );
    assert_eq!(instances(&all, "all"), neg + pos, "{all}");
    // classes=1 keeps only the positive labels.
    let (ok, one) = run(&["classes=1"]);
    assert!(ok, "{one}");
    assert_eq!(instances(&one, "all"), pos, "{one}");
    // verbose=False: no per-class rows.
    let (ok, quiet) = run(&["verbose=False"]);
    assert!(ok, "{quiet}");
    assert_eq!(instances(&quiet, "negative"), usize::MAX, "{quiet}");
    assert_eq!(instances(&quiet, "all"), neg + pos, "{quiet}");
}

#[test]
fn train_save_false_writes_no_checkpoints() {
    let d = tmp("nosave");
    let (ok, out) = yolo(
        &["data", "synth", "out=data", "n=8", "imgsz=64", "seed=1"],
        &d,
    );
    assert!(ok, "{out}");
    let project = format!("project={}", d.join("runs").display());
    let (ok, out) = yolo(
        &[
            "train",
            "model=yolo11n.yaml",
            "data=data/data.yaml",
            "epochs=1",
            "imgsz=64",
            "batch=4",
            "workers=1",
            "plots=False",
            "save=False",
            "name=nosave",
            &project,
        ],
        &d,
    );
    assert!(ok, "{out}");
    // The console starts as Ultralytics': the version line, then the per-layer table.
    let first = out.lines().find(|l| l.starts_with("ryolo ")).unwrap_or("");
    assert!(
        first.contains("🚀 Rust-") && first.contains("libtorch-2.11"),
        "{out}"
    );
    assert!(out.contains("from  n    params  module"), "{out}");
    assert!(out.contains("ultralytics.nn.modules.head.Detect"), "{out}");
    let run = d.join("runs/nosave");
    assert!(run.join("results.csv").exists(), "{out}");
    assert!(!run.join("weights/last.safetensors").exists());
    assert!(!run.join("weights/best.safetensors").exists());
}

#[test]
fn classify_predict_runs_and_follows_the_model_task() {
    let Some(shared) = shared() else { return };
    let d = tmp("clspredict");
    let model = shared.join("fixtures/ultralytics/classify/cls_yolo11n.pt");
    let bus = shared.join("datasets/samples/bus.jpg");
    // No task word: the checkpoint's Classify head picks runs/classify.
    let (ok, out) = yolo(
        &[
            "predict",
            &format!("model={}", model.display()),
            &format!("source={}", bus.display()),
            "save_txt=True",
        ],
        &d,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(": 224x224 chair 0.72, person 0.23, bowl 0.05, "),
        "{out}"
    );
    let labels = d.join("runs/classify/predict/labels/bus.txt");
    assert_eq!(
        std::fs::read_to_string(&labels).unwrap(),
        "0.72 chair\n0.23 person\n0.05 bowl\n"
    );
    assert!(d.join("runs/classify/predict/bus.jpg").exists());
    // With the task word.
    let (ok, out) = yolo(
        &[
            "classify",
            "predict",
            &format!("model={}", model.display()),
            &format!("source={}", bus.display()),
            "save=False",
        ],
        &d,
    );
    assert!(ok && out.contains("chair 0.72"), "{out}");
}

/// `auto_augment=augmix` and `auto_augment=autoaugment` train a classifier (one epoch on
/// mnist160 at 32 px) without any warning about the policy.
#[test]
fn classify_trains_with_augmix_and_autoaugment_without_warnings() {
    let Some(shared) = shared() else { return };
    let data = shared.join("datasets/mnist160");
    let d = tmp("cls-autoaug");
    for policy in ["augmix", "autoaugment"] {
        let (ok, out) = yolo(
            &[
                "classify",
                "train",
                "model=yolo11n-cls.yaml",
                &format!("data={}", data.display()),
                "epochs=1",
                "imgsz=32",
                "plots=False",
                &format!("auto_augment={policy}"),
                &format!("name={policy}"),
            ],
            &d,
        );
        assert!(ok, "{policy}: {out}");
        assert!(out.contains(&format!("auto_augment={policy}")), "{out}");
        assert!(!out.to_lowercase().contains("warning"), "{policy}: {out}");
        assert!(out.contains("top1_acc"), "{policy}: {out}");
    }
}
