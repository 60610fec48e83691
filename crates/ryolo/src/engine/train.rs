//! The trainer: the Ultralytics recipe end to end (spec/train.md) — data, model (fresh or transferred),
//! parameter groups, warmup and schedule, nbs accumulation, clipping, EMA, validation, results.csv,
//! atomic checkpoints that resume exactly, early stopping, callbacks.

use crate::cfg::{self, Args};
use crate::data::augment::AugConfig;
use crate::data::loader::{epoch_batches, TrainDataset};
use crate::data::{list_images, load_data_yaml, scan, LabelEntry};
use crate::engine::optim::{interp, lr_factor, Ema, OptKind, Optimizer};
use crate::engine::val::{table_header, table_rows, validate, ValConfig, ValResult};
use crate::loss::{detection_loss, LossConfig};
use crate::nn::{DetectionModel, ModelSpec};
use crate::util::fmt_g;
use crate::util::round_half_even;
use crate::weights::{self, CheckpointMeta};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::{Kind, Tensor};

/// The `results.csv` header (Ultralytics' columns).
pub const RESULTS_HEADER: &str = "epoch,time,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2";

/// What an epoch produced, passed to callbacks.
#[derive(Debug, Clone, Default)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Total epochs.
    pub epochs: usize,
    /// Seconds since training started.
    pub time: f64,
    /// Mean train `[box, cls, dfl]`.
    pub train_loss: [f64; 3],
    /// `P, R, mAP50, mAP50-95`.
    pub metrics: [f64; 4],
    /// Mean val `[box, cls, dfl]`.
    pub val_loss: [f64; 3],
    /// Learning rate per group.
    pub lr: [f64; 3],
    /// Fitness (mAP50-95).
    pub fitness: f64,
    /// The run folder.
    pub save_dir: PathBuf,
}

impl EpochReport {
    /// The results.csv row.
    pub fn csv_row(&self) -> String {
        let mut v = vec![self.epoch.to_string(), fmt_g(self.time, 6)];
        v.extend(
            self.train_loss
                .iter()
                .chain(&self.metrics)
                .chain(&self.val_loss)
                .chain(&self.lr)
                .map(|x| fmt_g(*x, 6)),
        );
        v.join(",")
    }
}

type Hook = Box<dyn FnMut(&EpochReport)>;

/// Closures run on Ultralytics' training events.
#[derive(Default)]
pub struct Callbacks {
    /// Before the first epoch.
    pub on_train_start: Vec<Hook>,
    /// After the batches of an epoch, before validation.
    pub on_train_epoch_end: Vec<Hook>,
    /// After validation of an epoch (metrics filled in).
    pub on_fit_epoch_end: Vec<Hook>,
    /// After checkpoints were written.
    pub on_model_save: Vec<Hook>,
    /// After training ended.
    pub on_train_end: Vec<Hook>,
    /// Set (by a hook, a signal handler or another thread) to stop after the current epoch, leaving
    /// a resumable run as an interruption would.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Callbacks {
    fn run(hooks: &mut [Hook], r: &EpochReport) {
        for h in hooks {
            h(r);
        }
    }
}

/// The outcome of a training run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Run folder.
    pub save_dir: PathBuf,
    /// `weights/best.safetensors`.
    pub best: PathBuf,
    /// Final validation of the best weights.
    pub final_val: Option<ValResult>,
    /// Epochs completed.
    pub epochs_done: usize,
}

fn as_json(m: &serde_yaml::Mapping) -> serde_json::Value {
    serde_json::to_value(m).unwrap_or(serde_json::Value::Null)
}

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

fn aug_from(a: &Args) -> AugConfig {
    let f = |k: &str, d: f64| a.f64(k).unwrap_or(d);
    AugConfig {
        mosaic: f("mosaic", 1.0),
        mixup: f("mixup", 0.0),
        cutmix: f("cutmix", 0.0),
        degrees: f("degrees", 0.0),
        translate: f("translate", 0.1),
        scale: f("scale", 0.5),
        shear: f("shear", 0.0),
        perspective: f("perspective", 0.0),
        hsv: [f("hsv_h", 0.015), f("hsv_s", 0.7), f("hsv_v", 0.4)],
        flipud: f("flipud", 0.0),
        fliplr: f("fliplr", 0.5),
    }
}

/// Splits the trainer's names: state-dict names of the model variables.
fn vars_sorted(m: &DetectionModel) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = m.vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Trains a detection model as `yolo train` does. `args` are the merged CLI arguments.
pub fn train(args: &Args, cb: &mut Callbacks) -> Result<TrainOutcome> {
    let t_start = Instant::now();
    // Resume: take the checkpoint's args, overriding only the allowed keys.
    let resume_from: Option<PathBuf> = match args.get("resume") {
        serde_yaml::Value::Bool(true) => {
            Some(PathBuf::from(args.str("model").ok_or_else(|| {
                anyhow!("resume needs model=<run>/weights/last.safetensors")
            })?))
        }
        serde_yaml::Value::String(p) => Some(PathBuf::from(p)),
        _ => None,
    };
    let mut resume_state: Option<(CheckpointMeta, HashMap<String, Tensor>)> = None;
    let mut a = args.clone();
    if let Some(p) = &resume_from {
        let (meta, tensors) = weights::read_checkpoint(p)?;
        if meta.train_state.is_null() {
            bail!("{} is a final checkpoint (training finished); it cannot be resumed. Start a new run with model={}", p.display(), p.display());
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
        a = merged;
        resume_state = Some((meta, tensors));
    }
    let device = a.device()?;
    let seed = a.i64("seed").unwrap_or(0).max(0) as u64;
    tch::manual_seed(seed as i64);
    let epochs = a.i64("epochs").unwrap_or(100).max(1) as usize;
    let batch = a.i64("batch").unwrap_or(16).max(1) as usize;
    let (ih, iw) = a.imgsz()?;
    let imgsz = crate::engine::predict::check_imgsz(ih.max(iw), 32);
    let data_path = a.str("data").ok_or_else(|| {
        anyhow!(
            "train needs data=<data.yaml> (try `yolo data synth out=synth` for a built-in dataset)"
        )
    })?;
    let dc = load_data_yaml(Path::new(&data_path))?;
    let single_cls = a.bool("single_cls");
    let (nc, names) = if single_cls {
        (1usize, vec!["item".to_string()])
    } else {
        (dc.nc(), dc.names.clone())
    };
    let save_dir = match &resume_from {
        Some(p) => p
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .ok_or_else(|| anyhow!("cannot find the run folder of {}", p.display()))?,
        None => cfg::save_dir(&a, "train"),
    };
    let wdir = save_dir.join("weights");
    std::fs::create_dir_all(&wdir).with_context(|| format!("creating {}", wdir.display()))?;
    a.0.insert("save_dir".into(), save_dir.display().to_string().into());
    if resume_from.is_none() {
        crate::util::write_atomic(
            &save_dir.join("args.yaml"),
            serde_yaml::to_string(&a.0)?.as_bytes(),
        )?;
    }
    let argline: Vec<String> = {
        let mut keys: Vec<(String, String)> =
            a.0.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap_or("").to_string(),
                        serde_yaml::to_string(v)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    )
                })
                .collect();
        keys.sort();
        keys.into_iter()
            .map(|(k, v)| format!("{k}={}", if v == "~" { "None".into() } else { v }))
            .collect()
    };
    println!("engine/trainer: {}", argline.join(", "));

    // Model.
    let model_name = a.str("model").unwrap_or_else(|| "yolo11n.yaml".into());
    let ext = Path::new(&model_name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (spec, stem, source_tensors) = if let Some((meta, _)) = &resume_state {
        let y: serde_yaml::Value = serde_yaml::from_str(&meta.yaml)?;
        (
            ModelSpec::from_yaml(y, &meta.stem, None, Some(nc as i64))?,
            meta.stem.clone(),
            None,
        )
    } else if ext == "yaml" || ext == "yml" {
        let stem = Path::new(&model_name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_string();
        (
            ModelSpec::from_name(&model_name, Some(nc as i64))?,
            stem,
            None,
        )
    } else {
        let loaded = weights::load_model(&model_name, None, tch::Device::Cpu)?;
        let tensors: HashMap<String, Tensor> = loaded.model.vs.variables();
        let y = loaded.model.spec.yaml.clone();
        (
            ModelSpec::from_yaml(y, &loaded.stem, None, Some(nc as i64))?,
            loaded.stem,
            Some(tensors),
        )
    };
    let mut model = DetectionModel::new(spec.clone(), device)?;
    model.names = names.clone();
    if let Some(src) = &source_tensors {
        if a.get("pretrained").as_bool() != Some(false) {
            let n = weights::load_state(&mut model, src, false)?;
            println!(
                "Transferred {n}/{} items from pretrained weights",
                model.vs.variables().len()
            );
        }
    } else if let Some(p) = a
        .str("pretrained")
        .filter(|p| p.ends_with(".pt") || p.ends_with(".safetensors"))
    {
        let src = weights::load_model(&p, None, tch::Device::Cpu)?;
        let n = weights::load_state(&mut model, &src.model.vs.variables(), false)?;
        println!(
            "Transferred {n}/{} items from pretrained weights",
            model.vs.variables().len()
        );
    }
    // Freeze: DFL always; `freeze=N` the first N layers, or a list of indices.
    let freeze: Vec<String> = match a.get("freeze") {
        serde_yaml::Value::Number(n) => (0..n.as_i64().unwrap_or(0))
            .map(|i| format!("model.{i}."))
            .collect(),
        serde_yaml::Value::Sequence(v) => v
            .iter()
            .filter_map(|x| x.as_i64())
            .map(|i| format!("model.{i}."))
            .collect(),
        _ => vec![],
    };
    for (name, mut t) in model.vs.variables() {
        if name.contains(".dfl") {
            println!("Freezing layer '{name}'");
            let _ = t.requires_grad_(false);
        } else if freeze.iter().any(|f| name.starts_with(f)) {
            let _ = t.requires_grad_(false);
        }
    }
    println!("{}", model.info());
    let mut ema_model = DetectionModel::new(spec.clone(), device)?;
    ema_model.names = names.clone();
    weights::load_state(&mut ema_model, &model.vs.variables(), true)?;
    if device.is_cuda() && a.get("amp").as_bool().unwrap_or(true) {
        println!("AMP: mixed precision is not implemented yet; training in fp32");
    } else if !device.is_cuda() {
        println!("AMP: off on CPU (fp32)");
    }

    // Data.
    let train_files = list_images(dc.split("train")?)?;
    let train_scan = scan("train", &train_files, dc.nc(), single_cls);
    let mut train_entries = train_scan.entries;
    if train_entries.is_empty() {
        bail!("no usable training images in {}", data_path);
    }
    let fraction = a.f64("fraction").unwrap_or(1.0);
    if fraction < 1.0 {
        let keep = ((train_entries.len() as f64 * fraction).round() as usize).max(1);
        train_entries.truncate(keep);
    }
    let val_entries: Vec<LabelEntry> = match dc.split("val") {
        Ok(v) => scan("val", &list_images(v)?, dc.nc(), single_cls).entries,
        Err(_) => vec![],
    };
    if single_cls {
        for e in &mut train_entries {
            e.cls.iter_mut().for_each(|c| *c = 0);
        }
    }
    let plots = a.get("plots").as_bool().unwrap_or(true);
    if plots {
        let p = save_dir.join("labels.jpg");
        println!("Plotting labels to {}...", p.display());
        if let Err(err) = crate::plot::charts::plot_labels(&train_entries, &names, &p) {
            eprintln!("WARNING {err:#}");
        }
    }
    let nb = train_entries.len().div_ceil(batch);
    let nbs = a.i64("nbs").unwrap_or(64).max(1) as usize;
    let accumulate = (round_half_even(nbs as f64 / batch as f64) as usize)
        .max(1)
        .min(nb * epochs);
    let wd =
        a.f64("weight_decay").unwrap_or(0.0005) * batch as f64 * accumulate as f64 / nbs as f64;

    // Optimizer.
    let opt_name = a.str("optimizer").unwrap_or_else(|| "auto".into());
    let (kind, lr0, momentum, warmup_bias_lr) = if opt_name.eq_ignore_ascii_case("auto") {
        let iterations = train_entries.len().div_ceil(batch.max(nbs)) * epochs;
        let lr_fit = (0.002 * 5.0 / (4.0 + nc as f64) * 1e6).round() / 1e6;
        if iterations > 10000 {
            println!("optimizer: 'optimizer=auto' found, ignoring 'lr0' and 'momentum' and determining best 'optimizer' automatically... {iterations} iterations > 10000: Ultralytics 8.4 picks MuSGD, which ryolo does not implement; using SGD(lr=0.01, momentum=0.9), the 8.3 choice");
            (OptKind::Sgd, 0.01, 0.9, 0.0)
        } else {
            println!("optimizer: 'optimizer=auto' found, ignoring 'lr0=0.01' and determining best 'optimizer' and 'lr0' automatically... {iterations} iterations <= 10000: AdamW(lr={lr_fit})");
            (OptKind::AdamW, lr_fit, 0.9, 0.0)
        }
    } else {
        let k = OptKind::parse(&opt_name).ok_or_else(|| anyhow!("optimizer={opt_name} is not supported; use auto, SGD, AdamW, Adam, NAdam, RAdam or RMSProp"))?;
        (
            k,
            a.f64("lr0").unwrap_or(0.01),
            a.f64("momentum").unwrap_or(0.937),
            a.f64("warmup_bias_lr").unwrap_or(0.1),
        )
    };
    if ["nadam", "radam", "adamax"].contains(&opt_name.to_ascii_lowercase().as_str()) {
        println!("WARNING optimizer={opt_name} is not implemented separately; running Adam with its settings");
    }
    let model_vars = vars_sorted(&model);
    let mut opt = Optimizer::new(kind, &model_vars, lr0, momentum, wd);
    println!(
        "optimizer: {:?}(lr={lr0}, momentum={momentum}) with parameter groups {} weight(decay=0.0), {} weight(decay={wd}), {} bias(decay=0.0)",
        kind,
        opt.groups[1].params.len(),
        opt.groups[0].params.len(),
        opt.groups[2].params.len()
    );
    let mut ema = Ema { updates: 0 };
    // AMP: on by default on CUDA (autocast fp16 + gradient scaling), never on the CPU.
    let amp = a.get("amp").as_bool().unwrap_or(true) && device.is_cuda();
    if device.is_cuda() {
        println!(
            "AMP: {}",
            if amp {
                "Automatic Mixed Precision on (autocast fp16, gradient scaler)"
            } else {
                "off (amp=False)"
            }
        );
    }
    let mut scaler = crate::engine::optim::GradScaler::new(amp);
    let mut start_epoch = 0usize;
    let mut best_fitness: Option<f64> = None;
    let mut best_epoch = 0usize;
    let mut last_opt_step: i64 = -1;
    let mut last_metrics = [0.0; 4];
    let mut last_val_loss = [0.0; 3];
    if let Some((meta, tensors)) = &resume_state {
        let st = &meta.train_state;
        start_epoch = st["epoch"].as_u64().unwrap_or(0) as usize + 1;
        best_fitness = st["best_fitness"].as_f64();
        best_epoch = st["best_epoch"].as_u64().unwrap_or(0) as usize;
        last_opt_step = st["last_opt_step"].as_i64().unwrap_or(-1);
        ema.updates = st["ema_updates"].as_i64().unwrap_or(0);
        opt.steps = st["opt_steps"].as_i64().unwrap_or(0);
        let strip = |prefix: &str| -> HashMap<String, Tensor> {
            tensors
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(prefix)
                        .map(|n| (n.to_string(), v.shallow_clone()))
                })
                .collect()
        };
        weights::load_state(&mut model, &strip("train.model."), true)
            .context("resume: model weights")?;
        weights::load_state(&mut ema_model, tensors, true).context("resume: EMA weights")?;
        for (k, v) in strip("train.optim.") {
            opt.state.insert(k, v.to_device(device));
        }
        let grads = strip("train.grad.");
        if !grads.is_empty() {
            // Create gradient buffers with a zero backward, then restore the pending gradients.
            let zero: Vec<Tensor> = model_vars
                .iter()
                .filter(|(_, p)| p.requires_grad())
                .map(|(_, p)| (p * 0.0).sum(Kind::Float))
                .collect();
            Tensor::stack(&zero, 0).sum(Kind::Float).backward();
            tch::no_grad(|| {
                for (name, p) in &model_vars {
                    if let Some(g) = grads.get(name) {
                        let mut pg = p.grad();
                        if pg.defined() {
                            pg.copy_(g);
                        }
                    }
                }
            });
        }
        if start_epoch >= epochs {
            bail!(
                "{} already finished all {epochs} epochs; nothing to resume",
                resume_from
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        println!(
            "Resuming training from {} from epoch {} to {epochs} total epochs",
            resume_from
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            start_epoch + 1
        );
        last_metrics = meta.metrics["metrics"]
            .as_array()
            .map(|v| std::array::from_fn(|i| v.get(i).and_then(|x| x.as_f64()).unwrap_or(0.0)))
            .unwrap_or([0.0; 4]);
        last_val_loss = meta.metrics["val_loss"]
            .as_array()
            .map(|v| std::array::from_fn(|i| v.get(i).and_then(|x| x.as_f64()).unwrap_or(0.0)))
            .unwrap_or([0.0; 3]);
    }

    for (key, why) in [
        (
            "copy_paste",
            "needs polygon segments; ignored for box-only labels",
        ),
        ("multi_scale", "is not implemented yet; ignored"),
    ] {
        if a.f64(key).unwrap_or(0.0) > 0.0 {
            println!("WARNING {key}={} {why}", a.f64(key).unwrap_or(0.0));
        }
    }
    let workers = (a.i64("workers").unwrap_or(8).max(0) as usize).clamp(
        1,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    );
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()?,
    );
    let cache_ram = matches!(a.get("cache"), serde_yaml::Value::Bool(true))
        || a.str("cache").as_deref() == Some("ram");
    let aug = if a.bool("rect") {
        AugConfig {
            mosaic: 0.0,
            mixup: 0.0,
            cutmix: 0.0,
            ..aug_from(&a)
        }
    } else {
        aug_from(&a)
    };
    let rect = a.bool("rect");
    let ds = Arc::new(pool.install(|| {
        let mut d = TrainDataset::new(train_entries, imgsz, aug, seed, cache_ram);
        if a.str("cache").as_deref() == Some("disk") {
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
        if rect {
            d.with_rect(batch)
        } else {
            d
        }
    }));
    println!(
        "Using {} train, {} val images at imgsz={imgsz}",
        ds.len(),
        val_entries.len()
    );
    println!("Using {workers} dataloader workers");
    println!("Logging results to {}", save_dir.display());
    println!("Starting training for {epochs} epochs...");

    // results.csv: keep the header and the rows of completed epochs (a kill between the csv and the
    // checkpoint write leaves one extra row).
    let csv_path = save_dir.join("results.csv");
    let mut csv_rows: Vec<String> = std::fs::read_to_string(&csv_path)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            l.split(',')
                .next()
                .and_then(|e| e.trim().parse::<usize>().ok())
                .is_some_and(|e| e <= start_epoch)
        })
        .map(str::to_string)
        .collect();

    let loss_cfg = LossConfig {
        box_gain: a.f64("box").unwrap_or(7.5),
        cls_gain: a.f64("cls").unwrap_or(0.5),
        dfl_gain: a.f64("dfl").unwrap_or(1.5),
        ..Default::default()
    };
    let lrf = a.f64("lrf").unwrap_or(0.01);
    let cos_lr = a.bool("cos_lr");
    let warmup_epochs = a.f64("warmup_epochs").unwrap_or(3.0);
    let warmup_momentum = a.f64("warmup_momentum").unwrap_or(0.8);
    let we = warmup_epochs.min((epochs as f64 - 1.0).max(0.0));
    let nw = if we > 0.0 {
        round_half_even(we * nb as f64) as i64
    } else {
        0
    };
    let close_mosaic = a.i64("close_mosaic").unwrap_or(10).max(0) as usize;
    let patience = a.i64("patience").unwrap_or(100).max(0) as usize;
    let time_limit = a.f64("time").map(|h| h * 3600.0);
    let do_val = a.get("val").as_bool().unwrap_or(true);
    let save_period = a.i64("save_period").unwrap_or(-1);
    let val_cfg = ValConfig {
        imgsz,
        batch: batch * 2,
        single_cls,
        // Validation during AMP training runs in fp16 too, as Ultralytics.
        half: scaler.enabled,
        loss: Some(loss_cfg.clone()),
        ..Default::default()
    };
    let report0 = EpochReport {
        epochs,
        save_dir: save_dir.clone(),
        ..Default::default()
    };
    Callbacks::run(&mut cb.on_train_start, &report0);
    let mut epochs_done = start_epoch;
    let ema_vars = vars_sorted(&ema_model);
    let model_map = model.vs.variables();
    let mut interrupted = false;
    let mut mosaic_closed = false;
    for epoch in start_epoch..epochs {
        let t_epoch = Instant::now();
        let mosaic_on = !(close_mosaic > 0 && epoch + close_mosaic >= epochs);
        if !mosaic_on && !mosaic_closed {
            println!("Closing dataloader mosaic");
            mosaic_closed = true;
        }
        let lf = lr_factor(epoch, epochs, lrf, cos_lr);
        for g in &mut opt.groups {
            g.lr = g.initial_lr * lf;
        }
        println!(
            "\n{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
            "Epoch", "GPU_mem", "box_loss", "cls_loss", "dfl_loss", "Instances", "Size"
        );
        let rx = epoch_batches(ds.clone(), pool.clone(), epoch, batch, mosaic_on, 2);
        let mut tloss = [0f64; 3];
        let mut last_line = String::new();
        let pb = crate::util::progress_bar(nb, "");
        for (i, b) in rx.iter().enumerate() {
            let ni = (i + nb * epoch) as i64;
            let mut acc = accumulate as i64;
            if nw > 0 && ni <= nw {
                acc = (round_half_even(interp(ni as f64, 0.0, nw as f64, 1.0, accumulate as f64))
                    as i64)
                    .max(1);
                for g in &mut opt.groups {
                    let start = if g.name == "bias" {
                        warmup_bias_lr
                    } else {
                        0.0
                    };
                    g.lr = interp(ni as f64, 0.0, nw as f64, start, g.initial_lr * lf);
                    if kind.has_momentum() {
                        g.momentum = interp(ni as f64, 0.0, nw as f64, warmup_momentum, momentum);
                    }
                }
            }
            if plots && i < 3 && (epoch == 0 || (!mosaic_on && epoch + close_mosaic == epochs)) {
                let (bn, bh, bw) = b.shape;
                let imgs: Vec<crate::ops::Rgb> = (0..bn)
                    .map(|k| crate::ops::Rgb {
                        w: bw,
                        h: bh,
                        data: b.pixels[k * bh * bw * 3..(k + 1) * bh * bw * 3].to_vec(),
                    })
                    .collect();
                let items: Vec<(&crate::ops::Rgb, crate::plot::BatchBoxes)> = imgs
                    .iter()
                    .enumerate()
                    .map(|(k, im)| {
                        let bx = (0..b.targets.cls.len())
                            .filter(|&j| b.targets.batch_idx[j] == k as i64)
                            .map(|j| {
                                let t = b.targets.bboxes[j];
                                let (cx, cy, w, h) = (
                                    t[0] * bw as f32,
                                    t[1] * bh as f32,
                                    t[2] * bw as f32,
                                    t[3] * bh as f32,
                                );
                                (
                                    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                                    b.targets.cls[j] as usize,
                                    None,
                                )
                            })
                            .collect();
                        (im, bx)
                    })
                    .collect();
                let _ = crate::plot::plot_batch(
                    &items,
                    &names,
                    &save_dir.join(format!("train_batch{}.jpg", ni)),
                );
            }
            let x = b.tensor(device);
            // Mixed precision (CUDA only): the forward under autocast; the loss in fp32 on its
            // (float-cast) outputs.
            let raw = tch::autocast(scaler.enabled, || model.forward_raw(&x, true));
            let raw = if scaler.enabled {
                crate::nn::RawOutput {
                    boxes: raw.boxes.to_kind(Kind::Float),
                    scores: raw.scores.to_kind(Kind::Float),
                    shapes: raw.shapes,
                }
            } else {
                raw
            };
            let out = detection_loss(&loss_cfg, &raw, &model.stride, &b.targets);
            let items: Vec<f64> =
                Vec::<f64>::try_from(out.items.to_kind(Kind::Double).to_device(tch::Device::Cpu))?;
            if items.iter().any(|v| !v.is_finite()) {
                bail!("non-finite loss {items:?} at epoch {} batch {}; stopping. The last good checkpoint is {}", epoch + 1, i + 1, wdir.join("last.safetensors").display());
            }
            scaler.scale_loss(&out.total).backward();
            if ni - last_opt_step >= acc {
                let finite = scaler.unscale(&opt);
                if finite {
                    opt.clip_grad_norm(10.0);
                    opt.step();
                }
                scaler.update(finite);
                opt.zero_grad();
                ema.update(&ema_vars, &model_map);
                last_opt_step = ni;
            }
            for k in 0..3 {
                tloss[k] = (tloss[k] * i as f64 + items[k]) / (i + 1) as f64;
            }
            last_line = format!(
                "{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
                format!("{}/{}", epoch + 1, epochs),
                "0G",
                fmt_g(tloss[0], 4),
                fmt_g(tloss[1], 4),
                fmt_g(tloss[2], 4),
                b.targets.cls.len(),
                b.shape.1
            );
            pb.set_prefix(last_line.clone());
            pb.set_position((i + 1) as u64);
        }
        pb.finish_and_clear();
        println!(
            "{last_line}: 100% {nb}/{nb} {:.1}s",
            t_epoch.elapsed().as_secs_f64()
        );
        let mut report = EpochReport {
            epoch: epoch + 1,
            epochs,
            train_loss: tloss,
            lr: std::array::from_fn(|k| opt.groups[k].lr),
            save_dir: save_dir.clone(),
            ..Default::default()
        };
        Callbacks::run(&mut cb.on_train_epoch_end, &report);
        let final_epoch = epoch + 1 == epochs;
        if (do_val || final_epoch) && !val_entries.is_empty() {
            println!("{}", table_header());
            let r = validate(&ema_model, &val_entries, &val_cfg, |_, _| {})?;
            for row in table_rows(&r, &names, false) {
                println!("{row}");
            }
            let m = &r.metrics;
            last_metrics = [m.mp(), m.mr(), m.map50(), m.map()];
            last_val_loss = r.loss.unwrap_or([0.0; 3]);
        }
        report.metrics = last_metrics;
        report.val_loss = last_val_loss;
        report.fitness = last_metrics[3];
        report.time = t_start.elapsed().as_secs_f64()
            + resume_state
                .as_ref()
                .and_then(|(m, _)| m.train_state["time"].as_f64())
                .unwrap_or(0.0);
        let fitness = report.fitness;
        let improved = best_fitness.is_none_or(|b| fitness > b || b == 0.0);
        if improved {
            best_epoch = epoch + 1;
        }
        if best_fitness.is_none_or(|b| fitness > b) {
            best_fitness = Some(fitness);
        }
        Callbacks::run(&mut cb.on_fit_epoch_end, &report);
        csv_rows.push(report.csv_row());
        crate::util::write_atomic(
            &csv_path,
            format!("{RESULTS_HEADER}\n{}\n", csv_rows.join("\n")).as_bytes(),
        )?;

        // Checkpoints: last always (with everything needed to resume), best when fitness is the best.
        let train_state = serde_json::json!({
            "epoch": epoch, "best_fitness": best_fitness, "best_epoch": best_epoch, "last_opt_step": last_opt_step,
            "ema_updates": ema.updates, "opt_steps": opt.steps, "time": report.time,
        });
        let meta = CheckpointMeta {
            yaml: spec.to_yaml_string(),
            stem: stem.clone(),
            names: names.clone(),
            args: as_json(&a.0),
            epoch: epoch as i64,
            metrics: serde_json::json!({"metrics": last_metrics, "val_loss": last_val_loss, "fitness": fitness}),
            train_state,
        };
        let mut tensors = vars_sorted(&ema_model);
        tensors.extend(
            vars_sorted(&model)
                .into_iter()
                .map(|(k, v)| (format!("train.model.{k}"), v)),
        );
        tensors.extend(
            opt.state
                .iter()
                .map(|(k, v)| (format!("train.optim.{k}"), v.shallow_clone())),
        );
        tensors.extend(
            model_vars
                .iter()
                .filter(|(_, p)| p.grad().defined())
                .map(|(k, p)| (format!("train.grad.{k}"), p.grad())),
        );
        weights::save_tensors(&tensors, &meta, &wdir.join("last.safetensors"))?;
        if best_fitness == Some(fitness) {
            let best_meta = CheckpointMeta {
                train_state: serde_json::Value::Null,
                ..meta.clone()
            };
            weights::save_tensors(
                &vars_sorted(&ema_model),
                &best_meta,
                &wdir.join("best.safetensors"),
            )?;
        }
        if save_period > 0 && epoch as i64 % save_period == 0 {
            weights::save_tensors(
                &tensors,
                &meta,
                &wdir.join(format!("epoch{epoch}.safetensors")),
            )?;
        }
        Callbacks::run(&mut cb.on_model_save, &report);
        epochs_done = epoch + 1;
        if patience > 0 && epoch + 1 - best_epoch >= patience {
            println!("EarlyStopping: Training stopped early as no improvement observed in last {patience} epochs. Best results observed at epoch {best_epoch}, best model saved as best.safetensors.");
            break;
        }
        if cb.stop.load(std::sync::atomic::Ordering::SeqCst) {
            println!(
                "Stopping: interrupted after epoch {}; resume with `yolo train resume model={}`",
                epoch + 1,
                wdir.join("last.safetensors").display()
            );
            interrupted = true;
            break;
        }
        if time_limit.is_some_and(|t| report.time > t) {
            println!(
                "Stopping: time limit of {} hours reached",
                a.f64("time").unwrap_or(0.0)
            );
            break;
        }
    }
    let hours = t_start.elapsed().as_secs_f64() / 3600.0;
    println!(
        "\n{} epochs completed in {hours:.3} hours.",
        epochs_done - start_epoch
    );
    // Strip the training state from last (as Ultralytics' strip_optimizer) once the run is complete.
    let last = wdir.join("last.safetensors");
    if !interrupted {
        if let Ok((meta, tensors)) = weights::read_checkpoint(&last) {
            let kept: Vec<(String, Tensor)> = tensors
                .into_iter()
                .filter(|(k, _)| !k.starts_with("train."))
                .collect();
            weights::save_tensors(
                &kept,
                &CheckpointMeta {
                    train_state: serde_json::Value::Null,
                    epoch: -1,
                    ..meta
                },
                &last,
            )?;
            println!("Optimizer stripped from {}", last.display());
        }
    }
    let best = wdir.join("best.safetensors");
    let mut final_val = None;
    if !val_entries.is_empty() && best.exists() && !interrupted {
        println!("\nValidating {}...", best.display());
        let mut m = weights::load_model(best.to_str().unwrap_or_default(), None, device)?.model;
        m.fuse();
        println!("{}", m.info());
        println!("{}", table_header());
        let r = validate(
            &m,
            &val_entries,
            &ValConfig {
                loss: None,
                plot_dir: plots.then(|| save_dir.clone()),
                ..val_cfg.clone()
            },
            |_, _| {},
        )?;
        for row in table_rows(&r, &names, true) {
            println!("{row}");
        }
        println!("Speed: {:.1}ms preprocess, {:.1}ms inference, 0.0ms loss, {:.1}ms postprocess per image", r.speed.preprocess, r.speed.inference, r.speed.postprocess);
        if plots {
            let _ = crate::plot::charts::plot_curves(&r.metrics, &names, &save_dir);
            let _ = crate::plot::charts::plot_confusion(&r.confusion, &names, &save_dir, false);
            let _ = crate::plot::charts::plot_confusion(&r.confusion, &names, &save_dir, true);
        }
        final_val = Some(r);
    }
    if plots {
        if let Err(err) =
            crate::plot::charts::plot_results(&csv_path, &save_dir.join("results.png"))
        {
            eprintln!("WARNING {err:#}");
        }
    }
    println!("Results saved to {}", save_dir.display());
    let report = EpochReport {
        epoch: epochs_done,
        epochs,
        save_dir: save_dir.clone(),
        ..Default::default()
    };
    Callbacks::run(&mut cb.on_train_end, &report);
    Ok(TrainOutcome {
        save_dir,
        best,
        final_val,
        epochs_done,
    })
}
