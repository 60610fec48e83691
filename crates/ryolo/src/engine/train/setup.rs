//! Training setup: the resume source, the model (fresh, transferred or resumed), frozen layers,
//! the optimizer choice and the datasets.

use super::config::{Cache, TrainConfig};
use crate::cfg::{self, Args};
use crate::data::loader::TrainDataset;
use crate::data::{list_images, DataConfig, LabelEntry};
use crate::engine::optim::OptKind;
use crate::nn::{DetectionModel, ModelSpec};
use crate::weights::{self, CheckpointMeta};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::Tensor;

/// Keys a resumed run may override.
const RESUME_OVERRIDES: &[&str] = &[
    "device",
    "workers",
    "cache",
    "patience",
    "time",
    "val",
    "plots",
    "save_period",
    "verbose",
];

/// A checkpoint being resumed: its path, metadata and tensors.
pub struct Resume {
    /// `weights/last.safetensors`.
    pub path: PathBuf,
    /// Its metadata (args, train state, metrics).
    pub meta: CheckpointMeta,
    /// Its tensors (EMA weights and the `train.*` state).
    pub tensors: HashMap<String, Tensor>,
}

/// The checkpoint named by `resume=True model=...` or `resume=<path>`, and the arguments to run
/// with: the stored ones, overridden only by the keys a resumed run may change.
pub fn resume_source(args: &Args) -> Result<(Args, Option<Resume>)> {
    let path = match args.get("resume") {
        serde_yaml::Value::Bool(true) => PathBuf::from(
            args.str("model")
                .ok_or_else(|| anyhow!("resume needs model=<run>/weights/last.safetensors"))?,
        ),
        serde_yaml::Value::String(p) => PathBuf::from(p),
        _ => return Ok((args.clone(), None)),
    };
    // `last.pt` is the Ultralytics-format copy; the exact state is in `last.safetensors`.
    let path = weights::ptwrite::resume_source(&path)?;
    if !path.exists() {
        bail!(
            "{} does not exist: the run stopped before its first checkpoint was written (after epoch 1), so there is nothing to resume; start it again without resume",
            path.display()
        );
    }
    let (meta, tensors) = weights::read_checkpoint(&path)?;
    if meta.train_state.is_null() {
        bail!("{} is a final checkpoint (training finished); it cannot be resumed. Start a new run with model={}", path.display(), path.display());
    }
    let stored: serde_yaml::Mapping =
        serde_json::from_value(meta.args.clone()).context("checkpoint args")?;
    let mut merged = Args::new(&stored);
    for k in RESUME_OVERRIDES {
        if let Some(v) = args.0.get(*k) {
            if args.get(k) != cfg::defaults().get(*k).unwrap_or(&serde_yaml::Value::Null) {
                merged.0.insert((*k).into(), v.clone());
            }
        }
    }
    merged
        .0
        .insert("resume".into(), serde_yaml::Value::Bool(false));
    Ok((
        merged,
        Some(Resume {
            path,
            meta,
            tensors,
        }),
    ))
}

/// The architecture, its name stem and (for a `.pt`/`.safetensors` model) the source weights.
pub type ModelSource = (ModelSpec, String, Option<HashMap<String, Tensor>>);

/// Where the model comes from: the resumed checkpoint, a YAML, or weights to transfer.
pub fn model_source(a: &Args, resume: Option<&Resume>, nc: usize) -> Result<ModelSource> {
    if let Some(r) = resume {
        let y: serde_yaml::Value = serde_yaml::from_str(&r.meta.yaml)?;
        let spec = ModelSpec::from_yaml(y, &r.meta.stem, None, Some(nc as i64))?;
        return Ok((spec, r.meta.stem.clone(), None));
    }
    let model_name = a.model();
    let ext = Path::new(&model_name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "yaml" || ext == "yml" {
        let stem = Path::new(&model_name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_string();
        return Ok((
            ModelSpec::from_name(&model_name, Some(nc as i64))?,
            stem,
            None,
        ));
    }
    let loaded = weights::load_model(&model_name, None, tch::Device::Cpu)?;
    let tensors: HashMap<String, Tensor> = loaded.model.vs.variables();
    let y = loaded.model.spec.yaml.clone();
    let spec = ModelSpec::from_yaml(y, &loaded.stem, None, Some(nc as i64))?;
    Ok((spec, loaded.stem, Some(tensors)))
}

/// Copies matching pretrained weights (`model=x.pt` or `pretrained=x.pt`) into the model.
pub fn transfer(
    a: &Args,
    model: &mut DetectionModel,
    source: Option<&HashMap<String, Tensor>>,
) -> Result<()> {
    let total = model.vs.variables().len();
    if let Some(src) = source {
        if a.get("pretrained").as_bool() != Some(false) {
            let n = weights::load_state(model, src, false)?;
            println!("Transferred {n}/{total} items from pretrained weights");
        }
    } else if let Some(p) = a
        .str("pretrained")
        .filter(|p| p.ends_with(".pt") || p.ends_with(".safetensors"))
    {
        let src = weights::load_model(&p, None, tch::Device::Cpu)?;
        let n = weights::load_state(model, &src.model.vs.variables(), false)?;
        println!("Transferred {n}/{total} items from pretrained weights");
    }
    Ok(())
}

/// Freezes the DFL (always) and the parameters under the `freeze` prefixes, naming each (as
/// Ultralytics' "Freezing layer" lines).
pub fn freeze(model: &DetectionModel, prefixes: &[String]) {
    let mut vars: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut t) in vars {
        if name.contains(".dfl") || prefixes.iter().any(|f| name.starts_with(f)) {
            println!("Freezing layer '{name}'");
            let _ = t.requires_grad_(false);
        }
    }
}

/// The optimizer rule, lr0, momentum and bias warmup LR: `optimizer=auto` picks AdamW with a fitted
/// LR for short runs and SGD (the 8.3 choice; 8.4's MuSGD is not implemented) for long ones.
pub fn choose_optimizer(
    c: &TrainConfig,
    n_train: usize,
    nc: usize,
) -> Result<(OptKind, f64, f64, f64)> {
    let name = &c.optimizer;
    if name.eq_ignore_ascii_case("auto") {
        let iterations = n_train.div_ceil(c.batch.max(c.nbs)) * c.epochs;
        let lr_fit = (0.002 * 5.0 / (4.0 + nc as f64) * 1e6).round() / 1e6;
        if iterations > 10000 {
            println!("optimizer: 'optimizer=auto' found, ignoring 'lr0' and 'momentum' and determining best 'optimizer' automatically... {iterations} iterations > 10000: Ultralytics 8.4 picks MuSGD, which ryolo does not implement; using SGD(lr=0.01, momentum=0.9), the 8.3 choice");
            return Ok((OptKind::Sgd, 0.01, 0.9, 0.0));
        }
        println!("optimizer: 'optimizer=auto' found, ignoring 'lr0=0.01' and determining best 'optimizer' and 'lr0' automatically... {iterations} iterations <= 10000: AdamW(lr={lr_fit})");
        return Ok((OptKind::AdamW, lr_fit, 0.9, 0.0));
    }
    let k = OptKind::parse(name).ok_or_else(|| anyhow!("optimizer={name} is not supported; use auto, SGD, AdamW, Adam, NAdam, RAdam or RMSProp"))?;
    if ["nadam", "radam", "adamax"].contains(&name.to_ascii_lowercase().as_str()) {
        println!("WARNING optimizer={name} is not implemented separately; running Adam with its settings");
    }
    Ok((k, c.lr0, c.momentum, c.warmup_bias_lr))
}

/// The training and validation entries: scanned, `fraction` applied, `single_cls` and `classes`
/// applied to the labels.
pub fn datasets(
    dc: &DataConfig,
    c: &TrainConfig,
    data_path: &str,
    format: crate::data::labels::LabelFormat,
) -> Result<(Vec<LabelEntry>, Vec<LabelEntry>)> {
    let train_files = list_images(dc.split("train")?)?;
    let scan = |p: &str, f: &[PathBuf]| {
        crate::data::labels::scan_with(p, f, dc.nc(), c.single_cls, format)
    };
    let s = scan("train", &train_files);
    s.check_parts_in("train", format)?;
    let mut train = s.entries;
    if train.is_empty() {
        bail!("no usable training images in {data_path}");
    }
    if c.fraction < 1.0 {
        let keep = ((train.len() as f64 * c.fraction).round() as usize).max(1);
        train.truncate(keep);
    }
    let mut val: Vec<LabelEntry> = match dc.split("val") {
        Ok(v) => {
            let s = scan("val", &list_images(v)?);
            s.check_parts_in("val", format)?;
            s.entries
        }
        Err(_) => vec![],
    };
    // As Ultralytics' update_labels: `classes` filters first, then single_cls maps to class 0.
    if let Some(classes) = &c.classes {
        crate::data::filter::keep_classes(&mut train, classes);
        crate::data::filter::keep_classes(&mut val, classes);
    }
    if c.single_cls {
        for e in &mut train {
            e.cls.iter_mut().for_each(|c| *c = 0);
        }
    }
    Ok((train, val))
}

/// Segment training's mask targets (`overlap_mask`, `mask_ratio`); None for other tasks.
pub fn mask_spec(
    a: &crate::cfg::Args,
    task: crate::task::TaskKind,
) -> Result<Option<crate::data::batch::MaskSpec>> {
    if task != crate::task::TaskKind::Segment {
        return Ok(None);
    }
    let ratio = a.int("mask_ratio")?;
    let imgsz = a.int("imgsz").unwrap_or(640);
    if ratio < 1 || ratio > imgsz {
        bail!("mask_ratio={ratio}: must be an integer in 1..=imgsz ({imgsz})");
    }
    Ok(Some(crate::data::batch::MaskSpec {
        overlap: a.bool("overlap_mask"),
        ratio: ratio as usize,
    }))
}

/// The augmenting training dataset on the loader pool (RAM/disk cache, rect batches); keypoint
/// labels flip through `flip_idx` (none: flips off, with Ultralytics' warning).
pub fn train_dataset(
    pool: &rayon::ThreadPool,
    entries: Vec<LabelEntry>,
    c: &TrainConfig,
    flip_idx: Option<Vec<usize>>,
) -> Result<TrainDataset> {
    pool.install(|| {
        let mut d = TrainDataset::new(
            entries,
            c.imgsz,
            c.aug.clone(),
            c.seed,
            c.cache == Cache::Ram,
        )
        .with_flip_idx(flip_idx)?;
        if c.cache == Cache::Disk {
            let t = Instant::now();
            let (dd, bytes) = d.with_disk_cache();
            d = dd;
            println!(
                "train: Caching images ({:.1}GB Disk): {} images, {:.1}s",
                bytes as f64 / 1e9,
                d.len(),
                t.elapsed().as_secs_f64()
            );
        }
        Ok(if c.rect { d.with_rect(c.batch) } else { d })
    })
}

/// The run folder of a new or resumed run, recorded in the arguments (`save_dir`); nothing is
/// written yet (see [`create_run_folder`]), so a run that fails to load leaves no folder behind.
pub fn run_folder(a: &mut Args, resume: Option<&Resume>) -> Result<PathBuf> {
    let save_dir = match resume {
        Some(r) => r
            .path
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .ok_or_else(|| anyhow!("cannot find the run folder of {}", r.path.display()))?,
        None => cfg::save_dir(a, "train"),
    };
    a.0.insert("save_dir".into(), save_dir.display().to_string().into());
    Ok(save_dir)
}

/// Creates the run folder (`weights/`) and, for a new run, its `args.yaml`: called once the
/// model and the data have loaded.
pub fn create_run_folder(a: &Args, save_dir: &Path, resume: Option<&Resume>) -> Result<()> {
    let wdir = save_dir.join("weights");
    std::fs::create_dir_all(&wdir).with_context(|| format!("creating {}", wdir.display()))?;
    let stale = crate::util::remove_stale_temps(&wdir) + crate::util::remove_stale_temps(save_dir);
    if stale > 0 {
        println!(
            "Removed {stale} partial file(s) left by an interrupted run in {}",
            save_dir.display()
        );
    }
    if resume.is_none() {
        crate::util::write_atomic(
            &save_dir.join("args.yaml"),
            serde_yaml::to_string(&a.0)?.as_bytes(),
        )?;
    }
    Ok(())
}

/// Loads a resumed run's raw weights, EMA weights, optimizer buffers and pending gradients.
pub fn restore(
    r: &Resume,
    model: &mut DetectionModel,
    ema_model: &mut DetectionModel,
    opt_state: &mut HashMap<String, Tensor>,
    model_vars: &[(String, Tensor)],
) -> Result<()> {
    use super::state::strip_prefix;
    super::resume_check::check(&r.path, &r.tensors, model_vars)?;
    let device = model.device();
    weights::load_state(model, &strip_prefix(&r.tensors, "train.model."), true)
        .context("resume: model weights")?;
    weights::load_state(ema_model, &r.tensors, true).context("resume: EMA weights")?;
    for (k, v) in strip_prefix(&r.tensors, "train.optim.") {
        opt_state.insert(k, v.to_device(device));
    }
    let grads = strip_prefix(&r.tensors, "train.grad.");
    if !grads.is_empty() {
        // Create gradient buffers with a zero backward, then restore the pending gradients.
        let zero: Vec<Tensor> = model_vars
            .iter()
            .filter(|(_, p)| p.requires_grad())
            .map(|(_, p)| (p * 0.0).sum(tch::Kind::Float))
            .collect();
        Tensor::stack(&zero, 0).sum(tch::Kind::Float).backward();
        tch::no_grad(|| {
            for (name, p) in model_vars {
                if let Some(g) = grads.get(name) {
                    let mut pg = p.grad();
                    if pg.defined() {
                        pg.copy_(g);
                    }
                }
            }
        });
    }
    Ok(())
}

/// A loader pool of `workers` threads, shared across epochs.
pub fn loader_pool(workers: usize) -> Result<Arc<rayon::ThreadPool>> {
    Ok(Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()?,
    ))
}

/// The TensorBoard event writer when the `tensorboard` setting is on (a warning, not an error,
/// when it cannot be created).
pub fn tensorboard(save_dir: &Path) -> Option<crate::util::tensorboard::EventWriter> {
    if cfg::load_settings()
        .get("tensorboard")
        .and_then(|v| v.as_bool())
        != Some(true)
    {
        return None;
    }
    match crate::util::tensorboard::EventWriter::create(save_dir) {
        Ok(w) => {
            println!(
                "TensorBoard: Start with 'tensorboard --logdir {}', view at http://localhost:6006/",
                save_dir.display()
            );
            Some(w)
        }
        Err(e) => {
            eprintln!("WARNING TensorBoard: {e:#}");
            None
        }
    }
}

/// Pose runs: the model's keypoint shape (it must equal the dataset's `kpt_shape`) and the OKS
/// sigmas (`kpt_oks_sigmas`, else COCO's for [17, 3], else 1/K); None for other tasks.
pub fn kpt_opts(
    model: &crate::nn::DetectionModel,
    dc: &crate::data::DataConfig,
) -> Result<Option<crate::engine::val::KptOpts>> {
    if model.task() != crate::task::TaskKind::Pose {
        return Ok(None);
    }
    let kpt_shape = crate::engine::backend::ModelRef::Torch(model)
        .kpt_shape()
        .ok_or_else(|| anyhow::anyhow!("the pose model does not say its kpt_shape"))?;
    if let Some([k, d]) = dc.kpt_shape {
        if (k, d) != kpt_shape {
            anyhow::bail!(
                "{}: kpt_shape [{k}, {d}] but the model has [{}, {}]",
                dc.yaml_file.display(),
                kpt_shape.0,
                kpt_shape.1
            );
        }
    }
    let sigmas = crate::metrics::pose::oks_sigmas(kpt_shape, dc.kpt_oks_sigmas.as_deref())?;
    Ok(Some(crate::engine::val::KptOpts { kpt_shape, sigmas }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeze_by_index_and_name_stops_those_gradients() {
        let spec = ModelSpec::from_name("yolo11n.yaml", Some(2)).unwrap();
        let m = DetectionModel::new(spec, tch::Device::Cpu).unwrap();
        let v = serde_yaml::from_str("[1, '2.cv1', model.4]").unwrap();
        freeze(&m, &super::super::config::freeze_prefixes(&v));
        let vars = m.vs.variables();
        let trainable = |n: &str| vars[n].requires_grad();
        assert!(!trainable("model.1.conv.weight"));
        assert!(!trainable("model.2.cv1.conv.weight"));
        assert!(trainable("model.2.cv2.conv.weight"));
        assert!(!trainable("model.4.cv1.conv.weight"));
        assert!(trainable("model.3.conv.weight") && trainable("model.0.conv.weight"));
    }
}
