//! Classification validation (spec/classify.md §6): eval-transformed batches, softmax
//! probabilities, top-1 / top-5, the confusion matrix and, during training, the cross-entropy loss.

use super::ValResult;
use crate::data::classify::ClsDataset;
use crate::engine::backend::ModelRef;
use crate::engine::predict::Speed;
use crate::metrics::classify::{ClsMetrics, ClsStats};
use crate::metrics::{ConfusionMatrix, DetMetrics};
use anyhow::{bail, Result};
use std::time::Instant;
use tch::{Kind, Tensor};

/// Validates a classification model on `ds` in batches of `batch`; `loss` also averages the
/// cross-entropy of the logits over the batches (libtorch models only); `nchw`: libtorch runs
/// NCHW input (`channels_last=False`) instead of channels-last. With `plot_dir`, the
/// first three batches are drawn as `val_batch{i}_labels.jpg` (true class names) and
/// `val_batch{i}_pred.jpg` (top-1 name and confidence), as Ultralytics' ClassificationValidator.
pub fn validate_cls(
    m: ModelRef,
    ds: &ClsDataset,
    batch: usize,
    loss: bool,
    nchw: bool,
    plot_dir: Option<&std::path::Path>,
    mut progress: impl FnMut(usize, usize),
) -> Result<ValResult> {
    let nc = m.names().len();
    let n = ds.len();
    let idx: Vec<usize> = (0..n).collect();
    let chunks: Vec<&[usize]> = idx.chunks(batch.max(1)).collect();
    let (mut stats, mut times, mut loss_sum) = (ClsStats::default(), [0.0f64; 3], 0.0f64);
    let s = ds.opts.imgsz as i64;
    let pb = crate::util::progress_bar(chunks.len(), "val");
    for (bi, c) in chunks.iter().enumerate() {
        let t0 = Instant::now();
        let (xv, labels) = ds.batch(c, 0, false)?;
        let b = c.len() as i64;
        let t1 = Instant::now();
        let p = match m {
            ModelRef::Torch(model) => {
                let x = Tensor::from_slice(&xv)
                    .view([b, 3, s, s])
                    .to_device(m.device());
                // Channels-last unless `channels_last=False`: faster on the CPU (see
                // `ops::images_to_tensor`).
                let x = crate::util::amp::input_layout(&x, nchw);
                let probs = tch::no_grad(|| {
                    let logits = model.forward_raw(&x, false).scores.to_kind(Kind::Float);
                    if loss {
                        let y = Tensor::from_slice(&labels).to_device(logits.device());
                        loss_sum += logits.cross_entropy_for_logits(&y).double_value(&[]);
                    }
                    logits.softmax(1, Kind::Float)
                });
                Vec::<f32>::try_from(probs.to_device(tch::Device::Cpu).contiguous().view([-1]))?
            }
            ModelRef::Onnx(_) => {
                if loss {
                    bail!("validation losses need a libtorch model");
                }
                let sz = s as usize;
                m.run_classify(&xv, (c.len(), sz, sz), Default::default())?
            }
        };
        let t2 = Instant::now();
        let k = p.len() / c.len().max(1);
        for (row, &t) in p.chunks(k.max(1)).zip(&labels) {
            stats.add(row, t as usize);
        }
        let t3 = Instant::now();
        if let (Some(dir), true) = (plot_dir, bi < 3) {
            plot_val_batch(dir, bi, &xv, &labels, &p, ds.opts.imgsz, m.names());
        }
        for (t, (a, z)) in times.iter_mut().zip([(t0, t1), (t1, t2), (t2, t3)]) {
            *t += (z - a).as_secs_f64();
        }
        progress(bi + 1, chunks.len());
        pb.inc(1);
    }
    pb.finish_and_clear();
    let metrics = ClsMetrics::compute(&stats, nc);
    // The confusion matrix in the detection layout (an empty background row and column).
    let mut cm = ConfusionMatrix::new(nc, 0.001);
    for (r, row) in metrics.confusion.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            cm.m[r][c] = *v;
        }
    }
    let k = 1e3 / n.max(1) as f64;
    Ok(ValResult {
        metrics: DetMetrics::default(),
        seg: None,
        pose: None,
        cls: Some(metrics),
        confusion: cm,
        per_class: vec![(0, 0); nc],
        seen: n,
        instances: n,
        speed: Speed {
            preprocess: times[0] * k,
            inference: times[1] * k,
            postprocess: times[2] * k,
        },
        loss: loss.then(|| vec![loss_sum / chunks.len().max(1) as f64]),
        predictions: Vec::new(),
        mask_outputs: Vec::new(),
        rotated: Vec::new(),
        skipped: Vec::new(),
    })
}

/// `val_batch{bi}_labels.jpg` and `val_batch{bi}_pred.jpg` of one batch: planar pixels `x`, true
/// classes and the softmax rows `probs`. Ultralytics prints the first image's confidence on every
/// tile (`conf[0]`); each tile here shows its own. A plot that fails is a warning, not an error.
fn plot_val_batch(
    dir: &std::path::Path,
    bi: usize,
    x: &[f32],
    labels: &[i64],
    probs: &[f32],
    imgsz: usize,
    names: &[String],
) {
    use crate::engine::train::clsdata::plot_images;
    let truth: Vec<usize> = labels.iter().map(|&c| c.max(0) as usize).collect();
    let k = probs.len() / labels.len().max(1);
    let (mut top, mut conf) = (Vec::new(), Vec::new());
    for row in probs.chunks(k.max(1)) {
        let (i, v) =
            row.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            );
        top.push(i);
        conf.push(v);
    }
    let jobs = [
        (format!("val_batch{bi}_labels.jpg"), &truth, None),
        (
            format!("val_batch{bi}_pred.jpg"),
            &top,
            Some(conf.as_slice()),
        ),
    ];
    for (name, cls, cf) in jobs {
        let out = dir.join(&name);
        if let Err(e) = plot_images(x, cls, cf, imgsz, names, &out) {
            eprintln!("WARNING {}: plot failed: {e:#}", out.display());
        }
    }
}
