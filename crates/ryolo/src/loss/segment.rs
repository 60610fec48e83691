//! The instance-segmentation loss of Ultralytics 8.4 (`v8SegmentationLoss`, spec/segment.md §5): the
//! detection terms plus a per-instance mask BCE cropped to the assigned gt box and normalised by its area.

use super::{detection_terms, LossConfig, LossOutput, Targets};
use crate::nn::model::RawOutput;
use crate::ops::masks::crop_mask;
use tch::{Kind, Reduction, Tensor};

/// `v8SegmentationLoss` for a batch. `raw.masks` must hold the mask coefficients `(B, nm, A)` and the
/// prototypes `(B, nm, mh, mw)`. `masks` are the batch's gt masks (any integer or float kind):
/// `overlap` → `(B, Hm, Wm)` index maps where value `k` marks the image's `k`-th target row (1-based);
/// otherwise `(N, Hm, Wm)` binary masks aligned with the target rows. When `(Hm, Wm)` differs from the
/// prototype size the prototypes are bilinearly resized to it (8.4). Items are
/// `[box, seg, cls, dfl, sem]` after gains (seg uses the box gain, sem is always 0);
/// `total = sum(items) · B`.
pub fn segmentation_loss(
    cfg: &LossConfig,
    raw: &RawOutput,
    strides: &[f64],
    targets: &Targets,
    masks: &Tensor,
    overlap: bool,
) -> LossOutput {
    let (coefs, protos) = raw
        .masks
        .as_ref()
        .expect("segmentation_loss needs a Segment head's mask outputs");
    let det = detection_terms(cfg, raw, strides, targets);
    let b = raw.boxes.size()[0];
    let pred = coefs.to_kind(Kind::Float).permute([0, 2, 1]).contiguous(); // (B, A, nm)
    let mut proto = protos.to_kind(Kind::Float); // (B, nm, mh, mw)
    let asg = &det.assignment;
    let n_fg = asg.fg_mask.sum(Kind::Int64);
    let seg = if n_fg.int64_value(&[]) > 0 {
        let dev = proto.device();
        let masks = masks.to_device(dev).to_kind(Kind::Float);
        let (hm, wm) = (masks.size()[1], masks.size()[2]);
        let (mh, mw) = (proto.size()[2], proto.size()[3]);
        if (hm, wm) != (mh, mw) {
            proto = proto.upsample_bilinear2d([hm, wm], false, None, None);
        }
        let img_h = raw.shapes[0].0 as f64 * strides[0];
        let img_w = raw.shapes[0].1 as f64 * strides[0];
        let seg = mask_term(
            &asg.fg_mask,
            &asg.target_gt_idx,
            &asg.target_bboxes,
            &pred,
            &proto,
            &masks,
            if overlap {
                MaskTargets::IndexMap
            } else {
                MaskTargets::PerRow(rows_per_image(&targets.batch_idx, b))
            },
            (img_h, img_w),
        );
        seg / n_fg
    } else {
        // No foreground: zero, but keep the mask outputs in the graph (as 8.4 does).
        (&proto * 0.0).sum(Kind::Float) + (&pred * 0.0).sum(Kind::Float)
    };
    let items = Tensor::stack(
        &[
            det.box_loss,
            seg * cfg.box_gain,
            det.cls_loss,
            det.dfl_loss,
            Tensor::zeros([], (Kind::Float, raw.boxes.device())),
        ],
        0,
    );
    LossOutput {
        total: items.sum(Kind::Float) * b as f64,
        items: items.detach(),
        fg_mask: det.assignment.fg_mask,
    }
}

/// How gt masks are looked up.
enum MaskTargets {
    /// `(B, Hm, Wm)` maps, value `k + 1` = the image's `k`-th target.
    IndexMap,
    /// `(N, Hm, Wm)` masks; per image, the global row of each of its targets (label order).
    PerRow(Vec<Vec<i64>>),
}

/// Global target rows of each image, in label order (rows with an out-of-range image index are skipped,
/// as the detection loss skips them).
fn rows_per_image(batch_idx: &[i64], b: i64) -> Vec<Vec<i64>> {
    let mut rows = vec![Vec::new(); b.max(0) as usize];
    for (k, &i) in batch_idx.iter().enumerate() {
        if (0..b).contains(&i) {
            rows[i as usize].push(k as i64);
        }
    }
    rows
}

/// Σ over images and foreground anchors of `mean(crop(BCE(coef · proto, gt), box)) / area` (not yet
/// divided by the foreground count). Boxes are `(B, A, 4)` xyxy input pixels of size `(img_h, img_w)`.
#[allow(clippy::too_many_arguments)]
fn mask_term(
    fg_mask: &Tensor,
    gt_idx: &Tensor,
    target_bboxes: &Tensor,
    pred: &Tensor,
    proto: &Tensor,
    masks: &Tensor,
    lookup: MaskTargets,
    (img_h, img_w): (f64, f64),
) -> Tensor {
    let dev = proto.device();
    let (b, nm, mh, mw) = proto.size4().expect("(B, nm, mh, mw) prototypes");
    let scale = |v: [f32; 4]| Tensor::from_slice(&v).to_device(dev);
    let tb_n = target_bboxes / scale([img_w as f32, img_h as f32, img_w as f32, img_h as f32]);
    let c = tb_n.unbind(-1);
    let area = (&c[2] - &c[0]) * (&c[3] - &c[1]); // (B, A) image fraction
    let mxyxy = &tb_n * scale([mw as f32, mh as f32, mw as f32, mh as f32]);
    let mut loss = Tensor::zeros([], (Kind::Float, dev));
    for i in 0..b {
        let fg = fg_mask.get(i);
        let n = fg.sum(Kind::Int64).int64_value(&[]);
        if n == 0 {
            loss += (proto * 0.0).sum(Kind::Float) + (pred * 0.0).sum(Kind::Float);
            continue;
        }
        let idx = gt_idx.get(i).masked_select(&fg); // (n,)
        let gt = match &lookup {
            MaskTargets::IndexMap => masks
                .get(i)
                .eq_tensor(&(&idx + 1).to_kind(Kind::Float).view([-1, 1, 1]))
                .to_kind(Kind::Float),
            MaskTargets::PerRow(rows) => {
                let rows = Tensor::from_slice(&rows[i as usize]).to_device(dev);
                masks.index_select(0, &rows.index_select(0, &idx))
            }
        };
        let sel = |x: &Tensor, w: i64| {
            x.get(i)
                .masked_select(&fg.unsqueeze(-1).expand([-1, w], false))
                .view([n, w])
        };
        let coef = sel(pred, nm); // (n, nm)
        let logits = coef
            .matmul(&proto.get(i).view([nm, mh * mw]))
            .view([n, mh, mw]);
        let bce =
            logits.binary_cross_entropy_with_logits::<Tensor>(&gt, None, None, Reduction::None);
        let per = crop_mask(&bce, &sel(&mxyxy, 4)).mean_dim(&[1i64, 2][..], false, Kind::Float)
            / area.get(i).masked_select(&fg);
        loss += per.sum(Kind::Float);
    }
    loss
}
