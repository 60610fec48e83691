//! Ultralytics reads what ryolo writes, checked with real Ultralytics 8.4.190. Runs only when
//! `RYOLO_ULTRALYTICS_PYTHON` names a Python that imports it (and torch), e.g.
//! `PYTHONPATH=/work/scratch-ul RYOLO_ULTRALYTICS_PYTHON=/work/main/.venv/bin/python`; skipped
//! loudly otherwise.
//!
//! * Our `.pt` of an Ultralytics-trained model passes `check_pt.py` against the original file
//!   (load, strict structure, weights_only load, forward, predict, val, trainer rebuild, ONNX).
//! * The `best.pt`/`last.pt` of a short ryolo training pass it against what Ultralytics itself
//!   saves for the same weights (`tests/tools/ul_interop.py reference`).
//! * A segment training's `.pt` files load in Ultralytics as `SegmentationModel` with its module
//!   tree, forward outputs and `val()` (`tests/tools/ul_interop.py segment`).
//! * `YOLO("ours.onnx")` predicts the boxes ryolo predicts (1e-3 px) and validates to ryolo's
//!   metrics (1e-4) on the same pixels.

mod common;
use common::{args, tmp};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The Python with Ultralytics, or None after a loud message.
fn ul_python() -> Option<PathBuf> {
    match std::env::var_os("RYOLO_ULTRALYTICS_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!(
                "\n!!!!! SKIPPED: set RYOLO_ULTRALYTICS_PYTHON to a Python with ultralytics==8.4.190 \
                 (and PYTHONPATH if installed with --target) to run the Ultralytics interop checks !!!!!\n"
            );
            None
        }
    }
}

/// `shared/fixtures/ultralytics/ptwrite/check_pt.py`.
fn check_pt_script(shared: &Path) -> PathBuf {
    shared.join("fixtures/ultralytics/ptwrite/check_pt.py")
}

/// This crate's `tests/tools/ul_interop.py`.
fn interop_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/ul_interop.py")
}

/// Runs a Python command in `dir`; returns stdout + stderr, panicking with them on failure.
fn run_py(py: &Path, dir: &Path, argv: &[&str]) -> String {
    let out = Command::new(py)
        .args(argv)
        .current_dir(dir)
        .env("YOLO_OFFLINE", "1")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {argv:?} failed:\n{text}",
        py.display()
    );
    text
}

/// Runs check_pt.py and asserts that nothing failed; returns its result lines.
fn check_pt(
    py: &Path,
    shared: &Path,
    dir: &Path,
    cand: &Path,
    reference: &Path,
    extra: &[&str],
) -> String {
    let script = check_pt_script(shared);
    let mut argv = vec![
        script.to_str().unwrap(),
        cand.to_str().unwrap(),
        reference.to_str().unwrap(),
    ];
    argv.extend_from_slice(extra);
    let out = Command::new(py)
        .args(&argv)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('[') || l.contains(" passed, "))
        .collect();
    let summary = lines.join("\n");
    eprintln!("check_pt {}:\n{summary}", cand.display());
    assert!(
        out.status.success() && !summary.contains("[FAIL]"),
        "check_pt.py failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    summary
}

#[test]
fn our_pt_of_an_ultralytics_model_passes_check_pt() {
    let (Some(py), Some(shared)) = (ul_python(), common::shared()) else {
        return;
    };
    let t0 = Instant::now();
    let d = tmp("ul-bt-pt");
    let original = shared.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    let loaded =
        ryolo::weights::load_model(original.to_str().unwrap(), None, tch::Device::Cpu).unwrap();
    let meta = ryolo::weights::ptwrite::PtMeta::final_from(&loaded.train_args, &loaded.stem);
    let ours = d.join("bt_ryolo.pt");
    ryolo::weights::ptwrite::write_pt(&loaded.model, &meta, &ours).unwrap();
    // Ultralytics' val writes labels.cache next to the labels: it validates a copy of the split,
    // never ../shared itself.
    let ds = d.join("brain-tumor");
    copy_tree(
        &shared.join("datasets/brain-tumor/valid"),
        &ds.join("valid"),
    );
    let data = ds.join("data.yaml");
    std::fs::write(
        &data,
        "train: valid/images\nval: valid/images\nnames:\n  0: negative\n  1: positive\n",
    )
    .unwrap();
    let img = ds.join("valid/images/val_1 (1).jpg");
    let s = check_pt(
        &py,
        &shared,
        &d,
        &ours,
        &original,
        &[
            "--image",
            img.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--imgsz",
            "320",
            "--batch",
            "16",
        ],
    );
    assert!(
        s.contains("[PASS] structure") && s.contains("[PASS] val"),
        "{s}"
    );
    eprintln!(
        "TIMING our_pt_of_an_ultralytics_model_passes_check_pt: {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn trained_best_and_last_pt_pass_check_pt() {
    let (Some(py), Some(shared)) = (ul_python(), common::shared()) else {
        return;
    };
    let t0 = Instant::now();
    let d = tmp("ul-train-pt");
    let yaml = ryolo::data::synth::generate(&d.join("data"), 12, 64, 5).unwrap();
    let run = format!(
        "model=yolov8n.yaml data={} epochs=2 imgsz=64 batch=4 workers=1 project={} name=run plots=False",
        yaml.display(),
        d.display()
    );
    ryolo::engine::train::train(&args(&run), &mut ryolo::engine::train::Callbacks::default())
        .unwrap();
    let t_train = t0.elapsed().as_secs_f64();
    let w = d.join("run/weights");
    let img = std::fs::read_dir(d.join("data/images/val"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for (i, which) in ["best", "last"].iter().enumerate() {
        let reference = d.join(format!("ul_{which}.pt"));
        run_py(
            &py,
            &d,
            &[
                interop_script().to_str().unwrap(),
                "reference",
                w.join(format!("{which}.safetensors")).to_str().unwrap(),
                reference.to_str().unwrap(),
                "--imgsz",
                "64",
            ],
        );
        let mut extra = vec![
            "--image",
            img.to_str().unwrap(),
            "--data",
            yaml.to_str().unwrap(),
            "--imgsz",
            "64",
        ];
        if i > 0 {
            extra.push("--no-export");
        }
        check_pt(
            &py,
            &shared,
            &d,
            &w.join(format!("{which}.pt")),
            &reference,
            &extra,
        );
    }
    eprintln!(
        "TIMING trained_best_and_last_pt_pass_check_pt: {:.1}s ({t_train:.1}s training)",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn ultralytics_reads_our_onnx_like_we_do() {
    let (Some(py), Some(shared)) = (ul_python(), common::shared()) else {
        return;
    };
    let t0 = Instant::now();
    let d = tmp("ul-onnx");
    let pt = d.join("bt.pt");
    std::fs::copy(shared.join("fixtures/ultralytics/bt_yolo11n_best.pt"), &pt).unwrap();
    let onnx = ryolo::export::run(&args(&format!(
        "model={} format=onnx imgsz=320 batch=1",
        pt.display()
    )))
    .unwrap();
    // The comparison needs identical input pixels: the validation images decoded by OpenCV and
    // saved as PNG (their JPEG decoders differ slightly). The original JPEGs are compared too, for
    // information: ryolo's JPEG decoder moves boxes by ~1e-2 px.
    let ds = shared.join("datasets/brain-tumor");
    let exact = d.join("bt_png");
    run_py(
        &py,
        &d,
        &[
            interop_script().to_str().unwrap(),
            "png",
            ds.to_str().unwrap(),
            exact.to_str().unwrap(),
        ],
    );
    let data = exact.join("data.yaml");
    let names = ["val_1 (1)", "val_1 (10)", "val_1 (100)", "val_1 (101)"];
    let pngs: Vec<PathBuf> = names
        .iter()
        .map(|n| exact.join("images").join(format!("{n}.png")))
        .collect();
    let jpgs: Vec<PathBuf> = names
        .iter()
        .map(|n| ds.join("valid/images").join(format!("{n}.jpg")))
        .collect();
    let json = d.join("ul.json");
    let mut argv = vec![
        interop_script().to_str().unwrap().to_string(),
        "onnx".into(),
        onnx.to_str().unwrap().into(),
        json.to_str().unwrap().into(),
        "--imgsz".into(),
        "320".into(),
        "--data".into(),
        data.to_str().unwrap().into(),
        "--images".into(),
    ];
    argv.extend(
        pngs.iter()
            .chain(&jpgs)
            .map(|p| p.to_str().unwrap().to_string()),
    );
    run_py(
        &py,
        &d,
        &argv.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let ul: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();

    let predictor =
        ryolo::engine::predict::Predictor::load(onnx.to_str().unwrap(), 320, tch::Device::Cpu)
            .unwrap();
    let compare = |images: &[PathBuf]| -> (f64, f64, usize) {
        let (mut worst_box, mut worst_conf, mut n_boxes) = (0f64, 0f64, 0);
        for img in images {
            let ours = predictor.predict_path(img).unwrap().detections;
            let theirs = ul["predict"][img.to_str().unwrap()].as_array().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{}: box count", img.display());
            for (a, b) in ours.iter().zip(theirs) {
                let b: Vec<f64> = b
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                assert_eq!(a.cls as f64, b[5], "{}: class", img.display());
                for (x, y) in a.xyxy.iter().zip(&b[..4]) {
                    worst_box = worst_box.max((*x as f64 - y).abs());
                }
                worst_conf = worst_conf.max((a.conf as f64 - b[4]).abs());
                n_boxes += 1;
            }
        }
        (worst_box, worst_conf, n_boxes)
    };
    let (jb, jc, jn) = compare(&jpgs);
    eprintln!("predict (original JPEGs, information): {jn} boxes, max |dbox| {jb:.3e} px, max |dconf| {jc:.3e}");
    let (worst_box, worst_conf, n_boxes) = compare(&pngs);
    eprintln!("predict (same pixels): {n_boxes} boxes, max |dbox| {worst_box:.3e} px, max |dconf| {worst_conf:.3e}");
    assert!(n_boxes > 0, "the comparison needs boxes");
    assert!(worst_box <= 1e-3, "boxes differ by {worst_box} px");
    assert!(worst_conf <= 1e-3, "scores differ by {worst_conf}");

    let r = ryolo::engine::val::run(&args(&format!(
        "model={} data={} imgsz=320 plots=False",
        onnx.display(),
        data.display()
    )))
    .unwrap();
    let m = &r.metrics;
    let ours = [
        ("metrics/precision(B)", m.mp()),
        ("metrics/recall(B)", m.mr()),
        ("metrics/mAP50(B)", m.map50()),
        ("metrics/mAP50-95(B)", m.map()),
        ("fitness", m.fitness()),
    ];
    let mut worst = 0f64;
    for (k, v) in ours {
        let u = ul["val"][k]
            .as_f64()
            .unwrap_or_else(|| panic!("Ultralytics val has no {k}"));
        eprintln!("val {k}: ryolo {v:.6} Ultralytics {u:.6}");
        worst = worst.max((v - u).abs());
    }
    assert!(worst <= 1e-4, "val metrics differ by {worst}");
    eprintln!(
        "TIMING ultralytics_reads_our_onnx_like_we_do: {:.1}s (max metric diff {worst:.2e})",
        t0.elapsed().as_secs_f64()
    );
}

/// Copies a folder tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Largest |a - b| of two tensors of one shape.
fn max_abs(a: &tch::Tensor, b: &tch::Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// A ryolo segment training's `best.pt`, `last.pt` and `yolo export format=pt` file load in
/// Ultralytics as `SegmentationModel` (task segment), with the spec's state-dict keys, the module
/// tree of Ultralytics' own files (a same-weights reference and a real Ultralytics training), the
/// same forward outputs as ryolo on `model_input.npy`, and `val()` on coco8-seg runs.
#[test]
fn segment_best_pt_loads_predicts_and_validates_in_ultralytics() {
    let (Some(py), Some(shared)) = (ul_python(), common::shared()) else {
        return;
    };
    let t0 = Instant::now();
    let d = tmp("ul-seg-pt");
    let ds = d.join("coco8-seg");
    copy_tree(&shared.join("datasets/coco8-seg"), &ds);
    let yaml = d.join("coco8-seg.yaml");
    let text = std::fs::read_to_string(ds.join("coco8-seg.yaml")).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("path:") {
                format!("path: {}", ds.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&yaml, text).unwrap();
    ryolo::engine::train::train(
        &args(&format!(
            "task=segment model=yolo11n-seg.yaml data={} epochs=1 imgsz=64 batch=4 workers=1 project={} name=run plots=False",
            yaml.display(),
            d.display()
        )),
        &mut ryolo::engine::train::Callbacks::default(),
    )
    .unwrap();
    let t_train = t0.elapsed().as_secs_f64();
    let w = d.join("run/weights");
    let script = interop_script();
    let script = script.to_str().unwrap();
    let reference = d.join("ul_best.pt");
    run_py(
        &py,
        &d,
        &[
            script,
            "reference",
            w.join("best.safetensors").to_str().unwrap(),
            reference.to_str().unwrap(),
            "--imgsz",
            "64",
        ],
    );
    let ult = d.join("ult");
    run_py(
        &py,
        &d,
        &[
            script,
            "train",
            "yolo11n-seg.yaml",
            yaml.to_str().unwrap(),
            ult.to_str().unwrap(),
        ],
    );
    let trained = ult.join("train/weights/best.pt");
    let input = shared.join("fixtures/ultralytics/segment/model_input.npy");
    let keys = shared.join("spec/keys_yolo11n-seg.tsv");
    let exp_st = d.join("exported.safetensors");
    std::fs::copy(w.join("best.safetensors"), &exp_st).unwrap();
    let export =
        ryolo::export::run(&args(&format!("model={} format=pt", exp_st.display()))).unwrap();
    assert_eq!(export, d.join("exported.pt"));
    let x = tch::Tensor::read_npy(&input).unwrap();
    for (i, pt) in [w.join("best.pt"), w.join("last.pt"), export]
        .iter()
        .enumerate()
    {
        let out = d.join(format!("check{i}"));
        let mut argv = vec![
            script,
            "segment",
            pt.to_str().unwrap(),
            reference.to_str().unwrap(),
            out.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
            "--trained",
            trained.to_str().unwrap(),
        ];
        if i == 0 {
            argv.extend(["--data", yaml.to_str().unwrap(), "--imgsz", "64"]);
        }
        run_py(&py, &d, &argv);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("segment.json")).unwrap())
                .unwrap();
        assert_eq!(report["task"], "segment", "{report}");
        assert_eq!(report["model_class"], "SegmentationModel", "{report}");
        assert_eq!(report["head_class"], "Segment", "{report}");
        assert_eq!(report["keys"], 561, "{report}");
        assert_eq!(report["structure_diffs"].as_array().map(Vec::len), Some(0));
        if i == 0 {
            let val = &report["val"];
            assert!(val["metrics/mAP50-95(M)"].is_number(), "{report}");
            eprintln!("Ultralytics val of our segment best.pt: {val}");
        }
        let m = ryolo::weights::load_model(pt.to_str().unwrap(), None, tch::Device::Cpu)
            .unwrap()
            .model;
        assert_eq!(m.task(), ryolo::task::TaskKind::Segment);
        let (y, p) = tch::no_grad(|| m.predict_with_protos(&x));
        let p = p.expect("a segment model has prototypes");
        let uy = tch::Tensor::read_npy(out.join("output0.npy")).unwrap();
        let up = tch::Tensor::read_npy(out.join("proto.npy")).unwrap();
        let (dy, dp) = (max_abs(&y, &uy), max_abs(&p, &up));
        eprintln!(
            "{}: Ultralytics vs ryolo forward: output0 {:?} max|d| {dy:.3e}, proto {:?} max|d| {dp:.3e}",
            pt.display(),
            y.size(),
            p.size()
        );
        assert!(dy <= 1e-3, "output0 differs by {dy}");
        assert!(dp <= 1e-4, "prototypes differ by {dp}");
    }
    eprintln!(
        "TIMING segment_best_pt_loads_predicts_and_validates_in_ultralytics: {:.1}s ({t_train:.1}s training)",
        t0.elapsed().as_secs_f64()
    );
}
