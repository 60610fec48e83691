//! Segment models against Ultralytics 8.4.190 (fixtures/ultralytics/segment): the seed-0 yolo11n-seg
//! checkpoint's forward (output0 and protos, unfused and fused) and the summary lines of all ten
//! `-seg` models.

mod common;
use ryolo::nn::{DetectionModel, ModelSpec};
use ryolo::weights::load_model;
use tch::{Device, Tensor};

fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a - b).abs().max().double_value(&[]);
    d / b.abs().max().double_value(&[]).max(1e-30)
}

#[test]
fn yolo11n_seg_forward_matches_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/segment");
    let mut loaded = load_model(
        fx.join("yolo11n-seg_seed0.pt").to_str().unwrap(),
        None,
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(loaded.model.task(), ryolo::task::TaskKind::Segment);
    assert_eq!(loaded.model.head.nm(), 32);
    assert_eq!(loaded.model.stride, vec![8.0, 16.0, 32.0]);
    assert_eq!(loaded.model.names.len(), 80);
    assert_eq!(loaded.model.names[79], "79");
    let x = Tensor::read_npy(fx.join("model_input.npy")).unwrap();
    for fused in [false, true] {
        let sfx = if fused { "_fused" } else { "" };
        if fused {
            loaded.model.fuse();
        }
        let want0 = Tensor::read_npy(fx.join(format!("model_output0{sfx}.npy"))).unwrap();
        let want1 = Tensor::read_npy(fx.join(format!("model_proto{sfx}.npy"))).unwrap();
        let (y, p) = tch::no_grad(|| loaded.model.predict_with_protos(&x));
        let p = p.expect("a Segment model returns prototypes");
        assert_eq!(y.size(), want0.size());
        assert_eq!(p.size(), want1.size());
        // Each block of output0 on its own scale: boxes (pixels), scores (~1e-4), coefficients.
        for (name, lo, n) in [("boxes", 0, 4), ("scores", 4, 80), ("coefs", 84, 32)] {
            let d = max_rel(&y.narrow(1, lo, n), &want0.narrow(1, lo, n));
            println!("fused={fused}: {name} max rel diff {d:.3e}");
            assert!(d <= 1e-5, "{name} differ by {d} (fused={fused})");
        }
        let d = max_rel(&p, &want1);
        println!("fused={fused}: protos max rel diff {d:.3e}");
        assert!(d <= 1e-5, "protos differ by {d} (fused={fused})");
    }
}

#[test]
fn seg_param_counts_match_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let text =
        std::fs::read_to_string(shared.join("fixtures/ultralytics/segment/param_counts.json"))
            .unwrap();
    let fx: serde_json::Value = serde_json::from_str(&text).unwrap();
    for name in [
        "yolov8n-seg",
        "yolov8s-seg",
        "yolov8m-seg",
        "yolov8l-seg",
        "yolov8x-seg",
        "yolo11n-seg",
        "yolo11s-seg",
        "yolo11m-seg",
        "yolo11l-seg",
        "yolo11x-seg",
    ] {
        let lines = fx[name]["summary_lines"].as_array().unwrap();
        let spec = ModelSpec::from_name(&format!("{name}.yaml"), None).unwrap();
        // The estimate from the YAML alone agrees with the built model.
        let cost = spec.cost().unwrap();
        let per_layer = fx[name]["per_layer_params"].as_array().unwrap();
        let want_head = per_layer.last().unwrap()[2].as_i64().unwrap();
        let mut m = DetectionModel::new(spec, Device::Cpu).unwrap();
        let info = m.info();
        println!("{name}: {:.6} GFLOPs", info.gflops);
        assert_eq!(info.to_string(), lines[0].as_str().unwrap(), "{name}");
        assert_eq!(cost.params, info.params as f64, "{name}: YAML estimate");
        assert!(
            (2.0 * cost.macs / 1e9 - info.gflops).abs() < 1e-6,
            "{name}: GFLOPs estimate"
        );
        let head: i64 =
            m.vs.variables()
                .iter()
                .filter(|(k, _)| {
                    k.starts_with(&format!("model.{}.", per_layer.len() - 1))
                        && !k.ends_with("running_mean")
                        && !k.ends_with("running_var")
                })
                .map(|(_, t)| t.numel() as i64)
                .sum();
        assert_eq!(head, want_head, "{name}: Segment head parameters");
        m.fuse();
        assert_eq!(m.info().to_string(), lines[1].as_str().unwrap(), "{name}");
        println!("{name}: {info}");
    }
}
