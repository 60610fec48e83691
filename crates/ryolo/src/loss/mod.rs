//! The detection loss of Ultralytics 8.4 (spec/loss.md): TaskAligned assigner, BCE class loss, CIoU box
//! loss and DFL, vectorised on the model's device (no host syncs besides building the target tensor).

use crate::nn::model::{make_anchors, RawOutput, REG_MAX};
use tch::{Kind, Reduction, Tensor};

pub mod obb;
pub mod pose;
pub mod segment;

pub use crate::data::batch::Targets;

/// Loss gains and assigner settings.
#[derive(Debug, Clone)]
pub struct LossConfig {
    /// Box (CIoU) gain, 7.5.
    pub box_gain: f64,
    /// Class (BCE) gain, 0.5.
    pub cls_gain: f64,
    /// DFL gain, 1.5.
    pub dfl_gain: f64,
    /// Assigner top-k, 10.
    pub topk: i64,
    /// Assigner alpha, 0.5.
    pub alpha: f64,
    /// Assigner beta, 6.0.
    pub beta: f64,
    /// Small-box widening size in pixels for candidate selection (8.4: stride[1] = 16; 0 disables).
    pub min_box: f64,
    /// Keypoint-location gain (pose), 12.0.
    pub pose_gain: f64,
    /// Keypoint-objectness gain (pose), 1.0.
    pub kobj_gain: f64,
    /// Angle gain (obb, 8.4), 1.0.
    pub angle_gain: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            box_gain: 7.5,
            cls_gain: 0.5,
            dfl_gain: 1.5,
            topk: 10,
            alpha: 0.5,
            beta: 6.0,
            min_box: 16.0,
            pose_gain: 12.0,
            kobj_gain: 1.0,
            angle_gain: 1.0,
        }
    }
}

/// The loss of a batch.
#[derive(Debug)]
pub struct LossOutput {
    /// `sum(items) * batch_size`, to backpropagate.
    pub total: Tensor,
    /// The items after gains (detached): `[box, cls, dfl]` for detection, `[box, seg, cls, dfl, sem]`
    /// for segmentation.
    pub items: Tensor,
    /// `(B, A)` foreground anchors chosen by the assigner (bool, no gradient).
    pub fg_mask: Tensor,
}

/// CIoU of matching boxes (`xyxy`, last dim 4), Ultralytics' eps placement; alpha without gradient.
pub fn ciou(b1: &Tensor, b2: &Tensor) -> Tensor {
    let eps = 1e-7;
    let c1 = b1.unbind(-1);
    let c2 = b2.unbind(-1);
    let (b1x1, b1y1, b1x2, b1y2) = (&c1[0], &c1[1], &c1[2], &c1[3]);
    let (b2x1, b2y1, b2x2, b2y2) = (&c2[0], &c2[1], &c2[2], &c2[3]);
    let w1 = b1x2 - b1x1;
    let h1 = b1y2 - b1y1 + eps;
    let w2 = b2x2 - b2x1;
    let h2 = b2y2 - b2y1 + eps;
    let inter = (b1x2.minimum(b2x2) - b1x1.maximum(b2x1)).clamp_min(0.0)
        * (b1y2.minimum(b2y2) - b1y1.maximum(b2y1)).clamp_min(0.0);
    let union = &w1 * &h1 + &w2 * &h2 - &inter + eps;
    let iou = &inter / union;
    let cw = b1x2.maximum(b2x2) - b1x1.minimum(b2x1);
    let ch = b1y2.maximum(b2y2) - b1y1.minimum(b2y1);
    let c2 = cw.pow_tensor_scalar(2) + ch.pow_tensor_scalar(2) + eps;
    let rho2 = ((b2x1 + b2x2 - b1x1 - b1x2).pow_tensor_scalar(2)
        + (b2y1 + b2y2 - b1y1 - b1y2).pow_tensor_scalar(2))
        / 4.0;
    let v = ((w2 / h2).atan() - (w1 / h1).atan()).pow_tensor_scalar(2)
        * (4.0 / (std::f64::consts::PI * std::f64::consts::PI));
    let alpha = tch::no_grad(|| &v / (&v - &iou + (1.0 + eps)));
    iou - (rho2 / c2 + v * alpha)
}

fn xyxy_to_xywh(b: &Tensor) -> Tensor {
    let c = b.unbind(-1);
    Tensor::stack(
        &[
            (&c[0] + &c[2]) / 2.0,
            (&c[1] + &c[3]) / 2.0,
            &c[2] - &c[0],
            &c[3] - &c[1],
        ],
        -1,
    )
}

fn xywh_to_xyxy(b: &Tensor) -> Tensor {
    let c = b.unbind(-1);
    let (hw, hh) = (&c[2] / 2.0, &c[3] / 2.0);
    Tensor::stack(&[&c[0] - &hw, &c[1] - &hh, &c[0] + &hw, &c[1] + &hh], -1)
}

/// What the assigner decided for every anchor.
#[derive(Debug)]
pub struct Assignment {
    /// `(B, A, 4)` target boxes, `xyxy` pixels (rotated assigner: `(B, A, 5)` xywhr, xywh in pixels).
    pub target_bboxes: Tensor,
    /// `(B, A, nc)` soft class targets.
    pub target_scores: Tensor,
    /// `(B, A)` foreground mask.
    pub fg_mask: Tensor,
    /// `(B, A)` int64 index of the assigned gt within its image (label order; 0 for background).
    pub target_gt_idx: Tensor,
}

/// TaskAlignedAssigner (spec/loss.md §4). Shapes: pd_scores `(B, A, nc)` probabilities, pd_bboxes
/// `(B, A, 4)` and anc `(A, 2)` in pixels, gt_labels `(B, n, 1)`, gt_bboxes `(B, n, 4)`, mask_gt `(B, n, 1)`.
pub fn assign(
    cfg: &LossConfig,
    pd_scores: &Tensor,
    pd_bboxes: &Tensor,
    anc: &Tensor,
    gt_labels: &Tensor,
    gt_bboxes: &Tensor,
    mask_gt: &Tensor,
) -> Assignment {
    let (b, a, _) = pd_scores.size3().expect("(B, A, nc) scores");
    let n = gt_bboxes.size()[1];
    if n == 0 {
        return no_assignment(pd_scores, 4);
    }
    let eps = 1e-9;
    // Candidates: anchor centres strictly inside the (8.4: small-box widened) gt boxes.
    let cand_boxes = if cfg.min_box > 0.0 {
        let xywh = xyxy_to_xywh(gt_bboxes);
        let wh = xywh.narrow(-1, 2, 2);
        let widen = wh.lt(cfg.min_box).logical_and(&mask_gt.to_kind(Kind::Bool));
        let wh = wh.where_self(&widen.logical_not(), &Tensor::full_like(&wh, cfg.min_box));
        xywh_to_xyxy(&Tensor::cat(&[xywh.narrow(-1, 0, 2), wh], -1))
    } else {
        gt_bboxes.shallow_clone()
    };
    let lt = cand_boxes.narrow(-1, 0, 2).unsqueeze(2); // (b, n, 1, 2)
    let rb = cand_boxes.narrow(-1, 2, 2).unsqueeze(2);
    let xy = anc.view([1, 1, a, 2]);
    let deltas = Tensor::cat(&[&xy - lt, rb - &xy], -1); // (b, n, a, 4)
    let mask_in = deltas.amin(&[3i64][..], false).gt(eps); // (b, n, a)
    let gt_e = gt_bboxes.unsqueeze(2).expand([b, n, a, 4], false);
    let pd_e = pd_bboxes.unsqueeze(1).expand([b, n, a, 4], false);
    let iou = ciou(&gt_e, &pd_e).clamp_min(0.0);
    assign_from(
        cfg, pd_scores, gt_labels, gt_bboxes, mask_gt, &mask_in, &iou,
    )
}

/// The assignment when there is no gt box at all: background everywhere (`dim` = box values).
pub(crate) fn no_assignment(pd_scores: &Tensor, dim: i64) -> Assignment {
    let (b, a, nc) = pd_scores.size3().expect("(B, A, nc) scores");
    let dev = pd_scores.device();
    Assignment {
        target_bboxes: Tensor::zeros([b, a, dim], (Kind::Float, dev)),
        target_scores: Tensor::zeros([b, a, nc], (Kind::Float, dev)),
        fg_mask: Tensor::zeros([b, a], (Kind::Bool, dev)),
        target_gt_idx: Tensor::zeros([b, a], (Kind::Int64, dev)),
    }
}

/// The task-aligned assignment once the geometry is known: `mask_in` `(B, n, A)` anchors that are
/// candidates of each gt, `iou` `(B, n, A)` gt-vs-prediction overlaps (≥ 0). Shared by the axis-aligned
/// and the rotated assigners; gt boxes `(B, n, D)` are gathered as they are (any `D`).
pub(crate) fn assign_from(
    cfg: &LossConfig,
    pd_scores: &Tensor,
    gt_labels: &Tensor,
    gt_bboxes: &Tensor,
    mask_gt: &Tensor,
    mask_in: &Tensor,
    iou: &Tensor,
) -> Assignment {
    let (b, a, nc) = pd_scores.size3().expect("(B, A, nc) scores");
    let (n, dim) = (gt_bboxes.size()[1], gt_bboxes.size()[2]);
    let dev = pd_scores.device();
    let eps = 1e-9;
    let mgt = mask_gt.to_kind(Kind::Bool); // (b, n, 1)
    let valid = mask_in.logical_and(&mgt);
    // Alignment metric: score of the gt class at the anchor^alpha * IoU^beta.
    let labels = gt_labels.to_kind(Kind::Int64).clamp_min(0); // (b, n, 1)
    let scores_t = pd_scores.permute([0, 2, 1]); // (b, nc, a)
    let bbox_scores = scores_t.gather(1, &labels.expand([b, n, a], false), false); // (b, n, a)
    let zeros = Tensor::zeros([b, n, a], (Kind::Float, dev));
    let overlaps = iou.where_self(&valid, &zeros);
    let bbox_scores = bbox_scores.where_self(&valid, &zeros);
    let align = bbox_scores.pow_tensor_scalar(cfg.alpha) * overlaps.pow_tensor_scalar(cfg.beta);
    // Top-k anchors per gt (padding rows point at anchor 0 and are reset when counted twice).
    let (_, topk_idx) = align.topk(cfg.topk, -1, true, true);
    let topk_mask = mgt.expand([b, n, cfg.topk], false);
    let topk_idx = topk_idx.masked_fill(&topk_mask.logical_not(), 0);
    let count = Tensor::zeros([b, n, a], (Kind::Int8, dev)).scatter_add(
        -1,
        &topk_idx,
        &Tensor::ones([b, n, cfg.topk], (Kind::Int8, dev)),
    );
    let mask_topk = count.masked_fill(&count.gt(1), 0).to_kind(Kind::Float);
    let mut mask_pos = mask_topk * mask_in.to_kind(Kind::Float) * mgt.to_kind(Kind::Float);
    // One gt per anchor: the highest overlap wins.
    let fg = mask_pos.sum_dim_intlist(-2, false, Kind::Float); // (b, a)
    let multi = fg.unsqueeze(1).gt(1.0).expand([b, n, a], false);
    let max_idx = overlaps.argmax(1, true); // (b, 1, a)
    let is_max = Tensor::zeros([b, n, a], (Kind::Float, dev)).scatter_value(1, &max_idx, 1.0);
    mask_pos = is_max.where_self(&multi, &mask_pos);
    let fg = mask_pos.sum_dim_intlist(-2, false, Kind::Float);
    // Targets: the assigned gt (index within the image) of every anchor.
    let gt_idx = mask_pos.argmax(-2, false); // (b, a)
    let flat_idx = &gt_idx + Tensor::arange(b, (Kind::Int64, dev)).unsqueeze(-1) * n;
    let target_labels = labels
        .flatten(0, -1)
        .index_select(0, &flat_idx.flatten(0, -1))
        .view([b, a]);
    let target_bboxes = gt_bboxes
        .reshape([-1, dim])
        .index_select(0, &flat_idx.flatten(0, -1))
        .view([b, a, dim]);
    let fg_mask = fg.gt(0.0);
    let one_hot = target_labels.one_hot(nc).to_kind(Kind::Float);
    let target_scores = one_hot.where_self(
        &fg_mask.unsqueeze(-1),
        &Tensor::zeros([b, a, nc], (Kind::Float, dev)),
    );
    // Normalise soft targets by each gt's best IoU.
    let align = align * &mask_pos;
    let pos_align = align.amax(&[-1i64][..], true);
    let pos_ov = (&overlaps * &mask_pos).amax(&[-1i64][..], true);
    let norm = (align * pos_ov / (pos_align + eps))
        .amax(&[-2i64][..], false)
        .unsqueeze(-1);
    Assignment {
        target_bboxes,
        target_scores: target_scores * norm,
        fg_mask,
        target_gt_idx: gt_idx,
    }
}

/// The detection terms of a batch (gains applied, still in the graph) and the assignment behind them.
#[derive(Debug)]
pub struct DetectionTerms {
    /// `box_gain · L_box` (CIoU), scalar.
    pub box_loss: Tensor,
    /// `cls_gain · L_cls` (BCE), scalar.
    pub cls_loss: Tensor,
    /// `dfl_gain · L_dfl`, scalar.
    pub dfl_loss: Tensor,
    /// What the assigner decided (target boxes in input pixels).
    pub assignment: Assignment,
}

/// `v8DetectionLoss` for a batch. `strides` are the model's (8, 16, 32).
pub fn detection_loss(
    cfg: &LossConfig,
    raw: &RawOutput,
    strides: &[f64],
    t: &Targets,
) -> LossOutput {
    let b = raw.boxes.size()[0];
    let d = detection_terms(cfg, raw, strides, t);
    let items = Tensor::stack(&[d.box_loss, d.cls_loss, d.dfl_loss], 0);
    LossOutput {
        total: items.sum(Kind::Float) * b as f64,
        items: items.detach(),
        fg_mask: d.assignment.fg_mask,
    }
}

/// The box, class and DFL terms of `v8DetectionLoss` (`get_assigned_targets_and_loss`), shared by the
/// The class term shared by the box losses: BCE of the logits against the assigner's target scores
/// summed and divided by their sum (at least 1); returns it with that divisor.
pub(crate) fn class_bce(pred_scores: &Tensor, target_scores: &Tensor) -> (Tensor, Tensor) {
    let tss = target_scores.sum(Kind::Float).clamp_min(1.0);
    let loss = pred_scores.binary_cross_entropy_with_logits::<Tensor>(
        target_scores,
        None,
        None,
        Reduction::Sum,
    ) / &tss;
    (loss, tss)
}

/// detection and segmentation losses.
pub fn detection_terms(
    cfg: &LossConfig,
    raw: &RawOutput,
    strides: &[f64],
    t: &Targets,
) -> DetectionTerms {
    let dev = raw.boxes.device();
    let (b, _, a) = raw.boxes.size3().expect("(B, 64, A) boxes");
    let pred_distri = raw.boxes.permute([0, 2, 1]).to_kind(Kind::Float); // (b, a, 64)
    let pred_scores = raw.scores.permute([0, 2, 1]).to_kind(Kind::Float); // (b, a, nc)
    let (anchors, stride_t) = make_anchors(&raw.shapes, strides, dev);
    let img_h = raw.shapes[0].0 as f64 * strides[0];
    let img_w = raw.shapes[0].1 as f64 * strides[0];
    // Targets -> (b, M, 5) [cls, x1, y1, x2, y2] in pixels.
    let mut counts = vec![0usize; b as usize];
    for &i in &t.batch_idx {
        if (0..b).contains(&i) {
            counts[i as usize] += 1;
        }
    }
    let m = counts.iter().copied().max().unwrap_or(0);
    let mut gt = vec![0f32; b as usize * m * 5];
    let mut fill = vec![0usize; b as usize];
    for (k, &i) in t.batch_idx.iter().enumerate() {
        if !(0..b).contains(&i) {
            continue;
        }
        let (i, j) = (i as usize, fill[i as usize]);
        fill[i] += 1;
        let bb = t.bboxes[k];
        let (cx, cy, w, h) = (
            bb[0] as f64 * img_w,
            bb[1] as f64 * img_h,
            bb[2] as f64 * img_w,
            bb[3] as f64 * img_h,
        );
        let row = &mut gt[(i * m + j) * 5..(i * m + j + 1) * 5];
        row.copy_from_slice(&[
            t.cls[k] as f32,
            (cx - w / 2.0) as f32,
            (cy - h / 2.0) as f32,
            (cx + w / 2.0) as f32,
            (cy + h / 2.0) as f32,
        ]);
    }
    let gt = Tensor::from_slice(&gt)
        .view([b, m as i64, 5])
        .to_device(dev);
    let gt_labels = gt.narrow(-1, 0, 1);
    let gt_bboxes = gt.narrow(-1, 1, 4);
    let mask_gt = gt_bboxes.sum_dim_intlist(-1, true, Kind::Float).gt(0.0);
    // Predicted boxes (grid units).
    let proj = Tensor::arange(REG_MAX, (Kind::Float, dev));
    let dist = pred_distri
        .view([b, a, 4, REG_MAX])
        .softmax(3, Kind::Float)
        .matmul(&proj); // (b, a, 4)
    let anc = anchors.unsqueeze(0);
    let pred_bboxes = Tensor::cat(
        &[&anc - dist.narrow(-1, 0, 2), &anc + dist.narrow(-1, 2, 2)],
        -1,
    );
    let asg = tch::no_grad(|| {
        let pd = pred_bboxes.detach() * stride_t.unsqueeze(0);
        assign(
            cfg,
            &pred_scores.detach().sigmoid(),
            &pd,
            &(&anchors * &stride_t),
            &gt_labels,
            &gt_bboxes,
            &mask_gt,
        )
    });
    let (loss_cls, tss) = class_bce(&pred_scores, &asg.target_scores);
    let fg = &asg.fg_mask;
    let target_bboxes = &asg.target_bboxes / stride_t.unsqueeze(0);
    let weight = asg
        .target_scores
        .sum_dim_intlist(-1, false, Kind::Float)
        .masked_select(fg)
        .unsqueeze(-1);
    let sel4 = |x: &Tensor| {
        x.masked_select(&fg.unsqueeze(-1).expand_as(x))
            .view([-1, 4])
    };
    let pb = sel4(&pred_bboxes);
    let tb = sel4(&target_bboxes);
    let iou = ciou(&pb, &tb).unsqueeze(-1);
    let loss_box = (iou.neg() + 1.0).multiply(&weight).sum(Kind::Float) / &tss;
    // DFL on the foreground anchors.
    let ltrb = Tensor::cat(
        &[
            &anc - target_bboxes.narrow(-1, 0, 2),
            target_bboxes.narrow(-1, 2, 2) - &anc,
        ],
        -1,
    )
    .clamp(0.0, (REG_MAX - 1) as f64 - 0.01);
    let loss_dfl = dfl_sum(&pred_distri, fg, &sel4(&ltrb), &weight) / &tss;
    DetectionTerms {
        box_loss: loss_box * cfg.box_gain,
        cls_loss: loss_cls * cfg.cls_gain,
        dfl_loss: loss_dfl * cfg.dfl_gain,
        assignment: asg,
    }
}

/// Σ over foreground anchors of `weight · mean over the 4 sides of DFL(logits, target)`:
/// `pred_distri` `(B, A, 4·reg_max)`, `fg` `(B, A)`, `ltrb` `(n_fg, 4)` targets in [0, reg_max − 1),
/// `weight` `(n_fg, 1)`.
pub(crate) fn dfl_sum(pred_distri: &Tensor, fg: &Tensor, ltrb: &Tensor, weight: &Tensor) -> Tensor {
    let logits = pred_distri
        .masked_select(&fg.unsqueeze(-1).expand_as(pred_distri))
        .view([-1, REG_MAX]); // (n_fg*4, 16)
    let tflat = ltrb.reshape([-1]);
    let tl = tflat.to_kind(Kind::Int64);
    let tr = &tl + 1;
    let wl = tr.to_kind(Kind::Float) - &tflat;
    let wr: Tensor = 1.0 - &wl;
    let logp = logits.log_softmax(-1, Kind::Float);
    let ce_l: Tensor = -logp.gather(1, &tl.unsqueeze(-1), false).squeeze_dim(-1);
    let ce_r: Tensor = -logp.gather(1, &tr.unsqueeze(-1), false).squeeze_dim(-1);
    let dfl = (ce_l * wl + ce_r * wr)
        .view([-1, 4])
        .mean_dim(&[-1i64][..], true, Kind::Float);
    (dfl * weight).sum(Kind::Float)
}

/// Moves target rows to a device-independent form from per-image labels.
pub fn targets_from(labels: &[(Vec<u32>, Vec<[f32; 4]>)]) -> Targets {
    let mut t = Targets::default();
    for (i, (cls, boxes)) in labels.iter().enumerate() {
        for (c, b) in cls.iter().zip(boxes) {
            t.batch_idx.push(i as i64);
            t.cls.push(*c as i64);
            t.bboxes.push(*b);
        }
    }
    t
}
