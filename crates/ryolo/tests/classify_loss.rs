//! Classification loss against Ultralytics 8.4.190 (cls_loss.json): the cross-entropy of
//! cls_yolo11n.pt on a fixed 4-image batch in eval mode (running BatchNorm statistics) and train
//! mode (batch statistics), the eval logits, and the gradient abs-sums of six parameters after the
//! train-mode backward.

mod common;
use ryolo::weights::load_model;
use tch::{Device, Kind, Tensor};

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

#[test]
fn cls_loss_and_gradients_match_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/classify");
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("cls_loss.json")).unwrap()).unwrap();
    let x = Tensor::read_npy(fx.join("cls_loss_input.npy")).unwrap();
    let cls: Vec<i64> = f["cls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let y = Tensor::from_slice(&cls);
    let path = fx.join("cls_yolo11n.pt");
    // Eval mode: running statistics; the logits too.
    let m = load_model(path.to_str().unwrap(), None, Device::Cpu)
        .unwrap()
        .model;
    let logits = tch::no_grad(|| m.forward_raw(&x, false).scores);
    let loss = logits.cross_entropy_for_logits(&y).double_value(&[]);
    let want = f["eval"]["loss"].as_f64().unwrap();
    println!("eval loss {loss} vs {want}");
    assert!(rel(loss, want) <= 1e-4, "eval loss {loss} vs {want}");
    let got = Vec::<f64>::try_from(logits.view([-1]).to_kind(Kind::Double)).unwrap();
    let wl: Vec<f64> = f["eval"]["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    for (a, b) in got.iter().zip(&wl) {
        assert!((a - b).abs() <= 1e-4, "eval logit {a} vs {b}");
    }
    // Train mode: batch statistics, then gradients.
    let m = load_model(path.to_str().unwrap(), None, Device::Cpu)
        .unwrap()
        .model;
    let loss_t = m.forward_raw(&x, true).scores.cross_entropy_for_logits(&y);
    let lt = loss_t.double_value(&[]);
    let want = f["train"]["loss"].as_f64().unwrap();
    println!("train loss {lt} vs {want}");
    assert!(rel(lt, want) <= 1e-3, "train loss {lt} vs {want}");
    loss_t.backward();
    let vars = m.vs.variables();
    for (name, w) in f["grad_abs_sum"].as_object().unwrap() {
        let g = vars[name].grad().abs().sum(Kind::Double).double_value(&[]);
        let w = w.as_f64().unwrap();
        println!("{name}: {g} vs {w}");
        assert!(rel(g, w) <= 1e-3, "{name} grad abs-sum {g} vs {w}");
    }
}
