//! The oriented-box loss of Ultralytics 8.4 (`v8OBBLoss`, spec/obb.md §4-5): the rotated task-aligned
//! assigner (anchors inside the rotated gt, ProbIoU overlaps), BCE class loss, ProbIoU box loss, DFL on
//! the distances in the target's frame and the aspect-weighted angle loss.

use super::{assign_from, class_bce, dfl_sum, no_assignment, Assignment, LossConfig, LossOutput};
use crate::nn::model::{make_anchors, RawOutput, REG_MAX};
use crate::nn::obb::{dist2rbox, rbox2dist};
use tch::{Kind, Tensor};

/// OBB training targets of a batch, one entry per box.
#[derive(Debug, Clone, Default)]
pub struct ObbTargets {
    /// Image index in the batch.
    pub batch_idx: Vec<i64>,
    /// Class id.
    pub cls: Vec<i64>,
    /// Canonical `cx/W, cy/H, w/W, h/H, θ` (θ in radians, spec/obb.md §1).
    pub xywhr: Vec<[f32; 5]>,
}

/// The angle-loss gain (`angle`, 8.4 default 1.0).
pub const ANGLE_GAIN: f64 = 1.0;

/// Targets narrower or lower than this many input pixels are dropped by the loss.
pub const MIN_TARGET_PX: f32 = 2.0;

/// ProbIoU of matching rotated boxes (last dim `cx, cy, w, h, θ`, broadcasting), shape without the
/// last dim; `floor` is added to both Gaussian variances (0, or 0.01 in the 8.4 box loss).
pub fn probiou(b1: &Tensor, b2: &Tensor, floor: f64) -> Tensor {
    let eps = 1e-7;
    let (x1, y1) = (b1.select(-1, 0), b1.select(-1, 1));
    let (x2, y2) = (b2.select(-1, 0), b2.select(-1, 1));
    let (a1, bb1, c1) = covariance(b1, floor);
    let (a2, bb2, c2) = covariance(b2, floor);
    let sa = &a1 + &a2;
    let sb = &bb1 + &bb2;
    let sc = &c1 + &c2;
    let det = &sa * &sb - sc.pow_tensor_scalar(2);
    let dy = &y1 - &y2;
    let t1 = ((&sa * dy.pow_tensor_scalar(2) + &sb * (&x1 - &x2).pow_tensor_scalar(2))
        / (&det + eps))
        * 0.25;
    let t2 = ((&sc * (&x2 - &x1) * &dy) / (&det + eps)) * 0.5;
    let d1 = (&a1 * &bb1 - c1.pow_tensor_scalar(2)).clamp_min(0.0);
    let d2 = (&a2 * &bb2 - c2.pow_tensor_scalar(2)).clamp_min(0.0);
    let t3 = ((&det / ((d1 * d2).sqrt() * 4.0 + eps)) + eps).log() * 0.5;
    let bd = (t1 + t2 + t3).clamp(eps, 100.0);
    let hd = (bd.neg().exp().neg() + 1.0 + eps).sqrt();
    hd.neg() + 1.0
}

/// The Gaussian covariance `[[a, c], [c, b]]` of rotated boxes (variances `w²/12 + floor`, `h²/12 + floor`).
fn covariance(boxes: &Tensor, floor: f64) -> (Tensor, Tensor, Tensor) {
    let va = boxes.select(-1, 2).pow_tensor_scalar(2) / 12.0 + floor;
    let vb = boxes.select(-1, 3).pow_tensor_scalar(2) / 12.0 + floor;
    let r = boxes.select(-1, 4);
    let (cos, sin) = (r.cos(), r.sin());
    let (cos2, sin2) = (cos.pow_tensor_scalar(2), sin.pow_tensor_scalar(2));
    (
        &va * &cos2 + &vb * &sin2,
        &va * &sin2 + &vb * &cos2,
        (&va - &vb) * &cos * &sin,
    )
}

/// Corners `p1, p2, p4` (last dim 2 each) of rotated boxes `(.., 5)` (spec/obb.md notation).
fn corners_124(b: &Tensor) -> (Tensor, Tensor, Tensor) {
    let ctr = b.narrow(-1, 0, 2);
    let (w, h, r) = (b.narrow(-1, 2, 1), b.narrow(-1, 3, 1), b.narrow(-1, 4, 1));
    let (cos, sin) = (r.cos(), r.sin());
    let v1 = Tensor::cat(&[&w / 2.0 * &cos, &w / 2.0 * &sin], -1);
    let v2 = Tensor::cat(&[(-&h) / 2.0 * &sin, &h / 2.0 * &cos], -1);
    let p1 = &ctr + &v1 + &v2;
    let p2 = &ctr + &v1 - &v2;
    let p4 = &ctr - &v1 + &v2;
    (p1, p2, p4)
}

/// `(B, n, A)`: whether each anchor centre (`anc` `(A, 2)` pixels) lies inside each rotated gt box
/// (`gt` `(B, n, 5)` pixels), edges included; sides of valid boxes under `min_box` px are first
/// enlarged to it (8.4).
fn anchors_in_rboxes(anc: &Tensor, gt: &Tensor, mask_gt: &Tensor, min_box: f64) -> Tensor {
    let gt = if min_box > 0.0 {
        let wh = gt.narrow(-1, 2, 2);
        let widen = wh.lt(min_box).logical_and(&mask_gt.to_kind(Kind::Bool));
        let wh = wh.where_self(&widen.logical_not(), &Tensor::full_like(&wh, min_box));
        Tensor::cat(&[gt.narrow(-1, 0, 2), wh, gt.narrow(-1, 4, 1)], -1)
    } else {
        gt.shallow_clone()
    };
    let (a, b, d) = corners_124(&gt); // (B, n, 2)
    let ab = &b - &a;
    let ad = &d - &a;
    let comp = |t: &Tensor, i: i64| t.select(-1, i).unsqueeze(-1); // (B, n, 1)
    let apx = anc.select(1, 0).view([1, 1, -1]) - comp(&a, 0); // (B, n, A)
    let apy = anc.select(1, 1).view([1, 1, -1]) - comp(&a, 1);
    let norm_ab = comp(&ab, 0) * comp(&ab, 0) + comp(&ab, 1) * comp(&ab, 1);
    let norm_ad = comp(&ad, 0) * comp(&ad, 0) + comp(&ad, 1) * comp(&ad, 1);
    let dot_ab = &apx * comp(&ab, 0) + &apy * comp(&ab, 1);
    let dot_ad = &apx * comp(&ad, 0) + &apy * comp(&ad, 1);
    dot_ab
        .ge(0.0)
        .logical_and(&dot_ab.le_tensor(&norm_ab))
        .logical_and(&dot_ad.ge(0.0))
        .logical_and(&dot_ad.le_tensor(&norm_ad))
}

/// RotatedTaskAlignedAssigner (spec/obb.md §5). Shapes: pd_scores `(B, A, nc)` probabilities,
/// pd_bboxes `(B, A, 5)` xywhr and anc `(A, 2)` in pixels, gt_labels `(B, n, 1)`, gt_bboxes `(B, n, 5)`
/// xywhr pixels, mask_gt `(B, n, 1)`. Target boxes come back as `(B, A, 5)` xywhr pixels.
pub fn assign_rotated(
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
        return no_assignment(pd_scores, 5);
    }
    let mask_in = anchors_in_rboxes(anc, gt_bboxes, mask_gt, cfg.min_box);
    let gt_e = gt_bboxes.unsqueeze(2).expand([b, n, a, 5], false);
    let pd_e = pd_bboxes.unsqueeze(1).expand([b, n, a, 5], false);
    let iou = probiou(&gt_e, &pd_e, 0.0).clamp_min(0.0);
    assign_from(
        cfg, pd_scores, gt_labels, gt_bboxes, mask_gt, &mask_in, &iou,
    )
}

/// The four OBB terms of a batch (gains applied, still in the graph) and the assignment behind them.
#[derive(Debug)]
pub struct ObbTerms {
    /// `box_gain · L_box` (1 − ProbIoU), scalar.
    pub box_loss: Tensor,
    /// `cls_gain · L_cls` (BCE), scalar.
    pub cls_loss: Tensor,
    /// `dfl_gain · L_dfl`, scalar.
    pub dfl_loss: Tensor,
    /// `angle_gain · L_angle`, scalar.
    pub angle_loss: Tensor,
    /// What the assigner decided (target boxes xywhr, xywh in input pixels).
    pub assignment: Assignment,
    /// Targets left after the small-box filter.
    pub kept_targets: usize,
}

/// `v8OBBLoss` for a batch: items `[box, cls, dfl, angle]` after gains, `total = sum(items) · B`.
/// `raw.angle` must hold the OBB head's angles.
pub fn obb_loss(
    cfg: &LossConfig,
    angle_gain: f64,
    raw: &RawOutput,
    strides: &[f64],
    t: &ObbTargets,
) -> LossOutput {
    let b = raw.boxes.size()[0];
    let d = obb_terms(cfg, angle_gain, raw, strides, t);
    let items = Tensor::stack(&[d.box_loss, d.cls_loss, d.dfl_loss, d.angle_loss], 0);
    LossOutput {
        total: items.sum(Kind::Float) * b as f64,
        items: items.detach(),
        fg_mask: d.assignment.fg_mask,
    }
}

/// The padded gt tensor `(B, M, 6)` `[cls, cx, cy, w, h, θ]` (pixels of an `img_w` x `img_h` input) of
/// the rows at least [`MIN_TARGET_PX`] wide and high; returns it with the number of rows kept.
fn gt_tensor(t: &ObbTargets, b: i64, img_w: f32, img_h: f32) -> (Tensor, usize) {
    let keep: Vec<usize> = (0..t.batch_idx.len())
        .filter(|&k| (0..b).contains(&t.batch_idx[k]))
        .filter(|&k| {
            t.xywhr[k][2] * img_w >= MIN_TARGET_PX && t.xywhr[k][3] * img_h >= MIN_TARGET_PX
        })
        .collect();
    let mut counts = vec![0usize; b as usize];
    for &k in &keep {
        counts[t.batch_idx[k] as usize] += 1;
    }
    let m = counts.iter().copied().max().unwrap_or(0);
    let mut gt = vec![0f32; b as usize * m * 6];
    let mut fill = vec![0usize; b as usize];
    for &k in &keep {
        let i = t.batch_idx[k] as usize;
        let j = fill[i];
        fill[i] += 1;
        let r = t.xywhr[k];
        gt[(i * m + j) * 6..(i * m + j + 1) * 6].copy_from_slice(&[
            t.cls[k] as f32,
            r[0] * img_w,
            r[1] * img_h,
            r[2] * img_w,
            r[3] * img_h,
            r[4],
        ]);
    }
    (Tensor::from_slice(&gt).view([b, m as i64, 6]), keep.len())
}

/// The box, class, DFL and angle terms of `v8OBBLoss` (spec/obb.md §5).
pub fn obb_terms(
    cfg: &LossConfig,
    angle_gain: f64,
    raw: &RawOutput,
    strides: &[f64],
    t: &ObbTargets,
) -> ObbTerms {
    let dev = raw.boxes.device();
    let angle = raw
        .angle
        .as_ref()
        .expect("obb_loss needs an OBB head's angle output");
    let (b, _, a) = raw.boxes.size3().expect("(B, 64, A) boxes");
    let pred_distri = raw.boxes.permute([0, 2, 1]).to_kind(Kind::Float); // (b, a, 64)
    let pred_scores = raw.scores.permute([0, 2, 1]).to_kind(Kind::Float); // (b, a, nc)
    let pred_angle = angle.permute([0, 2, 1]).to_kind(Kind::Float); // (b, a, 1)
    let (anchors, stride_t) = make_anchors(&raw.shapes, strides, dev);
    let img_h = (raw.shapes[0].0 as f64 * strides[0]) as f32;
    let img_w = (raw.shapes[0].1 as f64 * strides[0]) as f32;
    let (gt, kept_targets) = gt_tensor(t, b, img_w, img_h);
    let gt = gt.to_device(dev);
    let gt_labels = gt.narrow(-1, 0, 1);
    let gt_bboxes = gt.narrow(-1, 1, 5);
    let mask_gt = gt_bboxes.sum_dim_intlist(-1, true, Kind::Float).gt(0.0);
    // Predicted rotated boxes (xywh in grid units, θ in radians).
    let proj = Tensor::arange(REG_MAX, (Kind::Float, dev));
    let dist = pred_distri
        .view([b, a, 4, REG_MAX])
        .softmax(3, Kind::Float)
        .matmul(&proj); // (b, a, 4)
    let pred_bboxes = Tensor::cat(
        &[
            dist2rbox(&dist, &pred_angle, &anchors.unsqueeze(0), -1),
            pred_angle.shallow_clone(),
        ],
        -1,
    );
    let st = stride_t.unsqueeze(0); // (1, a, 1)
    let asg = tch::no_grad(|| {
        let pd = pred_bboxes.detach();
        let pd = Tensor::cat(&[pd.narrow(-1, 0, 4) * &st, pd.narrow(-1, 4, 1)], -1);
        assign_rotated(
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
    let zero = || Tensor::zeros([], (Kind::Float, dev));
    let (loss_box, loss_dfl, loss_angle) = if fg.any().int64_value(&[]) != 0 {
        let tb = &asg.target_bboxes;
        let target = Tensor::cat(&[tb.narrow(-1, 0, 4) / &st, tb.narrow(-1, 4, 1)], -1);
        let sel = |x: &Tensor| {
            let w = x.size()[2];
            x.masked_select(&fg.unsqueeze(-1).expand_as(x))
                .view([-1, w])
        };
        let weight = asg
            .target_scores
            .sum_dim_intlist(-1, false, Kind::Float)
            .masked_select(fg)
            .unsqueeze(-1); // (n_fg, 1)
        let iou = probiou(&sel(&pred_bboxes), &sel(&target), 0.01).unsqueeze(-1);
        let loss_box = ((iou.neg() + 1.0) * &weight).sum(Kind::Float) / &tss;
        let ltrb = rbox2dist(
            &target.narrow(-1, 0, 4),
            &anchors,
            &target.narrow(-1, 4, 1),
            Some((REG_MAX - 1) as f64),
        );
        let loss_dfl = dfl_sum(&pred_distri, fg, &sel(&ltrb), &weight) / &tss;
        let loss_angle = angle_term(&pred_bboxes, &target, fg, &weight) / &tss;
        (loss_box, loss_dfl, loss_angle)
    } else {
        // No foreground: zero, but keep the box and angle outputs in the graph (as 8.4 does).
        let z =
            (&pred_angle * 0.0).sum(Kind::Float) + pred_distri.narrow(-1, 0, 0).sum(Kind::Float);
        (z, zero(), zero())
    };
    ObbTerms {
        box_loss: loss_box * cfg.box_gain,
        cls_loss: loss_cls * cfg.cls_gain,
        dfl_loss: loss_dfl * cfg.dfl_gain,
        angle_loss: loss_angle * angle_gain,
        assignment: asg,
        kept_targets,
    }
}

/// Σ over foreground anchors of `ω · sin²(2Δ) · weight`, Δ = θ_pred − θ_target wrapped to
/// [−π/2, π/2] (round half to even), `ω = exp(−ln²(w/h) / 9)` of the target (grid units).
fn angle_term(pred: &Tensor, target: &Tensor, fg: &Tensor, weight: &Tensor) -> Tensor {
    let pi = std::f64::consts::PI;
    let (w, h) = (target.select(-1, 2), target.select(-1, 3));
    let log_ar = ((w + 1e-9) / (h + 1e-9)).log();
    let scale = (log_ar.pow_tensor_scalar(2).neg() / 9.0).exp();
    let delta = pred.select(-1, 4) - target.select(-1, 4);
    let wrapped = &delta - (&delta / pi).round() * pi;
    let ang = (wrapped.masked_select(fg) * 2.0).sin().pow_tensor_scalar(2);
    (scale.masked_select(fg) * ang * weight.squeeze_dim(-1)).sum(Kind::Float)
}
