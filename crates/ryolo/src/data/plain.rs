//! The non-augmented training sample and batch (Ultralytics `augment=False`: `LetterBox(scaleup=False)`
//! then `Format`), with the targets every task's loss consumes: boxes, keypoints (pose) and the
//! canonical rotated boxes (obb). The pose and OBB loss fixtures were built this way.

use super::augment::Sample;
use super::batch::Targets;
use super::instances::{resample_polygon, SEGMENT_POINTS};
use super::loader::{load_resized, Batch};
use super::obb::OBB_POINTS;
use super::LabelEntry;
use anyhow::Result;

/// Entry `e` as Ultralytics' non-augmented loader gives it: long side resized to `imgsz` (ceil),
/// letterboxed into `imgsz x imgsz` without upscaling (centred, pad 114), labels in pixels of the
/// letterboxed image (polygons resampled first, as the dataset does).
pub fn plain_sample(e: &LabelEntry, imgsz: usize) -> Result<Sample> {
    plain_sample_in(e, imgsz, (imgsz, imgsz))
}

/// [`plain_sample`] letterboxed into an `(h, w)` canvas instead (the rect batches of validation).
pub fn plain_sample_in(e: &LabelEntry, imgsz: usize, shape: (usize, usize)) -> Result<Sample> {
    let img = load_resized(&e.im_file, imgsz)?;
    let mut inst = e.instances();
    inst.resample_segments(SEGMENT_POINTS);
    if let (Some(c), None) = (&inst.corners, &inst.segments) {
        // Ultralytics carries OBB labels as polygons resampled to 100 points (spec/obb.md §1);
        // they ride along here so Format's minAreaRect sees the same float32 points.
        inst.segments = Some(c.iter().map(|c| resample_polygon(c, OBB_POINTS)).collect());
    }
    inst.denormalize(img.w, img.h);
    let (lb, info) = crate::ops::letterbox(&img, shape, false, false, 32);
    let r = info.ratio as f32;
    inst.scale(r, r);
    inst.translate(info.pad.0 as f32, info.pad.1 as f32);
    Ok(Sample {
        img: lb,
        instances: inst,
    })
}

/// Pixel samples of one size as a collated batch (`Format` + `collate_fn`): normalised boxes and
/// keypoints, and for corner labels the normalised canonical `xywhr` rows.
pub fn collate_samples(samples: Vec<Sample>) -> Batch {
    let (h, w) = samples.first().map_or((0, 0), |s| (s.img.h, s.img.w));
    let mut pixels = Vec::with_capacity(samples.len() * h * w * 3);
    let mut labels = Vec::with_capacity(samples.len());
    let mut rboxes = Vec::new();
    for s in &samples {
        pixels.extend_from_slice(&s.img.data);
        rboxes.extend(super::obb::rbox_targets(&s.instances, s.img.w, s.img.h));
        let mut n = s.normalized();
        if n.corners.is_some() {
            n.segments = None; // the OBB polygons served Format only
        }
        labels.push(n);
    }
    let mut targets = Targets::collate(labels);
    targets.rboxes = rboxes;
    Batch {
        pixels,
        shape: (samples.len(), h, w),
        targets,
        masks: None,
        indices: (0..samples.len()).collect(),
    }
}

/// The non-augmented batch of `entries` at `imgsz` ([`plain_sample`] each, then [`collate_samples`]).
pub fn plain_batch(entries: &[&LabelEntry], imgsz: usize) -> Result<Batch> {
    let samples = entries
        .iter()
        .map(|e| plain_sample(e, imgsz))
        .collect::<Result<Vec<_>>>()?;
    Ok(collate_samples(samples))
}
