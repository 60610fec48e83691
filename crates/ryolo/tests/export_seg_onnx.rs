//! ONNX export of a Segment model (spec/segment.md §8) run in ONNX Runtime through `OnnxModel`:
//! the seed-0 yolo11n-seg fixture exported static (1x3x320x256) and dynamic gives `output0`
//! `(B, 116, A)` and `output1` protos `(B, 32, H/4, W/4)` equal to our libtorch fused forward and to
//! Ultralytics' fused outputs (`model_output0_fused.npy`, `model_proto_fused.npy`), with Ultralytics'
//! names, dynamic axes and metadata. With `RYOLO_ULTRALYTICS_PYTHON` set, Ultralytics' own seg
//! export of the same checkpoint loads and runs through `OnnxModel::run_all` too.

mod common;
use common::export_onnx as export;
use prost::Message;
use ryolo::engine::onnx::OnnxModel;
use ryolo::export::proto::ModelProto;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The fixture folder, or None (loudly) without ../shared.
fn seg_fixtures() -> Option<PathBuf> {
    Some(common::shared()?.join("fixtures/ultralytics/segment"))
}

/// The seed-0 yolo11n-seg checkpoint, fused, on the CPU.
fn seg_model(fx: &Path) -> ryolo::nn::DetectionModel {
    common::fused_model(&fx.join("yolo11n-seg_seed0.pt"))
}

/// Loads `f` with ONNX Runtime, or None (loudly) when the runtime library is missing; with
/// `CI_REQUIRE_ORT` set a missing runtime fails.
fn load(f: &Path) -> Option<OnnxModel> {
    common::ort_or_skip(OnnxModel::load(f, 2))
}

/// Runs `x` through every output of `m`, as tensors of their shapes.
fn run_all(m: &OnnxModel, x: &Tensor) -> Vec<Tensor> {
    let x = x.to_kind(Kind::Float).contiguous();
    let s: Vec<usize> = x.size().iter().map(|&d| d as usize).collect();
    let mut v = vec![0f32; x.numel()];
    let n = v.len();
    x.copy_data(&mut v, n);
    m.run_all(&v, [s[0], s[1], s[2], s[3]])
        .unwrap()
        .into_iter()
        .map(|(data, dims)| {
            let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            Tensor::from_slice(&data).view(dims.as_slice())
        })
        .collect()
}

/// Max differences of `got` vs `want` (`output0`, `output1`): box rows absolute and relative to
/// max(|want|, 1), score rows, coefficient rows and protos absolute.
struct Diffs {
    box_abs: f64,
    box_rel: f64,
    score: f64,
    coef: f64,
    proto: f64,
}

impl Diffs {
    fn of(got: &[Tensor], want: (&Tensor, &Tensor), nc: i64) -> Self {
        let abs = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
        let rows = |t: &Tensor, a: i64, n: i64| t.narrow(1, a, n);
        let (y, w) = (&got[0], want.0);
        assert_eq!(y.size(), w.size(), "output0 shape");
        assert_eq!(got[1].size(), want.1.size(), "output1 shape");
        let (yb, wb) = (rows(y, 0, 4), rows(w, 0, 4));
        Self {
            box_abs: abs(&yb, &wb),
            box_rel: ((&yb - &wb).abs() / wb.abs().clamp_min(1.0))
                .max()
                .double_value(&[]),
            score: abs(&rows(y, 4, nc), &rows(w, 4, nc)),
            coef: abs(&rows(y, 4 + nc, 32), &rows(w, 4 + nc, 32)),
            proto: abs(&got[1], want.1),
        }
    }

    fn check(&self, what: &str) {
        println!(
            "{what}: boxes max abs {:.2e} px (relative {:.2e}), scores {:.2e}, coefficients {:.2e}, \
             protos {:.2e}",
            self.box_abs, self.box_rel, self.score, self.coef, self.proto
        );
        assert!(
            self.box_rel < 1e-5,
            "{what}: boxes relative {}",
            self.box_rel
        );
        assert!(self.score < 1e-6, "{what}: scores {}", self.score);
        assert!(self.coef < 1e-5, "{what}: coefficients {}", self.coef);
        assert!(self.proto < 1e-6, "{what}: protos {}", self.proto);
    }
}

/// Output `k`'s name and dims (values, or `dim_param` names).
fn output_dims(p: &ModelProto, k: usize) -> (String, Vec<String>) {
    let o = &p.graph.as_ref().unwrap().output[k];
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

fn meta<'a>(p: &'a ModelProto, key: &str) -> &'a str {
    p.metadata_props
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
        .unwrap_or_else(|| panic!("no metadata {key}"))
}

#[test]
fn static_segment_export_matches_torch_and_ultralytics() {
    let Some(fx) = seg_fixtures() else { return };
    let m = seg_model(&fx);
    let dir = common::tmp("seg-onnx-static");
    let (f, p) = export(&m, &dir, "seg.onnx", (320, 256), 1, false);

    // Interface (spec/segment.md §8), checked on the protobuf.
    let g = p.graph.as_ref().unwrap();
    assert_eq!(g.output.len(), 2);
    assert_eq!(
        output_dims(&p, 0),
        (
            "output0".into(),
            vec!["1".into(), "116".into(), "1680".into()]
        )
    );
    assert_eq!(
        output_dims(&p, 1),
        (
            "output1".into(),
            vec!["1".into(), "32".into(), "80".into(), "64".into()]
        )
    );
    let convt: Vec<_> = g
        .node
        .iter()
        .filter(|n| n.op_type == "ConvTranspose")
        .collect();
    assert_eq!(convt.len(), 1, "one ConvTranspose (the Proto's upsample)");
    assert_eq!(
        g.node.iter().filter(|n| n.op_type == "Conv").count(),
        99,
        "Ultralytics' fused yolo11n-seg has 100 Conv nodes, one of them the DFL (ours: Mul + ReduceSum)"
    );
    assert_eq!(meta(&p, "task"), "segment");
    assert_eq!(meta(&p, "head"), "Segment");
    assert_eq!(meta(&p, "imgsz"), "[320, 256]");
    assert_eq!(meta(&p, "stride"), "32");

    let Some(om) = load(&f) else { return };
    assert!(om.segment);
    assert_eq!(om.nm, 32);
    assert_eq!(om.names.len(), 80);
    assert_eq!(om.imgsz, Some((320, 256)));
    assert_eq!(om.batch, Some(1));

    let x = Tensor::read_npy(fx.join("model_input.npy")).unwrap();
    let got = run_all(&om, &x);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].size(), [1, 116, 1680]);
    assert_eq!(got[1].size(), [1, 32, 80, 64]);
    let (y, protos) = tch::no_grad(|| m.predict_with_protos(&x));
    let protos = protos.expect("a Segment model has protos");
    Diffs::of(&got, (&y, &protos), 80).check("static ONNX vs our libtorch fused forward");
    let want0 = Tensor::read_npy(fx.join("model_output0_fused.npy")).unwrap();
    let want1 = Tensor::read_npy(fx.join("model_proto_fused.npy")).unwrap();
    Diffs::of(&got, (&want0, &want1), 80).check("static ONNX vs Ultralytics' fused forward");

    // A detect-only caller gets an error naming the file instead of misread rows.
    let n = x.numel();
    let mut v = vec![0f32; n];
    x.copy_data(&mut v, n);
    let e = om.run(&v, [1, 3, 320, 256]).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("seg.onnx") && msg.contains("run_all"), "{msg}");

    // A batch-2 graph runs 3 images as two runs (the last padded) and returns 3 of each output.
    let (f2, _) = export(&m, &dir, "seg_b2.onnx", (320, 256), 2, false);
    let om2 = load(&f2).unwrap();
    assert_eq!(om2.batch, Some(2));
    let x3 = Tensor::cat(&[&x, &x.flip([3]), &(&x * 0.5)], 0);
    let got = run_all(&om2, &x3);
    assert_eq!(got[0].size(), [3, 116, 1680]);
    assert_eq!(got[1].size(), [3, 32, 80, 64]);
    let (y, protos) = tch::no_grad(|| m.predict_with_protos(&x3));
    Diffs::of(&got, (&y, &protos.unwrap()), 80).check("batch-2 ONNX, 3 images, vs our libtorch");

    // Without `task` metadata the 4-d second output makes it a segment model; names that do not
    // fit the rows are refused, counting the coefficients.
    let mut old = p.clone();
    old.metadata_props.retain(|e| e.key != "task");
    let f3 = dir.join("seg_notask.onnx");
    std::fs::write(&f3, old.encode_to_vec()).unwrap();
    let om3 = load(&f3).unwrap();
    assert!(om3.segment && om3.nm == 32);
    let mut three = p.clone();
    for e in &mut three.metadata_props {
        if e.key == "names" {
            e.value = "{0: 'a', 1: 'b', 2: 'c'}".into();
        }
    }
    let f4 = dir.join("seg_three.onnx");
    std::fs::write(&f4, three.encode_to_vec()).unwrap();
    let msg = format!("{:#}", OnnxModel::load(&f4, 1).unwrap_err());
    println!("{msg}");
    assert!(msg.contains("seg_three.onnx"), "{msg}");
    assert!(
        msg.contains("116 rows") && msg.contains("32 mask coefficients = 39"),
        "{msg}"
    );
}

#[test]
fn yolo_export_writes_a_segment_onnx() {
    let Some(fx) = seg_fixtures() else { return };
    let dir = common::tmp("seg-onnx-cli");
    let pt = dir.join("yolo11n-seg_seed0.pt");
    std::fs::copy(fx.join("yolo11n-seg_seed0.pt"), &pt).unwrap();
    // batch=1 as the CLI adds for export.
    let f = ryolo::export::run(&common::args(&format!(
        "export model={} format=onnx imgsz=320 batch=1",
        pt.display()
    )))
    .unwrap();
    assert_eq!(f, dir.join("yolo11n-seg_seed0.onnx"));
    let p = ModelProto::decode(std::fs::read(&f).unwrap().as_slice()).unwrap();
    assert_eq!(meta(&p, "task"), "segment");
    assert_eq!(meta(&p, "imgsz"), "[320, 320]");
    let Some(om) = load(&f) else { return };
    let x = Tensor::rand([1, 3, 320, 320], (Kind::Float, Device::Cpu));
    let got = run_all(&om, &x);
    assert_eq!(got[0].size(), [1, 116, 2100]);
    assert_eq!(got[1].size(), [1, 32, 80, 80]);
}

#[test]
fn dynamic_segment_export_runs_any_batch_and_size() {
    let Some(fx) = seg_fixtures() else { return };
    let m = seg_model(&fx);
    let dir = common::tmp("seg-onnx-dynamic");
    let (f, p) = export(&m, &dir, "seg_dynamic.onnx", (320, 256), 1, true);
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let input = &p.graph.as_ref().unwrap().input[0];
    assert_eq!(input.name, "images");
    assert_eq!(
        output_dims(&p, 0),
        (
            "output0".into(),
            names(&["batch", "Concatoutput0_dim_1", "anchors"])
        )
    );
    assert_eq!(
        output_dims(&p, 1),
        (
            "output1".into(),
            names(&["batch", "32", "mask_height", "mask_width"])
        )
    );
    assert_eq!(meta(&p, "task"), "segment");

    let Some(om) = load(&f) else { return };
    assert!(om.segment);
    assert_eq!(om.nm, 32);
    assert_eq!((om.imgsz, om.batch), (None, None));

    let x = Tensor::read_npy(fx.join("model_input.npy")).unwrap();
    let got = run_all(&om, &x);
    let want0 = Tensor::read_npy(fx.join("model_output0_fused.npy")).unwrap();
    let want1 = Tensor::read_npy(fx.join("model_proto_fused.npy")).unwrap();
    Diffs::of(&got, (&want0, &want1), 80).check("dynamic ONNX vs Ultralytics' fused forward");

    tch::manual_seed(0);
    for (b, h, w) in [(2, 256, 320), (3, 160, 224)] {
        let x = Tensor::rand([b, 3, h, w], (Kind::Float, Device::Cpu));
        let got = run_all(&om, &x);
        assert_eq!(got[1].size(), [b, 32, h / 4, w / 4]);
        let (y, protos) = tch::no_grad(|| m.predict_with_protos(&x));
        Diffs::of(&got, (&y, &protos.unwrap()), 80)
            .check(&format!("dynamic ONNX {b}x3x{h}x{w} vs our libtorch"));
    }
}

#[test]
fn ultralytics_segment_export_runs_through_run_all() {
    let Some(fx) = seg_fixtures() else { return };
    let Some(py) = std::env::var_os("RYOLO_ULTRALYTICS_PYTHON").map(PathBuf::from) else {
        eprintln!(
            "\n!!!!! SKIPPED: set RYOLO_ULTRALYTICS_PYTHON to a Python with ultralytics==8.4.190 \
             to export Ultralytics' own segment ONNX !!!!!\n"
        );
        return;
    };
    let dir = common::tmp("seg-onnx-ultralytics");
    let pt = dir.join("seg.pt");
    std::fs::copy(fx.join("yolo11n-seg_seed0.pt"), &pt).unwrap();
    let script = "import sys\nfrom ultralytics import YOLO\n\
                  print(YOLO(sys.argv[1]).export(format='onnx', imgsz=[320, 256], \
                  dynamic=sys.argv[2] == '1', simplify=False))\n";
    let m = seg_model(&fx);
    let x = Tensor::read_npy(fx.join("model_input.npy")).unwrap();
    let (y, protos) = tch::no_grad(|| m.predict_with_protos(&x));
    let protos = protos.unwrap();
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
        let f = dir.join(format!("seg_{dynamic}.onnx"));
        std::fs::rename(dir.join("seg.onnx"), &f).unwrap();
        let Some(om) = load(&f) else { return };
        assert!(om.segment);
        assert_eq!(om.nm, 32);
        assert_eq!(om.names.len(), 80);
        let got = run_all(&om, &x);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].size(), [1, 116, 1680]);
        assert_eq!(got[1].size(), [1, 32, 80, 64]);
        let kind = if dynamic == "1" { "dynamic" } else { "static" };
        Diffs::of(&got, (&y, &protos), 80).check(&format!(
            "Ultralytics' {kind} ONNX (ONNX Runtime) vs our libtorch fused forward"
        ));
    }
}
