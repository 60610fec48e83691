//! The typed training configuration, built once from the merged arguments (defaults come from
//! `default.yaml`, never from literals here).

use crate::cfg::Args;
use crate::data::augment::{AugConfig, CopyPasteMode};
use anyhow::{anyhow, Result};

/// What `cache=` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// Decode from disk every time.
    Off,
    /// Decoded images kept in memory.
    Ram,
    /// Decoded images kept as `.npy` files beside the images.
    Disk,
}

/// Mixed precision of CPU training, from `amp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuAmp {
    /// `amp=False`: float32.
    Off,
    /// `amp=True` (the default): bfloat16 autocast when the CPU computes bfloat16 natively, else float32.
    Auto,
    /// `amp=bf16`: bfloat16 autocast (float32, with a warning, on CPUs without native bfloat16).
    Bf16,
}

impl CpuAmp {
    /// Whether CPU training runs under bfloat16 autocast, given whether the CPU has native bfloat16
    /// and whether `amp=True` may use it for the task ([`crate::task::Task::cpu_bf16_by_default`]).
    pub fn bf16(self, native: bool, task_allows: bool) -> bool {
        match self {
            CpuAmp::Off => false,
            CpuAmp::Auto => native && task_allows,
            CpuAmp::Bf16 => native,
        }
    }
}

/// Every training setting, typed.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Total epochs (>= 1).
    pub epochs: usize,
    /// Images per batch.
    pub batch: usize,
    /// Training size (a multiple of 32).
    pub imgsz: usize,
    /// Seed of every random stream.
    pub seed: u64,
    /// Nominal batch size for gradient accumulation.
    pub nbs: usize,
    /// Loader threads.
    pub workers: usize,
    /// `optimizer=` name.
    pub optimizer: String,
    /// Initial learning rate (explicit optimizers).
    pub lr0: f64,
    /// Final LR fraction.
    pub lrf: f64,
    /// Momentum (explicit optimizers).
    pub momentum: f64,
    /// Weight decay before nbs scaling.
    pub weight_decay: f64,
    /// Warmup epochs.
    pub warmup_epochs: f64,
    /// Warmup start momentum.
    pub warmup_momentum: f64,
    /// Warmup start LR of the bias group (explicit optimizers).
    pub warmup_bias_lr: f64,
    /// Cosine schedule.
    pub cos_lr: bool,
    /// Epochs without mosaic at the end.
    pub close_mosaic: usize,
    /// Early-stopping patience (0: off).
    pub patience: usize,
    /// Time limit in seconds.
    pub time_limit: Option<f64>,
    /// Validate every epoch (else only the last).
    pub val: bool,
    /// Save `epochN` checkpoints every this many epochs (<= 0: never).
    pub save_period: i64,
    /// Plots (labels, batches, curves, results).
    pub plots: bool,
    /// Write checkpoints.
    pub save: bool,
    /// Per-class rows in the final validation.
    pub verbose: bool,
    /// All classes as one.
    pub single_cls: bool,
    /// Rect batches (no mosaic).
    pub rect: bool,
    /// Fraction of the training images used.
    pub fraction: f64,
    /// Image cache.
    pub cache: Cache,
    /// Mixed precision (CUDA only).
    pub amp: bool,
    /// What `amp` asks of CPU training: bfloat16 autocast where the CPU has it natively, always, or never.
    pub cpu_amp: CpuAmp,
    /// `channels_last=False`: the network runs NCHW (Ultralytics' CPU training layout) instead of
    /// channels-last.
    pub nchw: bool,
    /// Only these classes are trained on (labels of others dropped).
    pub classes: Option<Vec<usize>>,
    /// Parameter-name prefixes to freeze (`model.N.`), besides the DFL.
    pub freeze: Vec<String>,
    /// Validation NMS confidence (default 0.001).
    pub conf: f32,
    /// Validation NMS IoU.
    pub iou: f32,
    /// Validation detections per image.
    pub max_det: usize,
    /// Box, class and DFL loss gains.
    pub gains: [f64; 3],
    /// Pose (keypoint location) and keypoint-objectness gains (pose), and the angle gain (obb).
    pub task_gains: TaskGains,
    /// Augmentation.
    pub aug: AugConfig,
}

/// The loss gains of the pose and obb tasks (`pose` 12, `kobj` 1, `angle` 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskGains {
    /// Keypoint-location gain.
    pub pose: f64,
    /// Keypoint-objectness gain.
    pub kobj: f64,
    /// Angle gain (8.4).
    pub angle: f64,
}

/// The augmentation settings (mosaic, mixup and cutmix off for rect training; copy-paste stays, as
/// in Ultralytics).
pub fn aug_from(a: &Args) -> Result<AugConfig> {
    let f = |k: &str| a.num(k);
    let mut aug = AugConfig {
        mosaic: f("mosaic")?,
        mixup: f("mixup")?,
        cutmix: f("cutmix")?,
        copy_paste: f("copy_paste")?,
        copy_paste_mode: match a.str("copy_paste_mode").as_deref() {
            None => CopyPasteMode::Flip,
            Some(m) => CopyPasteMode::parse(m).ok_or_else(|| {
                anyhow!("Expected `copy_paste_mode` to be `flip` or `mixup`, but got {m}.")
            })?,
        },
        degrees: f("degrees")?,
        translate: f("translate")?,
        scale: f("scale")?,
        shear: f("shear")?,
        perspective: f("perspective")?,
        hsv: [f("hsv_h")?, f("hsv_s")?, f("hsv_v")?],
        flipud: f("flipud")?,
        fliplr: f("fliplr")?,
        bgr: f("bgr")?,
    };
    if a.bool("rect") {
        aug.mosaic = 0.0;
        aug.mixup = 0.0;
        aug.cutmix = 0.0;
    }
    Ok(aug)
}

/// `freeze=N` (the first N layers), a list of layer indices, or module names (`model.<name>.`).
pub fn freeze_prefixes(v: &serde_yaml::Value) -> Vec<String> {
    use serde_yaml::Value;
    let one = |x: &Value| match x {
        Value::Number(n) => n.as_i64().map(|i| format!("model.{i}.")),
        Value::String(s) => Some(format!("model.{}.", s.trim_start_matches("model."))),
        _ => None,
    };
    match v {
        Value::Number(n) => (0..n.as_i64().unwrap_or(0))
            .map(|i| format!("model.{i}."))
            .collect(),
        Value::Sequence(v) => v.iter().filter_map(one).collect(),
        Value::String(_) => one(v).into_iter().collect(),
        _ => vec![],
    }
}

/// `batch=`: a positive count; `-1` or a fraction in (0, 1) asks for AutoBatch, which needs CUDA
/// memory probing: on the CPU Ultralytics warns and uses 16, and so do we (also on CUDA, where
/// AutoBatch is not implemented yet; the warning says so).
fn batch_size(a: &Args, cuda: bool) -> Result<usize> {
    let v = a.num("batch")?;
    if v >= 1.0 {
        if v.fract() != 0.0 {
            return Err(anyhow!("'batch' must be a whole number of images, got {v}"));
        }
        return Ok(v as usize);
    }
    if v == -1.0 || (v > 0.0 && v < 1.0) {
        if cuda {
            eprintln!(
                "WARNING batch={v}: AutoBatch is not implemented in ryolo yet; using batch=16"
            );
        } else {
            eprintln!(
                "WARNING AutoBatch: batch={v} needs CUDA; on the CPU using the default batch=16"
            );
        }
        return Ok(16);
    }
    Err(anyhow!(
        "'batch' must be a positive integer, -1 (AutoBatch) or a fraction in (0, 1), got {v}"
    ))
}

impl TrainConfig {
    /// Reads every training setting from the merged arguments.
    pub fn from_args(a: &Args, cuda: bool) -> Result<Self> {
        let (ih, iw) = a.imgsz()?;
        let cache = match a.get("cache") {
            serde_yaml::Value::Bool(true) => Cache::Ram,
            _ => match a.str("cache").as_deref() {
                Some("ram") => Cache::Ram,
                Some("disk") => Cache::Disk,
                _ => Cache::Off,
            },
        };
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Ok(Self {
            epochs: a.int("epochs")?.max(1) as usize,
            batch: batch_size(a, cuda)?,
            imgsz: crate::engine::predict::check_imgsz(ih.max(iw), 32),
            seed: a.int("seed")?.max(0) as u64,
            nbs: a.int("nbs")?.max(1) as usize,
            workers: (a.int("workers")?.max(0) as usize).clamp(1, cores),
            optimizer: a.str("optimizer").unwrap_or_else(|| "auto".into()),
            lr0: a.num("lr0")?,
            lrf: a.num("lrf")?,
            momentum: a.num("momentum")?,
            weight_decay: a.num("weight_decay")?,
            warmup_epochs: a.num("warmup_epochs")?,
            warmup_momentum: a.num("warmup_momentum")?,
            warmup_bias_lr: a.num("warmup_bias_lr")?,
            cos_lr: a.bool("cos_lr"),
            close_mosaic: a.int("close_mosaic")?.max(0) as usize,
            patience: a.int("patience")?.max(0) as usize,
            time_limit: a.f64("time").map(|h| h * 3600.0),
            val: a.on("val"),
            save_period: a.int("save_period")?,
            plots: a.on("plots"),
            save: a.on("save"),
            verbose: a.on("verbose"),
            single_cls: a.bool("single_cls"),
            rect: a.bool("rect"),
            fraction: a.num("fraction")?,
            cache,
            amp: a.on("amp") && cuda,
            cpu_amp: if a.str("amp").is_some_and(|s| s.eq_ignore_ascii_case("bf16")) {
                CpuAmp::Bf16
            } else if a.on("amp") {
                CpuAmp::Auto
            } else {
                CpuAmp::Off
            },
            nchw: !a.on("channels_last"),
            classes: a.classes()?,
            freeze: freeze_prefixes(a.get("freeze")),
            conf: a.f64("conf").unwrap_or(crate::cfg::mode_defaults::VAL_CONF) as f32,
            iou: a.num("iou")? as f32,
            max_det: a.int("max_det")?.max(1) as usize,
            gains: [a.num("box")?, a.num("cls")?, a.num("dfl")?],
            task_gains: TaskGains {
                pose: a.num("pose")?,
                kobj: a.num("kobj")?,
                angle: a.num("angle")?,
            },
            aug: aug_from(a)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Args {
        let c =
            crate::cfg::parse_args(&s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .unwrap();
        Args::new(&c.overrides)
    }

    #[test]
    fn amp_selects_cpu_bfloat16_only_where_native() {
        let amp = |s: &str| TrainConfig::from_args(&args(s), false).unwrap().cpu_amp;
        assert_eq!(amp("epochs=1"), CpuAmp::Auto);
        assert_eq!(amp("amp=True"), CpuAmp::Auto);
        assert_eq!(amp("amp=False"), CpuAmp::Off);
        assert_eq!(amp("amp=bf16"), CpuAmp::Bf16);
        assert!(CpuAmp::Auto.bf16(true, true) && CpuAmp::Bf16.bf16(true, true));
        assert!(!CpuAmp::Off.bf16(true, true));
        assert!(!CpuAmp::Auto.bf16(false, true) && !CpuAmp::Bf16.bf16(false, true));
        // Pose trains in float32 unless amp=bf16 asks.
        let pose = crate::task::for_kind(crate::task::TaskKind::Pose).unwrap();
        assert!(!pose.cpu_bf16_by_default());
        assert!(!CpuAmp::Auto.bf16(true, false) && CpuAmp::Bf16.bf16(true, false));
    }

    #[test]
    fn channels_last_false_selects_nchw_and_takes_only_bools() {
        let nchw = |s: &str| TrainConfig::from_args(&args(s), false).unwrap().nchw;
        assert!(!nchw("epochs=1"));
        assert!(!nchw("channels_last=True"));
        assert!(nchw("channels_last=False"));
        let e = crate::cfg::parse_args(&["channels_last=fast".to_string()]).unwrap_err();
        assert!(
            format!("{e:#}").contains("'channels_last' must be a bool"),
            "{e:#}"
        );
        assert!(crate::cfg::parse_args(&["channels_last=None".to_string()]).is_ok());
    }

    #[test]
    fn autobatch_on_cpu_uses_16() {
        assert_eq!(
            TrainConfig::from_args(&args("batch=-1"), false)
                .unwrap()
                .batch,
            16
        );
        assert_eq!(
            TrainConfig::from_args(&args("batch=0.7"), false)
                .unwrap()
                .batch,
            16
        );
        assert_eq!(
            TrainConfig::from_args(&args("batch=8"), false)
                .unwrap()
                .batch,
            8
        );
        // A stored (unchecked) value such as a resumed run's is refused here too.
        let mut raw = serde_yaml::Mapping::new();
        raw.insert("batch".into(), (-3).into());
        assert!(TrainConfig::from_args(&Args::new(&raw), false).is_err());
    }

    #[test]
    fn freeze_by_count_index_and_name() {
        let p = |s: &str| freeze_prefixes(&serde_yaml::from_str(s).unwrap());
        assert_eq!(p("2"), vec!["model.0.", "model.1."]);
        assert_eq!(
            p("[3, '22.dfl', model.5]"),
            vec!["model.3.", "model.22.dfl.", "model.5."]
        );
    }

    #[test]
    fn validation_settings_come_from_the_arguments() {
        let c = TrainConfig::from_args(&args("conf=0.2 iou=0.5 max_det=50"), false).unwrap();
        assert_eq!((c.conf, c.iou, c.max_det), (0.2, 0.5, 50));
        let c = TrainConfig::from_args(&args(""), false).unwrap();
        assert_eq!((c.conf, c.iou, c.max_det), (0.001, 0.7, 300));
    }
}
