//! Segment models as Ultralytics `.pt` checkpoints (spec/segment.md §9): we write a
//! `SegmentationModel` with a `Segment` head (Proto with its ConvTranspose2d, cv4), and our own
//! reader reads back the same task, names, tensors and outputs. Checked without Python; the
//! Ultralytics side is in `ultralytics_interop.rs`.

mod common;
use common::tmp;
use ryolo::nn::{DetectionModel, ModelSpec};
use ryolo::task::TaskKind;
use ryolo::weights::ptwrite::{self, Layout, PtMeta, ALLOWED_GLOBALS};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The four globals a segment checkpoint adds to detection's.
const SEG_GLOBALS: [&str; 4] = [
    "torch.nn.modules.conv ConvTranspose2d",
    "ultralytics.nn.modules.block Proto",
    "ultralytics.nn.modules.head Segment",
    "ultralytics.nn.tasks SegmentationModel",
];

/// A segment model with random BatchNorm statistics (so that every tensor carries information).
fn seg_model(name: &str, nc: i64) -> DetectionModel {
    tch::manual_seed(11);
    let spec = ModelSpec::from_name(name, Some(nc)).unwrap();
    let mut m = DetectionModel::new(spec, Device::Cpu).unwrap();
    m.names = (0..nc).map(|i| format!("part {i}")).collect();
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

/// Final-layout metadata of a segment run.
fn meta(stem: &str) -> PtMeta {
    let mut args = serde_yaml::Mapping::new();
    args.insert("task".into(), "segment".into());
    args.insert("imgsz".into(), 96.into());
    args.insert("data".into(), "coco8-seg.yaml".into());
    PtMeta {
        layout: Layout::Final,
        args,
        save_dir: Some("runs/segment/train".into()),
        yaml_file: format!("{stem}.yaml"),
        train_metrics: vec![],
        train_results: vec![],
        date: ptwrite::iso_now(),
    }
}

/// The classes and functions a pickle references, as `module name` (Ultralytics' global form).
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

/// Writes a segment model, reads it back with our reader and loader: same task, names, tensors,
/// architecture and (fp16-rounded) outputs, boxes and prototypes.
fn round_trip(name: &str, stem: &str, nc: i64) {
    let d = tmp(&format!("segpt-{stem}"));
    let m = seg_model(name, nc);
    assert_eq!(m.task(), TaskKind::Segment);
    let path = d.join("best.pt");
    ptwrite::write_pt(&m, &meta(stem), &path).unwrap();

    let g = globals(&data_pkl(&path));
    for s in SEG_GLOBALS {
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
        Some("segment")
    );
    let n_vars = m.vs.variables().len();
    let n_bt = ck
        .tensors
        .keys()
        .filter(|k| k.ends_with("num_batches_tracked"))
        .count();
    assert_eq!(ck.tensors.len(), n_vars + n_bt, "tensor count");
    let diff = max_diff_fp16(&m, &ck.tensors);
    assert_eq!(diff, 0.0, "tensors differ from fp16-rounded ones by {diff}");
    for k in [
        "model.23.proto.upsample.weight",
        "model.23.proto.upsample.bias",
        "model.23.cv4.2.2.bias",
    ]
    .iter()
    .map(|k| {
        if stem.starts_with("yolov8") {
            k.replace("model.23", "model.22")
        } else {
            k.to_string()
        }
    }) {
        assert!(ck.tensors.contains_key(&k), "{k} missing");
    }

    let lm = ryolo::weights::load_model(path.to_str().unwrap(), None, Device::Cpu)
        .unwrap()
        .model;
    assert_eq!(lm.task(), TaskKind::Segment);
    assert_eq!(lm.names, m.names);
    assert_eq!(lm.nc(), nc);
    assert_eq!(lm.head.nm(), m.head.nm());
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
    let x = Tensor::rand([1, 3, 64, 96], (Kind::Float, Device::Cpu));
    let ((a, pa), (b, pb)) =
        tch::no_grad(|| (r.predict_with_protos(&x), lm.predict_with_protos(&x)));
    let diff = (a - b).abs().max().double_value(&[]);
    assert_eq!(diff, 0.0, "output0 differs by {diff}");
    let (pa, pb) = (pa.unwrap(), pb.unwrap());
    assert_eq!(pa.size(), vec![1, m.head.nm(), 16, 24]);
    let diff = (pa - pb).abs().max().double_value(&[]);
    assert_eq!(diff, 0.0, "prototypes differ by {diff}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn yolo11n_seg_round_trips_through_our_reader() {
    round_trip("yolo11n-seg.yaml", "yolo11n-seg", 3);
}

#[test]
fn yolov8n_seg_round_trips_through_our_reader() {
    round_trip("yolov8n-seg.yaml", "yolov8n-seg", 2);
}

#[test]
fn training_layout_of_a_segment_model_keeps_the_weights_under_ema() {
    let d = tmp("segpt-ema");
    let m = seg_model("yolo11n-seg.yaml", 1);
    let meta = PtMeta {
        layout: Layout::Training {
            epoch: 0,
            best_fitness: 0.25,
            best_epoch: 1,
            updates: 2,
        },
        ..meta("yolo11n-seg")
    };
    let path = d.join("last.pt");
    ptwrite::write_pt(&m, &meta, &path).unwrap();
    let ck = ryolo::weights::read_pt(&path).unwrap();
    assert_eq!(max_diff_fp16(&m, &ck.tensors), 0.0);
    let lm = ryolo::weights::load_model(path.to_str().unwrap(), None, Device::Cpu).unwrap();
    assert_eq!(lm.model.task(), TaskKind::Segment);
    let _ = std::fs::remove_dir_all(&d);
}

/// Ultralytics' own `yolo11n-seg` file, rewritten by us, uses exactly its globals and holds its
/// tensors.
#[test]
fn our_rewrite_of_an_ultralytics_seg_checkpoint_keeps_its_globals_and_tensors() {
    let Some(shared) = common::shared() else {
        return;
    };
    let original = shared.join("fixtures/ultralytics/segment/yolo11n-seg_seed0.pt");
    let loaded = ryolo::weights::load_model(original.to_str().unwrap(), None, Device::Cpu).unwrap();
    assert_eq!(loaded.model.task(), TaskKind::Segment);
    let d = tmp("segpt-fixture");
    let ours = d.join("seg.pt");
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
    let _ = std::fs::remove_dir_all(&d);
}
