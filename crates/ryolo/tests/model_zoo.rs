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

#[test]
fn nc_override_changes_the_head() {
    // Measured with Ultralytics: yolov8n at nc=3 has 3,011,433 parameters.
    let spec = ModelSpec::from_name("yolov8n.yaml", Some(3)).unwrap();
    let m = DetectionModel::new(spec, Device::Cpu).unwrap();
    assert_eq!(m.info().params, 3_011_433);
    assert_eq!(m.stride, vec![8.0, 16.0, 32.0]);
}

#[test]
fn detect_bias_init_and_output_shape() {
    let spec = ModelSpec::from_name("yolo11n.yaml", None).unwrap();
    let m = DetectionModel::new(spec, Device::Cpu).unwrap();
    let vars = m.vs.variables();
    // 8.4: box bias 2.0, class bias ln(5 / nc / (640 / s)^2): -11.536642 at P3 for nc=80.
    assert!(
        (vars["model.23.cv2.0.2.bias"]
            .mean(tch::Kind::Float)
            .double_value(&[])
            - 2.0)
            .abs()
            < 1e-6
    );
    let b = vars["model.23.cv3.0.2.bias"].double_value(&[0]);
    assert!((b - (-11.536642)).abs() < 1e-5, "{b}");
    let y = tch::no_grad(|| {
        m.predict(&tch::Tensor::zeros(
            [1, 3, 480, 640],
            (tch::Kind::Float, Device::Cpu),
        ))
    });
    assert_eq!(y.size(), vec![1, 84, 6300]);
}

#[test]
fn our_checkpoint_round_trips() {
    let spec = ModelSpec::from_name("yolov8n.yaml", Some(3)).unwrap();
    let mut m = DetectionModel::new(spec, Device::Cpu).unwrap();
    m.names = vec!["a".into(), "b".into(), "c".into()];
    let dir = std::env::temp_dir().join(format!("ryolo-ckpt-{}", std::process::id()));
    let path = dir.join("weights/last.safetensors");
    ryolo::weights::save_checkpoint(&m, "yolov8n", Default::default(), &path).unwrap();
    let back = ryolo::weights::load_model(path.to_str().unwrap(), None, Device::Cpu).unwrap();
    assert_eq!(back.stem, "yolov8n");
    assert_eq!(back.model.names, m.names);
    let x = tch::Tensor::rand([1, 3, 64, 64], (tch::Kind::Float, Device::Cpu));
    let d = tch::no_grad(|| {
        (m.predict(&x) - back.model.predict(&x))
            .abs()
            .max()
            .double_value(&[])
    });
    assert_eq!(d, 0.0);
    assert!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count() == 1,
        "no temp file left behind"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn batchnorm_starts_as_pytorch() {
    let m = DetectionModel::new(
        ModelSpec::from_name("yolov8n.yaml", None).unwrap(),
        Device::Cpu,
    )
    .unwrap();
    let v = m.vs.variables();
    assert_eq!(v["model.0.bn.weight"].min().double_value(&[]), 1.0);
    assert_eq!(v["model.0.bn.weight"].max().double_value(&[]), 1.0);
    assert_eq!(v["model.0.bn.bias"].abs().max().double_value(&[]), 0.0);
    let b = 1.0 / (27f64).sqrt();
    let w = &v["model.0.conv.weight"];
    assert!(w.abs().max().double_value(&[]) <= b && w.abs().max().double_value(&[]) > 0.9 * b);
}
