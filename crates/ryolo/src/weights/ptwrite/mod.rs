//! Writing Ultralytics-format `.pt` checkpoints (spec/checkpoint-write.md): our model as the
//! object graph Ultralytics 8.4.190 pickles (fp16 `DetectionModel`, `names`, `yaml`, `stride`,
//! `train_args`, ...), protocol-2 pickle, torch's zip layout, written atomically. Ultralytics loads,
//! predicts, validates, exports and fine-tunes from these files; our own [`super::read_pt`] reads
//! them back.

mod files;
mod graph;
pub mod pickler;
pub mod torchzip;

use crate::nn::DetectionModel;
use anyhow::{bail, Result};
use pickler::Py;
use std::path::{Path, PathBuf};

pub use files::{export_pt, metrics_from_meta, save_final, save_training, RunInfo};
pub use graph::half_blob;

/// The Ultralytics version whose format is written.
pub const ULTRALYTICS_VERSION: &str = "8.4.190";
/// The license string of 8.4 checkpoints.
const LICENSE: &str = "AGPL-3.0 (https://ultralytics.com/license)";
/// The docs link of 8.4 checkpoints.
const DOCS: &str = "https://docs.ultralytics.com";

/// The 113 keys of Ultralytics 8.4.190 `cfg/default.yaml`, in order (`train_args`).
#[rustfmt::skip]
pub const TRAIN_ARG_KEYS: [&str; 113] = [
    "task", "mode", "model", "data", "epochs", "time", "patience", "batch", "imgsz", "save",
    "save_period", "cache", "device", "workers", "project", "name", "exist_ok", "pretrained",
    "cls_remap", "optimizer", "verbose", "seed", "deterministic", "single_cls", "rect", "cos_lr",
    "close_mosaic", "resume", "amp", "fraction", "profile", "freeze", "multi_scale", "compile",
    "channels_last", "overlap_mask", "mask_ratio", "dropout", "val", "split", "save_json", "conf",
    "iou", "max_det", "quantize", "dnn", "plots", "nms", "source", "vid_stride", "stream_buffer",
    "visualize", "augment", "agnostic_nms", "classes", "retina_masks", "embed", "show",
    "save_frames", "save_txt", "save_conf", "save_crop", "show_labels", "show_conf", "show_boxes",
    "line_width", "format", "optimize", "dynamic", "simplify", "opset", "workspace", "lr0", "lrf",
    "momentum", "weight_decay", "warmup_epochs", "warmup_momentum", "warmup_bias_lr",
    "distill_model", "dis", "box", "cls", "cls_pw", "dfl", "pose", "kobj", "rle", "angle", "dlog",
    "dgrad", "dlam", "nbs", "hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear",
    "perspective", "flipud", "fliplr", "bgr", "mosaic", "mixup", "cutmix", "copy_paste",
    "copy_paste_mode", "auto_augment", "erasing", "cfg", "tracker",
];

/// The globals a written checkpoint may contain: those of Ultralytics' own yolo11n and yolov8n
/// `best.pt` (spec/checkpoint-write.md §2.3), their `-seg` variants (segment.md §9), the `-cls`
/// ones (classify.md §9; without the torchvision transforms, which are not written) and the `-obb`
/// ones (obb.md §11).
pub const ALLOWED_GLOBALS: &[&str] = &[
    "__builtin__ set",
    "collections OrderedDict",
    "torch FloatStorage",
    "torch HalfStorage",
    "torch LongStorage",
    "torch Size",
    "torch._utils _rebuild_parameter",
    "torch._utils _rebuild_tensor_v2",
    "torch.nn.modules.activation SiLU",
    "torch.nn.modules.batchnorm BatchNorm2d",
    "torch.nn.modules.container ModuleList",
    "torch.nn.modules.container Sequential",
    "torch.nn.modules.conv Conv2d",
    "torch.nn.modules.conv ConvTranspose2d",
    "torch.nn.modules.dropout Dropout",
    "torch.nn.modules.linear Identity",
    "torch.nn.modules.linear Linear",
    "torch.nn.modules.pooling AdaptiveAvgPool2d",
    "torch.nn.modules.pooling MaxPool2d",
    "torch.nn.modules.upsampling Upsample",
    "ultralytics.nn.modules.block Attention",
    "ultralytics.nn.modules.block Bottleneck",
    "ultralytics.nn.modules.block C2PSA",
    "ultralytics.nn.modules.block C2f",
    "ultralytics.nn.modules.block C3k",
    "ultralytics.nn.modules.block C3k2",
    "ultralytics.nn.modules.block DFL",
    "ultralytics.nn.modules.block PSABlock",
    "ultralytics.nn.modules.block Proto",
    "ultralytics.nn.modules.block SPPF",
    "ultralytics.nn.modules.conv Concat",
    "ultralytics.nn.modules.conv Conv",
    "ultralytics.nn.modules.conv DWConv",
    "ultralytics.nn.modules.head Classify",
    "ultralytics.nn.modules.head Detect",
    "ultralytics.nn.modules.head OBB",
    "ultralytics.nn.modules.head Pose",
    "ultralytics.nn.modules.head Segment",
    "ultralytics.nn.tasks ClassificationModel",
    "ultralytics.nn.tasks DetectionModel",
    "ultralytics.nn.tasks OBBModel",
    "ultralytics.nn.tasks PoseModel",
    "ultralytics.nn.tasks SegmentationModel",
];

/// Which of Ultralytics' two checkpoint layouts to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    /// A finished run's file (`strip_optimizer`): `epoch` -1, the weights under `model`, root
    /// folder named after the file.
    Final,
    /// A file written during training (`save_model`): the weights under `ema`, `model` None,
    /// `epoch` (0-based), best fitness and the stopper state, root folder `archive`. The optimizer
    /// state is not written (`optimizer` None): our exact resume state lives in
    /// `last.safetensors`.
    Training {
        /// The 0-based epoch just finished.
        epoch: i64,
        /// Best fitness so far.
        best_fitness: f64,
        /// 1-based epoch of the best fitness.
        best_epoch: i64,
        /// EMA updates so far.
        updates: i64,
    },
}

/// A column of `results.csv` as polars reads it: all integers, or floats.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Every value parsed as an integer.
    Ints(Vec<i64>),
    /// Anything else.
    Floats(Vec<f64>),
}

/// Everything besides the weights that goes into the checkpoint dictionary.
#[derive(Debug, Clone)]
pub struct PtMeta {
    /// Final or training-time layout.
    pub layout: Layout,
    /// The run's arguments (our `Args` mapping or a checkpoint's `train_args`); the 113
    /// Ultralytics keys are taken from it (defaults for the missing ones).
    pub args: serde_yaml::Mapping,
    /// The run folder (`save_dir`), if known.
    pub save_dir: Option<String>,
    /// `yaml_file` of the model YAML (e.g. `yolo11n.yaml`) when the YAML does not hold one.
    pub yaml_file: String,
    /// `train_metrics`: metric or loss name -> value (plus `fitness`).
    pub train_metrics: Vec<(String, f64)>,
    /// `train_results`: the results.csv columns.
    pub train_results: Vec<(String, Column)>,
    /// ISO-8601 date with offset.
    pub date: String,
}

impl PtMeta {
    /// A final checkpoint's metadata from a model's stored arguments (no metrics or history).
    pub fn final_from(args: &serde_yaml::Value, stem: &str) -> Self {
        Self {
            layout: Layout::Final,
            args: args.as_mapping().cloned().unwrap_or_default(),
            save_dir: args
                .get("save_dir")
                .and_then(serde_yaml::Value::as_str)
                .map(str::to_string),
            yaml_file: format!("{stem}.yaml"),
            train_metrics: vec![],
            train_results: vec![],
            date: iso_now(),
        }
    }
}

/// Writes `model` as an Ultralytics checkpoint at `path` (temp file + rename).
pub fn write_pt(model: &DetectionModel, meta: &PtMeta, path: &Path) -> Result<()> {
    let root = match meta.layout {
        Layout::Final => zip_root(path),
        Layout::Training { .. } => "archive".to_string(),
    };
    let bytes = to_bytes(model, meta, &root)
        .map_err(|e| e.context(format!("writing Ultralytics checkpoint {}", path.display())))?;
    crate::util::write_atomic(path, &bytes)
}

/// The checkpoint file's bytes with entries under `root/`.
pub fn to_bytes(model: &DetectionModel, meta: &PtMeta, root: &str) -> Result<Vec<u8>> {
    let ckpt = checkpoint_dict(model, meta)?;
    let p = pickler::dump(&ckpt);
    if let Some(g) = p
        .globals
        .iter()
        .find(|g| !ALLOWED_GLOBALS.contains(&g.as_str()))
    {
        bail!("internal error: the pickle would reference {g}, which Ultralytics' files never do");
    }
    let mut z = torchzip::TorchZip::new(root);
    z.add("data.pkl", &p.pkl)?;
    z.add(".format_version", b"1")?;
    z.add(".storage_alignment", b"64")?;
    z.add("byteorder", b"little")?;
    for (i, s) in p.storages.iter().enumerate() {
        z.add(&format!("data/{i}"), &s.bytes)?;
    }
    z.add("version", b"3\n")?;
    z.add(".data/serialization_id", serialization_id().as_bytes())?;
    z.finish()
}

/// The top-level dict in the key order of the layout (spec §3.1, §3.2).
fn checkpoint_dict(model: &DetectionModel, meta: &PtMeta) -> Result<Py> {
    let own;
    let args = match model.task() {
        crate::task::TaskKind::Classify => {
            own = classify_args(&meta.args);
            &own
        }
        crate::task::TaskKind::Pose => {
            // A pose run's arguments say so (Ultralytics' loader takes the task from them).
            own = {
                let mut a = meta.args.clone();
                a.insert("task".into(), "pose".into());
                a
            };
            &own
        }
        _ => &meta.args,
    };
    let train_args = train_args(args);
    let mut model_args = train_args.clone();
    model_args.push((
        "save_dir".into(),
        meta.save_dir.clone().map_or(Py::None, Py::Str),
    ));
    let graph = graph::GraphBuilder::new();
    let yaml = model_yaml(&model.spec.yaml, &meta.yaml_file);
    let max_det = match train_args.iter().find(|(k, _)| k == "max_det") {
        Some((_, Py::Int(n))) => *n,
        _ => 300,
    };
    let m = graph.detection_model(model, yaml, py_str_dict(model_args), max_det)?;
    let metrics = Py::Dict(
        meta.train_metrics
            .iter()
            .map(|(k, v)| (Py::s(k.as_str()), Py::Float(*v)))
            .collect(),
    );
    let results = Py::Dict(
        meta.train_results
            .iter()
            .map(|(k, c)| (Py::s(k.as_str()), column_py(c)))
            .collect(),
    );
    let git = Py::str_dict(vec![
        ("root", Py::s("None")),
        ("branch", Py::None),
        ("commit", Py::None),
        ("message", Py::None),
        ("origin", Py::None),
    ]);
    let items: Vec<(&str, Py)> = match &meta.layout {
        Layout::Final => vec![
            ("date", Py::s(meta.date.as_str())),
            ("version", Py::s(ULTRALYTICS_VERSION)),
            ("license", Py::s(LICENSE)),
            ("docs", Py::s(DOCS)),
            ("epoch", Py::Int(-1)),
            ("best_fitness", Py::None),
            ("stopper", Py::None),
            ("model", m),
            ("ema", Py::None),
            ("updates", Py::None),
            ("modelopt", Py::None),
            ("optimizer", Py::None),
            ("scaler", Py::None),
            ("train_args", py_str_dict(train_args)),
            ("train_metrics", metrics),
            ("train_results", results),
            ("git", git),
        ],
        Layout::Training {
            epoch,
            best_fitness,
            best_epoch,
            updates,
        } => vec![
            ("epoch", Py::Int(*epoch)),
            ("best_fitness", Py::Float(*best_fitness)),
            (
                "stopper",
                Py::str_dict(vec![
                    ("best_fitness", Py::Float(*best_fitness)),
                    ("best_epoch", Py::Int(*best_epoch)),
                ]),
            ),
            ("model", Py::None),
            ("ema", m),
            ("updates", Py::Int(*updates)),
            ("modelopt", Py::None),
            ("optimizer", Py::None),
            ("scaler", Py::Dict(vec![])),
            (
                "train_args",
                py_str_dict(model_args_for_training(args, &meta.save_dir)),
            ),
            ("train_metrics", metrics),
            ("train_results", results),
            ("date", Py::s(meta.date.as_str())),
            ("version", Py::s(ULTRALYTICS_VERSION)),
            ("git", git),
            ("license", Py::s(LICENSE)),
            ("docs", Py::s(DOCS)),
        ],
    };
    Ok(Py::str_dict(items))
}

/// A classify model's arguments: `task` classify, `imgsz` 224 when not given (spec/classify.md §5).
fn classify_args(args: &serde_yaml::Mapping) -> serde_yaml::Mapping {
    let mut a = args.clone();
    a.insert("task".into(), "classify".into());
    if a.get("imgsz").is_none_or(serde_yaml::Value::is_null) {
        a.insert("imgsz".into(), 224.into());
    }
    a
}

/// `train_args` of a training-time file: the 113 keys plus `save_dir`.
fn model_args_for_training(
    args: &serde_yaml::Mapping,
    save_dir: &Option<String>,
) -> Vec<(String, Py)> {
    let mut v = train_args(args);
    v.push((
        "save_dir".into(),
        save_dir.clone().map_or(Py::None, Py::Str),
    ));
    v
}

/// The 113 Ultralytics arguments from `args`, defaults (ours, which are Ultralytics') for the rest.
pub fn train_args(args: &serde_yaml::Mapping) -> Vec<(String, Py)> {
    let defaults = crate::cfg::defaults();
    TRAIN_ARG_KEYS
        .iter()
        .map(|&k| {
            let v = args
                .get(k)
                .or_else(|| defaults.get(k))
                .map_or(Py::None, yaml_py);
            (k.to_string(), v)
        })
        .collect()
}

/// The model YAML as `DetectionModel.yaml`: the mapping as parsed, then `yaml_file` and
/// `channels` when it has none (Ultralytics appends them after `scale`).
fn model_yaml(yaml: &serde_yaml::Value, yaml_file: &str) -> Py {
    let mut m = yaml.as_mapping().cloned().unwrap_or_default();
    if !m.contains_key("yaml_file") {
        m.insert("yaml_file".into(), yaml_file.into());
    }
    if !m.contains_key("channels") {
        m.insert("channels".into(), 3.into());
    }
    yaml_py(&serde_yaml::Value::Mapping(m))
}

/// A YAML value as the Python value `yaml.safe_load` gives.
pub fn yaml_py(v: &serde_yaml::Value) -> Py {
    use serde_yaml::Value as V;
    match v {
        V::Null => Py::None,
        V::Bool(b) => Py::Bool(*b),
        V::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Py::Int(i),
            (None, Some(f)) => Py::Float(f),
            _ => Py::None,
        },
        V::String(s) => Py::s(s.as_str()),
        V::Sequence(s) => Py::List(s.iter().map(yaml_py).collect()),
        V::Mapping(m) => Py::Dict(m.iter().map(|(k, v)| (yaml_py(k), yaml_py(v))).collect()),
        V::Tagged(t) => yaml_py(&t.value),
    }
}

/// A dict with string keys.
fn py_str_dict(items: Vec<(String, Py)>) -> Py {
    Py::Dict(items.into_iter().map(|(k, v)| (Py::Str(k), v)).collect())
}

/// A results column as a Python list.
fn column_py(c: &Column) -> Py {
    match c {
        Column::Ints(v) => Py::List(v.iter().map(|&i| Py::Int(i)).collect()),
        Column::Floats(v) => Py::List(v.iter().map(|&f| Py::Float(f)).collect()),
    }
}

/// `results.csv` text as columns (header names trimmed; a column of integers stays integers).
pub fn results_columns(csv: &str) -> Vec<(String, Column)> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return vec![];
    };
    let rows: Vec<Vec<&str>> = lines
        .map(|l| l.split(',').map(str::trim).collect())
        .collect();
    header
        .split(',')
        .map(str::trim)
        .enumerate()
        .map(|(i, name)| {
            let cells: Vec<&str> = rows
                .iter()
                .map(|r| r.get(i).copied().unwrap_or(""))
                .collect();
            let ints: Option<Vec<i64>> = cells.iter().map(|c| c.parse().ok()).collect();
            let col = match ints {
                Some(v) => Column::Ints(v),
                None => Column::Floats(
                    cells
                        .iter()
                        .map(|c| c.parse().unwrap_or(f64::NAN))
                        .collect(),
                ),
            };
            (name.to_string(), col)
        })
        .collect()
}

/// `train_metrics` from the results columns: the `metrics/` and `val/` values of row `row`
/// (rounded to 5 decimals as Ultralytics), then `fitness`.
pub fn metrics_from_results(
    cols: &[(String, Column)],
    row: usize,
    fitness: f64,
) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = cols
        .iter()
        .filter(|(k, _)| k.starts_with("metrics/") || k.starts_with("val/"))
        .filter_map(|(k, c)| {
            let v = match c {
                Column::Ints(v) => v.get(row).map(|&i| i as f64),
                Column::Floats(v) => v.get(row).copied(),
            }?;
            Some((k.clone(), round5(v)))
        })
        .collect();
    out.push(("fitness".into(), round5(fitness)));
    out
}

/// Rounds to 5 decimals.
fn round5(v: f64) -> f64 {
    (v * 1e5).round() / 1e5
}

/// The zip root for a final file: its stem when that is a plain name, else `archive`.
fn zip_root(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
        .unwrap_or("archive")
        .to_string()
}

/// 40 random decimal digits (torch's `.data/serialization_id`; only logged).
fn serialization_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// The current time as ISO-8601 with microseconds and a UTC offset
/// (`2026-12-02T03:22:20.301845+00:00`, Python's `datetime.now().astimezone().isoformat()` in UTC).
pub fn iso_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    iso_utc(d.as_secs() as i64, d.subsec_micros())
}

/// ISO-8601 UTC text for Unix seconds and microseconds.
fn iso_utc(secs: i64, micros: u32) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The file training resumes from for `model=.../last.pt`: the sibling `last.safetensors`, which
/// holds our exact resume state (the `.pt` holds only the EMA weights). Other paths are returned
/// unchanged.
pub fn resume_source(path: &Path) -> Result<PathBuf> {
    let is_pt = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("pt"));
    if !is_pt {
        return Ok(path.to_path_buf());
    }
    let st = path.with_extension("safetensors");
    if st.is_file() {
        return Ok(st);
    }
    bail!(
        "cannot resume from {}: ryolo resumes from the exact training state in {}, which does not \
         exist (a .pt holds only the weights; start a new run with model={} to fine-tune from them)",
        path.display(),
        st.display(),
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_utc(0, 0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(
            iso_utc(1_796_181_740, 301_845),
            "2026-12-02T03:22:20.301845+00:00"
        );
        assert_eq!(iso_utc(951_782_400, 5), "2000-02-29T00:00:00.000005+00:00");
    }

    #[test]
    fn results_csv_columns() {
        let cols = results_columns(
            "epoch,time,metrics/mAP50(B),val/box_loss\n1,0.5,0,1.234567\n2,1.5,0,2\n",
        );
        assert_eq!(cols[0], ("epoch".into(), Column::Ints(vec![1, 2])));
        assert_eq!(cols[1], ("time".into(), Column::Floats(vec![0.5, 1.5])));
        assert_eq!(
            cols[2],
            ("metrics/mAP50(B)".into(), Column::Ints(vec![0, 0]))
        );
        let m = metrics_from_results(&cols, 0, 0.25);
        assert_eq!(
            m,
            vec![
                ("metrics/mAP50(B)".to_string(), 0.0),
                ("val/box_loss".to_string(), 1.23457),
                ("fitness".to_string(), 0.25)
            ]
        );
    }

    #[test]
    fn train_args_are_the_113_keys() {
        let mut a = serde_yaml::Mapping::new();
        a.insert("epochs".into(), 3.into());
        a.insert("metric".into(), "coco".into());
        let t = train_args(&a);
        assert_eq!(t.len(), 113);
        assert!(matches!(t[4], (ref k, Py::Int(3)) if k == "epochs"));
        assert!(!t.iter().any(|(k, _)| k == "metric" || k == "save_dir"));
        let ours: Vec<String> = crate::cfg::defaults()
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .filter(|k| k != "metric" && k != "save_dir")
            .collect();
        assert_eq!(
            ours, TRAIN_ARG_KEYS,
            "our default.yaml keys are Ultralytics' 113 in order"
        );
    }

    #[test]
    fn resume_from_pt_means_the_safetensors_sibling() {
        let d = std::env::temp_dir().join(format!("ryolo-ptresume-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let pt = d.join("last.pt");
        let e = resume_source(&pt).unwrap_err().to_string();
        assert!(e.contains("last.safetensors"), "{e}");
        std::fs::write(d.join("last.safetensors"), b"x").unwrap();
        assert_eq!(resume_source(&pt).unwrap(), d.join("last.safetensors"));
        let st = d.join("x.safetensors");
        assert_eq!(resume_source(&st).unwrap(), st);
        let _ = std::fs::remove_dir_all(&d);
    }
}
