//! ONNX export of a Classify model (spec/classify.md §8) run in ONNX Runtime through `OnnxModel`:
//! the trained yolo11n-cls fixture exported static (1x3x224x224) and dynamic gives `output0`
//! `(B, 3)` softmax probabilities equal to our libtorch probabilities and to Ultralytics'
//! (`cls_eval.json`), with Ultralytics' names, dynamic axes and metadata. With
//! `RYOLO_ULTRALYTICS_PYTHON` set, Ultralytics' own classify export loads and runs too.

mod common;
use common::export_onnx as export;
use prost::Message;
use ryolo::engine::onnx::OnnxModel;
use ryolo::export::proto::ModelProto;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The fixture folder, or None (loudly) without ../shared.
fn cls_fixtures() -> Option<PathBuf> {
    Some(common::shared()?.join("fixtures/ultralytics/classify"))
}

/// The trained yolo11n-cls checkpoint, fused, on the CPU.
fn cls_model(fx: &Path) -> ryolo::nn::DetectionModel {
    common::fused_model(&fx.join("cls_yolo11n.pt"))
}

/// Loads `f` with ONNX Runtime, or None (loudly) when the runtime library is missing; with
/// `CI_REQUIRE_ORT` set a missing runtime fails.
fn load(f: &Path) -> Option<OnnxModel> {
    common::ort_or_skip(OnnxModel::load(f, 2))
}

/// Runs `x` through `m`: `output0` as a tensor of its shape.
fn run(m: &OnnxModel, x: &Tensor) -> Tensor {
    let x = x.to_kind(Kind::Float).contiguous();
    let s: Vec<usize> = x.size().iter().map(|&d| d as usize).collect();
    let mut v = vec![0f32; x.numel()];
    let n = v.len();
    x.copy_data(&mut v, n);
    let outs = m.run_all(&v, [s[0], s[1], s[2], s[3]]).unwrap();
    assert_eq!(outs.len(), 1, "one output");
    let (data, dims) = &outs[0];
    let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(data).view(dims.as_slice())
}

/// The two eval inputs (bus, zidane) and Ultralytics' probabilities for them.
fn inputs(fx: &Path) -> Vec<(Tensor, Tensor)> {
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("cls_eval.json")).unwrap()).unwrap();
    ["bus", "zidane"]
        .iter()
        .map(|k| {
            let x = Tensor::read_npy(fx.join(format!("cls_eval_{k}_input.npy"))).unwrap();
            let p: Vec<f32> = want[k]["best"]["probs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            (x, Tensor::from_slice(&p).view([1, -1]))
        })
        .collect()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// Output `k`'s (or with `input`, input 0's) name and dims (values, or `dim_param` names).
fn dims(p: &ModelProto, k: usize, input: bool) -> (String, Vec<String>) {
    let g = p.graph.as_ref().unwrap();
    let o = if input { &g.input[k] } else { &g.output[k] };
    let dims = o
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .unwrap()
        .dim
        .iter()
        .map(|d| match (&d.dim_param, d.dim_value) {
            (Some(s), _) => s.clone(),
            (None, Some(v)) => v.to_string(),
            _ => "?".into(),
        })
        .collect();
    (o.name.clone(), dims)
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn meta<'a>(p: &'a ModelProto, key: &str) -> &'a str {
    p.metadata_props
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
        .unwrap_or_else(|| panic!("no metadata {key}"))
}

#[test]
fn static_classify_export_matches_torch_and_ultralytics() {
    let Some(fx) = cls_fixtures() else { return };
    let m = cls_model(&fx);
    let dir = common::tmp("cls-onnx-static");
    let (f, p) = export(&m, &dir, "cls.onnx", (224, 224), 1, false);

    // Interface (spec/classify.md §8), checked on the protobuf.
    let g = p.graph.as_ref().unwrap();
    assert_eq!(
        dims(&p, 0, true),
        ("images".into(), strs(&["1", "3", "224", "224"]))
    );
    assert_eq!(g.output.len(), 1);
    assert_eq!(dims(&p, 0, false), ("output0".into(), strs(&["1", "3"])));
    let count = |op: &str| g.node.iter().filter(|n| n.op_type == op).count();
    assert_eq!(
        count("Conv"),
        39,
        "Ultralytics' fused yolo11n-cls has 39 Conv nodes"
    );
    assert_eq!(count("BatchNormalization"), 0, "Conv+BN fused");
    for op in ["GlobalAveragePool", "Flatten", "Gemm"] {
        assert_eq!(count(op), 1, "{op}");
    }
    assert_eq!(count("Softmax"), 2, "attention + output");
    let tail: Vec<&str> = g.node[g.node.len() - 4..]
        .iter()
        .map(|n| n.op_type.as_str())
        .collect();
    assert_eq!(tail, ["GlobalAveragePool", "Flatten", "Gemm", "Softmax"]);
    assert_eq!(g.node.last().unwrap().output, ["output0"]);
    assert_eq!(meta(&p, "task"), "classify");
    assert_eq!(meta(&p, "head"), "Classify");
    assert_eq!(meta(&p, "stride"), "1");
    assert_eq!(meta(&p, "imgsz"), "[224, 224]");
    assert_eq!(meta(&p, "names"), "{0: 'bowl', 1: 'chair', 2: 'person'}");

    let Some(om) = load(&f) else { return };
    assert!(om.classify && !om.segment);
    assert_eq!(om.nm, 0);
    assert_eq!(om.names, ["bowl", "chair", "person"]);
    assert_eq!(om.stride, 1);
    assert_eq!((om.imgsz, om.batch), (Some((224, 224)), Some(1)));

    for (x, want) in inputs(&fx) {
        let got = run(&om, &x);
        assert_eq!(got.size(), [1, 3]);
        let ours = tch::no_grad(|| m.predict(&x));
        let (d_ours, d_ul) = (max_abs(&got, &ours), max_abs(&got, &want));
        println!(
            "static ONNX probabilities: vs our libtorch {d_ours:.2e}, vs Ultralytics {d_ul:.2e}"
        );
        assert!(d_ours <= 1e-5, "vs our libtorch {d_ours}");
        assert!(d_ul <= 1e-5, "vs Ultralytics {d_ul}");
    }

    // A detect-only caller gets an error naming the file instead of misread rows.
    let x = Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu));
    let e = om
        .run(&vec![0f32; x.numel()], [1, 3, 224, 224])
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("cls.onnx") && msg.contains("run_all"), "{msg}");

    // A batch-2 graph runs 3 images as two runs (the last padded) and returns 3 rows.
    let (f2, _) = export(&m, &dir, "cls_b2.onnx", (224, 224), 2, false);
    let om2 = load(&f2).unwrap();
    assert_eq!(om2.batch, Some(2));
    let xs = inputs(&fx);
    let x3 = Tensor::cat(&[&xs[0].0, &xs[1].0, &xs[0].0.flip([3])], 0);
    let got = run(&om2, &x3);
    assert_eq!(got.size(), [3, 3]);
    let d = max_abs(&got, &tch::no_grad(|| m.predict(&x3)));
    println!("batch-2 ONNX, 3 images, vs our libtorch: {d:.2e}");
    assert!(d <= 1e-5, "{d}");

    // Without `task` metadata the 2-d output makes it a classify model; names that do not fit the
    // classes are refused, naming the file.
    let mut old = p.clone();
    old.metadata_props.retain(|e| e.key != "task");
    let f3 = dir.join("cls_notask.onnx");
    std::fs::write(&f3, old.encode_to_vec()).unwrap();
    assert!(load(&f3).unwrap().classify);
    let mut two = p.clone();
    for e in &mut two.metadata_props {
        if e.key == "names" {
            e.value = "{0: 'a', 1: 'b'}".into();
        }
    }
    let f4 = dir.join("cls_two.onnx");
    std::fs::write(&f4, two.encode_to_vec()).unwrap();
    let msg = format!("{:#}", OnnxModel::load(&f4, 1).unwrap_err());
    println!("{msg}");
    assert!(
        msg.contains("cls_two.onnx") && msg.contains("3 classes, 2 names"),
        "{msg}"
    );
}

#[test]
fn dynamic_classify_export_runs_any_batch_and_size() {
    let Some(fx) = cls_fixtures() else { return };
    let m = cls_model(&fx);
    let dir = common::tmp("cls-onnx-dynamic");
    let (f, p) = export(&m, &dir, "cls_dynamic.onnx", (224, 224), 1, true);
    assert_eq!(
        dims(&p, 0, true),
        ("images".into(), strs(&["batch", "3", "height", "width"]))
    );
    assert_eq!(
        dims(&p, 0, false),
        ("output0".into(), strs(&["Softmaxoutput0_dim_0", "3"]))
    );
    assert_eq!(meta(&p, "task"), "classify");
    assert_eq!(meta(&p, "imgsz"), "[224, 224]");

    let Some(om) = load(&f) else { return };
    assert!(om.classify);
    assert_eq!((om.imgsz, om.batch), (None, None));
    let xs = inputs(&fx);
    let x = Tensor::cat(&[&xs[0].0, &xs[1].0], 0);
    let want = Tensor::cat(&[&xs[0].1, &xs[1].1], 0);
    let got = run(&om, &x);
    assert_eq!(got.size(), [2, 3]);
    let (d_ours, d_ul) = (
        max_abs(&got, &tch::no_grad(|| m.predict(&x))),
        max_abs(&got, &want),
    );
    println!("dynamic ONNX, batch 2: vs our libtorch {d_ours:.2e}, vs Ultralytics {d_ul:.2e}");
    assert!(d_ours <= 1e-5 && d_ul <= 1e-5, "{d_ours} {d_ul}");

    tch::manual_seed(0);
    let x = Tensor::rand([3, 3, 160, 200], (Kind::Float, Device::Cpu));
    let got = run(&om, &x);
    assert_eq!(got.size(), [3, 3]);
    let d = max_abs(&got, &tch::no_grad(|| m.predict(&x)));
    println!("dynamic ONNX 3x3x160x200 vs our libtorch: {d:.2e}");
    assert!(d <= 1e-5, "{d}");
}

#[test]
fn yolo_export_keeps_a_classify_imgsz_unrounded() {
    let Some(fx) = cls_fixtures() else { return };
    let dir = common::tmp("cls-onnx-cli");
    let pt = dir.join("cls_yolo11n.pt");
    std::fs::copy(fx.join("cls_yolo11n.pt"), &pt).unwrap();
    let f = ryolo::export::run(&common::args(&format!(
        "export model={} format=onnx imgsz=200 batch=1",
        pt.display()
    )))
    .unwrap();
    assert_eq!(f, dir.join("cls_yolo11n.onnx"));
    let p = ModelProto::decode(std::fs::read(&f).unwrap().as_slice()).unwrap();
    assert_eq!(
        meta(&p, "imgsz"),
        "[200, 200]",
        "stride 1: not rounded to 32"
    );
    assert_eq!(meta(&p, "stride"), "1");
    assert_eq!(dims(&p, 0, true).1, strs(&["1", "3", "200", "200"]));
    let Some(om) = load(&f) else { return };
    let x = Tensor::rand([1, 3, 200, 200], (Kind::Float, Device::Cpu));
    let got = run(&om, &x);
    assert_eq!(got.size(), [1, 3]);
    let s = got.sum(Kind::Double).double_value(&[]);
    assert!((s - 1.0).abs() < 1e-5, "probabilities sum to {s}");
}

#[test]
fn ultralytics_classify_export_runs_through_run_all() {
    let Some(fx) = cls_fixtures() else { return };
    let Some(py) = std::env::var_os("RYOLO_ULTRALYTICS_PYTHON").map(PathBuf::from) else {
        eprintln!(
            "\n!!!!! SKIPPED: set RYOLO_ULTRALYTICS_PYTHON to a Python with ultralytics==8.4.190 \
             to export Ultralytics' own classify ONNX !!!!!\n"
        );
        return;
    };
    let dir = common::tmp("cls-onnx-ultralytics");
    let pt = dir.join("cls.pt");
    std::fs::copy(fx.join("cls_yolo11n.pt"), &pt).unwrap();
    let script = "import sys\nfrom ultralytics import YOLO\n\
                  print(YOLO(sys.argv[1]).export(format='onnx', dynamic=sys.argv[2] == '1', \
                  simplify=False))\n";
    let xs = inputs(&fx);
    for dynamic in ["0", "1"] {
        let out = std::process::Command::new(&py)
            .args(["-c", script, pt.to_str().unwrap(), dynamic])
            .current_dir(&dir)
            .env("YOLO_OFFLINE", "1")
            .env("YOLO_CONFIG_DIR", &dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "Ultralytics export failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let f = dir.join(format!("cls_{dynamic}.onnx"));
        std::fs::rename(dir.join("cls.onnx"), &f).unwrap();
        let Some(om) = load(&f) else { return };
        assert!(om.classify);
        assert_eq!(om.names, ["bowl", "chair", "person"]);
        for (x, want) in &xs {
            let d = max_abs(&run(&om, x), want);
            println!("Ultralytics' ONNX (dynamic={dynamic}) vs Ultralytics' torch: {d:.2e}");
            assert!(d <= 1e-5, "{d}");
        }
    }
}
