//! `batch=` prediction: one forward for several images gives each image the detections it gets
//! alone (same-size images keep the rectangle; mixed sizes share the square canvas).

mod common;
use ryolo::engine::predict::{load_image, Predictor};
use tch::Device;

#[test]
fn batched_predictions_equal_single_ones() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    let mut p = Predictor::load(fx.to_str().unwrap(), 640, Device::Cpu).unwrap();
    let dir = shared.join("datasets/brain-tumor/valid/images");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let imgs: Vec<_> = files.iter().map(|f| load_image(f).unwrap()).collect();
    let same: Vec<_> = imgs
        .iter()
        .filter(|i| i.dimensions() == imgs[0].dimensions())
        .take(4)
        .cloned()
        .collect();
    let mixed: Vec<_> = {
        let mut v = vec![imgs[0].clone()];
        v.extend(
            imgs.iter()
                .find(|i| i.dimensions() != imgs[0].dimensions())
                .cloned(),
        );
        v
    };
    assert!(
        same.len() == 4 && mixed.len() == 2,
        "fixture images changed"
    );
    let close = |a: &[ryolo::ops::Detection], b: &[ryolo::ops::Detection]| {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.cls, y.cls);
            assert!((x.conf - y.conf).abs() < 1e-4);
            for (u, v) in x.xyxy.iter().zip(&y.xyxy) {
                assert!((u - v).abs() < 0.05, "{u} {v}");
            }
        }
    };
    let batched = p.predict_batch(&same).unwrap();
    for (img, b) in same.iter().zip(&batched) {
        let one = p.predict(img).unwrap();
        assert_eq!(one.letterbox.shape, b.letterbox.shape);
        close(&one.detections, &b.detections);
    }
    let batched = p.predict_batch(&mixed).unwrap();
    p.rect = false;
    for (img, b) in mixed.iter().zip(&batched) {
        assert_eq!(b.letterbox.shape, (640, 640));
        close(&p.predict(img).unwrap().detections, &b.detections);
    }
}
