//! Validation: rect batches with +0.5 stride padding, batched forward, multi-label NMS, matching in
//! letterboxed space, Ultralytics' metrics and console table (spec/metrics.md).

use crate::data::batch::rect_batches;
use crate::data::loader::load_resized;
use crate::data::LabelEntry;
use crate::engine::backend::ModelRef;
use crate::engine::predict::Speed;
use crate::metrics::{ConfusionMatrix, DetMetrics, Stats};
use crate::ops::{letterbox, nms, NmsConfig, Rgb};
use crate::util::fmt_g;
use anyhow::{anyhow, bail, Result};
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
    /// Also compute the detection loss (validation during training).
    pub loss: Option<crate::loss::LossConfig>,
    /// Keep every image's detections in original pixels (for save_json, save_txt, metric=coco).
    pub collect: bool,
    /// Draw `val_batch{0,1,2}_labels.jpg` and `_pred.jpg` into this folder.
    pub plot_dir: Option<std::path::PathBuf>,
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
            loss: None,
            collect: false,
            plot_dir: None,
        }
    }
}

/// One detection: `xyxy` box, confidence, class.
pub type Pred = ([f32; 4], f32, usize);

/// Everything a validation run measured.
#[derive(Debug, Clone)]
pub struct ValResult {
    /// AP, P, R per class and the summary numbers.
    pub metrics: DetMetrics,
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
    /// Mean `[box, cls, dfl]` loss over the batches, when asked for.
    pub loss: Option<[f64; 3]>,
    /// Per image (entry index): detections in original-image pixels, when `collect` was set.
    pub predictions: Vec<(usize, Vec<Pred>)>,
}

/// One loaded val image: letterboxed pixels and its ground truth in letterboxed pixels.
struct Item {
    img: Rgb,
    gt: Vec<([f32; 4], usize)>,
    /// Maps letterboxed pixels back to the original image: `orig = (x - pad) / gain`.
    gain: (f32, f32),
    pad: (f32, f32),
    orig: (f32, f32),
}

fn prepare(e: &LabelEntry, imgsz: usize, shape: (usize, usize), single_cls: bool) -> Result<Item> {
    let resized = load_resized(&e.im_file, imgsz)?;
    let (rw, rh) = (resized.w as f32, resized.h as f32);
    let (img, info) = letterbox(&resized, shape, false, false, 32);
    let r = info.ratio as f32;
    let (padw, padh) = (info.pad.0 as f32, info.pad.1 as f32);
    let gt = e
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
    Ok(Item {
        img,
        gt,
        gain: (r * rw / w0, r * rh / h0),
        pad: (padw, padh),
        orig: (w0, h0),
    })
}

/// Validates `model` on verified entries. `progress` is called after every batch with (done, total).
pub fn validate<'m>(
    model: impl Into<ModelRef<'m>>,
    entries: &[LabelEntry],
    cfg: &ValConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<ValResult> {
    let mref: ModelRef = model.into();
    let nc = mref.names().len();
    let stride = mref.stride();
    let batches = match mref.fixed_imgsz() {
        // A fixed-shape graph (ONNX): square letterboxes in dataset order, its own batch size.
        Some(shape) => {
            let b = mref.fixed_batch().unwrap_or(cfg.batch).max(1);
            let idx: Vec<usize> = (0..entries.len()).collect();
            idx.chunks(b).map(|c| (c.to_vec(), shape)).collect()
        }
        None => {
            let shapes: Vec<(u32, u32)> = entries.iter().map(|e| e.shape).collect();
            rect_batches(&shapes, cfg.imgsz, cfg.batch, stride, 0.5)
        }
    };
    if cfg.loss.is_some() && !matches!(mref, ModelRef::Torch(_)) {
        bail!("validation losses need a libtorch model");
    }
    let most_labels = entries.iter().map(|e| e.cls.len()).max().unwrap_or(0);
    let nms_cfg = NmsConfig {
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
    };
    let mut stats = Stats::default();
    let mut loss_sum = [0f64; 3];
    let mut predictions = Vec::new();
    let mut cm = ConfusionMatrix::new(nc, cfg.conf);
    let mut per_class = vec![(0usize, 0usize); nc];
    let (mut t_pre, mut t_inf, mut t_post) = (0.0, 0.0, 0.0);
    let device = mref.device();
    let pb = crate::util::progress_bar(batches.len(), "val");
    for (bi, (idx, shape)) in batches.iter().enumerate() {
        let t0 = Instant::now();
        let items: Vec<Item> = idx
            .par_iter()
            .map(|&i| prepare(&entries[i], cfg.imgsz, *shape, cfg.single_cls))
            .collect::<Result<_>>()?;
        let mut buf = Vec::with_capacity(items.len() * shape.0 * shape.1 * 3);
        for it in &items {
            buf.extend_from_slice(&it.img.data);
        }
        let x = crate::ops::images_to_tensor(&buf, (items.len(), shape.0, shape.1), device);
        let t1 = Instant::now();
        let (y, litems) = match mref {
            ModelRef::Torch(model) => tch::no_grad(|| {
                // half: fp16 convolutions through autocast (CUDA only; a no-op elsewhere).
                let raw = tch::autocast(cfg.half, || model.forward_raw(&x, false));
                let raw = crate::nn::RawOutput {
                    boxes: raw.boxes.to_kind(Kind::Float),
                    scores: raw.scores.to_kind(Kind::Float),
                    shapes: raw.shapes,
                };
                let li = cfg.loss.as_ref().map(|lc| {
                    let (hh, ww) = (shape.0 as f32, shape.1 as f32);
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
                    crate::loss::detection_loss(lc, &raw, &model.stride, &t).items
                });
                (model.decode(&raw), li)
            }),
            ModelRef::Onnx(_) => (mref.infer(&x)?, None),
        };
        if let Some(it) = litems {
            let v: Vec<f64> =
                Vec::<f64>::try_from(it.to_kind(Kind::Double).to_device(tch::Device::Cpu))
                    .unwrap_or_default();
            for (acc, x) in loss_sum.iter_mut().zip(v) {
                *acc += x;
            }
        }
        let y = y
            .to_kind(Kind::Float)
            .to_device(tch::Device::Cpu)
            .contiguous();
        let (b, rows, anchors) = y.size3().map_err(|e| anyhow!("model output: {e}"))?;
        let mut v = vec![0f32; (b * rows * anchors) as usize];
        let n = v.len();
        y.copy_data(&mut v, n);
        let t2 = Instant::now();
        let per = (rows * anchors) as usize;
        let mut plot_preds: Vec<crate::plot::BatchBoxes> = Vec::new();
        for (k, it) in items.iter().enumerate() {
            let mut dets = nms(
                &v[k * per..(k + 1) * per],
                rows as usize - 4,
                anchors as usize,
                &nms_cfg,
            );
            if cfg.single_cls {
                dets.iter_mut().for_each(|d| d.cls = 0);
            }
            let pred: Vec<([f32; 4], f32, usize)> =
                dets.iter().map(|d| (d.xyxy, d.conf, d.cls)).collect();
            if cfg.plot_dir.is_some() && bi < 3 {
                plot_preds.push(pred.iter().map(|(b, c, cl)| (*b, *cl, Some(*c))).collect());
            }
            stats.add_image(&pred, &it.gt);
            cm.process(&pred, &it.gt);
            if cfg.collect {
                let back: Vec<([f32; 4], f32, usize)> = pred
                    .iter()
                    .map(|(b, c, cl)| {
                        let x = |v: f32| ((v - it.pad.0) / it.gain.0).clamp(0.0, it.orig.0);
                        let y = |v: f32| ((v - it.pad.1) / it.gain.1).clamp(0.0, it.orig.1);
                        ([x(b[0]), y(b[1]), x(b[2]), y(b[3])], *c, *cl)
                    })
                    .collect();
                predictions.push((idx[k], back));
            }
            let mut present: Vec<usize> = it.gt.iter().map(|g| g.1).collect();
            for &c in &present {
                if c < nc {
                    per_class[c].1 += 1;
                }
            }
            present.sort();
            present.dedup();
            for c in present {
                if c < nc {
                    per_class[c].0 += 1;
                }
            }
        }
        if let (Some(dir), true) = (&cfg.plot_dir, bi < 3) {
            let names: Vec<String> = mref.names().to_vec();
            let labels: Vec<(&Rgb, crate::plot::BatchBoxes)> = items
                .iter()
                .map(|it| (&it.img, it.gt.iter().map(|(b, c)| (*b, *c, None)).collect()))
                .collect();
            let _ = crate::plot::plot_batch(
                &labels,
                &names,
                &dir.join(format!("val_batch{bi}_labels.jpg")),
            );
            let preds: Vec<(&Rgb, crate::plot::BatchBoxes)> = items
                .iter()
                .zip(plot_preds)
                .map(|(it, p)| (&it.img, p))
                .collect();
            let _ = crate::plot::plot_batch(
                &preds,
                &names,
                &dir.join(format!("val_batch{bi}_pred.jpg")),
            );
        }
        let t3 = Instant::now();
        t_pre += (t1 - t0).as_secs_f64();
        t_inf += (t2 - t1).as_secs_f64();
        t_post += (t3 - t2).as_secs_f64();
        progress(bi + 1, batches.len());
        pb.inc(1);
    }
    pb.finish_and_clear();
    let seen = entries.len();
    let k = 1e3 / seen.max(1) as f64;
    Ok(ValResult {
        metrics: DetMetrics::compute(&stats),
        confusion: cm,
        per_class,
        seen,
        instances: stats.target_cls.len(),
        speed: Speed {
            preprocess: t_pre * k,
            inference: t_inf * k,
            postprocess: t_post * k,
        },
        loss: cfg
            .loss
            .as_ref()
            .map(|_| loss_sum.map(|v| v / batches.len().max(1) as f64)),
        predictions,
    })
}

/// The table header: `Class Images Instances Box(P R mAP50 mAP50-95)`.
pub fn table_header() -> String {
    format!(
        "{:>22}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
        "Class", "Images", "Instances", "Box(P", "R", "mAP50", "mAP50-95)"
    )
}

/// The `all` row and, when `per_class` and nc > 1, one row per class present in the ground truth.
pub fn table_rows(r: &ValResult, names: &[String], per_class: bool) -> Vec<String> {
    let m = &r.metrics;
    let row = |name: &str, imgs: usize, inst: usize, p: f64, rr: f64, m50: f64, m: f64| {
        format!(
            "{:>22}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
            name,
            imgs,
            inst,
            fmt_g(p, 3),
            fmt_g(rr, 3),
            fmt_g(m50, 3),
            fmt_g(m, 3)
        )
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

/// Detections of a run in COCO results format (`image_id` = file stem, `category_id` = class + 1,
/// `bbox` = `[x, y, w, h]` rounded to 3 decimals, `score` to 5), as Ultralytics' `save_json`.
pub fn predictions_json(entries: &[LabelEntry], r: &ValResult) -> serde_json::Value {
    let round = |v: f64, d: i32| (v * 10f64.powi(d)).round() / 10f64.powi(d);
    let mut out = Vec::new();
    for (i, dets) in &r.predictions {
        let e = &entries[*i];
        let stem = e
            .im_file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let file = e
            .im_file
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        for (b, conf, cls) in dets {
            let b = b.map(|v| v as f64);
            out.push(serde_json::json!({
                "image_id": stem, "file_name": file, "category_id": cls + 1,
                "bbox": [round(b[0], 3), round(b[1], 3), round(b[2] - b[0], 3), round(b[3] - b[1], 3)],
                "score": round(*conf as f64, 5),
            }));
        }
    }
    serde_json::Value::Array(out)
}

/// pycocotools-exact COCOeval numbers (`metric=coco`) of a run made with `collect`.
pub fn coco_stats(entries: &[LabelEntry], r: &ValResult) -> crate::metrics::coco::CocoStats {
    use crate::metrics::coco::{evaluate, CocoDt, CocoGt};
    let stem = |e: &LabelEntry| {
        e.im_file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default()
    };
    let ids: Vec<String> = entries.iter().map(stem).collect();
    let mut gts = Vec::new();
    for e in entries {
        let (h, w) = (e.shape.0 as f64, e.shape.1 as f64);
        for (b, c) in e.boxes.iter().zip(&e.cls) {
            let (cx, cy, bw, bh) = (b[0] as f64, b[1] as f64, b[2] as f64, b[3] as f64);
            let bbox = [(cx - bw / 2.0) * w, (cy - bh / 2.0) * h, bw * w, bh * h];
            gts.push(CocoGt {
                image: stem(e),
                category: *c as i64 + 1,
                bbox,
                area: bbox[2] * bbox[3],
                crowd: false,
            });
        }
    }
    let mut dts = Vec::new();
    for (i, dets) in &r.predictions {
        for (b, conf, cls) in dets {
            let b = b.map(|v| v as f64);
            dts.push(CocoDt {
                image: ids[*i].clone(),
                category: *cls as i64 + 1,
                bbox: [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                score: *conf as f64,
            });
        }
    }
    evaluate(&ids, &gts, &dts)
}
