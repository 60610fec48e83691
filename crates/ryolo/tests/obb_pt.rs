//! OBB models as Ultralytics `.pt` checkpoints (spec/obb.md §11): we write an `OBBModel` with an
//! `OBB` head (cv4 angle branch, `ne`) from the fixture's BN-calibrated yolo11n-obb; our own reader
//! reads back the same task, names, tensors and outputs. When `RYOLO_ULTRALYTICS_PYTHON` names a
//! Python with Ultralytics 8.4.190, that Python loads the file as well and compares it with the
//! fixture model (`tests/tools/obb_pt_check.py`).

mod common;
use common::tmp;
use ryolo::nn::DetectionModel;
use ryolo::task::TaskKind;
use ryolo::weights::ptwrite::{self, Layout, PtMeta, ALLOWED_GLOBALS};
use ryolo::weights::{load_model, load_state};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// The fixture's seed-0 yolo11n-obb with the calibrated BatchNorm buffers (all fp16-exact).
fn bncal_model(fx: &Path) -> DetectionModel {
    let mut m = load_model(
        fx.join("yolo11n-obb_seed0.pt").to_str().unwrap(),
        None,
        Device::Cpu,
    )
    .unwrap()
    .model;
    let bufs: HashMap<String, Tensor> = Tensor::read_npz(fx.join("bn_calibration.npz"))
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(load_state(&mut m, &bufs, false).unwrap(), bufs.len());
    m
}

/// Final-layout metadata of an obb run.
fn meta() -> PtMeta {
    let mut args = serde_yaml::Mapping::new();
    args.insert("task".into(), "obb".into());
    args.insert("imgsz".into(), 320.into());
    args.insert("data".into(), "DOTAv1.yaml".into());
    PtMeta {
        layout: Layout::Final,
        args,
        save_dir: Some("runs/obb/train".into()),
        yaml_file: "yolo11n-obb.yaml".into(),
        train_metrics: vec![],
        train_results: vec![],
        date: ptwrite::iso_now(),
    }
}

/// The classes and functions the checkpoint's pickle references, as `module name`.
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

#[test]
fn yolo11n_obb_round_trips_through_our_reader_and_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/obb");
    let d = tmp("obbpt");
    let m = bncal_model(&fx);
    let path = d.join("best.pt");
    ptwrite::write_pt(&m, &meta(), &path).unwrap();

    let g = globals(&path);
    for s in [
        "ultralytics.nn.modules.head OBB",
        "ultralytics.nn.tasks OBBModel",
    ] {
        assert!(g.contains(s), "{s} missing from {g:?}");
    }
    assert!(!g.contains("ultralytics.nn.tasks DetectionModel"), "{g:?}");
    assert!(!g.contains("ultralytics.nn.modules.head Detect"), "{g:?}");
    for x in &g {
        assert!(ALLOWED_GLOBALS.contains(&x.as_str()), "{x} not allowed");
    }

    let ck = ryolo::weights::read_pt(&path).unwrap();
    assert_eq!(ck.names, m.names);
    assert_eq!(ck.stem, "yolo11n-obb");
    let task = ck.train_args.get("task").and_then(|v| v.as_str());
    assert_eq!(task, Some("obb"));
    for (k, t) in m.vs.variables() {
        let o = ck.tensors.get(&k).unwrap_or_else(|| panic!("{k} missing"));
        // The weights were fp16 to begin with: the fp16 file holds them exactly.
        assert!(t.equal(o), "{k} changed in the round trip");
    }
    assert!(ck.tensors.contains_key("model.23.cv4.2.2.bias"));

    let lm = load_model(path.to_str().unwrap(), None, Device::Cpu)
        .unwrap()
        .model;
    assert_eq!(lm.task(), TaskKind::Obb);
    assert_eq!(lm.names, m.names);
    let x = Tensor::read_npy(fx.join("input.npy")).unwrap();
    let (a, b) = tch::no_grad(|| (m.predict(&x), lm.predict(&x)));
    assert!(a.equal(&b), "outputs differ after the round trip");

    if let Some(py) = std::env::var_os("RYOLO_ULTRALYTICS_PYTHON").map(PathBuf::from) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/obb_pt_check.py");
        let report = d.join("report.json");
        let out = std::process::Command::new(&py)
            .args([&script, &path, &fx, &report])
            .env("YOLO_OFFLINE", "1")
            .current_dir(&d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        println!("Ultralytics on our OBB .pt: {r}");
        assert_eq!(r["model_class"], "OBBModel", "{r}");
        assert_eq!(r["head_class"], "OBB", "{r}");
        assert_eq!(r["ne"], 1, "{r}");
        assert_eq!(r["task"], "obb", "{r}");
        let names: Vec<String> = serde_json::from_value(r["names"].clone()).unwrap();
        assert_eq!(names, m.names);
        assert_eq!(r["same_keys"], true, "{r}");
        assert_eq!(r["same_shapes"], true, "{r}");
        assert_eq!(r["same_modules"], true, "{r}");
        assert_eq!(r["max_tensor_diff"].as_f64(), Some(0.0), "{r}");
        assert_eq!(r["output_shape"], serde_json::json!([1, 20, 2100]), "{r}");
        assert_eq!(
            r["raw_keys"],
            serde_json::json!(["angle", "boxes", "feats", "scores"])
        );
        assert_eq!(r["max_output_diff"].as_f64(), Some(0.0), "{r}");
    } else {
        eprintln!(
            "\n!!!!! SKIPPED the Ultralytics half: set RYOLO_ULTRALYTICS_PYTHON to a Python with \
             ultralytics==8.4.190 !!!!!\n"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn yolov8n_obb_round_trips_through_our_reader() {
    let d = tmp("obbpt-v8");
    tch::manual_seed(5);
    let spec = ryolo::nn::ModelSpec::from_name("yolov8n-obb.yaml", Some(3)).unwrap();
    let mut m = DetectionModel::new(spec, Device::Cpu).unwrap();
    m.names = vec!["a".into(), "b".into(), "c".into()];
    // fp16-exact weights, so that the file holds them unchanged.
    tch::no_grad(|| {
        for (_, mut v) in m.vs.variables() {
            let h = v.to_kind(tch::Kind::Half).to_kind(tch::Kind::Float);
            v.copy_(&h);
        }
    });
    let path = d.join("last.pt");
    let mut meta = meta();
    meta.yaml_file = "yolov8n-obb.yaml".into();
    ptwrite::write_pt(&m, &meta, &path).unwrap();
    let ck = ryolo::weights::read_pt(&path).unwrap();
    assert_eq!(ck.stem, "yolov8n-obb");
    assert!(ck.tensors.contains_key("model.22.cv4.0.2.weight"));
    let lm = load_model(path.to_str().unwrap(), None, Device::Cpu)
        .unwrap()
        .model;
    assert_eq!(lm.task(), TaskKind::Obb);
    assert_eq!(lm.names, m.names);
    assert!(lm.spec.legacy(), "the YOLOv8 class branch");
    let x = Tensor::rand([1, 3, 64, 96], (tch::Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| (m.predict(&x), lm.predict(&x)));
    assert_eq!(a.size(), vec![1, 4 + 3 + 1, 8 * 12 + 4 * 6 + 2 * 3]);
    assert!(a.equal(&b), "outputs differ after the round trip");
    let _ = std::fs::remove_dir_all(&d);
}
