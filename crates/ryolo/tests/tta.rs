//! Test-time augmentation (`augment=True`, spec/inference.md §7): the anchor bookkeeping of the three
//! scales, and boxes that land where the plain prediction puts them (a wrong flip would mirror them).

mod common;
use ryolo::engine::predict::{load_image, Predictor};
use ryolo::nn::DetectionModel;
use ryolo::ops::NmsConfig;
use tch::{Device, Kind, Tensor};

#[test]
fn three_scales_keep_the_expected_anchors() {
    let spec = ryolo::nn::ModelSpec::from_name("yolo11n.yaml", Some(2)).unwrap();
    let m = DetectionModel::new(spec, Device::Cpu).unwrap();
    let x = Tensor::rand([1, 3, 640, 640], (Kind::Float, Device::Cpu));
    let y = tch::no_grad(|| m.predict_augment(&x));
    // 640: 8400 - 8400/21 = 8000; 0.83 -> 531 padded to 544: 6069; 0.67 -> 428 padded to 448:
    // 4116 - 16 * 4116/21 = 980.
    assert_eq!(y.size(), [1, 6, 8000 + 6069 + 980]);
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let i = iw * ih;
    i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i)
}

#[test]
fn augmented_boxes_match_the_plain_ones() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics");
    let load = |conf: f32, augment: bool| {
        let mut p = Predictor::load(
            fx.join("bt_yolo11n_best.pt").to_str().unwrap(),
            640,
            Device::Cpu,
        )
        .unwrap();
        p.nms = NmsConfig {
            conf,
            ..NmsConfig::default()
        };
        p.augment = augment;
        p
    };
    let (plain, tta) = (load(0.05, false), load(0.3, true));
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("bt_predict.json")).unwrap())
            .unwrap();
    let mut checked = 0;
    for item in want["predict"].as_array().unwrap() {
        let name = item["image"].as_str().unwrap();
        let img = load_image(&shared.join("datasets/brain-tumor/valid/images").join(name)).unwrap();
        let p = plain.predict(&img).unwrap().detections;
        for d in tta.predict(&img).unwrap().detections {
            let best = p.iter().map(|q| iou(&d.xyxy, &q.xyxy)).fold(0.0, f32::max);
            assert!(
                best > 0.5,
                "{name}: TTA box {:?} has no plain counterpart",
                d.xyxy
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "{checked}");
}
