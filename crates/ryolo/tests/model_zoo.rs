//! Parameter counts and summary lines of the ten built-in models (spec/model.md §5).

use ryolo::nn::{DetectionModel, ModelSpec};
use tch::Device;

fn info(name: &str) -> ryolo::nn::ModelInfo {
    let spec = ModelSpec::from_name(name, None).unwrap();
    DetectionModel::new(spec, Device::Cpu).unwrap().info()
}

#[test]
fn parameter_counts_match_ultralytics() {
    // (model, layers, parameters) from Ultralytics 8.4.190 at nc=80.
    let expected = [
        ("yolov8n.yaml", 129, 3_157_200),
        ("yolov8s.yaml", 129, 11_166_560),
        ("yolov8m.yaml", 169, 25_902_640),
        ("yolov8l.yaml", 209, 43_691_520),
        ("yolov8x.yaml", 209, 68_229_648),
        ("yolo11n.yaml", 181, 2_624_080),
        ("yolo11s.yaml", 181, 9_458_752),
        ("yolo11m.yaml", 231, 20_114_688),
        ("yolo11l.yaml", 357, 25_372_160),
        ("yolo11x.yaml", 357, 56_966_176),
    ];
    for (name, layers, params) in expected {
        let i = info(name);
        println!("{i}");
        assert_eq!(i.params, params, "{name} parameters");
        assert_eq!(i.grads, params - 16, "{name} gradients (all but DFL)");
        assert_eq!(i.layers, layers, "{name} layers");
    }
}
