//! What a run trains on: detection / segment label data or classification ImageFolder splits
//! (spec/classify.md §5), the classify batch producer and the classify batch plot.

use super::config::TrainConfig;
use crate::cfg::Args;
use crate::data::classify::{
    check_cls_dataset, ClsAugConfig, ClsData, ClsDataset, ClsOptions, Fraction,
};
use crate::data::loader::{epoch_order, Batch, TrainDataset};
use crate::data::LabelEntry;
use anyhow::Result;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// The training and validation data of a run.
pub enum TrainData {
    /// Detect / segment: the augmenting dataset and the validation entries.
    Det {
        /// Training dataset.
        ds: Arc<TrainDataset>,
        /// Validation entries (empty: no validation).
        val: Vec<LabelEntry>,
    },
    /// Classify: the training split and the validation split (if any).
    Cls {
        /// Training split (augmented).
        train: Arc<ClsDataset>,
        /// Validation split (eval transform).
        val: Option<ClsDataset>,
    },
}

impl TrainData {
    /// Training images.
    pub fn len(&self) -> usize {
        match self {
            Self::Det { ds, .. } => ds.len(),
            Self::Cls { train, .. } => train.len(),
        }
    }

    /// Validation images.
    pub fn val_len(&self) -> usize {
        match self {
            Self::Det { val, .. } => val.len(),
            Self::Cls { val, .. } => val.as_ref().map_or(0, ClsDataset::len),
        }
    }

    /// Segment mask targets (None for detect and classify).
    pub fn masks(&self) -> Option<crate::data::batch::MaskSpec> {
        match self {
            Self::Det { ds, .. } => ds.masks,
            Self::Cls { .. } => None,
        }
    }
}

/// A classification batch: `B x 3 x S x S` floats in [0, 1] and the `B` class indices.
pub struct ClsBatch {
    /// Pixels, planar per image.
    pub x: Vec<f32>,
    /// Class indices.
    pub y: Vec<i64>,
}

/// One training batch of either kind.
pub enum StepBatch {
    /// Detect / segment batch.
    Det(Box<Batch>),
    /// Classify batch.
    Cls(ClsBatch),
}

/// Resolves the ImageFolder dataset named by `data` (the validation split is `val/`,
/// `validation/` or `valid/`, else `test/`, as Ultralytics' trainer).
pub fn resolve(data: &str) -> Result<ClsData> {
    check_cls_dataset(Path::new(data), "")
}

/// The training split (augmented, `fraction` applied) and the validation split of `cd`.
pub fn datasets(
    a: &Args,
    c: &TrainConfig,
    cd: &ClsData,
) -> Result<(Arc<ClsDataset>, Option<ClsDataset>)> {
    let opts = |split: &str, aug: ClsAugConfig| -> Result<ClsOptions> {
        Ok(ClsOptions {
            imgsz: c.imgsz,
            fraction: Fraction::for_split(a.get("fraction"), split)?,
            single_cls: c.single_cls,
            aug,
            seed: c.seed,
        })
    };
    // Detection-only loader options that classification does not honour here are named.
    if c.cache != super::config::Cache::Off {
        eprintln!("WARNING cache={:?} is not implemented for classification; images are decoded every epoch", c.cache);
    }
    if c.rect {
        eprintln!("WARNING rect=True does not apply to classification (square crops); ignored");
    }
    let aug = ClsAugConfig::from_args(a)?;
    let train = ClsDataset::new(&cd.train, &cd.names, opts("train", aug)?, "train")?;
    if train.is_empty() {
        anyhow::bail!("no usable training images in {}", cd.train.display());
    }
    let val = match cd.val.as_ref().or(cd.test.as_ref()) {
        Some(v) => Some(ClsDataset::new(
            v,
            &cd.names,
            opts("val", ClsAugConfig::default())?,
            "val",
        )?),
        None => None,
    };
    Ok((Arc::new(train), val))
}

/// Starts producing one epoch of augmented classify batches (a shuffled order per epoch) on a
/// background thread, `prefetch` batches ahead; a failed batch is sent as the error.
pub fn epoch_batches(
    ds: Arc<ClsDataset>,
    pool: Arc<rayon::ThreadPool>,
    epoch: usize,
    batch: usize,
    prefetch: usize,
    shard: (usize, usize),
) -> Receiver<Result<ClsBatch>> {
    let (tx, rx) = sync_channel(prefetch.max(1));
    std::thread::spawn(move || {
        let order = epoch_order(ds.len(), ds.opts.seed, epoch, true);
        for global in order.chunks(batch.max(1)) {
            // Data-parallel rank shard.0 of shard.1: its slice of the one-process batch.
            let (a, b) = crate::engine::dist::shard(global.len(), shard.0, shard.1);
            let idx = &global[a..b];
            let b = pool
                .install(|| ds.batch(idx, epoch, true))
                .map(|(x, y)| ClsBatch { x, y });
            let failed = b.is_err();
            if tx.send(b).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// `train_batch{ni}.jpg` of a classify batch: the augmented images, each framed and labelled
/// with its class name.
pub fn plot_batch(b: &ClsBatch, imgsz: usize, names: &[String], out: &Path) -> Result<()> {
    let cls: Vec<usize> = b.y.iter().map(|&c| c.max(0) as usize).collect();
    plot_images(&b.x, &cls, None, imgsz, names, out)
}

/// A mosaic of planar `imgsz`-square images in `[0, 1]`, each framed and labelled with its class
/// name and, when `conf` is given, that image's confidence.
pub fn plot_images(
    x: &[f32],
    cls: &[usize],
    conf: Option<&[f32]>,
    imgsz: usize,
    names: &[String],
    out: &Path,
) -> Result<()> {
    let npix = imgsz * imgsz;
    let imgs: Vec<crate::ops::Rgb> = x
        .chunks(3 * npix)
        .map(|chw| {
            let mut data = vec![0u8; 3 * npix];
            for p in 0..npix {
                for ch in 0..3 {
                    data[p * 3 + ch] = (chw[ch * npix + p].clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
            crate::ops::Rgb {
                w: imgsz,
                h: imgsz,
                data,
            }
        })
        .collect();
    let s = imgsz as f32;
    let items: Vec<(&crate::ops::Rgb, crate::plot::BatchBoxes)> = imgs
        .iter()
        .zip(cls)
        .enumerate()
        .map(|(i, (im, &c))| {
            let cf = conf.and_then(|v| v.get(i).copied());
            (im, vec![([0.0, 0.0, s, s], c, cf)])
        })
        .collect();
    crate::plot::plot_batch(&items, names, out)
}
