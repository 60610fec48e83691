//! The pose loss of Ultralytics 8.4 (`v8PoseLoss`, spec/pose.md §5): the detection terms plus an
//! OKS-shaped keypoint-location loss and a keypoint-visibility BCE (`kobj`) on the foreground
//! anchors of the same assignment.
//!
//! Targets are the detection [`Targets`] rows with their `keypoints` filled: one `(K, 3)` list per
//! row, `x, y` normalised by the network input's width and height, and the label flag (only flag ≠ 0
//! counts; 2-D datasets carry the loader's synthetic flag).

use super::{detection_terms, LossConfig, LossOutput, Targets};
use crate::nn::model::{make_anchors, RawOutput};
use crate::nn::DetectionModel;
use tch::{Kind, Reduction, Tensor};

/// What the pose terms need besides the detection settings.
#[derive(Debug, Clone)]
pub struct PoseLossConfig {
    /// Keypoint-location gain (`pose`, 12.0).
    pub pose_gain: f64,
    /// Keypoint-visibility gain (`kobj`, 1.0).
    pub kobj_gain: f64,
    /// `(K, D)` of the head.
    pub kpt_shape: (i64, i64),
    /// OKS σ per keypoint (`K` values): the model's `kpt_oks_sigmas`, the COCO table for
    /// `[17, 3]`, else `1/K` each ([`crate::nn::pose::oks_sigmas`]).
    pub sigmas: Vec<f32>,
}

impl PoseLossConfig {
    /// Default gains and the sigmas of a model's Pose head (None for other heads).
    pub fn for_model(model: &DetectionModel) -> Option<Self> {
        let p = model.head.pose()?;
        Some(Self {
            pose_gain: 12.0,
            kobj_gain: 1.0,
            kpt_shape: p.kpt_shape,
            sigmas: p.sigmas(),
        })
    }
}

/// Loss item names, in the order of [`pose_loss`]'s items.
pub const POSE_LOSS_NAMES: [&str; 5] =
    ["box_loss", "pose_loss", "kobj_loss", "cls_loss", "dfl_loss"];

/// `v8PoseLoss` for a batch. `raw.kpts` must hold the raw keypoint maps `(B, K·D, A)`. Items are
/// `[box, pose, kobj, cls, dfl]` after gains; `total = sum(items) · B`.
///
/// Panics when the targets' keypoints do not have one `K`-long list per row.
pub fn pose_loss(
    cfg: &LossConfig,
    pcfg: &PoseLossConfig,
    raw: &RawOutput,
    strides: &[f64],
    targets: &Targets,
) -> LossOutput {
    let kpts = raw
        .kpts
        .as_ref()
        .expect("pose_loss needs a Pose head's keypoint outputs");
    let (k, d) = pcfg.kpt_shape;
    assert_eq!(
        pcfg.sigmas.len() as i64,
        k,
        "pose_loss: {} sigmas for {k} keypoints",
        pcfg.sigmas.len()
    );
    let det = detection_terms(cfg, raw, strides, targets);
    let dev = raw.boxes.device();
    let (b, nk, a) = kpts.size3().expect("(B, K·D, A) keypoints");
    assert_eq!(
        nk,
        k * d,
        "pose_loss: keypoint maps have {nk} channels, kpt_shape {k}x{d}"
    );
    // (B, A, K, D), decoded to grid units: x = 2·raw + ax − 0.5.
    let pred = kpts
        .to_kind(Kind::Float)
        .permute([0, 2, 1])
        .contiguous()
        .view([b, a, k, d]);
    let (anchors, stride_t) = make_anchors(&raw.shapes, strides, dev);
    let ax = (anchors.select(1, 0) - 0.5).view([1, a, 1]);
    let ay = (anchors.select(1, 1) - 0.5).view([1, a, 1]);
    let px = pred.select(3, 0) * 2.0 + ax;
    let py = pred.select(3, 1) * 2.0 + ay;
    let asg = &det.assignment;
    let fg = &asg.fg_mask; // (B, A)
    let n_fg = fg.sum(Kind::Int64).int64_value(&[]);
    let zero = || Tensor::zeros([], (Kind::Float, dev));
    let (l_pose, l_kobj) = if n_fg > 0 {
        let img_h = (raw.shapes[0].0 as f64 * strides[0]) as f32;
        let img_w = (raw.shapes[0].1 as f64 * strides[0]) as f32;
        let (table, m) = keypoint_table(targets, b, k, (img_w, img_h));
        let table = table.to_device(dev); // (B, M, K, 3) pixels
                                          // The assigned gt of every foreground anchor, in (image, anchor) order.
        let img_of = Tensor::arange(b, (Kind::Int64, dev))
            .view([b, 1])
            .expand([b, a], false);
        let flat_gt = (img_of * m + &asg.target_gt_idx).masked_select(fg);
        let gt = table.view([b * m, k, 3]).index_select(0, &flat_gt); // (n, K, 3)
        let s_fg = stride_t
            .view([1, a])
            .expand([b, a], false)
            .masked_select(fg)
            .view([-1, 1]); // (n, 1)
        let gx = gt.select(2, 0) / &s_fg;
        let gy = gt.select(2, 1) / &s_fg;
        let mask = gt.select(2, 2).ne(0.0); // (n, K)
                                            // Area of the assigned box in grid units² (xyxy / stride -> w·h).
        let tb = (&asg.target_bboxes / stride_t.unsqueeze(0))
            .masked_select(&fg.unsqueeze(-1).expand([b, a, 4], false))
            .view([-1, 4]);
        let c = tb.unbind(-1);
        let area = ((&c[2] - &c[0]) * (&c[3] - &c[1])).unsqueeze(-1); // (n, 1)
        let sel = |x: &Tensor| {
            x.masked_select(&fg.unsqueeze(-1).expand([b, a, k], false))
                .view([-1, k])
        };
        let (pxs, pys) = (sel(&px), sel(&py));
        let dist = (pxs - gx).pow_tensor_scalar(2) + (pys - gy).pow_tensor_scalar(2);
        let labelled = mask
            .sum_dim_intlist(1, false, Kind::Int64)
            .to_kind(Kind::Float)
            + 1e-9;
        let factor = Tensor::full_like(&labelled, k as f64) / labelled;
        let sig = Tensor::from_slice(&pcfg.sigmas).to_device(dev);
        let denom = (sig * 2.0).pow_tensor_scalar(2) * (area + 1e-9) * 2.0;
        let e = dist / denom;
        let maskf = mask.to_kind(Kind::Float);
        let miss: Tensor = 1.0 - e.neg().exp();
        let l_pose = (factor.view([-1, 1]) * (miss * &maskf)).mean(Kind::Float);
        let l_kobj = if d == 3 {
            sel(&pred.select(3, 2)).binary_cross_entropy_with_logits::<Tensor>(
                &maskf,
                None,
                None,
                Reduction::Mean,
            )
        } else {
            zero()
        };
        (l_pose, l_kobj)
    } else {
        // No foreground: zero, but the keypoint outputs stay in the graph (as Ultralytics keeps them).
        ((&pred * 0.0).sum(Kind::Float), zero())
    };
    let items = Tensor::stack(
        &[
            det.box_loss,
            l_pose * pcfg.pose_gain,
            l_kobj * pcfg.kobj_gain,
            det.cls_loss,
            det.dfl_loss,
        ],
        0,
    );
    LossOutput {
        total: items.sum(Kind::Float) * b as f64,
        items: items.detach(),
        fg_mask: det.assignment.fg_mask,
    }
}

/// The targets' keypoints per image in label order, `(B, M, K, 3)` with `x·W, y·H` in input pixels
/// (flags as given; padding rows are zeros), and `M` (at least 1). Rows with an image index outside
/// the batch are skipped, as the detection terms skip them.
fn keypoint_table(t: &Targets, b: i64, k: i64, (w, h): (f32, f32)) -> (Tensor, i64) {
    let n = t.batch_idx.len();
    assert_eq!(
        t.keypoints.len(),
        n,
        "pose_loss: {} keypoint lists for {n} target rows",
        t.keypoints.len()
    );
    let mut counts = vec![0usize; b as usize];
    for &i in &t.batch_idx {
        if (0..b).contains(&i) {
            counts[i as usize] += 1;
        }
    }
    let m = counts.iter().copied().max().unwrap_or(0).max(1);
    let k = k as usize;
    let mut table = vec![0f32; b as usize * m * k * 3];
    let mut fill = vec![0usize; b as usize];
    for (row, &i) in t.batch_idx.iter().enumerate() {
        if !(0..b).contains(&i) {
            continue;
        }
        let kp = &t.keypoints[row];
        assert_eq!(
            kp.len(),
            k,
            "pose_loss: target row {row} has {} keypoints, the model {k}",
            kp.len()
        );
        let (i, j) = (i as usize, fill[i as usize]);
        fill[i] += 1;
        let at = (i * m + j) * k * 3;
        for (q, p) in kp.iter().enumerate() {
            table[at + 3 * q] = p[0] * w;
            table[at + 3 * q + 1] = p[1] * h;
            table[at + 3 * q + 2] = p[2];
        }
    }
    (
        Tensor::from_slice(&table).view([b, m as i64, k as i64, 3]),
        m as i64,
    )
}
