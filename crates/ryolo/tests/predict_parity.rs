//! Predict parity with Ultralytics on the 8 images of bt_predict.json: same number of boxes, boxes
//! within 1 px, confidences within 2e-3, on libtorch and on ONNX Runtime (in-memory export of the
//! loaded model; see `common::engines`).

mod common;
use ryolo::engine::predict::{load_image, Predictor};
use ryolo::ops::NmsConfig;
use ryolo::weights::load_model;
use tch::Device;

#[test]
fn bt_predictions_match_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics");
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("bt_predict.json")).unwrap())
            .unwrap();
    for engine in common::engines() {
        let model = load_model(
            fx.join("bt_yolo11n_best.pt").to_str().unwrap(),
            None,
            Device::Cpu,
        )
        .unwrap()
        .model;
        let p = Predictor::with_backend(
            common::on_engine(model, engine),
            (640, 640),
            NmsConfig::default(),
        );
        check(&shared, &want, &p, engine.name());
    }
}

/// Predicts the fixture's images with `p` and checks them against Ultralytics'.
fn check(shared: &std::path::Path, want: &serde_json::Value, p: &Predictor, engine: &str) {
    let (mut max_box, mut max_conf, mut total) = (0f64, 0f64, 0);
    for item in want["predict"].as_array().unwrap() {
        let name = item["image"].as_str().unwrap();
        let img = load_image(&shared.join("datasets/brain-tumor/valid/images").join(name)).unwrap();
        let got = p.predict(&img).unwrap().detections;
        let xyxy = item["xyxy"].as_array().unwrap();
        assert_eq!(got.len(), xyxy.len(), "[{engine}] {name}: number of boxes");
        for (i, d) in got.iter().enumerate() {
            let wb: Vec<f64> = xyxy[i]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            for (g, w) in d.xyxy.iter().zip(&wb) {
                max_box = max_box.max((*g as f64 - w).abs());
            }
            max_conf = max_conf.max((d.conf as f64 - item["conf"][i].as_f64().unwrap()).abs());
            assert_eq!(
                d.cls as f64,
                item["cls"][i].as_f64().unwrap(),
                "[{engine}] {name} box {i}: class"
            );
            total += 1;
        }
    }
    println!("[{engine}] {total} boxes: max box error {max_box:.4} px, max confidence error {max_conf:.2e}");
    assert!(total > 0);
    assert!(max_box <= 1.0, "[{engine}] box error {max_box} px");
    assert!(max_conf <= 2e-3, "[{engine}] confidence error {max_conf}");
}
