//! Segmentation-loss parity with Ultralytics 8.4.190 (fixtures/ultralytics/segment/loss_fixture.json):
//! the five loss items (1e-4 relative in eval mode, 1e-3 in train mode), the foreground counts and the
//! gradient abs-sums of nine parameters (the same tolerances), for overlap and non-overlap masks; plus an empty
//! batch and a mask grid finer than the prototypes.

mod common;
use ryolo::loss::segment::segmentation_loss;
use ryolo::loss::{LossConfig, Targets};
use ryolo::nn::DetectionModel;
use ryolo::weights::load_model;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

fn model(fx: &Path) -> DetectionModel {
    load_model(
        fx.join("yolo11n-seg_seed0.pt").to_str().unwrap(),
        None,
        Device::Cpu,
    )
    .unwrap()
    .model
}

fn images(fx: &Path) -> Tensor {
    Tensor::read_npy(fx.join("loss_images_u8.npy"))
        .unwrap()
        .to_kind(Kind::Float)
        / 255.0
}

/// Target rows `[batch_idx, cls, cx, cy, w, h]` (normalised) from the fixture's npy.
fn targets(path: &Path) -> Targets {
    let t = Tensor::read_npy(path).unwrap().to_kind(Kind::Float);
    let rows: Vec<Vec<f32>> = Vec::<Vec<f32>>::try_from(&t).unwrap();
    let mut out = Targets::default();
    for r in rows {
        out.batch_idx.push(r[0] as i64);
        out.cls.push(r[1] as i64);
        out.bboxes.push([r[2], r[3], r[4], r[5]]);
    }
    out
}

#[test]
fn segmentation_loss_matches_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/segment");
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("loss_fixture.json")).unwrap())
            .unwrap();
    let x = images(&fx);
    let names = ["box_loss", "seg_loss", "cls_loss", "dfl_loss", "sem_loss"];
    for (tag, overlap) in [("overlap", true), ("nonoverlap", false)] {
        let fm = &f["modes"][tag];
        assert_eq!(fm["overlap_mask"].as_bool(), Some(overlap));
        let t = targets(&fx.join(fm["targets_file"].as_str().unwrap()));
        let masks = Tensor::read_npy(fx.join(fm["masks_file"].as_str().unwrap())).unwrap();
        assert_eq!(masks.kind(), Kind::Uint8);
        for (mode, train, tol) in [("eval", false, 1e-4), ("train", true, 1e-3)] {
            let want = &fm[mode];
            let m = model(&fx);
            let raw = m.forward_raw(&x, train);
            let out =
                segmentation_loss(&LossConfig::default(), &raw, &m.stride, &t, &masks, overlap);
            let items = Vec::<f64>::try_from(out.items.to_kind(Kind::Double)).unwrap();
            assert_eq!(items.len(), 5);
            for (k, name) in names.iter().enumerate() {
                let w = want["loss_items"][name].as_f64().unwrap();
                println!(
                    "{tag} {mode} {name}: ours {:.7} ultralytics {w:.7} rel {:.2e}",
                    items[k],
                    rel(items[k], w)
                );
                if w == 0.0 {
                    assert_eq!(items[k], 0.0, "{tag} {mode} {name}");
                } else {
                    assert!(
                        rel(items[k], w) <= tol,
                        "{tag} {mode} {name}: {} vs {w}",
                        items[k]
                    );
                }
            }
            let total = out.total.double_value(&[]);
            let w = want["loss_sum_backpropagated"].as_f64().unwrap();
            println!("{tag} {mode} total: ours {total:.5} ultralytics {w:.5}");
            assert!(rel(total, w) <= tol, "{tag} {mode} total: {total} vs {w}");
            let per_image =
                Vec::<i64>::try_from(out.fg_mask.sum_dim_intlist(1, false, Kind::Int64)).unwrap();
            let want_per: Vec<i64> = want["foreground_per_image"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            println!("{tag} {mode} fg per image: ours {per_image:?} ultralytics {want_per:?}");
            assert_eq!(per_image, want_per, "{tag} {mode} foreground per image");
            assert_eq!(
                per_image.iter().sum::<i64>(),
                want["num_foreground_anchors"].as_i64().unwrap()
            );
            out.total.backward();
            let vars = m.vs.variables();
            let grads = want["grad_abs_sum"].as_object().unwrap();
            assert_eq!(grads.len(), 9);
            for (name, w) in grads {
                let g = vars[name].grad().abs().sum(Kind::Double).double_value(&[]);
                let w = w.as_f64().unwrap();
                println!(
                    "{tag} {mode} grad {name}: ours {g:.6e} ultralytics {w:.6e} rel {:.2e}",
                    rel(g, w)
                );
                assert!(rel(g, w) <= tol, "{tag} {mode} grad {name}: {g} vs {w}");
            }
        }
    }
}

#[test]
fn segmentation_loss_without_instances_is_zero_and_differentiable() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/segment");
    let x = images(&fx);
    for overlap in [true, false] {
        let m = model(&fx);
        let raw = m.forward_raw(&x, true);
        let masks = if overlap {
            Tensor::zeros([4, 80, 80], (Kind::Uint8, Device::Cpu))
        } else {
            Tensor::zeros([0, 80, 80], (Kind::Uint8, Device::Cpu))
        };
        let out = segmentation_loss(
            &LossConfig::default(),
            &raw,
            &m.stride,
            &Targets::default(),
            &masks,
            overlap,
        );
        let items = Vec::<f64>::try_from(out.items.to_kind(Kind::Double)).unwrap();
        assert_eq!(items[0], 0.0);
        assert_eq!(items[1], 0.0);
        assert_eq!(items[3], 0.0);
        assert_eq!(items[4], 0.0);
        assert!(items[2] > 0.0, "class loss stays positive: {items:?}");
        assert_eq!(out.fg_mask.sum(Kind::Int64).int64_value(&[]), 0);
        out.total.backward();
        // The mask branch is in the graph (zero gradient, not a missing one).
        let g = m.vs.variables()["model.23.proto.cv3.conv.weight"].grad();
        assert!(g.defined());
        assert_eq!(g.abs().sum(Kind::Double).double_value(&[]), 0.0);
    }
}

#[test]
fn segmentation_loss_with_masks_finer_than_protos() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/segment");
    let x = images(&fx);
    let m = model(&fx);
    let raw = m.forward_raw(&x, false);
    // Ultralytics 8.4.190 on the same model/batch in eval mode with the fixture masks nearest-upsampled
    // to 160x160 (`F.interpolate(masks[None], (160, 160), mode="nearest")[0]`), seg_loss item:
    let want_seg = [5.165008068084717, 5.165071487426758];
    for (k, (tag, overlap)) in [("overlap", true), ("nonoverlap", false)]
        .into_iter()
        .enumerate()
    {
        let t = targets(&fx.join(format!("loss_targets_{tag}.npy")));
        let masks = Tensor::read_npy(fx.join(format!("loss_masks_{tag}.npy"))).unwrap();
        // mask_ratio 2: a 160x160 grid (nearest 2x of the ratio-4 masks); protos are bilinearly resized.
        let fine = masks
            .unsqueeze(1)
            .to_kind(Kind::Float)
            .upsample_nearest2d([160, 160], None, None)
            .squeeze_dim(1)
            .to_kind(Kind::Uint8);
        let cfg = LossConfig::default();
        let coarse = segmentation_loss(&cfg, &raw, &m.stride, &t, &masks, overlap);
        let out = segmentation_loss(&cfg, &raw, &m.stride, &t, &fine, overlap);
        let a = Vec::<f64>::try_from(coarse.items.to_kind(Kind::Double)).unwrap();
        let b = Vec::<f64>::try_from(out.items.to_kind(Kind::Double)).unwrap();
        println!("{tag}: ratio 4 {a:?} ratio 2 {b:?}");
        for j in [0, 2, 3] {
            assert_eq!(a[j], b[j], "{tag}: detection item {j} must not change");
        }
        println!(
            "{tag} ratio 2 seg_loss: ours {:.7} ultralytics {:.7} rel {:.2e}",
            b[1],
            want_seg[k],
            rel(b[1], want_seg[k])
        );
        assert!(
            rel(b[1], want_seg[k]) <= 1e-4,
            "{tag}: {} vs {}",
            b[1],
            want_seg[k]
        );
    }
}
