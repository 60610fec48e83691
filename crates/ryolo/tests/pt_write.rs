//! Ultralytics-format `.pt` writing (spec/checkpoint-write.md), checked without Python: our reader
//! reads what we write back (fp16-rounded weights, names, architecture), the pickle holds only the
//! opcodes and globals of Ultralytics' own files, and the container has torch's layout.

mod common;
use common::tmp;
use ryolo::nn::{DetectionModel, ModelSpec};
use ryolo::weights::ptwrite::{self, Layout, PtMeta, ALLOWED_GLOBALS};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A model with random BatchNorm statistics (so that every tensor carries information).
fn model(name: &str, nc: i64) -> DetectionModel {
    tch::manual_seed(7);
    let spec = ModelSpec::from_name(name, Some(nc)).unwrap();
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

fn meta(stem: &str) -> PtMeta {
    let mut args = serde_yaml::Mapping::new();
    args.insert("imgsz".into(), 96.into());
    args.insert("data".into(), "synth/data.yaml".into());
    PtMeta {
        layout: Layout::Final,
        args,
        save_dir: Some("runs/detect/train".into()),
        yaml_file: format!("{stem}.yaml"),
        train_metrics: vec![],
        train_results: vec![],
        date: ptwrite::iso_now(),
    }
}

/// Largest |a - b| over the model's variables, `a` rounded through fp16 first.
fn max_diff_fp16(a: &DetectionModel, b: &HashMap<String, Tensor>) -> f64 {
    let mut worst = 0.0f64;
    for (k, t) in a.vs.variables() {
        let other = b
            .get(&k)
            .unwrap_or_else(|| panic!("{k} missing after the round trip"));
        assert_eq!(t.size(), other.size(), "{k}");
        let r = t.to_kind(Kind::Half).to_kind(Kind::Float);
        let d = (r - other.to_kind(Kind::Float))
            .abs()
            .max()
            .double_value(&[]);
        worst = worst.max(d);
    }
    worst
}

/// Reads `root/data.pkl` and the entry names of a written file; checks torch's container layout.
fn container(path: &Path) -> (String, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let names: Vec<String> = (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().to_string())
        .collect();
    let root = names[0].split('/').next().unwrap().to_string();
    assert_eq!(names[0], format!("{root}/data.pkl"));
    for i in 0..z.len() {
        let f = z.by_index(i).unwrap();
        assert!(f.name().starts_with(&format!("{root}/")), "{}", f.name());
        assert_eq!(f.compression(), zip::CompressionMethod::Stored);
        assert_eq!(f.data_start() % 64, 0, "{} not aligned", f.name());
    }
    let mut v = String::new();
    z.by_name(&format!("{root}/version"))
        .unwrap()
        .read_to_string(&mut v)
        .unwrap();
    assert_eq!(v, "3\n");
    let mut pkl = Vec::new();
    z.by_name(&format!("{root}/data.pkl"))
        .unwrap()
        .read_to_end(&mut pkl)
        .unwrap();
    (root, pkl)
}

/// Opcode names and `module name` globals of a pickle that uses only the protocol-2 subset torch's
/// `weights_only` unpickler implements; panics on anything else.
fn opcodes_and_globals(p: &[u8]) -> (BTreeSet<&'static str>, BTreeSet<String>) {
    let (mut ops, mut globals) = (BTreeSet::new(), BTreeSet::new());
    let mut i = 0;
    let u32at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().unwrap()) as usize;
    while i < p.len() {
        let op = p[i];
        i += 1;
        let (name, arg) = match op {
            0x80 => ("PROTO", 1),
            b'.' => ("STOP", 0),
            b'}' => ("EMPTY_DICT", 0),
            b']' => ("EMPTY_LIST", 0),
            b')' => ("EMPTY_TUPLE", 0),
            b'(' => ("MARK", 0),
            b'N' => ("NONE", 0),
            0x88 => ("NEWTRUE", 0),
            0x89 => ("NEWFALSE", 0),
            0x85 => ("TUPLE1", 0),
            0x86 => ("TUPLE2", 0),
            0x87 => ("TUPLE3", 0),
            b't' => ("TUPLE", 0),
            b'a' => ("APPEND", 0),
            b'e' => ("APPENDS", 0),
            b's' => ("SETITEM", 0),
            b'u' => ("SETITEMS", 0),
            b'R' => ("REDUCE", 0),
            0x81 => ("NEWOBJ", 0),
            b'b' => ("BUILD", 0),
            b'Q' => ("BINPERSID", 0),
            b'K' => ("BININT1", 1),
            b'M' => ("BININT2", 2),
            b'J' => ("BININT", 4),
            b'G' => ("BINFLOAT", 8),
            b'q' => ("BINPUT", 1),
            b'r' => ("LONG_BINPUT", 4),
            b'h' => ("BINGET", 1),
            b'j' => ("LONG_BINGET", 4),
            0x8a => ("LONG1", 1 + p[i] as usize),
            b'X' => ("BINUNICODE", 4 + u32at(i)),
            b'c' => {
                let end1 = i + p[i..].iter().position(|&b| b == b'\n').unwrap();
                let end2 = end1 + 1 + p[end1 + 1..].iter().position(|&b| b == b'\n').unwrap();
                let m = std::str::from_utf8(&p[i..end1]).unwrap();
                let n = std::str::from_utf8(&p[end1 + 1..end2]).unwrap();
                globals.insert(format!("{m} {n}"));
                ("GLOBAL", end2 + 1 - i)
            }
            other => panic!(
                "opcode 0x{other:02x} at byte {} is outside the allowed subset",
                i - 1
            ),
        };
        ops.insert(name);
        i += arg;
    }
    (ops, globals)
}

/// Writes, checks the container and pickle, reads back with our reader and loader.
fn round_trip(name: &str, stem: &str, nc: i64) {
    let d = tmp(&format!("ptw-{stem}"));
    let m = model(name, nc);
    let path = d.join("best.pt");
    let t0 = std::time::Instant::now();
    ptwrite::write_pt(&m, &meta(stem), &path).unwrap();
    eprintln!(
        "{stem}: wrote {} bytes in {:?}",
        std::fs::metadata(&path).unwrap().len(),
        t0.elapsed()
    );

    let (root, pkl) = container(&path);
    assert_eq!(root, "best");
    let (ops, globals) = opcodes_and_globals(&pkl);
    for g in &globals {
        assert!(
            ALLOWED_GLOBALS.contains(&g.as_str()),
            "global {g} is not in Ultralytics' files"
        );
    }
    assert!(
        ops.contains("NEWOBJ") && ops.contains("BINPERSID"),
        "{ops:?}"
    );

    let ck = ryolo::weights::read_pt(&path).unwrap();
    assert_eq!(ck.names, m.names);
    assert_eq!(ck.stem, stem);
    let diff = max_diff_fp16(&m, &ck.tensors);
    assert_eq!(
        diff, 0.0,
        "tensors differ from the fp16-rounded originals by {diff}"
    );
    assert_eq!(
        ck.train_args.get("imgsz").and_then(|v| v.as_i64()),
        Some(96)
    );

    let loaded = ryolo::weights::load_model(path.to_str().unwrap(), None, Device::Cpu).unwrap();
    let lm = loaded.model;
    assert_eq!(lm.names, m.names);
    assert_eq!(lm.spec.name, m.spec.name);
    assert_eq!(lm.spec.scale, m.spec.scale);
    assert_eq!(lm.nc(), nc);
    let kinds = |s: &ModelSpec| {
        s.layers
            .iter()
            .map(|l| format!("{:?} {:?}", l.from, l.kind))
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&lm.spec), kinds(&m.spec), "architecture");
    assert_eq!(lm.stride, m.stride);
    // Same outputs as the original with fp16-rounded weights.
    let spec = ModelSpec::from_name(name, Some(nc)).unwrap();
    let mut r = DetectionModel::new(spec, Device::Cpu).unwrap();
    let rounded: HashMap<String, Tensor> =
        m.vs.variables()
            .into_iter()
            .map(|(k, v)| (k, v.to_kind(Kind::Half).to_kind(Kind::Float)))
            .collect();
    ryolo::weights::load_state(&mut r, &rounded, true).unwrap();
    r.names = m.names.clone();
    let x = Tensor::rand([1, 3, 64, 96], (Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| (r.predict(&x), lm.predict(&x)));
    let diff = (a - b).abs().max().double_value(&[]);
    assert_eq!(diff, 0.0, "outputs differ by {diff}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn yolo11n_round_trips_through_our_reader() {
    round_trip("yolo11n.yaml", "yolo11n", 3);
}

#[test]
fn yolov8n_round_trips_through_our_reader() {
    round_trip("yolov8n.yaml", "yolov8n", 2);
}

#[test]
fn training_layout_keeps_the_weights_under_ema() {
    let d = tmp("ptw-ema");
    let m = model("yolo11n.yaml", 1);
    let meta = PtMeta {
        layout: Layout::Training {
            epoch: 2,
            best_fitness: 0.5,
            best_epoch: 2,
            updates: 10,
        },
        ..meta("yolo11n")
    };
    let path = d.join("last.pt");
    ptwrite::write_pt(&m, &meta, &path).unwrap();
    let (root, _) = container(&path);
    assert_eq!(root, "archive");
    let ck = ryolo::weights::read_pt(&path).unwrap();
    assert_eq!(max_diff_fp16(&m, &ck.tensors), 0.0);
    let _ = std::fs::remove_dir_all(&d);
}

/// Our checkpoint's model tensors (not the `train.` resume state).
fn safetensors_model(path: &Path) -> HashMap<String, Tensor> {
    let (_, t) = ryolo::weights::read_checkpoint(path).unwrap();
    t.into_iter()
        .filter(|(k, _)| !k.starts_with("train."))
        .collect()
}

/// Largest |fp16(a) - b| over the tensors of `a`.
fn max_diff_maps(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) -> f64 {
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        assert!(k.ends_with("num_batches_tracked"), "{k} is extra");
    }
    a.iter()
        .map(|(k, t)| {
            let o = b.get(k).unwrap_or_else(|| panic!("{k} missing"));
            (t.to_kind(Kind::Half).to_kind(Kind::Float) - o)
                .abs()
                .max()
                .double_value(&[])
        })
        .fold(0.0, f64::max)
}

#[test]
fn training_writes_pt_files_that_hold_the_safetensors_weights() {
    let t0 = std::time::Instant::now();
    let d = tmp("ptw-train");
    let yaml = ryolo::data::synth::generate(&d.join("data"), 12, 64, 2).unwrap();
    let common = format!(
        "model=yolo11n.yaml data={} epochs=2 imgsz=64 batch=4 nbs=8 seed=3 workers=1 project={} plots=False close_mosaic=1",
        yaml.display(),
        d.display()
    );
    // Interrupted after epoch 1: training-time files; then resumed through last.pt.
    let mut cb = ryolo::engine::train::Callbacks::default();
    let stop = cb.stop.clone();
    cb.on_fit_epoch_end.push(Box::new(move |r| {
        if r.epoch == 1 {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }));
    ryolo::engine::train::train(&common::args(&format!("{common} name=run")), &mut cb).unwrap();
    let w = d.join("run/weights");
    for f in ["best.pt", "last.pt", "best.safetensors", "last.safetensors"] {
        assert!(w.join(f).is_file(), "{f} missing");
    }
    let (root, _) = container(&w.join("last.pt"));
    assert_eq!(
        root, "archive",
        "an unfinished run's last.pt has the training layout"
    );
    let mid = ryolo::weights::read_pt(&w.join("last.pt")).unwrap();
    let ema: HashMap<String, Tensor> = safetensors_model(&w.join("last.safetensors"));
    assert_eq!(
        max_diff_maps(&ema, &mid.tensors),
        0.0,
        "mid-run last.pt holds the EMA"
    );
    assert_eq!(
        mid.train_args.get("epochs").and_then(|v| v.as_i64()),
        Some(2)
    );

    let last_pt = w.join("last.pt");
    ryolo::engine::train::train(
        &common::args(&format!("resume model={}", last_pt.display())),
        &mut ryolo::engine::train::Callbacks::default(),
    )
    .unwrap();
    let csv = std::fs::read_to_string(d.join("run/results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "resumed to the end: {csv}");

    for which in ["best", "last"] {
        let (root, pkl) = container(&w.join(format!("{which}.pt")));
        assert_eq!(root, which, "final files are rooted at their stem");
        let (_, globals) = opcodes_and_globals(&pkl);
        assert!(globals
            .iter()
            .all(|g| ALLOWED_GLOBALS.contains(&g.as_str())));
        let ck = ryolo::weights::read_pt(&w.join(format!("{which}.pt"))).unwrap();
        let st = safetensors_model(&w.join(format!("{which}.safetensors")));
        let diff = max_diff_maps(&st, &ck.tensors);
        assert_eq!(
            diff, 0.0,
            "{which}.pt differs from {which}.safetensors by {diff}"
        );
        assert_eq!(ck.names, vec!["square", "circle", "triangle"]);
    }
    let e = ryolo::engine::train::train(
        &common::args(&format!(
            "resume model={}",
            d.join("nowhere/last.pt").display()
        )),
        &mut ryolo::engine::train::Callbacks::default(),
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("last.safetensors"), "{e:#}");

    // yolo export format=pt from our checkpoint, and from that .pt again (never overwritten).
    let out = ryolo::export::run(&common::args(&format!(
        "model={} format=pt",
        w.join("best.safetensors").display()
    )))
    .unwrap();
    assert_eq!(out, w.join("best.pt"));
    let again =
        ryolo::export::run(&common::args(&format!("model={} format=pt", out.display()))).unwrap();
    assert_eq!(again, w.join("best_ryolo.pt"));
    let a = ryolo::weights::read_pt(&out).unwrap();
    let b = ryolo::weights::read_pt(&again).unwrap();
    assert_eq!(max_diff_maps(&a.tensors, &b.tensors), 0.0);
    assert_eq!(a.train_args.get("data"), b.train_args.get("data"));
    eprintln!(
        "TIMING training_writes_pt_files_that_hold_the_safetensors_weights: {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&d);
}
