//! Loss parity with Ultralytics (loss_fixture.json): the three loss items within 1e-4 relative in eval
//! mode and 1e-3 in train mode; gradient abs-sums of five parameters within 1e-3 relative.

mod common;
use ryolo::loss::{detection_loss, LossConfig, Targets};
use ryolo::weights::load_model;
use tch::{Device, Kind, Tensor};

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

#[test]
fn loss_and_gradients_match_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics");
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("loss_fixture.json")).unwrap())
            .unwrap();
    let x = Tensor::read_npy(fx.join("loss_input.npy")).unwrap();
    let nums = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    let t = Targets {
        batch_idx: nums(&f["targets_batch_idx"])
            .into_iter()
            .map(|v| v as i64)
            .collect(),
        cls: nums(&f["targets_cls"])
            .into_iter()
            .map(|v| v as i64)
            .collect(),
        bboxes: f["targets_bboxes_cxcywh_norm"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let v = nums(b);
                [v[0] as f32, v[1] as f32, v[2] as f32, v[3] as f32]
            })
            .collect(),
        ..Default::default()
    };
    for (mode, train, tol) in [("eval", false, 1e-4), ("train", true, 1e-3)] {
        let m = load_model(
            fx.join("bt_yolo11n_best.pt").to_str().unwrap(),
            None,
            Device::Cpu,
        )
        .unwrap()
        .model;
        let raw = m.forward_raw(&x, train);
        let out = detection_loss(&LossConfig::default(), &raw, &m.stride, &t);
        let items: Vec<f64> = Vec::<f64>::try_from(out.items.to_kind(Kind::Double)).unwrap();
        let want = &f[mode]["loss_items"];
        for (k, name) in ["box_loss", "cls_loss", "dfl_loss"].iter().enumerate() {
            let w = want[name].as_f64().unwrap();
            println!(
                "{mode} {name}: ours {:.6} ultralytics {w:.6} rel {:.2e}",
                items[k],
                rel(items[k], w)
            );
            assert!(
                rel(items[k], w) <= tol,
                "{mode} {name}: {} vs {w}",
                items[k]
            );
        }
        out.total.backward();
        let vars = m.vs.variables();
        for (name, w) in f[mode]["grad_abs_sum"].as_object().unwrap() {
            let g = vars[name].grad().abs().sum(Kind::Double).double_value(&[]);
            let w = w.as_f64().unwrap();
            println!(
                "{mode} grad {name}: ours {g:.4} ultralytics {w:.4} rel {:.2e}",
                rel(g, w)
            );
            assert!(rel(g, w) <= 1e-3, "{mode} grad {name}: {g} vs {w}");
        }
    }
}
