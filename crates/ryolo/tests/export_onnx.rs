//! ONNX export checked in ONNX Runtime: our file equals our own forward within 1e-4 and Ultralytics'
//! own export of the same weights within 1e-3 (on bt_input.npy).

mod common;
use ryolo::export::{metadata, to_onnx, ExportConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Tensor};

fn python() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let ok = Command::new(&p)
        .args(["-c", "import onnxruntime"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Some(p)
    } else {
        eprintln!("\n!!!!! SKIPPED: onnxruntime not found in .venv (run scripts/setup.sh) !!!!!\n");
        None
    }
}

fn run_ort(py: &Path, model: &Path, input: &Path, out: &Path) {
    let script = "import sys, numpy as np, onnxruntime as ort\ns = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\nx = np.load(sys.argv[2])\ny = s.run(None, {s.get_inputs()[0].name: x})[0]\nnp.save(sys.argv[3], y)\n";
    let st = Command::new(py)
        .args(["-c", script])
        .arg(model)
        .arg(input)
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success(), "onnxruntime failed on {}", model.display());
}

#[test]
fn exported_yolo11n_runs_in_onnxruntime() {
    let Some(shared) = common::shared() else {
        return;
    };
    let Some(py) = python() else { return };
    let fx = shared.join("fixtures/ultralytics");
    let m = common::bt_model(&shared);
    let cfg = ExportConfig {
        imgsz: (640, 640),
        opset: 18,
        metadata: metadata(&m, (640, 640), 1, "{}"),
        batch: 1,
        dynamic: false,
    };
    let bytes = to_onnx(&m, &cfg).unwrap();
    let dir = std::env::temp_dir().join(format!("ryolo-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ours = dir.join("ours.onnx");
    std::fs::write(&ours, bytes).unwrap();
    run_ort(&py, &ours, &fx.join("bt_input.npy"), &dir.join("ours.npy"));
    run_ort(
        &py,
        &fx.join("bt_yolo11n_best.onnx"),
        &fx.join("bt_input.npy"),
        &dir.join("theirs.npy"),
    );
    let y_ours = Tensor::read_npy(dir.join("ours.npy")).unwrap();
    let y_theirs = Tensor::read_npy(dir.join("theirs.npy")).unwrap();
    let x = Tensor::read_npy(fx.join("bt_input.npy")).unwrap();
    let y_torch = tch::no_grad(|| m.predict(&x));
    assert_eq!(y_ours.size(), vec![1, 6, 8400]);
    // Box rows hold pixel coordinates up to 640, where one f32 ulp is 6e-5: compare them relative to
    // their magnitude; score rows (probabilities) absolutely.
    let rows = |t: &Tensor, a: i64, n: i64| t.narrow(1, a, n);
    let rel = |a: &Tensor, b: &Tensor| {
        ((a - b).abs() / b.abs().clamp_min(1.0))
            .max()
            .double_value(&[])
    };
    let abs = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
    for (name, other, tol) in [
        ("our libtorch forward", &y_torch, 1e-4),
        ("Ultralytics' ONNX", &y_theirs, 1e-3),
    ] {
        let (b_abs, b_rel) = (
            abs(&rows(&y_ours, 0, 4), &rows(other, 0, 4)),
            rel(&rows(&y_ours, 0, 4), &rows(other, 0, 4)),
        );
        let s_abs = abs(&rows(&y_ours, 4, 2), &rows(other, 4, 2));
        println!("ONNX Runtime, ours vs {name}: box rows max abs {b_abs:.2e} (relative {b_rel:.2e}), score rows max abs {s_abs:.2e}");
        assert!(b_rel <= tol, "{name}: box rows relative {b_rel}");
        assert!(s_abs <= tol, "{name}: score rows {s_abs}");
    }
}

#[test]
fn dynamic_export_runs_any_batch_and_size() {
    let Some(shared) = common::shared() else {
        return;
    };
    let Some(py) = python() else { return };
    let m = common::bt_model(&shared);
    let dir = std::env::temp_dir().join(format!("ryolo-onnx-dyn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dynamic.onnx");
    let cfg = ExportConfig {
        imgsz: (640, 640),
        opset: 18,
        metadata: metadata(&m, (640, 640), 1, "{}"),
        batch: 1,
        dynamic: true,
    };
    std::fs::write(&file, to_onnx(&m, &cfg).unwrap()).unwrap();
    tch::manual_seed(0);
    for (b, h, w) in [(2, 640, 640), (1, 320, 480), (3, 256, 160)] {
        let x = Tensor::rand([b, 3, h, w], (tch::Kind::Float, Device::Cpu));
        let xin = dir.join(format!("x{b}_{h}_{w}.npy"));
        let yout = dir.join(format!("y{b}_{h}_{w}.npy"));
        x.write_npy(&xin).unwrap();
        run_ort(&py, &file, &xin, &yout);
        let got = Tensor::read_npy(&yout).unwrap();
        let want = tch::no_grad(|| m.predict(&x));
        assert_eq!(got.size(), want.size(), "{b}x{h}x{w}");
        let rel = ((&got - &want).abs() / want.abs().clamp_min(1.0))
            .max()
            .double_value(&[]);
        println!("dynamic ONNX {b}x3x{h}x{w}: max relative error {rel:.2e}");
        assert!(rel < 1e-4, "{b}x{h}x{w}: {rel}");
    }
    // Our own ONNX backend runs it at the image's own (rect) size.
    let be = ryolo::engine::backend::Backend::load(file.to_str().unwrap(), Device::Cpu).unwrap();
    assert_eq!(be.as_ref().fixed_imgsz(), None);
    assert_eq!(be.as_ref().fixed_batch(), None);
    let p = ryolo::engine::predict::Predictor::with_backend(be, (640, 640), Default::default());
    let img = ryolo::engine::predict::load_image(&shared.join("datasets/samples/bus.jpg")).unwrap();
    assert_eq!(p.predict(&img).unwrap().letterbox.shape, (640, 480));
}
