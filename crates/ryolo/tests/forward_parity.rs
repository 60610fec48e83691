//! Forward parity with Ultralytics: bt_yolo11n_best.pt on bt_input.npy against bt_output.npy.

mod common;
use ryolo::weights::load_model;
use tch::{Device, Tensor};

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn yolo11n_pt_matches_ultralytics_output() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics");
    let mut loaded = load_model(
        fx.join("bt_yolo11n_best.pt").to_str().unwrap(),
        None,
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(loaded.model.names, vec!["negative", "positive"]);
    let x = Tensor::read_npy(fx.join("bt_input.npy")).unwrap();
    let want = Tensor::read_npy(fx.join("bt_output.npy")).unwrap();
    for fused in [false, true] {
        if fused {
            loaded.model.fuse();
        }
        let y = tch::no_grad(|| loaded.model.predict(&x));
        assert_eq!(y.size(), want.size());
        let dbox = max_abs(&y.narrow(1, 0, 4), &want.narrow(1, 0, 4));
        let dcls = max_abs(&y.narrow(1, 4, 2), &want.narrow(1, 4, 2));
        println!("fused={fused}: max abs diff boxes {dbox:.3e}, scores {dcls:.3e}");
        assert!(dbox <= 1e-3, "box rows differ by {dbox}");
        assert!(dcls <= 1e-4, "score rows differ by {dcls}");
    }
}
