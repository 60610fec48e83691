//! `.onnx` models run through ONNX Runtime (`model=x.onnx`): Ultralytics' own export of the
//! brain-tumor model gives the fixture's raw output, the same detections as our libtorch forward of
//! the `.pt`, and Ultralytics' validation metrics.

mod common;
use ryolo::engine::backend::{Backend, ModelRef};
use ryolo::engine::onnx::parse_names;
use ryolo::engine::predict::{load_image, Predictor};
use ryolo::engine::val::{validate, ValConfig};
use ryolo::ops::NmsConfig;
use tch::{Device, Tensor};

fn ultralytics_onnx() -> Option<(std::path::PathBuf, Backend)> {
    let shared = common::shared()?;
    let f = shared.join("fixtures/ultralytics/bt_yolo11n_best.onnx");
    // Only a missing runtime library may skip; CI installs it (scripts/setup.sh).
    let b = common::ort_or_skip(Backend::load(f.to_str().unwrap(), Device::Cpu))?;
    Some((shared, b))
}

#[test]
fn names_metadata_is_parsed_like_a_python_dict() {
    assert_eq!(
        parse_names("{0: 'negative', 1: 'positive'}"),
        vec!["negative", "positive"]
    );
    assert_eq!(
        parse_names(r#"{0: "it's", 2: 'a \'b\'', 1: 'x, y: z'}"#),
        vec!["it's", "x, y: z", "a 'b'"]
    );
    assert!(parse_names("").is_empty());
}

#[test]
fn ultralytics_export_gives_the_fixture_output() {
    let Some((shared, b)) = ultralytics_onnx() else {
        return;
    };
    let m = b.as_ref();
    assert_eq!(m.names(), ["negative", "positive"]);
    assert_eq!(m.fixed_imgsz(), Some((640, 640)));
    assert_eq!(m.stride(), 32);
    let fx = shared.join("fixtures/ultralytics");
    let x = Tensor::read_npy(fx.join("bt_input.npy")).unwrap();
    let want = Tensor::read_npy(fx.join("bt_output.npy")).unwrap();
    let got = m.infer(&x).unwrap();
    assert_eq!(got.size(), want.size());
    let err = |r: std::ops::Range<i64>| {
        (got.narrow(1, r.start, r.end - r.start) - want.narrow(1, r.start, r.end - r.start))
            .abs()
            .max()
            .double_value(&[])
    };
    let (boxes, scores) = (err(0..4), err(4..6));
    println!("ONNX Runtime vs fixture output: boxes {boxes:.2e} px, scores {scores:.2e}");
    assert!(boxes < 1e-3 && scores < 1e-4, "{boxes} {scores}");
}

#[test]
fn onnx_and_libtorch_predict_the_same_boxes() {
    let Some((shared, b)) = ultralytics_onnx() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics");
    let onnx = Predictor::with_backend(b, (640, 640), NmsConfig::default());
    assert!(!onnx.rect, "a static ONNX graph gets square letterboxes");
    let mut torch = Predictor::load(
        fx.join("bt_yolo11n_best.pt").to_str().unwrap(),
        640,
        Device::Cpu,
    )
    .unwrap();
    torch.rect = false;
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("bt_predict.json")).unwrap())
            .unwrap();
    let (mut max_box, mut max_conf, mut total) = (0f32, 0f32, 0);
    for item in want["predict"].as_array().unwrap() {
        let name = item["image"].as_str().unwrap();
        let img = load_image(&shared.join("datasets/brain-tumor/valid/images").join(name)).unwrap();
        let a = onnx.predict(&img).unwrap();
        let t = torch.predict(&img).unwrap();
        assert_eq!(a.letterbox.shape, (640, 640));
        assert_eq!(a.detections.len(), t.detections.len(), "{name}");
        for (x, y) in a.detections.iter().zip(&t.detections) {
            assert_eq!(x.cls, y.cls, "{name}");
            for (p, q) in x.xyxy.iter().zip(&y.xyxy) {
                max_box = max_box.max((p - q).abs());
            }
            max_conf = max_conf.max((x.conf - y.conf).abs());
            total += 1;
        }
    }
    println!("{total} boxes: ONNX vs libtorch max box {max_box:.4} px, conf {max_conf:.2e}");
    assert!(total > 0);
    assert!(max_box < 0.05 && max_conf < 1e-4, "{max_box} {max_conf}");
}

#[test]
fn onnx_validation_matches_ultralytics_metrics() {
    let Some((shared, b)) = ultralytics_onnx() else {
        return;
    };
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared.join("fixtures/ultralytics/bt_val_metrics.json")).unwrap(),
    )
    .unwrap();
    let dc =
        ryolo::data::load_data_yaml(&shared.join("datasets/brain-tumor/brain-tumor.yaml")).unwrap();
    let files = ryolo::data::list_images(dc.split("val").unwrap()).unwrap();
    let scan = ryolo::data::scan("val", &files, dc.nc(), false);
    let m: ModelRef = (&b).into();
    let r = validate(m, &scan.entries, &ValConfig::default(), |_, _| {}).unwrap();
    let (got, exp) = (r.metrics.map(), want["map50_95"].as_f64().unwrap());
    println!(
        "ONNX val mAP50-95 {got:.5} (Ultralytics .pt on GPU {exp:.5}), mAP50 {:.5}",
        r.metrics.map50()
    );
    assert!((got - exp).abs() < 0.005, "{got} vs {exp}");
}

#[test]
fn a_file_that_is_not_onnx_is_a_clear_error() {
    let Some(_) = ultralytics_onnx() else {
        return;
    };
    let d = common::tmp("notonnx");
    let f = d.join("garbage.onnx");
    std::fs::write(&f, b"this is not a protobuf").unwrap();
    let e = Backend::load(f.to_str().unwrap(), Device::Cpu).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("garbage.onnx"), "{msg}");
    let e = Backend::load(d.join("missing.onnx").to_str().unwrap(), Device::Cpu).unwrap_err();
    assert!(format!("{e:#}").contains("not found"), "{e:#}");
}

#[test]
fn a_fixed_batch_export_predicts_single_images() {
    let Some((shared, b1)) = ultralytics_onnx() else {
        return;
    };
    let m = common::bt_model(&shared);
    let cfg = ryolo::export::ExportConfig {
        imgsz: (640, 640),
        opset: 18,
        metadata: ryolo::export::metadata(&m, (640, 640), 3, "{}"),
        batch: 3,
        dynamic: false,
    };
    let d = common::tmp("onnx-batch3");
    let f = d.join("b3.onnx");
    std::fs::write(&f, ryolo::export::to_onnx(&m, &cfg).unwrap()).unwrap();
    let b3 = Backend::load(f.to_str().unwrap(), Device::Cpu).unwrap();
    assert_eq!(b3.as_ref().fixed_batch(), Some(3));
    let (p1, p3) = (
        Predictor::with_backend(b1, (640, 640), NmsConfig::default()),
        Predictor::with_backend(b3, (640, 640), NmsConfig::default()),
    );
    let img = load_image(&shared.join("datasets/brain-tumor/valid/images/val_1 (1).jpg")).unwrap();
    // One image and four images (one full run of 3, one padded run) through the batch-3 graph.
    let (a, b) = (p1.predict(&img).unwrap(), p3.predict(&img).unwrap());
    let four = p3.predict_batch(&vec![img.clone(); 4]).unwrap();
    assert_eq!(four.len(), 4);
    for got in std::iter::once(&b).chain(&four) {
        assert_eq!(a.detections.len(), got.detections.len());
        for (x, y) in a.detections.iter().zip(&got.detections) {
            assert!((x.conf - y.conf).abs() < 1e-3);
            assert!(x.xyxy.iter().zip(&y.xyxy).all(|(u, v)| (u - v).abs() < 0.1));
        }
    }
}
