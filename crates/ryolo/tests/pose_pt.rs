//! Pose models as Ultralytics `.pt` checkpoints (spec/pose.md §9): we write a `PoseModel` with a
//! `Pose` head (cv4, `kpt_shape`, `nk`) and the model's `kpt_shape`, `kpt_oks_sigmas` and `kpt_names`;
//! our own reader reads back the same task, names, keypoint attributes, tensors and outputs.
//! With `RYOLO_ULTRALYTICS_PYTHON` set (a Python with Ultralytics 8.4.190), Ultralytics loads our
//! file of a model it trained itself: classes, module tree and attribute order against its own
//! files, restricted load, rebuild, forward equal to ours, and `val()` equal to its own file's.

mod common;
use common::tmp;
use ryolo::nn::{DetectionModel, ModelSpec};
use ryolo::task::TaskKind;
use ryolo::weights::ptwrite::{self, Layout, PtMeta, ALLOWED_GLOBALS};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor};

/// A pose model with random BatchNorm statistics (so that every tensor carries information).
fn pose_model(name: &str, nc: i64, kpt: (i64, i64)) -> DetectionModel {
    tch::manual_seed(7);
    let mut spec = ModelSpec::from_name(name, Some(nc)).unwrap();
    spec.override_kpt_shape(kpt).unwrap();
    let mut m = DetectionModel::new(spec, Device::Cpu).unwrap();
    m.names = (0..nc).map(|i| format!("thing {i}")).collect();
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

/// Final-layout metadata of a pose run (its task deliberately left out: the writer sets it).
fn meta(stem: &str) -> PtMeta {
    let mut args = serde_yaml::Mapping::new();
    args.insert("imgsz".into(), 96.into());
    args.insert("data".into(), "tiger-pose.yaml".into());
    PtMeta {
        layout: Layout::Final,
        args,
        save_dir: Some("runs/pose/train".into()),
        yaml_file: format!("{stem}.yaml"),
        train_metrics: vec![],
        train_results: vec![],
        date: ptwrite::iso_now(),
    }
}

/// The classes and functions a pickle references, as `module name`.
fn globals(pkl: &[u8]) -> BTreeSet<String> {
    use ryolo::weights::pickle::{parse, Value};
    let pk = parse(pkl).unwrap();
    pk.arena
        .iter()
        .filter_map(|v| match v {
            Value::Global(g) | Value::Object { class: g, .. } => Some(g.clone()),
            _ => None,
        })
        .filter_map(|g| g.rsplit_once('.').map(|(m, n)| format!("{m} {n}")))
        .collect()
}

/// `root/data.pkl` of a written checkpoint.
fn data_pkl(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let name = (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().to_string())
        .find(|n| n.ends_with("/data.pkl"))
        .unwrap();
    let mut pkl = Vec::new();
    z.by_name(&name).unwrap().read_to_end(&mut pkl).unwrap();
    pkl
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

/// Writes a pose model (with keypoint names and sigmas when `custom`), reads it back with our
/// reader and loader: same task, names, keypoint attributes, tensors, architecture and
/// (fp16-rounded) outputs.
fn round_trip(name: &str, stem: &str, nc: i64, kpt: (i64, i64), custom: bool) {
    let d = tmp(&format!("posept-{stem}"));
    let mut m = pose_model(name, nc, kpt);
    assert_eq!(m.task(), TaskKind::Pose);
    let names: Vec<(i64, Vec<String>)> = (0..nc)
        .map(|c| (c, (0..kpt.0).map(|k| format!("c{c}k{k}")).collect()))
        .collect();
    let sigmas: Vec<f64> = (0..kpt.0).map(|k| 0.03 + 0.01 * k as f64).collect();
    if custom {
        let p = m.head.pose_mut().unwrap();
        p.kpt_names = Some(names.clone());
        p.kpt_oks_sigmas = Some(sigmas.clone());
    }
    let path = d.join("best.pt");
    ptwrite::write_pt(&m, &meta(stem), &path).unwrap();

    let g = globals(&data_pkl(&path));
    for s in [
        "ultralytics.nn.modules.head Pose",
        "ultralytics.nn.tasks PoseModel",
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
    assert_eq!(ck.stem, stem);
    assert_eq!(
        ck.train_args.get("task").and_then(|v| v.as_str()),
        Some("pose")
    );
    assert_eq!(ck.pose.kpt_shape, Some(kpt));
    if custom {
        assert_eq!(ck.pose.kpt_names.as_ref(), Some(&names));
        assert_eq!(ck.pose.kpt_oks_sigmas.as_ref(), Some(&sigmas));
    } else {
        // The trainer's default names: "0".."K-1" for every class; no sigmas.
        let default: Vec<String> = (0..kpt.0).map(|k| k.to_string()).collect();
        let want: Vec<(i64, Vec<String>)> = (0..nc).map(|c| (c, default.clone())).collect();
        assert_eq!(ck.pose.kpt_names, Some(want));
        assert_eq!(ck.pose.kpt_oks_sigmas, None);
    }
    let n_bt = ck
        .tensors
        .keys()
        .filter(|k| k.ends_with("num_batches_tracked"))
        .count();
    assert_eq!(ck.tensors.len(), m.vs.variables().len() + n_bt);
    let diff = max_diff_fp16(&m, &ck.tensors);
    assert_eq!(diff, 0.0, "tensors differ from fp16-rounded ones by {diff}");
    let head = m.spec.layers.len() - 1;
    assert!(ck
        .tensors
        .contains_key(&format!("model.{head}.cv4.2.2.bias")));

    let lm = ryolo::weights::load_model(path.to_str().unwrap(), None, Device::Cpu)
        .unwrap()
        .model;
    assert_eq!(lm.task(), TaskKind::Pose);
    assert_eq!(lm.names, m.names);
    assert_eq!(lm.nc(), nc);
    let (p, q) = (lm.head.pose().unwrap(), m.head.pose().unwrap());
    assert_eq!(p.kpt_shape, kpt);
    if custom {
        assert_eq!(p.kpt_names, q.kpt_names);
        assert_eq!(p.kpt_oks_sigmas, q.kpt_oks_sigmas);
        assert_eq!(p.sigmas(), q.sigmas());
    }
    let kinds = |s: &ModelSpec| {
        s.layers
            .iter()
            .map(|l| format!("{:?} {:?}", l.from, l.kind))
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&lm.spec), kinds(&m.spec), "architecture");
    let rounded: HashMap<String, Tensor> =
        m.vs.variables()
            .into_iter()
            .map(|(k, v)| (k, v.to_kind(Kind::Half).to_kind(Kind::Float)))
            .collect();
    ryolo::weights::load_state(&mut m, &rounded, true).unwrap();
    let x = Tensor::rand([1, 3, 64, 96], (Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| (m.predict(&x), lm.predict(&x)));
    assert_eq!(
        a.size(),
        vec![1, 4 + nc + kpt.0 * kpt.1, 8 * 12 + 4 * 6 + 2 * 3]
    );
    let diff = (a - b).abs().max().double_value(&[]);
    assert_eq!(diff, 0.0, "output0 differs by {diff}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn yolo11n_pose_round_trips_through_our_reader() {
    round_trip("yolo11n-pose.yaml", "yolo11n-pose", 1, (17, 3), false);
}

#[test]
fn yolov8n_pose_with_2d_keypoints_names_and_sigmas_round_trips() {
    round_trip("yolov8n-pose.yaml", "yolov8n-pose", 2, (5, 2), true);
}

#[test]
fn training_layout_of_a_pose_model_keeps_the_weights_under_ema() {
    let d = tmp("posept-ema");
    let m = pose_model("yolo11n-pose.yaml", 1, (17, 3));
    let meta = PtMeta {
        layout: Layout::Training {
            epoch: 0,
            best_fitness: 0.25,
            best_epoch: 1,
            updates: 2,
        },
        ..meta("yolo11n-pose")
    };
    let path = d.join("last.pt");
    ptwrite::write_pt(&m, &meta, &path).unwrap();
    let ck = ryolo::weights::read_pt(&path).unwrap();
    assert_eq!(max_diff_fp16(&m, &ck.tensors), 0.0);
    let lm = ryolo::weights::load_model(path.to_str().unwrap(), None, Device::Cpu).unwrap();
    assert_eq!(lm.model.task(), TaskKind::Pose);
    let _ = std::fs::remove_dir_all(&d);
}

/// Ultralytics' own seed-0 `yolo11n-pose` file, rewritten by us, uses exactly its globals and holds
/// its tensors and keypoint attributes.
#[test]
fn our_rewrite_of_an_ultralytics_pose_checkpoint_keeps_its_globals_and_tensors() {
    let Some(shared) = common::shared() else {
        return;
    };
    let original = shared.join("fixtures/ultralytics/pose/yolo11n-pose_seed0.pt");
    let loaded = ryolo::weights::load_model(original.to_str().unwrap(), None, Device::Cpu).unwrap();
    assert_eq!(loaded.model.task(), TaskKind::Pose);
    let d = tmp("posept-fixture");
    let ours = d.join("pose.pt");
    let meta = PtMeta::final_from(&loaded.train_args, &loaded.stem);
    ptwrite::write_pt(&loaded.model, &meta, &ours).unwrap();
    let theirs = globals(&data_pkl(&original));
    let mine = globals(&data_pkl(&ours));
    assert_eq!(mine, theirs, "pickle globals");
    let a = ryolo::weights::read_pt(&original).unwrap();
    let b = ryolo::weights::read_pt(&ours).unwrap();
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (k, t) in &a.tensors {
        let o = &b.tensors[k];
        assert_eq!(t.size(), o.size(), "{k}");
        assert_eq!(t.kind(), o.kind(), "{k}");
        if t.kind() != Kind::Int64 {
            let diff = (t - o).abs().max().double_value(&[]);
            assert_eq!(diff, 0.0, "{k} differs by {diff}");
        }
    }
    assert_eq!(a.names, b.names);
    assert_eq!(a.pose, b.pose);
    assert_eq!(
        b.train_args.get("task").and_then(|v| v.as_str()),
        Some("pose")
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// The Python with Ultralytics, or None after a loud message.
fn ul_python() -> Option<PathBuf> {
    match std::env::var_os("RYOLO_ULTRALYTICS_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!(
                "\n!!!!! SKIPPED: set RYOLO_ULTRALYTICS_PYTHON to a Python with ultralytics==8.4.190 \
                 to run the Ultralytics pose .pt interop check !!!!!\n"
            );
            None
        }
    }
}

/// Runs `tests/tools/ul_pose.py` in `dir`; returns its output, panicking with it on failure.
fn ul_pose(py: &Path, dir: &Path, argv: &[&str]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/ul_pose.py");
    let out = Command::new(py)
        .arg(&script)
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
    assert!(out.status.success(), "ul_pose.py {argv:?} failed:\n{text}");
    text
}

/// Ultralytics trains yolo11n-pose for one epoch; we read its `best.pt`, predict like it, write the
/// model back as our `.pt`, and Ultralytics loads ours as its own: `PoseModel`/`Pose`, keypoint
/// attributes, module tree and attribute order (against what its trainer saves for the same
/// weights, and against its trained file), restricted load, rebuild, forward equal to ours, and
/// `val()` of our file equal to `val()` of its file.
#[test]
fn ultralytics_loads_our_pose_pt_as_its_own() {
    let (Some(py), Some(shared)) = (ul_python(), common::shared()) else {
        return;
    };
    let d = tmp("ul-pose-pt");
    let fx = shared.join("fixtures/ultralytics/pose");
    let data = d.join("data");
    let make = fx.join("make_fixtures.py");
    ul_pose(
        &py,
        &d,
        &["data", make.to_str().unwrap(), data.to_str().unwrap()],
    );
    let yaml = data.join("data.yaml");
    let runs = d.join("ul");
    ul_pose(
        &py,
        &d,
        &["train", yaml.to_str().unwrap(), runs.to_str().unwrap()],
    );
    let trained = runs.join("train/weights/best.pt");
    let loaded = ryolo::weights::load_model(trained.to_str().unwrap(), None, Device::Cpu).unwrap();
    let m = &loaded.model;
    assert_eq!(m.task(), TaskKind::Pose);
    assert_eq!(m.names, vec!["person".to_string()]);
    let p = m.head.pose().unwrap();
    assert_eq!(p.kpt_shape, (17, 3));
    let default: Vec<String> = (0..17).map(|k| k.to_string()).collect();
    assert_eq!(p.kpt_names, Some(vec![(0, default)]));
    let ours = d.join("best.pt");
    let mut meta = PtMeta::final_from(&loaded.train_args, &loaded.stem);
    meta.save_dir = None;
    ptwrite::write_pt(m, &meta, &ours).unwrap();
    let out = d.join("check");
    let input = fx.join("input.npy");
    let report = ul_pose(
        &py,
        &d,
        &[
            "check",
            ours.to_str().unwrap(),
            out.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--trained",
            trained.to_str().unwrap(),
            "--data",
            yaml.to_str().unwrap(),
            "--imgsz",
            "64",
        ],
    );
    eprintln!("{report}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("pose.json")).unwrap()).unwrap();
    assert_eq!(r["failures"].as_array().map(Vec::len), Some(0), "{r}");
    assert_eq!(r["task"], "pose");
    assert_eq!(r["kpt_shape"], serde_json::json!([17, 3]));
    assert_eq!(r["nk"], 51);
    // Ultralytics' forward of our file equals ours of its file.
    let theirs = Tensor::read_npy(out.join("output0.npy")).unwrap();
    let x = Tensor::read_npy(&input).unwrap();
    let y = tch::no_grad(|| m.predict(&x));
    assert_eq!(y.size(), theirs.size());
    for (what, lo, n) in [("boxes", 0, 4), ("score", 4, 1), ("keypoints", 5, 51)] {
        let a = y.narrow(1, lo, n);
        let b = theirs.narrow(1, lo, n);
        let diff = (&a - &b).abs().max().double_value(&[]);
        let scale = b.abs().max().double_value(&[]).max(1e-30);
        eprintln!("forward {what}: max abs diff {diff:.3e} (scale {scale:.3e})");
        assert!(diff <= 1e-5 * scale, "{what} differs by {diff}");
    }
    // Same weights, same metrics.
    let val = &r["val"];
    assert_eq!(
        val["ours"], val["trained"],
        "val of our file vs Ultralytics' file"
    );
    assert!(val["ours"]["metrics/mAP50-95(P)"].is_number(), "{val}");
    let _ = std::fs::remove_dir_all(&d);
}
