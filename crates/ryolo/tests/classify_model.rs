//! Classify models against Ultralytics 8.4.190 (fixtures/ultralytics/classify): the trained
//! yolo11n-cls checkpoint's logits on the eval inputs (unfused and fused), the seed-0 checkpoint,
//! and the sizes of all ten `-cls` models.

mod common;
use ryolo::nn::{DetectionModel, ModelSpec};
use ryolo::weights::load_model;
use tch::{Device, Tensor};

fn json(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn yolo11n_cls_logits_match_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/classify");
    let want = json(&fx.join("cls_eval.json"));
    for (ckpt, key) in [
        ("cls_yolo11n.pt", "best"),
        ("cls_yolo11n_seed0.pt", "seed0"),
    ] {
        let mut loaded = load_model(fx.join(ckpt).to_str().unwrap(), None, Device::Cpu).unwrap();
        assert_eq!(loaded.model.task(), ryolo::task::TaskKind::Classify);
        assert_eq!(loaded.model.names, vec!["bowl", "chair", "person"]);
        for fused in [false, true] {
            if fused {
                loaded.model.fuse();
            }
            for img in ["bus", "zidane"] {
                let x = Tensor::read_npy(fx.join(format!("cls_eval_{img}_input.npy"))).unwrap();
                let raw = tch::no_grad(|| loaded.model.forward_raw(&x, false));
                let logits =
                    Vec::<f64>::try_from(raw.scores.view([-1]).to_kind(tch::Kind::Double)).unwrap();
                let probs = Vec::<f64>::try_from(
                    tch::no_grad(|| loaded.model.predict(&x))
                        .view([-1])
                        .to_kind(tch::Kind::Double),
                )
                .unwrap();
                let field = if fused { "fused_logits" } else { "logits" };
                let w = floats(&want[img][key][field]);
                let wp = floats(&want[img][key]["probs"]);
                for c in 0..3 {
                    let d = (logits[c] - w[c]).abs();
                    assert!(
                        d <= 1e-4,
                        "{ckpt} {img} fused={fused} logit {c}: {} vs {}",
                        logits[c],
                        w[c]
                    );
                    let dp = (probs[c] - wp[c]).abs();
                    assert!(
                        dp <= 1e-4,
                        "{ckpt} {img} fused={fused} prob {c}: {} vs {}",
                        probs[c],
                        wp[c]
                    );
                }
                println!("{ckpt} {img} fused={fused}: logits {logits:?}");
            }
        }
    }
}

#[test]
fn cls_model_sizes_match_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = json(&shared.join("fixtures/ultralytics/classify/cls_params.json"));
    for (name, v) in fx.as_object().unwrap() {
        let spec = ModelSpec::from_name(name, None).unwrap();
        let cost = spec.cost().unwrap();
        let mut m = DetectionModel::new(spec, Device::Cpu).unwrap();
        let info = m.info();
        println!("{name}: {info} ({:.4} GFLOPs)", info.gflops);
        assert_eq!(info.params, v["params"].as_i64().unwrap(), "{name} params");
        assert_eq!(
            info.layers as i64,
            v["layers"].as_i64().unwrap(),
            "{name} layers"
        );
        assert_eq!(cost.params, info.params as f64, "{name}: YAML estimate");
        let g = v["gflops_640"].as_f64().unwrap();
        assert!(
            (info.gflops - g).abs() < 0.05,
            "{name}: {} vs {g} GFLOPs",
            info.gflops
        );
        let per_layer = v["per_layer_params"].as_array().unwrap();
        let head = per_layer.last().unwrap()[2].as_i64().unwrap();
        let idx = per_layer.len() - 1;
        let got: i64 =
            m.vs.variables()
                .iter()
                .filter(|(k, _)| {
                    k.starts_with(&format!("model.{idx}."))
                        && !k.ends_with("running_mean")
                        && !k.ends_with("running_var")
                })
                .map(|(_, t)| t.numel() as i64)
                .sum();
        assert_eq!(got, head, "{name}: Classify head parameters");
        m.fuse();
        let f = m.info();
        assert_eq!(
            f.params,
            v["fused_params"].as_i64().unwrap(),
            "{name} fused params"
        );
        assert_eq!(
            f.layers as i64,
            v["fused_layers"].as_i64().unwrap(),
            "{name} fused layers"
        );
    }
}
