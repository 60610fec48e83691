//! Classify models as Ultralytics `.pt` checkpoints (spec/classify.md §9): we write a
//! `ClassificationModel` with a `Classify` head (conv, AdaptiveAvgPool2d, Dropout, Linear) and no
//! torchvision transforms; our reader reads back the same task, names, tensors and probabilities.
//! With `RYOLO_ULTRALYTICS_PYTHON` set, Ultralytics 8.4.190 loads our file of the trained
//! yolo11n-cls fixture with the module tree of its own file and the same probabilities.

mod common;
use common::tmp;
use ryolo::nn::{DetectionModel, ModelSpec};
use ryolo::task::TaskKind;
use ryolo::weights::ptwrite::{self, Layout, PtMeta, ALLOWED_GLOBALS};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The globals a classify checkpoint adds to detection's.
const CLS_GLOBALS: [&str; 5] = [
    "torch.nn.modules.dropout Dropout",
    "torch.nn.modules.linear Linear",
    "torch.nn.modules.pooling AdaptiveAvgPool2d",
    "ultralytics.nn.modules.head Classify",
    "ultralytics.nn.tasks ClassificationModel",
];

/// Detection's globals a classify checkpoint never has.
const NOT_CLS: [&str; 6] = [
    "ultralytics.nn.tasks DetectionModel",
    "ultralytics.nn.modules.head Detect",
    "ultralytics.nn.modules.block DFL",
    "torch.nn.modules.upsampling Upsample",
    "ultralytics.nn.modules.conv Concat",
    "torch.nn.modules.pooling MaxPool2d",
];

/// A classify model with random BatchNorm statistics (so that every tensor carries information).
fn cls_model(name: &str, nc: i64) -> DetectionModel {
    tch::manual_seed(5);
    let spec = ModelSpec::from_name(name, Some(nc)).unwrap();
    let mut m = DetectionModel::new(spec, Device::Cpu).unwrap();
    m.names = (0..nc).map(|i| format!("kind {i}")).collect();
    tch::no_grad(|| {
        for (k, mut v) in m.vs.variables() {
            if k.ends_with("running_mean") {
                v.copy_(&(Tensor::randn(v.size(), (Kind::Float, Device::Cpu)) * 0.1));
            } else if k.ends_with("running_var") {
                v.copy_(&(Tensor::rand(v.size(), (Kind::Float, Device::Cpu)) + 0.5));
            }
        }
    });
    m
}

/// Final-layout metadata without `task` and `imgsz` (the writer fills in classify and 224).
fn meta(stem: &str) -> PtMeta {
    let mut args = serde_yaml::Mapping::new();
    args.insert("data".into(), "imagenet10".into());
    PtMeta {
        layout: Layout::Final,
        args,
        save_dir: Some("runs/classify/train".into()),
        yaml_file: format!("{stem}.yaml"),
        train_metrics: vec![],
        train_results: vec![],
        date: ptwrite::iso_now(),
    }
}

/// The classes and functions a pickle references, as `module name` (Ultralytics' global form).
fn globals(path: &Path) -> BTreeSet<String> {
    use ryolo::weights::pickle::{parse, Value};
    let bytes = std::fs::read(path).unwrap();
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let name = (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().to_string())
        .find(|n| n.ends_with("/data.pkl"))
        .unwrap();
    let mut pkl = Vec::new();
    z.by_name(&name).unwrap().read_to_end(&mut pkl).unwrap();
    let pk = parse(&pkl).unwrap();
    pk.arena
        .iter()
        .filter_map(|v| match v {
            Value::Global(g) | Value::Object { class: g, .. } => Some(g.clone()),
            _ => None,
        })
        .filter_map(|g| g.rsplit_once('.').map(|(m, n)| format!("{m} {n}")))
        .collect()
}

/// Checks the globals of a written classify checkpoint.
fn check_globals(path: &Path) {
    let g = globals(path);
    for s in CLS_GLOBALS {
        assert!(g.contains(s), "{s} missing from {g:?}");
    }
    for s in NOT_CLS {
        assert!(!g.contains(s), "{s} in {g:?}");
    }
    assert!(!g.iter().any(|x| x.starts_with("torchvision")), "{g:?}");
    for x in &g {
        assert!(ALLOWED_GLOBALS.contains(&x.as_str()), "{x} not allowed");
    }
}

/// Largest |fp16(a) - b| over `a`'s variables; every one must be in `b`.
fn max_diff_fp16(a: &DetectionModel, b: &HashMap<String, Tensor>) -> f64 {
    a.vs.variables()
        .into_iter()
        .map(|(k, t)| {
            let o = b
                .get(&k)
                .unwrap_or_else(|| panic!("{k} missing after the round trip"));
            assert_eq!(t.size(), o.size(), "{k}");
            (t.to_kind(Kind::Half).to_kind(Kind::Float) - o.to_kind(Kind::Float))
                .abs()
                .max()
                .double_value(&[])
        })
        .fold(0.0, f64::max)
}

/// Writes a YAML-built classify model, reads it back with our reader and loader: same task, names,
/// tensors, architecture, BatchNorm constants and (fp16-rounded) probabilities.
fn round_trip(name: &str, stem: &str, nc: i64, head: usize) {
    let d = tmp(&format!("clspt-{stem}"));
    let m = cls_model(name, nc);
    assert_eq!(m.task(), TaskKind::Classify);
    let path = d.join("best.pt");
    ptwrite::write_pt(&m, &meta(stem), &path).unwrap();
    check_globals(&path);

    let ck = ryolo::weights::read_pt(&path).unwrap();
    assert_eq!(ck.names, m.names);
    assert_eq!(ck.stem, stem);
    let arg = |k: &str| ck.train_args.get(k).cloned().unwrap_or_default();
    assert_eq!(arg("task").as_str(), Some("classify"));
    assert_eq!(arg("imgsz").as_i64(), Some(224));
    let n_vars = m.vs.variables().len();
    let n_bt = ck
        .tensors
        .keys()
        .filter(|k| k.ends_with("num_batches_tracked"))
        .count();
    assert_eq!(ck.tensors.len(), n_vars + n_bt, "tensor count");
    assert_eq!(max_diff_fp16(&m, &ck.tensors), 0.0, "tensors");
    for k in ["conv.conv.weight", "linear.weight", "linear.bias"] {
        let k = format!("model.{head}.{k}");
        assert!(ck.tensors.contains_key(&k), "{k} missing");
    }
    assert_eq!(
        ck.tensors[&format!("model.{head}.linear.weight")].size(),
        [nc, 1280]
    );

    let lm = ryolo::weights::load_model(path.to_str().unwrap(), None, Device::Cpu)
        .unwrap()
        .model;
    assert_eq!(lm.task(), TaskKind::Classify);
    assert_eq!((lm.names.clone(), lm.nc()), (m.names.clone(), nc));
    assert_eq!(lm.stride, [1.0]);
    let kinds = |s: &ModelSpec| {
        s.layers
            .iter()
            .map(|l| format!("{:?} {:?}", l.from, l.kind))
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&lm.spec), kinds(&m.spec), "architecture");
    let spec = ModelSpec::from_name(name, Some(nc)).unwrap();
    let mut r = DetectionModel::new(spec, Device::Cpu).unwrap();
    let rounded: HashMap<String, Tensor> =
        m.vs.variables()
            .into_iter()
            .map(|(k, v)| (k, v.to_kind(Kind::Half).to_kind(Kind::Float)))
            .collect();
    ryolo::weights::load_state(&mut r, &rounded, true).unwrap();
    let x = Tensor::rand([2, 3, 64, 96], (Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| (r.predict(&x), lm.predict(&x)));
    assert_eq!(a.size(), [2, nc]);
    let diff = (a - b).abs().max().double_value(&[]);
    assert_eq!(diff, 0.0, "probabilities differ by {diff}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn yolo11n_cls_round_trips_through_our_reader() {
    round_trip("yolo11n-cls.yaml", "yolo11n-cls", 3, 10);
}

#[test]
fn yolov8n_cls_round_trips_through_our_reader() {
    round_trip("yolov8n-cls.yaml", "yolov8n-cls", 5, 9);
}

/// The trained yolo11n-cls fixture through `yolo export format=pt`: the same fp16 tensors bit for
/// bit, names, task and imgsz; its probabilities equal the source's.
#[test]
fn exported_classify_pt_keeps_the_fixture_weights() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/classify");
    let d = tmp("clspt-export");
    let src = d.join("cls_yolo11n.pt");
    std::fs::copy(fx.join("cls_yolo11n.pt"), &src).unwrap();
    let out = ptwrite::export_pt(src.to_str().unwrap()).unwrap();
    assert_eq!(out, d.join("cls_yolo11n_ryolo.pt"));
    check_globals(&out);
    let (a, b) = (
        ryolo::weights::read_pt(&src).unwrap(),
        ryolo::weights::read_pt(&out).unwrap(),
    );
    assert_eq!(
        b.tensors.len(),
        236,
        "spec/classify.md §9: 236 state-dict entries"
    );
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (k, t) in &a.tensors {
        let o = &b.tensors[k];
        assert_eq!((t.kind(), t.size()), (o.kind(), o.size()), "{k}");
        assert!(t.equal(o), "{k} differs");
    }
    assert_eq!(b.names, ["bowl", "chair", "person"]);
    assert_eq!(
        b.train_args.get("task").and_then(|v| v.as_str()),
        Some("classify")
    );
    assert_eq!(
        b.train_args.get("imgsz").and_then(|v| v.as_i64()),
        Some(224)
    );
    let load = |p: &Path| {
        ryolo::weights::load_model(p.to_str().unwrap(), None, Device::Cpu)
            .unwrap()
            .model
    };
    let x = Tensor::read_npy(fx.join("cls_eval_bus_input.npy")).unwrap();
    let (pa, pb) = tch::no_grad(|| (load(&src).predict(&x), load(&out).predict(&x)));
    assert_eq!((pa - pb).abs().max().double_value(&[]), 0.0);
    let _ = std::fs::remove_dir_all(&d);
}

/// Ultralytics 8.4.190 on our `.pt` of the trained yolo11n-cls fixture (`ul_interop.py classify`):
/// task classify, `ClassificationModel` / `Classify`, the state dict and module tree of its own file
/// (less `transforms`), a weights_only load, a rebuild from `model.yaml`, eval probabilities on
/// `cls_eval_bus_input.npy` equal to ours within 1e-5, and `predict` on `bus.jpg`.
#[test]
fn ultralytics_loads_our_classify_pt() {
    let Some(shared) = common::shared() else {
        return;
    };
    let Some(py) = std::env::var_os("RYOLO_ULTRALYTICS_PYTHON").map(PathBuf::from) else {
        eprintln!(
            "\n!!!!! SKIPPED: set RYOLO_ULTRALYTICS_PYTHON to a Python with ultralytics==8.4.190 \
             to check that Ultralytics loads our classify .pt !!!!!\n"
        );
        return;
    };
    let fx = shared.join("fixtures/ultralytics/classify");
    let d = tmp("clspt-ultralytics");
    let src = d.join("cls_yolo11n.pt");
    std::fs::copy(fx.join("cls_yolo11n.pt"), &src).unwrap();
    let ours = ptwrite::export_pt(src.to_str().unwrap()).unwrap();
    let input = fx.join("cls_eval_bus_input.npy");
    let image = shared.join("datasets/samples/bus.jpg");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/ul_interop.py");
    let out_dir = d.join("check");
    let out = std::process::Command::new(&py)
        .args([
            script.to_str().unwrap(),
            "classify",
            ours.to_str().unwrap(),
            src.to_str().unwrap(),
            out_dir.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--image",
            image.to_str().unwrap(),
        ])
        .current_dir(&d)
        .env("YOLO_OFFLINE", "1")
        .env("YOLO_CONFIG_DIR", &d)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "ul_interop.py classify failed:\n{text}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("classify.json")).unwrap())
            .unwrap();
    println!("{report}");
    assert_eq!(report["task"], "classify");
    assert_eq!(report["model_class"], "ClassificationModel");
    assert_eq!(report["head_class"], "Classify");
    assert_eq!(report["imgsz"], 224);
    assert_eq!(report["keys"], 236);
    assert_eq!(report["max_weight_diff"], 0.0);
    assert_eq!(report["structure_diffs"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        report["reference_only_attributes"],
        serde_json::json!(["transforms"])
    );
    assert_eq!(report["safe_load"], "ClassificationModel");
    assert_eq!(report["train_args_task"], "classify");
    assert_eq!(report["rebuild_transfer"], serde_json::json!([236, 236]));
    assert_eq!(report["predict"]["name"], "chair");
    assert_eq!(report["predict"]["max_diff"], 0.0);

    let theirs = Tensor::read_npy(out_dir.join("probs.npy")).unwrap();
    let m = ryolo::weights::load_model(ours.to_str().unwrap(), None, Device::Cpu)
        .unwrap()
        .model;
    let x = Tensor::read_npy(&input).unwrap();
    let mine = tch::no_grad(|| m.predict(&x));
    let diff = (theirs - mine).abs().max().double_value(&[]);
    println!("Ultralytics' probabilities on our .pt vs ours: {diff:.2e}");
    assert!(diff <= 1e-5, "{diff}");
}
