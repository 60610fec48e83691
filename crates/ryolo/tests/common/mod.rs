//! Shared helpers: where `../shared` is, and a loud skip when it is absent.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `<repo>/../shared`, or None (with a loud message) when it is absent (a user's clone).
pub fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if p.join("fixtures").exists() {
        Some(p.canonicalize().unwrap())
    } else {
        eprintln!("\n!!!!! SKIPPED: ../shared (fixtures and datasets) not found next to the repository !!!!!\n");
        None
    }
}

/// A fresh temporary folder for one test.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ryolo-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Arguments as the CLI would parse them.
pub fn args(s: &str) -> ryolo::cfg::Args {
    let c = ryolo::cfg::parse_args(&s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .unwrap();
    ryolo::cfg::Args::new(&c.overrides)
}

/// The Ultralytics-trained fixture model (`bt_yolo11n_best.pt`), fused, on the CPU.
pub fn bt_model(shared: &std::path::Path) -> ryolo::nn::DetectionModel {
    let f = shared.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    let mut m = ryolo::weights::load_model(f.to_str().unwrap(), None, tch::Device::Cpu)
        .unwrap()
        .model;
    m.fuse();
    m
}

/// A 16-image synthetic dataset validated on its own training images (for overfit runs).
pub fn overfit_data(dir: &std::path::Path) -> PathBuf {
    overfit_data_with(dir, false)
}

/// The rows of a `results.csv` without the `time` column (equal across exact resumes).
pub fn rows_without_time(p: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != 1)
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// A synthetic dataset whose val split is its train split (for overfit tests): `polygons` writes
/// segment labels.
pub fn overfit_data_with(dir: &std::path::Path, polygons: bool) -> PathBuf {
    let yaml = ryolo::data::synth::generate_with(&dir.join("data"), 16, 96, 1, polygons).unwrap();
    std::fs::write(
        &yaml,
        std::fs::read_to_string(&yaml)
            .unwrap()
            .replace("val: images/val", "val: images/train"),
    )
    .unwrap();
    yaml
}

/// A learnable ImageFolder dataset under `root`: classes `blue`, `green`, `red` of noisy
/// 48x40 images dominated by that colour channel, `n_train` / `n_val` per class; returns `root`.
pub fn colour_folder(root: &std::path::Path, n_train: usize, n_val: usize) -> PathBuf {
    let mut state = 12345u64;
    let mut rnd = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    for (split, n) in [("train", n_train), ("val", n_val)] {
        for (k, name) in ["blue", "green", "red"].iter().enumerate() {
            let dir = root.join(split).join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let ch = [2, 1, 0][k];
            for i in 0..n {
                let img = ryolo::image::RgbImage::from_fn(48, 40, |_, _| {
                    let mut px = [0u8; 3];
                    for (c, v) in px.iter_mut().enumerate() {
                        let base = if c == ch { 170 } else { 40 };
                        *v = (base + rnd() % 60) as u8;
                    }
                    ryolo::image::Rgb(px)
                });
                img.save(dir.join(format!("{i:03}.png"))).unwrap();
            }
        }
    }
    root.to_path_buf()
}

/// `r`'s value, or None (loudly) when only the ONNX Runtime library is missing; with
/// `CI_REQUIRE_ORT` set a missing runtime fails, and any other error always does.
pub fn ort_or_skip<T>(r: anyhow::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(msg.contains("cannot load ONNX Runtime"), "{msg}");
            if std::env::var_os("CI_REQUIRE_ORT").is_some() {
                panic!("{msg}");
            }
            eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
            None
        }
    }
}

/// A checkpoint loaded on the CPU and fused.
pub fn fused_model(f: &std::path::Path) -> ryolo::nn::DetectionModel {
    let mut m = ryolo::weights::load_model(f.to_str().unwrap(), None, tch::Device::Cpu)
        .unwrap()
        .model;
    m.fuse();
    m
}

/// Our ONNX export of `m` at `imgsz`, written to `dir/name`; returns the file and the decoded proto.
pub fn export_onnx(
    m: &ryolo::nn::DetectionModel,
    dir: &std::path::Path,
    name: &str,
    imgsz: (usize, usize),
    batch: usize,
    dynamic: bool,
) -> (PathBuf, ryolo::export::proto::ModelProto) {
    use prost::Message;
    let args = format!("{{'dynamic': {}}}", if dynamic { "True" } else { "False" });
    let cfg = ryolo::export::ExportConfig {
        imgsz,
        opset: 18,
        metadata: ryolo::export::metadata(m, imgsz, batch, &args),
        batch: batch as i64,
        dynamic,
    };
    let bytes = ryolo::export::to_onnx(m, &cfg).unwrap();
    let f = dir.join(name);
    std::fs::write(&f, &bytes).unwrap();
    (
        f,
        ryolo::export::proto::ModelProto::decode(bytes.as_slice()).unwrap(),
    )
}

/// Exact resume: trains `run_args` straight (`name=straight`), again stopped after `stop_after`
/// epochs (`name=split`), resumes the split run (through `last.pt` when `via_pt`, else
/// `last.safetensors`), and asserts that both runs' results.csv rows (without time) and last weights
/// are equal. Returns the straight run's rows.
pub fn assert_exact_resume(
    d: &std::path::Path,
    run_args: &str,
    stop_after: usize,
    via_pt: bool,
) -> Vec<String> {
    use ryolo::engine::train::{train, Callbacks};
    use std::sync::atomic::Ordering;
    train(
        &args(&format!("{run_args} name=straight")),
        &mut Callbacks::default(),
    )
    .unwrap();
    let mut cb = Callbacks::default();
    let stop = cb.stop.clone();
    cb.on_fit_epoch_end.push(Box::new(move |r| {
        if r.epoch == stop_after {
            stop.store(true, Ordering::SeqCst);
        }
    }));
    train(&args(&format!("{run_args} name=split")), &mut cb).unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("split/results.csv"))
            .unwrap()
            .lines()
            .count(),
        stop_after + 1,
        "stopped after {stop_after} epochs"
    );
    let last = d.join("split/weights/last.safetensors");
    // A last.pt resumes from its last.safetensors sibling.
    let from = if via_pt {
        last.with_extension("pt")
    } else {
        last.clone()
    };
    train(
        &args(&format!("resume model={}", from.display())),
        &mut Callbacks::default(),
    )
    .unwrap();
    let straight = rows_without_time(&d.join("straight/results.csv"));
    assert_eq!(straight, rows_without_time(&d.join("split/results.csv")));
    let (_, a) =
        ryolo::weights::read_checkpoint(&d.join("straight/weights/last.safetensors")).unwrap();
    let (_, b) = ryolo::weights::read_checkpoint(&last).unwrap();
    assert_eq!(a.len(), b.len());
    for (k, t) in &a {
        let diff = (t - &b[k]).abs().max().double_value(&[]);
        assert_eq!(diff, 0.0, "weight {k} differs by {diff}");
    }
    straight
}

/// A Python that can run the fixtures' dataset generators (NumPy, OpenCV, torch importable):
/// `RYOLO_ULTRALYTICS_PYTHON`, else the repository's `.venv`; None (with a loud skip) otherwise.
pub fn fixture_python() -> Option<PathBuf> {
    let p = std::env::var_os("RYOLO_ULTRALYTICS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    let ok = std::process::Command::new(&p)
        .args(["-c", "import cv2, numpy, torch"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("\n!!!!! SKIPPED: no Python with numpy, cv2 and torch (set RYOLO_ULTRALYTICS_PYTHON) !!!!!\n");
    }
    ok.then_some(p)
}

/// Runs `make_fixtures.<func>(Path(out))` of the fixture folder `fx` (only the dataset generator).
pub fn make_fixture_dataset(py: &Path, fx: &Path, func: &str, out: &Path) {
    let code = format!(
        "import sys; from pathlib import Path; sys.path.insert(0, {fx:?}); import make_fixtures as m; m.{func}(Path({out:?}))",
        fx = fx.to_str().unwrap(),
        out = out.to_str().unwrap()
    );
    let st = std::process::Command::new(py)
        .args(["-c", &code])
        .status()
        .unwrap();
    assert!(st.success(), "{func} failed");
}

/// The inference engines a predict/val parity test runs on: the one `RYOLO_BACKEND` names
/// (`torch` or `onnxruntime`), else both libtorch and ONNX Runtime through the in-memory export of
/// the loaded model (ONNX Runtime skipped loudly when its library is missing, a failure under
/// `CI_REQUIRE_ORT`).
pub fn engines() -> Vec<ryolo::engine::ortpath::Engine> {
    use ryolo::engine::ortpath::Engine;
    match Engine::from_env().unwrap() {
        Engine::Torch => vec![Engine::Torch],
        Engine::OnnxRuntime => vec![Engine::OnnxRuntime],
        Engine::Auto => {
            let mut v = vec![Engine::Torch];
            if let Some(why) = ryolo::engine::onnx::OnnxModel::unavailable_reason() {
                if std::env::var_os("CI_REQUIRE_ORT").is_some() {
                    panic!("{why}");
                }
                eprintln!("\n!!!!! SKIPPED the ONNX Runtime engine: {why} !!!!!\n");
            } else {
                v.push(Engine::OnnxRuntime);
            }
            v
        }
    }
}

/// A fused model on `engine` (libtorch, or ONNX Runtime through its in-memory export).
pub fn on_engine(
    model: ryolo::nn::DetectionModel,
    engine: ryolo::engine::ortpath::Engine,
) -> ryolo::engine::backend::Backend {
    use ryolo::engine::ortpath::{select, Needs};
    let mut model = model;
    model.fuse();
    select(model, Path::new("test-model"), engine, Needs::Nothing).unwrap()
}

/// CPU seconds this process has used (user + system, from /proc; 0 where unavailable).
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Frames 160–259 (0-based) of the car video as our ffmpeg reader decodes them (`None`: no shared data).
pub fn car_video_frames() -> Option<&'static Vec<image::RgbImage>> {
    static F: std::sync::OnceLock<Option<Vec<image::RgbImage>>> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let shared = shared()?;
        let video = shared.join("datasets/samples/car-detection.mp4");
        let r = ryolo::data::video::VideoReader::open(video.to_str()?, false).ok()?;
        let all: Vec<image::RgbImage> = r.take(260).map(|f| f.unwrap()).collect();
        assert_eq!(all.len(), 260, "car video shorter than 260 frames");
        Some(all[160..].to_vec())
    })
    .as_ref()
}
