//! Validation: rect batches with +0.5 stride padding, batched forward, multi-label NMS, matching in
//! letterboxed space, Ultralytics' metrics and console table (spec/metrics.md).

pub mod classify;
mod mode;
pub mod obb_out;
mod output;
pub mod seg;

pub use mode::run;
pub use output::{coco_stats, predictions_json, write_labels};

use crate::data::batch::rect_batches;
use crate::data::loader::load_resized;
use crate::data::LabelEntry;
use crate::engine::backend::{HostOutput, ModelRef, RunOptions};
use crate::engine::predict::Speed;
use crate::metrics::pose::{PoseImage, PoseMetrics, PoseStats};
use crate::metrics::segment::{SegMetrics, SegStats};
use crate::metrics::{ConfusionMatrix, DetMetrics, Stats};
use crate::ops::{letterbox, NmsConfig, Rgb};
use anyhow::{bail, Result};
use rayon::prelude::*;
use std::time::Instant;
use tch::Kind;

/// Validation settings.
#[derive(Debug, Clone)]
pub struct ValConfig {
    /// Inference size (long side).
    pub imgsz: usize,
    /// Images per batch.
    pub batch: usize,
    /// NMS confidence threshold (0.001).
    pub conf: f32,
    /// NMS IoU threshold (0.7).
    pub iou: f32,
    /// Max detections per image (raised to the most labels in one image, as 8.4 does).
    pub max_det: usize,
    /// All classes as one.
    pub single_cls: bool,
    /// Class-agnostic NMS.
    pub agnostic_nms: bool,
    /// FP16 inference (CUDA only).
    pub half: bool,
    /// `channels_last=False`: NCHW input instead of channels-last.
    pub nchw: bool,
    /// Also compute the detection loss (validation during training).
    pub loss: Option<crate::loss::LossConfig>,
    /// Keep every image's detections in original pixels (for save_json, save_txt, metric=coco).
    pub collect: bool,
    /// Segment runs: also keep each mask's COCO RLE (`save_json`).
    pub save_json: bool,
    /// Draw `val_batch{0,1,2}_labels.jpg` and `_pred.jpg` into this folder.
    pub plot_dir: Option<std::path::PathBuf>,
    /// Segment validation: how ground-truth masks are built and compared.
    pub masks: Option<seg::MaskOpts>,
    /// Pose validation: the keypoint shape and OKS sigmas.
    pub kpts: Option<KptOpts>,
    /// OBB validation: rotated boxes matched by ProbIoU after rotated NMS.
    pub obb: bool,
}

/// Pose validation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct KptOpts {
    /// `(K, D)`: keypoints per instance and values per keypoint.
    pub kpt_shape: (usize, usize),
    /// OKS sigma per keypoint.
    pub sigmas: Vec<f32>,
}

impl Default for ValConfig {
    fn default() -> Self {
        Self {
            imgsz: 640,
            batch: 16,
            conf: 0.001,
            iou: 0.7,
            max_det: 300,
            single_cls: false,
            agnostic_nms: false,
            half: false,
            nchw: false,
            loss: None,
            collect: false,
            save_json: false,
            plot_dir: None,
            masks: None,
            kpts: None,
            obb: false,
        }
    }
}

/// One detection: `xyxy` box, confidence, class.
pub type Pred = ([f32; 4], f32, usize);

/// Everything a validation run measured.
#[derive(Debug, Clone)]
pub struct ValResult {
    /// AP, P, R per class and the summary numbers (boxes).
    pub metrics: DetMetrics,
    /// Segment validation: Box and Mask metrics.
    pub seg: Option<SegMetrics>,
    /// Pose validation: Box and Pose metrics.
    pub pose: Option<PoseMetrics>,
    /// Classification: top-1 / top-5 and the confusion matrix.
    pub cls: Option<crate::metrics::classify::ClsMetrics>,
    /// Confusion matrix.
    pub confusion: ConfusionMatrix,
    /// Images per class (images containing it) and instances per class, indexed by class id.
    pub per_class: Vec<(usize, usize)>,
    /// Images seen.
    pub seen: usize,
    /// Ground-truth boxes.
    pub instances: usize,
    /// Mean ms per image.
    pub speed: Speed,
    /// Mean loss items over the batches (the task's loss columns), when asked for.
    pub loss: Option<Vec<f64>>,
    /// Per image (entry index): detections in original-image pixels, when `collect` was set.
    pub predictions: Vec<(usize, Vec<Pred>)>,
    /// Segment runs with `collect`: per image, the saved forms of each detection's mask (aligned
    /// with `predictions`).
    pub mask_outputs: Vec<Vec<seg::MaskOut>>,
    /// OBB runs with `collect`: per image, each detection's `[cx, cy, w, h, θ]` in original pixels
    /// (not clipped; aligned with `predictions`).
    pub rotated: Vec<Vec<[f32; 5]>>,
    /// Images that could not be decoded and were left out (each named in a warning).
    pub skipped: Vec<std::path::PathBuf>,
}

/// One loaded val image: letterboxed pixels and its ground truth in letterboxed pixels.
struct Item {
    img: Rgb,
    gt: Vec<([f32; 4], usize)>,
    /// Segment: binary ground-truth masks on the prediction grid `grid`, one per `gt` row (rows
    /// re-ordered as overlap masks order them).
    masks: Vec<u8>,
    grid: (usize, usize),
    /// Pose: ground-truth keypoints `(x, y, flag)` in letterboxed pixels, one set per `gt` row.
    kpts: Vec<Vec<[f32; 3]>>,
    /// OBB: ground-truth rotated boxes `[cx, cy, w, h, θ]` in letterboxed pixels per `gt` row.
    rboxes: Vec<[f32; 5]>,
    /// Maps letterboxed pixels back to the original image: `orig = (x - pad) / gain`.
    gain: (f32, f32),
    pad: (f32, f32),
    orig: (f32, f32),
}

fn prepare(e: &LabelEntry, cfg: &ValConfig, shape: (usize, usize)) -> Result<Item> {
    let (imgsz, single_cls) = (cfg.imgsz, cfg.single_cls);
    let resized = load_resized(&e.im_file, imgsz)?;
    let (rw, rh) = (resized.w as f32, resized.h as f32);
    let (img, info) = letterbox(&resized, shape, false, false, 32);
    let r = info.ratio as f32;
    let (padw, padh) = (info.pad.0 as f32, info.pad.1 as f32);
    let gt: Vec<([f32; 4], usize)> = e
        .boxes
        .iter()
        .zip(&e.cls)
        .map(|(b, &c)| {
            let (cx, cy, w, h) = (
                b[0] * rw * r + padw,
                b[1] * rh * r + padh,
                b[2] * rw * r,
                b[3] * rh * r,
            );
            (
                [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                if single_cls { 0 } else { c as usize },
            )
        })
        .collect();
    let (h0, w0) = (e.shape.0 as f32, e.shape.1 as f32);
    let (mut gt, mut masks, mut grid) = (gt, Vec::new(), (0, 0));
    if let Some(o) = cfg.masks {
        let src = e.segments.as_deref().unwrap_or(&[]);
        if src.len() != gt.len() {
            bail!(
                "{}: {} boxes but {} polygons; segment validation needs one polygon per object",
                e.im_file.display(),
                gt.len(),
                src.len()
            );
        }
        let polys = seg::letterbox_polygons(src, (rw, rh), r, (padw, padh));
        grid = if o.native {
            shape
        } else {
            (shape.0 / 4, shape.1 / 4)
        };
        let (m, order) = seg::gt_masks(&polys, shape, grid, o);
        gt = order.iter().map(|&k| gt[k]).collect();
        masks = m;
    }
    let to_px = |x: f32, y: f32| (x * rw * r + padw, y * rh * r + padh);
    let mut kpts = Vec::new();
    if let Some(o) = &cfg.kpts {
        let src = e.keypoints.as_deref().unwrap_or(&[]);
        if src.len() != gt.len() || src.iter().any(|k| k.len() != o.kpt_shape.0) {
            bail!(
                "{}: {} boxes but {} keypoint sets of {} keypoints; pose validation needs one set \
                 of kpt_shape {:?} per object",
                e.im_file.display(),
                gt.len(),
                src.len(),
                src.first().map_or(0, |k| k.len()),
                o.kpt_shape
            );
        }
        kpts = src
            .iter()
            .map(|k| {
                k.iter()
                    .map(|p| {
                        let (x, y) = to_px(p[0], p[1]);
                        [x, y, p[2]]
                    })
                    .collect()
            })
            .collect();
    }
    let mut rboxes = Vec::new();
    if cfg.obb {
        let src = e.corners.as_deref().unwrap_or(&[]);
        if src.len() != gt.len() {
            bail!(
                "{}: {} boxes but {} oriented boxes; OBB validation needs the corners of every object",
                e.im_file.display(),
                gt.len(),
                src.len()
            );
        }
        for c in src {
            let pts = c.map(|p| {
                let (x, y) = to_px(p[0], p[1]);
                [x, y]
            });
            rboxes.push(crate::data::obb::xywhr_from_points(&pts));
        }
    }
    Ok(Item {
        img,
        gt,
        masks,
        grid,
        kpts,
        rboxes,
        gain: (r * rw / w0, r * rh / h0),
        pad: (padw, padh),
        orig: (w0, h0),
    })
}

/// The loaded images of a batch with their positions in `idx`; an image that fails to load is
/// left out with a warning naming it and added to `skipped`.
fn prepare_batch(
    entries: &[LabelEntry],
    idx: &[usize],
    cfg: &ValConfig,
    shape: (usize, usize),
    skipped: &mut Vec<std::path::PathBuf>,
) -> (Vec<usize>, Vec<Item>) {
    let loaded: Vec<Result<Item>> = idx
        .par_iter()
        .map(|&i| prepare(&entries[i], cfg, shape))
        .collect();
    let (mut kept, mut items) = (Vec::new(), Vec::new());
    for (&i, r) in idx.iter().zip(loaded) {
        match r {
            Ok(it) => {
                kept.push(i);
                items.push(it);
            }
            Err(e) => {
                eprintln!("WARNING val: {e:#}; image skipped");
                skipped.push(entries[i].im_file.clone());
            }
        }
    }
    (kept, items)
}

/// What validation accumulates over batches.
struct Accum {
    stats: Stats,
    /// Segment: box and mask correct flags.
    seg: Option<SegStats>,
    /// Pose: box and OKS correct flags.
    pose: Option<PoseStats>,
    cm: ConfusionMatrix,
    per_class: Vec<(usize, usize)>,
    loss_sum: Vec<f64>,
    predictions: Vec<(usize, Vec<Pred>)>,
    mask_outputs: Vec<Vec<seg::MaskOut>>,
    rotated: Vec<Vec<[f32; 5]>>,
    times: [f64; 3],
}

/// The batches of a run: rect shapes sorted by aspect ratio, or a fixed ONNX graph's square
/// canvas in dataset order.
fn plan_batches(
    m: ModelRef,
    entries: &[LabelEntry],
    cfg: &ValConfig,
) -> Vec<(Vec<usize>, (usize, usize))> {
    match m.fixed_imgsz() {
        Some(shape) => {
            let b = m.fixed_batch().unwrap_or(cfg.batch).max(1);
            let idx: Vec<usize> = (0..entries.len()).collect();
            idx.chunks(b).map(|c| (c.to_vec(), shape)).collect()
        }
        None => {
            let shapes: Vec<(u32, u32)> = entries.iter().map(|e| e.shape).collect();
            rect_batches(&shapes, cfg.imgsz, cfg.batch, m.stride(), 0.5)
        }
    }
}

/// Validation NMS: multi-label, class-agnostic for single_cls, `max_det` raised to the most
/// labels in one image (as 8.4), only `classes` when given.
fn nms_config(entries: &[LabelEntry], cfg: &ValConfig) -> NmsConfig {
    let most_labels = entries.iter().map(|e| e.cls.len()).max().unwrap_or(0);
    NmsConfig {
        conf: cfg.conf,
        iou: cfg.iou,
        max_det: if cfg.max_det == 300 {
            cfg.max_det.max(most_labels)
        } else {
            cfg.max_det
        },
        multi_label: true,
        agnostic: cfg.single_cls || cfg.agnostic_nms,
        classes: None,
    }
}

/// The detection loss targets of a batch, from its items' letterboxed ground truth.
fn batch_targets(items: &[Item], (h, w): (usize, usize)) -> crate::data::batch::Targets {
    let (hh, ww) = (h as f32, w as f32);
    let mut t = crate::data::batch::Targets::default();
    for (k, it) in items.iter().enumerate() {
        for (b, c) in &it.gt {
            t.batch_idx.push(k as i64);
            t.cls.push(*c as i64);
            t.bboxes.push([
                (b[0] + b[2]) / 2.0 / ww,
                (b[1] + b[3]) / 2.0 / hh,
                (b[2] - b[0]) / ww,
                (b[3] - b[1]) / hh,
            ]);
        }
    }
    t
}

/// The segment loss targets of a batch from its items' ground-truth masks (prediction grid):
/// overlap index maps `(B, h, w)` (value k = row k of the image) or `(N, h, w)` binary masks.
fn loss_masks(items: &[Item], overlap: bool) -> tch::Tensor {
    let (mh, mw) = items.first().map_or((0, 0), |it| it.grid);
    let npix = mh * mw;
    if overlap {
        let mut out = vec![0i32; items.len() * npix];
        for (k, it) in items.iter().enumerate() {
            let map = &mut out[k * npix..(k + 1) * npix];
            for (i, m) in it.masks.chunks(npix.max(1)).enumerate() {
                for (d, &v) in map.iter_mut().zip(m) {
                    if v != 0 {
                        *d = (*d).max(i as i32 + 1);
                    }
                }
            }
        }
        tch::Tensor::from_slice(&out).view([items.len() as i64, mh as i64, mw as i64])
    } else {
        let all: Vec<u8> = items
            .iter()
            .flat_map(|it| it.masks.iter().copied())
            .collect();
        let n = all.len() / npix.max(1);
        tch::Tensor::from_slice(&all).view([n as i64, mh as i64, mw as i64])
    }
}

/// Runs one batch: decoded output on the host, plus the loss items when asked (libtorch only).
fn infer_batch(
    m: ModelRef,
    items: &[Item],
    shape: (usize, usize),
    cfg: &ValConfig,
) -> Result<(HostOutput, Option<Vec<f64>>)> {
    let mut buf = Vec::with_capacity(items.len() * shape.0 * shape.1 * 3);
    for it in items {
        buf.extend_from_slice(&it.img.data);
    }
    let dims = (items.len(), shape.0, shape.1);
    let (ModelRef::Torch(model), Some(lc)) = (m, &cfg.loss) else {
        let opts = RunOptions {
            half: cfg.half,
            augment: false,
            feats: false,
            nchw: cfg.nchw,
        };
        return Ok((m.run_batch(&buf, dims, opts)?, None));
    };
    let x = crate::util::amp::input_layout(
        &crate::ops::images_to_tensor(&buf, dims, m.device()),
        cfg.nchw,
    );
    let (y, protos, items) = tch::no_grad(|| {
        // half: fp16 convolutions through autocast (CUDA only; a no-op elsewhere).
        let raw = crate::util::amp::cuda_autocast(cfg.half, || model.forward_raw(&x, false));
        let raw = raw.to_float();
        let t = batch_targets(items, shape);
        let li = match cfg.masks {
            Some(o) => {
                let masks = loss_masks(items, o.overlap).to_device(x.device());
                crate::loss::segment::segmentation_loss(
                    lc,
                    &raw,
                    &model.stride,
                    &t,
                    &masks,
                    o.overlap,
                )
                .items
            }
            None if cfg.kpts.is_some() => {
                let (hh, ww) = (shape.0 as f32, shape.1 as f32);
                let mut pt = t;
                pt.keypoints = items
                    .iter()
                    .flat_map(|it| {
                        it.kpts
                            .iter()
                            .map(|k| k.iter().map(|p| [p[0] / ww, p[1] / hh, p[2]]).collect())
                    })
                    .collect();
                let pc = crate::engine::train::pose_loss_config(model, lc);
                crate::loss::pose::pose_loss(lc, &pc, &raw, &model.stride, &pt).items
            }
            None if cfg.obb => {
                let (hh, ww) = (shape.0 as f32, shape.1 as f32);
                let mut ot = crate::loss::obb::ObbTargets {
                    batch_idx: t.batch_idx.clone(),
                    cls: t.cls.clone(),
                    xywhr: Vec::new(),
                };
                for it in items {
                    ot.xywhr.extend(
                        it.rboxes
                            .iter()
                            .map(|r| [r[0] / ww, r[1] / hh, r[2] / ww, r[3] / hh, r[4]]),
                    );
                }
                crate::loss::obb::obb_loss(lc, lc.angle_gain, &raw, &model.stride, &ot).items
            }
            None => crate::loss::detection_loss(lc, &raw, &model.stride, &t).items,
        };
        let protos = raw.masks.as_ref().map(|(_, p)| p.shallow_clone());
        (model.decode(&raw), protos, li)
    });
    let loss = Vec::<f64>::try_from(items.to_kind(Kind::Double).to_device(tch::Device::Cpu))
        .unwrap_or_default();
    Ok((
        HostOutput::from_tensor(&y, model.nc() as usize, protos.as_ref())?,
        Some(loss),
    ))
}

impl Accum {
    /// Empty accumulators for `nc` classes.
    fn new(nc: usize, conf: f32, seg: bool, pose: bool) -> Self {
        Self {
            stats: Stats::default(),
            seg: seg.then(SegStats::default),
            pose: pose.then(PoseStats::default),
            cm: ConfusionMatrix::new(nc, conf),
            per_class: vec![(0, 0); nc],
            loss_sum: Vec::new(),
            predictions: Vec::new(),
            mask_outputs: Vec::new(),
            rotated: Vec::new(),
            times: [0.0; 3],
        }
    }

    /// Scores one image's predictions against its ground truth (metrics, confusion matrix,
    /// per-class counts, and the predictions in original pixels when collecting).
    fn add(&mut self, index: usize, it: &Item, pred: &[Pred], extra: &Extra, collect: bool) {
        match (&mut self.seg, &mut self.pose, extra) {
            (Some(s), _, Extra::Masks(pmasks)) => {
                let npix = if it.gt.is_empty() {
                    pmasks.len() / pred.len().max(1)
                } else {
                    it.masks.len() / it.gt.len()
                };
                s.add_image(pred, pmasks, &it.gt, &it.masks, npix)
            }
            (_, Some(s), Extra::Kpts(pk, sigma)) => {
                let im = PoseImage {
                    pred,
                    pred_kpts: pk,
                    gt: &it.gt,
                    gt_kpts: &it.kpts,
                };
                if let Err(e) = s.add_image(&im, sigma) {
                    eprintln!("WARNING pose metrics: {e:#}");
                }
            }
            (_, _, Extra::Rotated(rb)) => {
                let gt: Vec<([f32; 5], usize)> = it
                    .rboxes
                    .iter()
                    .zip(&it.gt)
                    .map(|(r, g)| (*r, g.1))
                    .collect();
                crate::metrics::obb::add_obb_image(&mut self.stats, rb, &gt);
            }
            _ => self.stats.add_image(pred, &it.gt),
        }
        match extra {
            Extra::Rotated(rb) => {
                let gt: Vec<([f32; 5], usize)> = it
                    .rboxes
                    .iter()
                    .zip(&it.gt)
                    .map(|(r, g)| (*r, g.1))
                    .collect();
                crate::metrics::obb::confusion_obb(&mut self.cm, rb, &gt);
            }
            _ => self.cm.process(pred, &it.gt),
        }
        if collect {
            let back: Vec<Pred> = pred
                .iter()
                .map(|(b, c, cl)| {
                    let x = |v: f32| ((v - it.pad.0) / it.gain.0).clamp(0.0, it.orig.0);
                    let y = |v: f32| ((v - it.pad.1) / it.gain.1).clamp(0.0, it.orig.1);
                    ([x(b[0]), y(b[1]), x(b[2]), y(b[3])], *c, *cl)
                })
                .collect();
            self.predictions.push((index, back));
            if let Extra::Rotated(rb) = extra {
                // scale_boxes(xywh=True): centre un-padded, all divided by the gains, θ kept.
                let (g, p) = (it.gain, it.pad);
                self.rotated.push(
                    rb.iter()
                        .map(|(b, _, _)| {
                            [
                                (b[0] - p.0) / g.0,
                                (b[1] - p.1) / g.1,
                                b[2] / g.0,
                                b[3] / g.1,
                                b[4],
                            ]
                        })
                        .collect(),
                );
            }
        }
        let nc = self.per_class.len();
        let mut present: Vec<usize> = it.gt.iter().map(|g| g.1).collect();
        for &c in &present {
            if c < nc {
                self.per_class[c].1 += 1;
            }
        }
        present.sort();
        present.dedup();
        for c in present {
            if c < nc {
                self.per_class[c].0 += 1;
            }
        }
    }
}

/// The task-specific part of one image's predictions, in letterboxed pixels.
enum Extra<'a> {
    /// Detection: nothing more.
    None,
    /// Segment: the predicted masks (one per prediction, on the item's grid).
    Masks(&'a [u8]),
    /// Pose: each prediction's keypoint `(x, y)` and the OKS sigmas.
    Kpts(&'a [Vec<[f32; 2]>], &'a [f32]),
    /// OBB: each prediction's rotated box `([cx, cy, w, h, θ], conf, class)`.
    Rotated(&'a [([f32; 5], f32, usize)]),
}

/// One image's predicted masks for plotting: mask bytes, their (h, w) grid and the classes.
type PredMasks = (Vec<u8>, (usize, usize), Vec<usize>);

/// `val_batch{bi}_labels.jpg` and `_pred.jpg` of an OBB run: rotated outlines of the labels and
/// of the predictions (`rot`, one list per item).
fn plot_val_batch_rotated(
    dir: &std::path::Path,
    bi: usize,
    names: &[String],
    items: &[Item],
    rot: Vec<crate::plot::obb::RotatedBatchBoxes>,
) {
    let (lp, pp) = (
        dir.join(format!("val_batch{bi}_labels.jpg")),
        dir.join(format!("val_batch{bi}_pred.jpg")),
    );
    let labels: Vec<_> = items
        .iter()
        .map(|it| {
            let b = it.rboxes.iter().zip(&it.gt).map(|(r, g)| (*r, g.1, None));
            (&it.img, b.collect())
        })
        .collect();
    let _ = crate::plot::obb::plot_batch_rotated(&labels, names, &lp);
    let preds: Vec<_> = items.iter().map(|it| &it.img).zip(rot).collect();
    let _ = crate::plot::obb::plot_batch_rotated(&preds, names, &pp);
}

/// `val_batch{bi}_labels.jpg` and `_pred.jpg`.
fn plot_val_batch(
    dir: &std::path::Path,
    bi: usize,
    names: &[String],
    items: &[Item],
    preds: Vec<crate::plot::BatchBoxes>,
    pred_masks: Vec<PredMasks>,
    (pred_kpts, kpt_ndim): (Vec<Vec<Vec<[f32; 3]>>>, usize),
) {
    // Segment: masks painted on copies of the images; pose: keypoints (and skeletons).
    let pose = kpt_ndim > 0;
    let seg = items.iter().any(|it| !it.masks.is_empty()) || !pred_masks.is_empty() || pose;
    let painted = |k: usize, m: Option<&PredMasks>, kp: Option<&[Vec<[f32; 3]>]>| -> Rgb {
        let mut img = items[k].img.clone();
        if let Some((masks, grid, cls)) = m {
            crate::plot::blend_masks(&mut img, masks, *grid, cls);
        }
        if let Some(kp) = kp {
            crate::plot::pose::paint_keypoints(&mut img, kp, kpt_ndim);
        }
        img
    };
    let gt_imgs: Vec<Rgb> = if seg {
        items
            .iter()
            .enumerate()
            .map(|(k, it)| {
                let cls: Vec<usize> = it.gt.iter().map(|g| g.1).collect();
                let kp = pose.then_some(it.kpts.as_slice());
                painted(k, Some(&(it.masks.clone(), it.grid, cls)), kp)
            })
            .collect()
    } else {
        Vec::new()
    };
    let pred_imgs: Vec<Rgb> = (0..items.len())
        .filter(|_| seg)
        .map(|k| painted(k, pred_masks.get(k), pred_kpts.get(k).map(Vec::as_slice)))
        .collect();
    let labels: Vec<(&Rgb, crate::plot::BatchBoxes)> = items
        .iter()
        .enumerate()
        .map(|(k, it)| {
            let im = gt_imgs.get(k).unwrap_or(&it.img);
            (im, it.gt.iter().map(|(b, c)| (*b, *c, None)).collect())
        })
        .collect();
    let _ = crate::plot::plot_batch(
        &labels,
        names,
        &dir.join(format!("val_batch{bi}_labels.jpg")),
    );
    let preds: Vec<(&Rgb, crate::plot::BatchBoxes)> = items
        .iter()
        .enumerate()
        .zip(preds)
        .map(|((k, it), p)| (pred_imgs.get(k).unwrap_or(&it.img), p))
        .collect();
    let _ = crate::plot::plot_batch(&preds, names, &dir.join(format!("val_batch{bi}_pred.jpg")));
}

/// Validates `model` on verified entries. `progress` is called after every batch with (done, total).
pub fn validate<'m>(
    model: impl Into<ModelRef<'m>>,
    entries: &[LabelEntry],
    cfg: &ValConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<ValResult> {
    let mref: ModelRef = model.into();
    if cfg.loss.is_some() && !matches!(mref, ModelRef::Torch(_)) {
        bail!("validation losses need a libtorch model");
    }
    let batches = plan_batches(mref, entries, cfg);
    let nms_cfg = nms_config(entries, cfg);
    let mut acc = Accum::new(
        mref.names().len(),
        cfg.conf,
        cfg.masks.is_some(),
        cfg.kpts.is_some(),
    );
    let pb = crate::util::progress_bar(batches.len(), "val");
    let mut skipped = Vec::new();
    let mut run_batches = 0usize;
    for (bi, (idx, shape)) in batches.iter().enumerate() {
        let t0 = Instant::now();
        let (idx, items) = prepare_batch(entries, idx, cfg, *shape, &mut skipped);
        if items.is_empty() {
            progress(bi + 1, batches.len());
            pb.inc(1);
            continue;
        }
        run_batches += 1;
        let t1 = Instant::now();
        let (y, loss) = infer_batch(mref, &items, *shape, cfg)?;
        let loss = loss.unwrap_or_default();
        if acc.loss_sum.len() < loss.len() {
            acc.loss_sum.resize(loss.len(), 0.0);
        }
        for (acc, x) in acc.loss_sum.iter_mut().zip(loss) {
            *acc += x;
        }
        let t2 = Instant::now();
        let mut plot_preds: Vec<crate::plot::BatchBoxes> = Vec::new();
        let mut plot_masks = Vec::new();
        let mut plot_kpts: Vec<Vec<Vec<[f32; 3]>>> = Vec::new();
        let mut plot_rot: Vec<crate::plot::obb::RotatedBatchBoxes> = Vec::new();
        for (k, it) in items.iter().enumerate() {
            let (mut pkpts, mut rot) = (Vec::new(), Vec::new());
            let mut pkpts_full: Vec<Vec<[f32; 3]>> = Vec::new();
            let (mut dets, coefs, protos) = match (cfg.masks, &cfg.kpts) {
                (Some(_), _) => y.detections_with_masks(k, &nms_cfg),
                (None, Some(o)) => {
                    let found = crate::ops::keypoints::nms_pose(
                        y.image(k),
                        y.nc,
                        y.anchors,
                        o.kpt_shape,
                        &nms_cfg,
                    )?;
                    let d = o.kpt_shape.1;
                    pkpts = found.iter().map(|(p, _)| p.xy(d)).collect();
                    pkpts_full = found
                        .iter()
                        .map(|(p, _)| {
                            p.kpts
                                .chunks_exact(d.max(2))
                                .map(|c| [c[0], c[1], c.get(2).copied().unwrap_or(1.0)])
                                .collect()
                        })
                        .collect();
                    (
                        found.into_iter().map(|(p, _)| p.det).collect(),
                        Vec::new(),
                        None,
                    )
                }
                (None, None) if cfg.obb => {
                    let found =
                        crate::ops::obb::nms_rotated(y.image(k), y.nc, y.anchors, &nms_cfg)?;
                    rot = found
                        .iter()
                        .map(|(r, _)| (r.xywhr, r.conf, r.cls))
                        .collect::<Vec<_>>();
                    let dets = found
                        .iter()
                        .map(|(r, _)| crate::ops::Detection {
                            xyxy: crate::ops::obb::xywhr_to_xyxy(&r.xywhr),
                            conf: r.conf,
                            cls: r.cls,
                        })
                        .collect();
                    (dets, Vec::new(), None)
                }
                _ => (y.detections(k, &nms_cfg), Vec::new(), None),
            };
            if cfg.single_cls {
                dets.iter_mut().for_each(|d| d.cls = 0);
                rot.iter_mut().for_each(|r| r.2 = 0);
            }
            let pred: Vec<Pred> = dets.iter().map(|d| (d.xyxy, d.conf, d.cls)).collect();
            let pmasks = match (cfg.masks, &protos) {
                (Some(o), Some(p)) => {
                    let boxes: Vec<[f32; 4]> = dets.iter().map(|d| d.xyxy).collect();
                    seg::pred_masks(p, &coefs, &boxes, *shape, o.native).0
                }
                (Some(_), None) => {
                    bail!("the model gave no prototype masks (not a Segment model?)")
                }
                _ => Vec::new(),
            };
            if cfg.plot_dir.is_some() && bi < 3 {
                plot_preds.push(pred.iter().map(|(b, c, cl)| (*b, *cl, Some(*c))).collect());
                plot_rot.push(rot.iter().map(|(b, c, cl)| (*b, *cl, Some(*c))).collect());
                if cfg.kpts.is_some() {
                    // Keypoints of confident detections (> 0.25), as Ultralytics plots them.
                    plot_kpts.push(
                        pred.iter()
                            .zip(&pkpts_full)
                            .filter(|(p, _)| p.1 > 0.25)
                            .map(|(_, k)| k.clone())
                            .collect(),
                    );
                }
                if cfg.masks.is_some() && !pred.is_empty() {
                    // Predicted masks of confident detections (> 0.25), as Ultralytics plots them.
                    let npix = pmasks.len() / pred.len();
                    let (mut m, mut cls) = (Vec::new(), Vec::new());
                    for (j, p) in pred.iter().enumerate() {
                        if p.1 > 0.25 {
                            m.extend_from_slice(&pmasks[j * npix..(j + 1) * npix]);
                            cls.push(p.2);
                        }
                    }
                    plot_masks.push((m, it.grid, cls));
                } else if cfg.masks.is_some() {
                    plot_masks.push((Vec::new(), it.grid, Vec::new()));
                }
            }
            let extra = match (&cfg.kpts, cfg.obb, cfg.masks) {
                (_, _, Some(_)) => Extra::Masks(&pmasks),
                (Some(o), _, _) => Extra::Kpts(&pkpts, &o.sigmas),
                (None, true, _) => Extra::Rotated(&rot),
                _ => Extra::None,
            };
            acc.add(idx[k], it, &pred, &extra, cfg.collect);
            if let (true, Some(o)) = (cfg.collect, cfg.masks) {
                let grid = if o.native { *shape } else { it.grid };
                let orig = (it.orig.1 as usize, it.orig.0 as usize);
                acc.mask_outputs.push(seg::mask_outputs(
                    &pmasks,
                    grid,
                    orig,
                    it.gain,
                    it.pad,
                    cfg.save_json,
                    o.native,
                ));
            }
        }
        if let (Some(dir), true, true) = (&cfg.plot_dir, bi < 3, cfg.obb) {
            plot_val_batch_rotated(dir, bi, mref.names(), &items, plot_rot);
        } else if let (Some(dir), true) = (&cfg.plot_dir, bi < 3) {
            let ndim = cfg.kpts.as_ref().map_or(0, |o| o.kpt_shape.1);
            plot_val_batch(
                dir,
                bi,
                mref.names(),
                &items,
                plot_preds,
                plot_masks,
                (plot_kpts, ndim),
            );
        }
        let t3 = Instant::now();
        for (t, (a, z)) in acc.times.iter_mut().zip([(t0, t1), (t1, t2), (t2, t3)]) {
            *t += (z - a).as_secs_f64();
        }
        progress(bi + 1, batches.len());
        pb.inc(1);
    }
    pb.finish_and_clear();
    if !skipped.is_empty() {
        eprintln!(
            "WARNING val: {} of {} images could not be decoded and were skipped; metrics cover the \
             other {}",
            skipped.len(),
            entries.len(),
            entries.len() - skipped.len()
        );
    }
    if !entries.is_empty() && skipped.len() == entries.len() {
        bail!(
            "none of the {} validation images could be decoded (see the warnings above)",
            entries.len()
        );
    }
    let seen = entries.len() - skipped.len();
    let k = 1e3 / seen.max(1) as f64;
    let nb = run_batches.max(1) as f64;
    let nc = mref.names().len();
    let seg = acc.seg.as_ref().map(|s| SegMetrics::compute(s, nc));
    let pose = acc.pose.as_ref().map(|s| PoseMetrics::compute(s, nc));
    let (metrics, instances) = match (&seg, &acc.seg, &pose, &acc.pose) {
        (Some(m), Some(s), _, _) => (m.boxes.clone(), s.boxes.target_cls.len()),
        (_, _, Some(m), Some(s)) => (m.boxes.clone(), s.boxes.target_cls.len()),
        _ => (DetMetrics::compute(&acc.stats), acc.stats.target_cls.len()),
    };
    Ok(ValResult {
        metrics,
        seg,
        pose,
        cls: None,
        confusion: acc.cm,
        per_class: acc.per_class,
        seen,
        instances,
        speed: Speed {
            preprocess: acc.times[0] * k,
            inference: acc.times[1] * k,
            postprocess: acc.times[2] * k,
        },
        loss: cfg
            .loss
            .as_ref()
            .map(|_| acc.loss_sum.iter().map(|v| v / nb).collect()),
        predictions: acc.predictions,
        mask_outputs: acc.mask_outputs,
        rotated: acc.rotated,
        skipped,
    })
}

/// The table header: `Class Images Instances Box(P R mAP50 mAP50-95)` (segment: and
/// `Mask(P R mAP50 mAP50-95)`).
pub fn table_header(seg: bool) -> String {
    if seg {
        return SegMetrics::table_header();
    }
    format!(
        "{:>22}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
        "Class", "Images", "Instances", "Box(P", "R", "mAP50", "mAP50-95)"
    )
}

/// The table header of a validation run's task (pose adds `Pose(P R mAP50 mAP50-95)`, segment
/// `Mask(...)`).
pub fn task_table_header(task: crate::task::TaskKind) -> String {
    match task {
        crate::task::TaskKind::Segment => SegMetrics::table_header(),
        crate::task::TaskKind::Pose => PoseMetrics::table_header(),
        _ => table_header(false),
    }
}

/// The `all` row and, when `per_class` and nc > 1, one row per class present in the ground truth.
pub fn table_rows(r: &ValResult, names: &[String], per_class: bool) -> Vec<String> {
    if let Some(s) = &r.seg {
        return s.table_rows(names, r.seen, per_class);
    }
    if let Some(s) = &r.pose {
        return s.table_rows(names, r.seen, per_class);
    }
    let m = &r.metrics;
    let row = |name: &str, imgs: usize, inst: usize, p: f64, rr: f64, m50: f64, m: f64| {
        crate::metrics::table_row(name, imgs, inst, &[p, rr, m50, m])
    };
    let mut out = vec![row(
        "all",
        r.seen,
        r.instances,
        m.mp(),
        m.mr(),
        m.map50(),
        m.map(),
    )];
    if r.instances == 0 {
        out.push(
            "WARNING no labels found in the validation set, cannot compute metrics without labels"
                .into(),
        );
    }
    if per_class && names.len() > 1 {
        for (i, &c) in m.classes.iter().enumerate() {
            let name = names.get(c).cloned().unwrap_or_else(|| c.to_string());
            let (imgs, inst) = r.per_class.get(c).copied().unwrap_or((0, 0));
            out.push(row(
                &name,
                imgs,
                inst,
                m.p[i],
                m.r[i],
                m.ap[i][0],
                m.ap[i].iter().sum::<f64>() / 10.0,
            ));
        }
    }
    out
}
