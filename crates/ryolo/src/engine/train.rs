//! The trainer: the Ultralytics recipe end to end (spec/train.md) on one generic engine — setup
//! (data, model fresh / transferred / resumed, parameter groups), epochs of warmup + schedule + nbs
//! accumulation + clipping + EMA, validation, `results.csv`, atomic checkpoints that resume
//! exactly, early stopping, callbacks. What is task-specific comes from [`crate::task::Task`].

pub(crate) mod clsdata;
mod config;
mod ddp;
mod ptfiles;
mod report;
mod resume_check;
mod setup;
mod state;

pub use config::{freeze_prefixes, Cache, CpuAmp, TrainConfig};
pub use report::{Callbacks, EpochReport, ResultsCsv, RESULTS_HEADER};
pub use setup::train_dataset;
pub use state::TrainState;

use crate::cfg::Args;
use crate::data::load_data_yaml;
use crate::data::loader::{epoch_batches_shard, Batch};
use crate::engine::optim::{interp, lr_factor, Ema, GradScaler, OptKind, Optimizer};
use crate::engine::val::{table_rows, task_table_header, validate, ValConfig, ValResult};
use crate::loss::{detection_loss, LossConfig};
use crate::nn::{DetectionModel, ModelSpec};
use crate::task::Task;
use crate::util::round_half_even;
use crate::weights::{self, CheckpointMeta};
use anyhow::{anyhow, bail, Result};
use clsdata::{ClsBatch, StepBatch, TrainData};
use setup::Resume;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

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

/// Trains a model as `yolo train` does. `args` are the merged CLI arguments.
pub fn train(args: &Args, cb: &mut Callbacks) -> Result<TrainOutcome> {
    Trainer::new(args)?.fit(cb)
}

/// The optimizer side of a run: the rule's settings and the accumulation / warmup plan.
struct Schedule {
    kind: OptKind,
    momentum: f64,
    warmup_bias_lr: f64,
    nb: usize,
    accumulate: usize,
    nw: i64,
}

/// A training run in progress: configuration, models, optimizer, data and counters.
pub struct Trainer {
    args: Args,
    cfg: TrainConfig,
    task: Box<dyn Task + Send + Sync>,
    /// Pose runs: keypoint shape and OKS sigmas for validation.
    kpt_opts: Option<crate::engine::val::KptOpts>,
    device: Device,
    save_dir: PathBuf,
    names: Vec<String>,
    spec: ModelSpec,
    stem: String,
    model: DetectionModel,
    ema_model: DetectionModel,
    model_vars: Vec<(String, Tensor)>,
    opt: Optimizer,
    ema: Ema,
    scaler: GradScaler,
    /// CPU bfloat16 autocast (`amp=True` or `amp=bf16` on a CPU with native bfloat16): the forward
    /// under bfloat16 autocast, channels-last.
    bf16: bool,
    sched: Schedule,
    loss_cfg: LossConfig,
    val_cfg: ValConfig,
    pool: Arc<rayon::ThreadPool>,
    data: TrainData,
    csv: ResultsCsv,
    state: TrainState,
    start_epoch: usize,
    time_before: f64,
    last_metrics: Vec<f64>,
    last_val_loss: Vec<f64>,
    ema_vars: Vec<(String, Tensor)>,
    model_map: std::collections::HashMap<String, Tensor>,
    tb: Option<crate::util::tensorboard::EventWriter>,
    /// This process's rank in data-parallel training (None: one process).
    dist: Option<crate::engine::dist::Rank>,
}

/// Where a run's data comes from: a `data.yaml` (detect, segment) or an ImageFolder (classify).
enum DataSource {
    /// Detect / segment dataset description.
    Yaml(crate::data::DataConfig),
    /// Classification dataset splits.
    Folder(crate::data::classify::ClsData),
}

impl Trainer {
    /// Sets a run up: resume source, run folder, model, data, optimizer; prints Ultralytics'
    /// set-up lines. Nothing is trained yet.
    pub fn new(args: &Args) -> Result<Self> {
        let (mut a, resume) = setup::resume_source(args)?;
        let mut dist = ddp::join(&a)?;
        let main = dist.as_ref().is_none_or(|d| d.rank() == 0);
        let task = crate::task::for_kind(a.task()?)?;
        // The resolved task goes into the printed arguments and args.yaml, as Ultralytics' own.
        a.0.insert("task".into(), task.kind().name().into());
        let classify = task.kind() == crate::task::TaskKind::Classify;
        crate::cfg::warn_unimplemented(&a);
        let device = a.device()?;
        let cfg = TrainConfig::from_args(&a, device.is_cuda())?;
        tch::manual_seed(cfg.seed as i64);
        if a.bool("deterministic") && device.is_cuda() {
            // CPU runs are bitwise reproducible already; on CUDA cuDNN autotuning is turned off, but
            // torch.use_deterministic_algorithms has no tch binding.
            tch::Cuda::cudnn_set_benchmark(false);
            eprintln!("WARNING deterministic=True on CUDA: cuDNN benchmark off; PyTorch's deterministic-algorithms switch is not available through tch, so some CUDA kernels may still vary");
        }
        let data_path = a.str("data").ok_or_else(|| {
            anyhow!("train needs data=<data.yaml> (try `yolo data synth out=synth` for a built-in dataset)")
        })?;
        if classify {
            let (h, w) = a.imgsz()?;
            if h != w {
                eprintln!(
                    "WARNING imgsz=[{h}, {w}]: classification trains square images; using imgsz={}",
                    cfg.imgsz
                );
            }
        }
        let src = if classify {
            DataSource::Folder(clsdata::resolve(&data_path)?)
        } else {
            DataSource::Yaml(load_data_yaml(Path::new(&data_path))?)
        };
        let (nc, names) = match &src {
            _ if cfg.single_cls => (1usize, vec!["item".to_string()]),
            DataSource::Yaml(dc) => (dc.nc(), dc.names.clone()),
            DataSource::Folder(cd) => (cd.nc(), cd.names.clone()),
        };
        let save_dir = setup::run_folder(&mut a, resume.as_ref())?;
        let save_dir = ddp::agree_save_dir(&mut dist, &mut a, save_dir)?;
        println!("{}", crate::util::version_line(device));
        println!("engine/trainer: {}", report::arg_line(&a.0));
        let (mut spec, stem, source) = setup::model_source(&a, resume.as_ref(), nc)?;
        let data_kpts = match &src {
            DataSource::Yaml(dc) => Some((dc.kpt_shape, dc.kpt_oks_sigmas.clone())),
            DataSource::Folder(_) => None,
        };
        if let (Some((Some([k, d]), _)), Some(_)) = (&data_kpts, spec.kpt_shape()) {
            // Pose: the dataset's kpt_shape wins over the model YAML's (PoseModel(data_kpt_shape)).
            spec.override_kpt_shape((*k as i64, *d as i64))?;
        }
        let mut model = DetectionModel::new(spec.clone(), device)?;
        model.names = names.clone();
        if let (Some(p), Some((_, Some(s)))) = (model.head.pose_mut(), &data_kpts) {
            p.kpt_oks_sigmas = Some(s.clone());
        }
        if let crate::nn::Head::Classify(c) = &mut model.head {
            c.dropout = a.num("dropout")?;
        }
        // The model's head decides the task (as Ultralytics: the model's own task wins).
        let task = if model.task() != task.kind() {
            eprintln!(
                "WARNING task={} does not match the {} head of model={}; training it as '{}'",
                task.kind(),
                model.task(),
                a.str("model").unwrap_or_default(),
                model.task()
            );
            crate::task::for_kind(model.task())?
        } else {
            task
        };
        if (task.kind() == crate::task::TaskKind::Classify) != classify {
            bail!(
                "model={} is a {} model but data={data_path} was read as {} data; pass task={} or a matching model",
                a.str("model").unwrap_or_default(),
                task.kind(),
                if classify { "classify (ImageFolder)" } else { "detection (data.yaml)" },
                task.kind()
            );
        }
        let mask_spec = setup::mask_spec(&a, task.kind())?;
        let kpt_opts = match &src {
            DataSource::Yaml(dc) => setup::kpt_opts(&model, dc)?,
            DataSource::Folder(_) => None,
        };
        if cfg.verbose {
            print!("{}", crate::nn::summary::layer_table(&model));
        }
        setup::transfer(&a, &mut model, source.as_ref())?;
        setup::freeze(&model, &cfg.freeze);
        println!("{}", model.info());
        let mut ema_model = DetectionModel::new(spec.clone(), device)?;
        ema_model.names = names.clone();
        if let (Some(p), Some(q)) = (ema_model.head.pose_mut(), model.head.pose()) {
            p.kpt_oks_sigmas = q.kpt_oks_sigmas.clone();
        }
        weights::load_state(&mut ema_model, &model.vs.variables(), true)?;
        let pool = setup::loader_pool(cfg.workers)?;
        let data = match &src {
            DataSource::Yaml(dc) => {
                let (train_entries, val) =
                    setup::datasets(dc, &cfg, &data_path, dc.label_format(task.kind().name())?)?;
                // Model and data loaded: only now is anything written under runs/ (by rank 0).
                if main {
                    setup::create_run_folder(&a, &save_dir, resume.as_ref())?;
                }
                if cfg.plots && main {
                    let p = save_dir.join("labels.jpg");
                    println!("Plotting labels to {}...", p.display());
                    if let Err(err) = crate::plot::charts::plot_labels(&train_entries, &names, &p) {
                        eprintln!("WARNING {err:#}");
                    }
                }
                let mut ds = setup::train_dataset(&pool, train_entries, &cfg, dc.flip_idx.clone())?;
                ds.masks = mask_spec;
                TrainData::Det {
                    ds: Arc::new(ds),
                    val,
                }
            }
            DataSource::Folder(cd) => {
                let (train, val) = pool.install(|| clsdata::datasets(&a, &cfg, cd))?;
                if main {
                    setup::create_run_folder(&a, &save_dir, resume.as_ref())?;
                }
                TrainData::Cls { train, val }
            }
        };
        let bf16 = cpu_bf16_mode(&cfg, device, main, task.as_ref());
        if bf16 && !cfg.nchw {
            crate::util::amp::vars_channels_last(&model.vs);
        }
        let (sched, opt) = Self::optimizer(&cfg, &model, data.len(), nc)?;
        let scaler = GradScaler::new(cfg.amp);
        if device.is_cuda() {
            println!(
                "AMP: {}",
                if cfg.amp {
                    "Automatic Mixed Precision on (autocast fp16, gradient scaler)"
                } else {
                    "off (amp=False)"
                }
            );
        }
        let model_vars = state::vars_sorted(&model);
        let mut t = Self {
            loss_cfg: LossConfig {
                box_gain: cfg.gains[0],
                cls_gain: cfg.gains[1],
                dfl_gain: cfg.gains[2],
                pose_gain: cfg.task_gains.pose,
                kobj_gain: cfg.task_gains.kobj,
                angle_gain: cfg.task_gains.angle,
                ..Default::default()
            },
            val_cfg: ValConfig::default(),
            pool,
            data,
            csv: ResultsCsv::open(&save_dir, task.results_header(), 0),
            state: TrainState {
                last_opt_step: -1,
                ..Default::default()
            },
            start_epoch: 0,
            time_before: 0.0,
            last_metrics: vec![0.0; task.metric_columns().len()],
            last_val_loss: vec![0.0; task.loss_names().len()],
            tb: if main {
                setup::tensorboard(&save_dir)
            } else {
                None
            },
            dist,
            ema_vars: state::vars_sorted(&ema_model),
            model_map: model.vs.variables(),
            args: a,
            cfg,
            task,
            kpt_opts,
            device,
            save_dir,
            names,
            spec,
            stem,
            model,
            ema_model,
            model_vars,
            opt,
            ema: Ema { updates: 0 },
            scaler,
            bf16,
            sched,
        };
        if let Some(r) = &resume {
            t.resume_from(r)?;
            t.csv = ResultsCsv::open(&t.save_dir, t.task.results_header(), t.start_epoch);
        }
        t.ddp_start()?;
        t.val_cfg = t.validation_config();
        println!(
            "Using {} train, {} val images at imgsz={}",
            t.data.len(),
            t.data.val_len(),
            t.cfg.imgsz
        );
        println!("Using {} dataloader workers", t.cfg.workers);
        println!("Logging results to {}", t.save_dir.display());
        println!("Starting training for {} epochs...", t.cfg.epochs);
        Ok(t)
    }

    /// Parameter groups, nbs-scaled weight decay, accumulation and warmup length.
    fn optimizer(
        c: &TrainConfig,
        model: &DetectionModel,
        n_train: usize,
        nc: usize,
    ) -> Result<(Schedule, Optimizer)> {
        let nb = n_train.div_ceil(c.batch);
        let accumulate = (round_half_even(c.nbs as f64 / c.batch as f64) as usize)
            .max(1)
            .min(nb * c.epochs);
        let wd = c.weight_decay * c.batch as f64 * accumulate as f64 / c.nbs as f64;
        let (kind, lr0, momentum, warmup_bias_lr) = setup::choose_optimizer(c, n_train, nc)?;
        let opt = Optimizer::new(kind, &state::vars_sorted(model), lr0, momentum, wd);
        println!(
            "optimizer: {:?}(lr={lr0}, momentum={momentum}) with parameter groups {} weight(decay=0.0), {} weight(decay={wd}), {} bias(decay=0.0)",
            kind,
            opt.groups[1].params.len(),
            opt.groups[0].params.len(),
            opt.groups[2].params.len()
        );
        let we = c.warmup_epochs.min((c.epochs as f64 - 1.0).max(0.0));
        let nw = if we > 0.0 {
            round_half_even(we * nb as f64) as i64
        } else {
            0
        };
        let sched = Schedule {
            kind,
            momentum,
            warmup_bias_lr,
            nb,
            accumulate,
            nw,
        };
        Ok((sched, opt))
    }

    /// Continues a resumable checkpoint: weights, optimizer, gradients, counters, last metrics.
    fn resume_from(&mut self, r: &Resume) -> Result<()> {
        let st = TrainState::from_json(&r.meta.train_state);
        self.start_epoch = st.epoch + 1;
        self.time_before = st.time;
        self.ema.updates = st.ema_updates;
        self.opt.steps = st.opt_steps;
        self.state = st;
        setup::restore(
            r,
            &mut self.model,
            &mut self.ema_model,
            &mut self.opt.state,
            &self.model_vars,
        )?;
        let epochs = self.cfg.epochs;
        if self.start_epoch >= epochs {
            bail!(
                "{} already finished all {epochs} epochs; nothing to resume",
                r.path.display()
            );
        }
        println!(
            "Resuming training from {} from epoch {} to {epochs} total epochs",
            r.path.display(),
            self.start_epoch + 1
        );
        let floats = |v: &serde_json::Value, n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| v.get(i).and_then(|x| x.as_f64()).unwrap_or(0.0))
                .collect()
        };
        self.last_metrics = floats(&r.meta.metrics["metrics"], self.last_metrics.len());
        self.last_val_loss = floats(&r.meta.metrics["val_loss"], self.last_val_loss.len());
        Ok(())
    }

    /// Validation during training: twice the batch, the run's NMS settings, losses, fp16 under AMP.
    fn validation_config(&self) -> ValConfig {
        let obb = self.task.kind() == crate::task::TaskKind::Obb;
        ValConfig {
            imgsz: self.cfg.imgsz,
            // OBB validates with the training batch (Ultralytics' OBBTrainer), the others with 2x.
            batch: if obb {
                self.cfg.batch
            } else {
                self.cfg.batch * 2
            },
            obb,
            kpts: self.kpt_opts.clone(),
            // OBB validates at conf 0.01 unless one is given (Ultralytics' OBBValidator).
            conf: if obb && self.args.f64("conf").is_none() {
                0.01
            } else {
                self.cfg.conf
            },
            iou: self.cfg.iou,
            max_det: self.cfg.max_det,
            single_cls: self.cfg.single_cls,
            // Validation during AMP training runs in fp16 too, as Ultralytics.
            half: self.scaler.enabled,
            nchw: self.cfg.nchw,
            loss: Some(self.loss_cfg.clone()),
            masks: self
                .data
                .masks()
                .map(|m| crate::engine::val::seg::MaskOpts {
                    overlap: m.overlap,
                    ratio: m.ratio,
                    native: false,
                }),
            ..Default::default()
        }
    }

    /// The run folder's `weights/`.
    fn wdir(&self) -> PathBuf {
        self.save_dir.join("weights")
    }

    /// Runs the remaining epochs, then the final validation of `best`.
    pub fn fit(mut self, cb: &mut Callbacks) -> Result<TrainOutcome> {
        let t_start = Instant::now();
        let report0 = EpochReport {
            epochs: self.cfg.epochs,
            save_dir: self.save_dir.clone(),
            ..Default::default()
        };
        Callbacks::run(&mut cb.on_train_start, &report0);
        let mut epochs_done = self.start_epoch;
        let mut interrupted = false;
        let mut mosaic_closed = false;
        for epoch in self.start_epoch..self.cfg.epochs {
            let mosaic_on =
                !(self.cfg.close_mosaic > 0 && epoch + self.cfg.close_mosaic >= self.cfg.epochs);
            if !mosaic_on && !mosaic_closed {
                println!("Closing dataloader mosaic");
                mosaic_closed = true;
            }
            // libtorch's RNG (dropout) restarts per epoch, so a resumed run draws what the
            // uninterrupted one would.
            tch::manual_seed(self.cfg.seed.wrapping_add(epoch as u64 + 1) as i64);
            let start = EpochReport {
                epoch: epoch + 1,
                ..report0.clone()
            };
            Callbacks::run(&mut cb.on_train_epoch_start, &start);
            let tloss = self.train_epoch(epoch, mosaic_on, cb)?;
            let tloss = self.ddp_mean_loss(tloss)?;
            let mut report = EpochReport {
                epoch: epoch + 1,
                epochs: self.cfg.epochs,
                train_loss: tloss,
                lr: std::array::from_fn(|k| self.opt.groups[k].lr),
                save_dir: self.save_dir.clone(),
                ..Default::default()
            };
            Callbacks::run(&mut cb.on_train_epoch_end, &report);
            if (self.cfg.val || epoch + 1 == self.cfg.epochs)
                && self.data.val_len() > 0
                && self.is_main()
            {
                let t = Instant::now();
                self.validate_epoch()?;
                timing("validation", t);
            }
            report.metrics = self.last_metrics.clone();
            report.val_loss = self.last_val_loss.clone();
            report.fitness = self.task.fitness(&self.last_metrics);
            report.time = t_start.elapsed().as_secs_f64() + self.time_before;
            let is_best = self.track_best(epoch, report.fitness);
            self.log_scalars(&report);
            Callbacks::run(&mut cb.on_fit_epoch_end, &report);
            if self.cfg.save && self.is_main() {
                let t = Instant::now();
                self.save(epoch, &report, is_best)?;
                timing("checkpoint save", t);
            }
            if self.is_main() {
                self.csv.push(report.csv_row())?;
            }
            Callbacks::run(&mut cb.on_model_save, &report);
            epochs_done = epoch + 1;
            let stop = self.should_stop(epoch, &report, cb, &mut interrupted);
            if self.ddp_epoch_end(epoch, stop)? {
                break;
            }
        }
        let hours = t_start.elapsed().as_secs_f64() / 3600.0;
        println!(
            "\n{} epochs completed in {hours:.3} hours.",
            epochs_done - self.start_epoch
        );
        self.finish(cb, epochs_done, interrupted)
    }

    /// The epoch's losses, metrics and learning rates to TensorBoard (the results.csv columns).
    fn log_scalars(&mut self, r: &EpochReport) {
        let Some(tb) = self.tb.as_mut() else {
            return;
        };
        let t = &self.task;
        let mut items: Vec<(String, f64)> = Vec::new();
        items.extend(
            t.loss_names()
                .iter()
                .map(|n| format!("train/{n}"))
                .zip(r.train_loss.iter().copied()),
        );
        items.extend(
            t.metric_columns()
                .iter()
                .map(|m| m.to_string())
                .zip(r.metrics.iter().copied()),
        );
        items.extend(
            t.loss_names()
                .iter()
                .map(|n| format!("val/{n}"))
                .zip(r.val_loss.iter().copied()),
        );
        items.extend((0..3).map(|k| (format!("lr/pg{k}"), r.lr[k])));
        if let Err(e) = tb.scalars(r.epoch as i64, &items) {
            eprintln!("WARNING TensorBoard: {e:#}");
            self.tb = None;
        }
    }

    /// Updates best fitness / epoch; true when this epoch's weights are the best so far.
    fn track_best(&mut self, epoch: usize, fitness: f64) -> bool {
        let st = &mut self.state;
        if st.best_fitness.is_none_or(|b| fitness > b || b == 0.0) {
            st.best_epoch = epoch + 1;
        }
        if st.best_fitness.is_none_or(|b| fitness > b) {
            st.best_fitness = Some(fitness);
        }
        st.best_fitness == Some(fitness)
    }

    /// Early stopping, an interruption request or the time limit.
    fn should_stop(
        &self,
        epoch: usize,
        report: &EpochReport,
        cb: &Callbacks,
        interrupted: &mut bool,
    ) -> bool {
        let patience = self.cfg.patience;
        let best_epoch = self.state.best_epoch;
        if patience > 0 && epoch + 1 - best_epoch >= patience {
            println!("EarlyStopping: Training stopped early as no improvement observed in last {patience} epochs. Best results observed at epoch {best_epoch}, best model saved as best.safetensors.");
            return true;
        }
        if cb.stop.load(std::sync::atomic::Ordering::SeqCst) {
            println!(
                "Stopping: interrupted after epoch {}; resume with `yolo train resume model={}`",
                epoch + 1,
                self.wdir().join("last.safetensors").display()
            );
            *interrupted = true;
            return true;
        }
        if self.cfg.time_limit.is_some_and(|t| report.time > t) {
            println!(
                "Stopping: time limit of {} hours reached",
                self.args.f64("time").unwrap_or(0.0)
            );
            return true;
        }
        false
    }

    /// One epoch of batches; returns the mean loss items.
    fn train_epoch(
        &mut self,
        epoch: usize,
        mosaic_on: bool,
        cb: &mut Callbacks,
    ) -> Result<Vec<f64>> {
        let t_epoch = Instant::now();
        let lf = lr_factor(epoch, self.cfg.epochs, self.cfg.lrf, self.cfg.cos_lr);
        for g in &mut self.opt.groups {
            g.lr = g.initial_lr * lf;
        }
        println!("\n{}", self.task.train_header());
        let nb = self.sched.nb;
        let shard = self.shard();
        let batches: Box<dyn Iterator<Item = Result<StepBatch>>> = match &self.data {
            TrainData::Det { ds, .. } => Box::new(
                epoch_batches_shard(
                    ds.clone(),
                    self.pool.clone(),
                    epoch,
                    self.cfg.batch,
                    mosaic_on,
                    2,
                    shard,
                )
                .into_iter()
                .map(|b| Ok(StepBatch::Det(Box::new(b)))),
            ),
            TrainData::Cls { train, .. } => Box::new(
                clsdata::epoch_batches(
                    train.clone(),
                    self.pool.clone(),
                    epoch,
                    self.cfg.batch,
                    2,
                    shard,
                )
                .into_iter()
                .map(|b| b.map(StepBatch::Cls)),
            ),
        };
        let mut tloss = vec![0f64; self.task.loss_names().len()];
        let mut last_line = String::new();
        let pb = crate::util::progress_bar(nb, "");
        let mut seen = 0usize;
        // Seconds waiting for the loader (reported with RYOLO_TIMING set).
        let mut waited = 0f64;
        let mut it = batches.enumerate();
        loop {
            let t_wait = Instant::now();
            let Some((i, b)) = it.next() else { break };
            waited += t_wait.elapsed().as_secs_f64();
            let b = b.map_err(|e| {
                anyhow!(
                    "epoch {} batch {}: {e:#}; the last good checkpoint is {}",
                    epoch + 1,
                    i + 1,
                    self.wdir().join("last.safetensors").display()
                )
            })?;
            seen += 1;
            let ni = (i + nb * epoch) as i64;
            let acc = self.warmup(ni, lf);
            if self.cfg.plots
                && self.is_main()
                && i < 3
                && (epoch == 0 || (!mosaic_on && epoch + self.cfg.close_mosaic == self.cfg.epochs))
            {
                self.plot_batch(&b, ni);
            }
            let items = self.step(&b, ni, acc, epoch, i)?;
            for (k, t) in tloss.iter_mut().enumerate() {
                *t = (*t * i as f64 + items[k]) / (i + 1) as f64;
            }
            let (instances, size) = match &b {
                StepBatch::Det(b) => (b.targets.cls.len(), b.shape.1),
                StepBatch::Cls(c) => (c.y.len(), self.cfg.imgsz),
            };
            last_line = report::batch_line(
                epoch + 1,
                self.cfg.epochs,
                self.gpu_mem_gib(),
                &tloss,
                instances,
                size,
            );
            pb.set_prefix(last_line.clone());
            pb.set_position((i + 1) as u64);
            if !cb.on_train_batch_end.is_empty() {
                let r = EpochReport {
                    epoch: epoch + 1,
                    epochs: self.cfg.epochs,
                    train_loss: tloss.clone(),
                    lr: std::array::from_fn(|k| self.opt.groups[k].lr),
                    save_dir: self.save_dir.clone(),
                    ..Default::default()
                };
                Callbacks::run(&mut cb.on_train_batch_end, &r);
            }
        }
        pb.finish_and_clear();
        if seen < nb {
            bail!("the data loader stopped after {seen} of {nb} batches of epoch {} (a loader thread failed); the last good checkpoint is {}", epoch + 1, self.wdir().join("last.safetensors").display());
        }
        let secs = t_epoch.elapsed().as_secs_f64();
        println!("{last_line}: 100% {nb}/{nb} {secs:.1}s");
        if timing_on() {
            println!(
                "timing: epoch {} train {secs:.2}s, of which waiting for the loader {waited:.2}s",
                epoch + 1
            );
        }
        Ok(tloss)
    }

    /// GiB the CUDA caching allocator holds on the training GPU (Ultralytics' GPU_mem column:
    /// `torch.cuda.memory_reserved()`); 0 on the CPU.
    fn gpu_mem_gib(&self) -> f64 {
        match self.device {
            tch::Device::Cuda(i) => crate::engine::dist::nccl::memory_reserved(i)
                .map_or(0.0, |b| b as f64 / (1u64 << 30) as f64),
            _ => 0.0,
        }
    }

    /// Warmup of LR, momentum and accumulation for global batch `ni`; returns the accumulation.
    fn warmup(&mut self, ni: i64, lf: f64) -> i64 {
        let s = &self.sched;
        let nw = s.nw;
        if nw <= 0 || ni > nw {
            return s.accumulate as i64;
        }
        let acc = (round_half_even(interp(ni as f64, 0.0, nw as f64, 1.0, s.accumulate as f64))
            as i64)
            .max(1);
        for g in &mut self.opt.groups {
            let start = if g.name == "bias" {
                s.warmup_bias_lr
            } else {
                0.0
            };
            g.lr = interp(ni as f64, 0.0, nw as f64, start, g.initial_lr * lf);
            if s.kind.has_momentum() {
                g.momentum = interp(
                    ni as f64,
                    0.0,
                    nw as f64,
                    self.cfg.warmup_momentum,
                    s.momentum,
                );
            }
        }
        acc
    }

    /// Forward, loss, backward and (every `acc` batches) an optimizer + EMA step; returns the
    /// loss items.
    fn step(
        &mut self,
        b: &StepBatch,
        ni: i64,
        acc: i64,
        epoch: usize,
        i: usize,
    ) -> Result<Vec<f64>> {
        let empty = match b {
            StepBatch::Det(b) => b.shape.0 == 0,
            StepBatch::Cls(c) => c.y.is_empty(),
        };
        if empty {
            // A data-parallel rank whose slice of a short last batch is empty: no forward, but
            // it still joins the step's gradient average.
            return self.step_without_batch(ni, acc);
        }
        let (total, items) = match b {
            StepBatch::Det(b) => self.det_loss(b),
            StepBatch::Cls(c) => self.cls_loss(c)?,
        };
        let items: Vec<f64> =
            Vec::<f64>::try_from(items.to_kind(Kind::Double).to_device(Device::Cpu))?;
        if items.iter().any(|v| !v.is_finite()) {
            bail!("non-finite loss {items:?} at epoch {} batch {}; stopping. The last good checkpoint is {}", epoch + 1, i + 1, self.wdir().join("last.safetensors").display());
        }
        let w = self.ddp_loss_scale();
        let total = if w != 1.0 { total * w } else { total };
        self.scaler.scale_loss(&total).backward();
        self.optimizer_step(ni, acc)?;
        Ok(items)
    }

    /// Every `acc` batches: the gradients averaged over the ranks (data-parallel), unscaled,
    /// clipped, an optimizer step, zeroed in place, and an EMA update (rank 0).
    fn optimizer_step(&mut self, ni: i64, acc: i64) -> Result<()> {
        if ni - self.state.last_opt_step >= acc {
            self.ddp_average_grads()?;
            let finite = self.scaler.unscale(&self.opt);
            if finite {
                self.opt.clip_grad_norm(10.0);
                self.opt.step();
            }
            self.scaler.update(finite);
            self.opt.zero_grad();
            if self.is_main() {
                self.ema.update(&self.ema_vars, &self.model_map);
            }
            self.state.last_opt_step = ni;
        }
        Ok(())
    }

    /// The detect / segment loss of a batch: the total to back-propagate and the loss items.
    fn det_loss(&mut self, b: &Batch) -> (Tensor, Tensor) {
        let x = crate::util::amp::input_layout(&b.tensor(self.device), self.cfg.nchw);
        // Mixed precision (CUDA fp16, or CPU bfloat16 where native): the forward under autocast;
        // the loss in fp32 on its (float-cast) outputs.
        let amp = self.scaler.enabled;
        let raw = if self.bf16 {
            crate::util::amp::cpu_autocast(true, || self.model.forward_raw(&x, true)).to_float()
        } else {
            let raw = crate::util::amp::cuda_autocast(amp, || self.model.forward_raw(&x, true));
            if amp {
                raw.to_float()
            } else {
                raw
            }
        };
        let out = match &b.masks {
            Some(m) => crate::loss::segment::segmentation_loss(
                &self.loss_cfg,
                &raw,
                &self.model.stride,
                &b.targets,
                &m.tensor(self.device),
                self.data.masks().is_some_and(|s| s.overlap),
            ),
            None => match self.task.kind() {
                crate::task::TaskKind::Pose => crate::loss::pose::pose_loss(
                    &self.loss_cfg,
                    &pose_loss_config(&self.model, &self.loss_cfg),
                    &raw,
                    &self.model.stride,
                    &b.targets,
                ),
                crate::task::TaskKind::Obb => crate::loss::obb::obb_loss(
                    &self.loss_cfg,
                    self.loss_cfg.angle_gain,
                    &raw,
                    &self.model.stride,
                    &obb_targets(&b.targets),
                ),
                _ => detection_loss(&self.loss_cfg, &raw, &self.model.stride, &b.targets),
            },
        };
        (out.total, out.items)
    }

    /// The classify loss of a batch (spec/classify.md §4): the mean cross-entropy of the logits,
    /// not scaled by the batch size; the total and its one loss item.
    fn cls_loss(&mut self, c: &ClsBatch) -> Result<(Tensor, Tensor)> {
        let (n, s) = (c.y.len() as i64, self.cfg.imgsz as i64);
        let x = Tensor::from_slice(&c.x)
            .view([n, 3, s, s])
            .to_device(self.device);
        let y = Tensor::from_slice(&c.y).to_device(self.device);
        let amp = self.scaler.enabled;
        // Channels-last input runs the network channels-last, faster on the CPU (as the detection
        // batches, see `ops::images_to_tensor`), unless `channels_last=False`.
        let x = crate::util::amp::input_layout(&x, self.cfg.nchw);
        let logits = if self.bf16 {
            crate::util::amp::cpu_autocast(true, || self.model.forward_raw(&x, true).scores)
        } else {
            crate::util::amp::cuda_autocast(amp, || self.model.forward_raw(&x, true).scores)
        };
        let loss = logits.to_kind(Kind::Float).cross_entropy_for_logits(&y);
        let items = loss.detach().view([1]);
        Ok((loss, items))
    }

    /// `train_batch{ni}.jpg`: the augmented images with their boxes (classify: their classes).
    fn plot_batch(&self, b: &StepBatch, ni: i64) {
        let out = self.save_dir.join(format!("train_batch{ni}.jpg"));
        let b = match b {
            StepBatch::Det(b) => b,
            StepBatch::Cls(c) => {
                if let Err(e) = clsdata::plot_batch(c, self.cfg.imgsz, &self.names, &out) {
                    eprintln!("WARNING {e:#}");
                }
                return;
            }
        };
        let (bn, bh, bw) = b.shape;
        let t = &b.targets;
        let overlap = self.data.masks().is_some_and(|m| m.overlap);
        let imgs: Vec<crate::ops::Rgb> = (0..bn)
            .map(|k| {
                let mut im = crate::ops::Rgb {
                    w: bw,
                    h: bh,
                    data: b.pixels[k * bh * bw * 3..(k + 1) * bh * bw * 3].to_vec(),
                };
                if let Some(m) = &b.masks {
                    // Segment: each instance's mask painted in its class colour.
                    let npix = m.hw.0 * m.hw.1;
                    let rows: Vec<usize> = (0..t.cls.len())
                        .filter(|&j| t.batch_idx[j] == k as i64)
                        .collect();
                    let mut masks = Vec::with_capacity(rows.len() * npix);
                    for (i, &j) in rows.iter().enumerate() {
                        if overlap {
                            let map = &m.data[k * npix..(k + 1) * npix];
                            masks.extend(map.iter().map(|&v| u8::from(v == i as u32 + 1)));
                        } else {
                            masks.extend(m.data[j * npix..(j + 1) * npix].iter().map(|&v| v as u8));
                        }
                    }
                    let cls: Vec<usize> = rows.iter().map(|&j| t.cls[j] as usize).collect();
                    crate::plot::blend_masks(&mut im, &masks, m.hw, &cls);
                }
                if let Some(o) = &self.kpt_opts {
                    // Pose: every instance's keypoints (and skeleton) in input pixels.
                    let sets: Vec<Vec<[f32; 3]>> = (0..t.keypoints.len())
                        .filter(|&j| t.batch_idx.get(j) == Some(&(k as i64)))
                        .map(|j| {
                            t.keypoints[j]
                                .iter()
                                .map(|p| [p[0] * bw as f32, p[1] * bh as f32, p[2]])
                                .collect()
                        })
                        .collect();
                    crate::plot::pose::paint_keypoints(&mut im, &sets, o.kpt_shape.1);
                }
                im
            })
            .collect();
        if !t.rboxes.is_empty() && t.rboxes.len() == t.cls.len() {
            // OBB: the rotated outlines of the canonical xywhr targets.
            let items: Vec<(&crate::ops::Rgb, crate::plot::obb::RotatedBatchBoxes)> = imgs
                .iter()
                .enumerate()
                .map(|(k, im)| {
                    let (w, h) = (bw as f32, bh as f32);
                    let bx = (0..t.cls.len())
                        .filter(|&j| t.batch_idx[j] == k as i64)
                        .map(|j| {
                            let r = t.rboxes[j];
                            (
                                [r[0] * w, r[1] * h, r[2] * w, r[3] * h, r[4]],
                                t.cls[j] as usize,
                                None,
                            )
                        })
                        .collect();
                    (im, bx)
                })
                .collect();
            let _ = crate::plot::obb::plot_batch_rotated(&items, &self.names, &out);
            return;
        }
        let items: Vec<(&crate::ops::Rgb, crate::plot::BatchBoxes)> = imgs
            .iter()
            .enumerate()
            .map(|(k, im)| {
                let bx = (0..t.cls.len())
                    .filter(|&j| t.batch_idx[j] == k as i64)
                    .map(|j| {
                        let [cx, cy, w, h] = t.bboxes[j];
                        let (cx, cy, w, h) =
                            (cx * bw as f32, cy * bh as f32, w * bw as f32, h * bh as f32);
                        (
                            [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                            t.cls[j] as usize,
                            None,
                        )
                    })
                    .collect();
                (im, bx)
            })
            .collect();
        let _ = crate::plot::plot_batch(&items, &self.names, &out);
    }

    /// Validates the EMA model, printing the table; keeps the metrics and val losses.
    fn validate_epoch(&mut self) -> Result<()> {
        let r = match &self.data {
            TrainData::Det { val, .. } => {
                println!("{}", task_table_header(self.task.kind()));
                let r = validate(&self.ema_model, val, &self.val_cfg, |_, _| {})?;
                for row in table_rows(&r, &self.names, false) {
                    println!("{row}");
                }
                r
            }
            TrainData::Cls { val: Some(val), .. } => {
                self.cls_validation(&self.ema_model, val, true, false)?
            }
            TrainData::Cls { val: None, .. } => return Ok(()),
        };
        self.last_metrics = self.task.metrics(&r);
        let n = self.task.loss_names().len();
        self.last_val_loss = r.loss.unwrap_or_else(|| vec![0.0; n]);
        Ok(())
    }

    /// Writes `last` (everything needed to resume), `best` when this epoch is the best, and the
    /// periodic `epochN` checkpoint.
    fn save(&mut self, epoch: usize, report: &EpochReport, is_best: bool) -> Result<()> {
        self.state.epoch = epoch;
        self.state.ema_updates = self.ema.updates;
        self.state.opt_steps = self.opt.steps;
        self.state.time = report.time;
        let meta = CheckpointMeta {
            yaml: self.spec.to_yaml_string(),
            stem: self.stem.clone(),
            names: self.names.clone(),
            args: serde_json::to_value(&self.args.0).unwrap_or(serde_json::Value::Null),
            epoch: epoch as i64,
            metrics: serde_json::json!({"metrics": self.last_metrics, "val_loss": self.last_val_loss, "fitness": report.fitness}),
            train_state: serde_json::to_value(&self.state)?,
            task: self.task.kind().name().into(),
        };
        let wdir = self.wdir();
        let tensors = state::resume_tensors(
            &self.ema_model,
            &self.model,
            &self.opt.state,
            &self.model_vars,
        );
        weights::save_tensors(&tensors, &meta, &wdir.join("last.safetensors"))?;
        if is_best {
            let best_meta = CheckpointMeta {
                train_state: serde_json::Value::Null,
                ..meta.clone()
            };
            weights::save_tensors(
                &state::vars_sorted(&self.ema_model),
                &best_meta,
                &wdir.join("best.safetensors"),
            )?;
        }
        self.save_pt(epoch, report, is_best)?;
        let sp = self.cfg.save_period;
        if sp > 0 && epoch as i64 % sp == 0 {
            weights::save_tensors(
                &tensors,
                &meta,
                &wdir.join(format!("epoch{epoch}.safetensors")),
            )?;
        }
        Ok(())
    }

    /// Strips `last`, validates `best` with plots, draws `results.png`, runs the end callbacks.
    fn finish(
        self,
        cb: &mut Callbacks,
        epochs_done: usize,
        interrupted: bool,
    ) -> Result<TrainOutcome> {
        let wdir = self.wdir();
        self.ddp_dump()?;
        if !self.is_main() {
            // Rank 0 alone strips, validates and plots the run.
            return Ok(TrainOutcome {
                best: wdir.join("best.safetensors"),
                save_dir: self.save_dir,
                final_val: None,
                epochs_done,
            });
        }
        let last = wdir.join("last.safetensors");
        if !interrupted && state::strip_training_state(&last)? {
            println!("Optimizer stripped from {}", last.display());
            self.finish_pt()?;
        }
        let best = wdir.join("best.safetensors");
        let final_val = if self.data.val_len() > 0 && best.exists() && !interrupted {
            Some(self.final_validation(&best)?)
        } else {
            None
        };
        if self.cfg.plots {
            if let Err(err) = crate::plot::charts::plot_results(
                self.csv.path(),
                &self.save_dir.join("results.png"),
            ) {
                eprintln!("WARNING {err:#}");
            }
        }
        println!("Results saved to {}", self.save_dir.display());
        let report = EpochReport {
            epoch: epochs_done,
            epochs: self.cfg.epochs,
            save_dir: self.save_dir.clone(),
            ..Default::default()
        };
        Callbacks::run(&mut cb.on_train_end, &report);
        Ok(TrainOutcome {
            save_dir: self.save_dir,
            best,
            final_val,
            epochs_done,
        })
    }

    /// Classify validation of `m` on `val` in batches of twice the training batch, printing the
    /// top-1 / top-5 table; `loss` also averages the cross-entropy; `plots` draws the first three
    /// batches (`val_batch{i}_labels.jpg` / `_pred.jpg`) into the run folder.
    fn cls_validation(
        &self,
        m: &DetectionModel,
        val: &crate::data::classify::ClsDataset,
        loss: bool,
        plots: bool,
    ) -> Result<ValResult> {
        use crate::metrics::classify::ClsMetrics;
        println!("{}", ClsMetrics::table_header());
        let r = crate::engine::val::classify::validate_cls(
            m.into(),
            val,
            self.cfg.batch * 2,
            loss,
            self.cfg.nchw,
            plots.then_some(self.save_dir.as_path()),
            |_, _| {},
        )?;
        if let Some(c) = &r.cls {
            println!("{}", c.table_row());
        }
        Ok(r)
    }

    /// Validates the fused `best` weights with plots, printing per-class rows when verbose.
    fn final_validation(&self, best: &Path) -> Result<ValResult> {
        println!("\nValidating {}...", best.display());
        let mut m =
            weights::load_model(best.to_str().unwrap_or_default(), None, self.device)?.model;
        m.fuse();
        m.vs.freeze();
        println!("{}", m.info());
        let plots = self.cfg.plots;
        let val = match &self.data {
            TrainData::Det { val, .. } => val,
            TrainData::Cls { val, .. } => {
                let val = val.as_ref().ok_or_else(|| anyhow!("no validation split"))?;
                let r = self.cls_validation(&m, val, false, plots)?;
                println!("Speed: {:.1}ms preprocess, {:.1}ms inference, 0.0ms loss, {:.1}ms postprocess per image", r.speed.preprocess, r.speed.inference, r.speed.postprocess);
                if plots {
                    for normalize in [false, true] {
                        if let Err(e) = crate::plot::charts::plot_confusion(
                            &r.confusion,
                            &self.names,
                            &self.save_dir,
                            normalize,
                        ) {
                            eprintln!("WARNING {e:#}");
                        }
                    }
                }
                return Ok(r);
            }
        };
        println!("{}", task_table_header(self.task.kind()));
        let vc = ValConfig {
            loss: None,
            plot_dir: plots.then(|| self.save_dir.clone()),
            ..self.val_cfg.clone()
        };
        let r = validate(&m, val, &vc, |_, _| {})?;
        for row in table_rows(&r, &self.names, self.cfg.verbose) {
            println!("{row}");
        }
        println!("Speed: {:.1}ms preprocess, {:.1}ms inference, 0.0ms loss, {:.1}ms postprocess per image", r.speed.preprocess, r.speed.inference, r.speed.postprocess);
        if plots {
            let _ = crate::plot::charts::plot_curves(&r.metrics, &self.names, &self.save_dir);
            if let Some(s) = &r.seg {
                let _ = crate::plot::charts::plot_curves_as(
                    &s.masks,
                    &self.names,
                    &self.save_dir,
                    "Mask",
                );
            }
            if let Some(s) = &r.pose {
                let _ = crate::plot::charts::plot_curves_as(
                    &s.pose,
                    &self.names,
                    &self.save_dir,
                    "Pose",
                );
            }
            let _ = crate::plot::charts::plot_confusion(
                &r.confusion,
                &self.names,
                &self.save_dir,
                false,
            );
            let _ = crate::plot::charts::plot_confusion(
                &r.confusion,
                &self.names,
                &self.save_dir,
                true,
            );
        }
        Ok(r)
    }
}

/// The OBB loss targets of a batch: its canonical normalised `xywhr` rows (the loader's `rboxes`).
fn obb_targets(t: &crate::data::batch::Targets) -> crate::loss::obb::ObbTargets {
    crate::loss::obb::ObbTargets {
        batch_idx: t.batch_idx.clone(),
        cls: t.cls.clone(),
        xywhr: t.rboxes.clone(),
    }
}

/// The pose-loss settings of a model: the run's `pose` / `kobj` gains, its head's keypoint shape
/// and OKS sigmas.
pub(crate) fn pose_loss_config(
    model: &DetectionModel,
    lc: &LossConfig,
) -> crate::loss::pose::PoseLossConfig {
    let mut p = crate::loss::pose::PoseLossConfig::for_model(model)
        .expect("pose_loss_config is only called for Pose models");
    p.pose_gain = lc.pose_gain;
    p.kobj_gain = lc.kobj_gain;
    p
}

/// Whether this run trains with CPU bfloat16 autocast: on the CPU, `amp=True` (the default) or
/// `amp=bf16`, and the CPU computes bfloat16 natively (`amp=True` only where the task allows it,
/// [`Task::cpu_bf16_by_default`]); says which precision it trains in (rank 0).
fn cpu_bf16_mode(cfg: &TrainConfig, device: Device, main: bool, task: &dyn Task) -> bool {
    use config::CpuAmp;
    if device.is_cuda() {
        if main && cfg.cpu_amp == CpuAmp::Bf16 {
            eprintln!("WARNING amp=bf16 is CPU bfloat16 autocast; on CUDA amp=True (fp16 autocast with a gradient scaler) is used");
        }
        return false;
    }
    let isa = crate::util::amp::cpu_bf16();
    let allowed = task.cpu_bf16_by_default();
    let on = cfg.cpu_amp.bf16(isa.is_some(), allowed);
    if main {
        match (cfg.cpu_amp, isa) {
            (_, Some(isa)) if on => println!("AMP: CPU bfloat16 autocast on ({isa}), channels-last convolutions (parameters, gradients and validation stay float32; amp=False trains in float32)"),
            (CpuAmp::Auto, Some(_)) if !allowed => println!("AMP: off for {} training on the CPU (bfloat16 autocast lowered its accuracy: float32; amp=bf16 forces it)", task.kind()),
            (CpuAmp::Bf16, _) => eprintln!("WARNING amp=bf16: this CPU has no native bfloat16 instructions (avx512_bf16 or amx_bf16); training in float32"),
            (CpuAmp::Off, _) => println!("AMP: off (amp=False: float32)"),
            _ => println!("AMP: off on this CPU (no native bfloat16 instructions: float32)"),
        }
    }
    on
}

/// Whether `RYOLO_TIMING` asks for the epoch's time split (loader wait, validation, save).
fn timing_on() -> bool {
    std::env::var_os("RYOLO_TIMING").is_some()
}

/// Prints how long `what` took since `t` when [`timing_on`].
fn timing(what: &str, t: Instant) {
    if timing_on() {
        println!("timing: {what} {:.2}s", t.elapsed().as_secs_f64());
    }
}
