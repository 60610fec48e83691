//! CUDA checks, opt-in: `RYOLO_GPU_TESTS=1 cargo test -p ryolo --test gpu` on a machine with a GPU
//! (CI machines have none, so these return at once there, saying so).

mod common;
use common::{args, tmp};
use ryolo::engine::train::{train, Callbacks};

fn gpu() -> bool {
    if std::env::var_os("RYOLO_GPU_TESTS").is_none() {
        eprintln!("\n!!!!! SKIPPED: GPU tests are opt-in (RYOLO_GPU_TESTS=1) !!!!!\n");
        return false;
    }
    // libtorch_cuda is loaded on demand (ryolo::util::cuda), as `device=0` does.
    if let Err(why) = ryolo::util::cuda::load() {
        panic!("RYOLO_GPU_TESTS=1 but the CUDA libraries did not load: {why}");
    }
    assert!(
        tch::Cuda::is_available(),
        "RYOLO_GPU_TESTS=1 but CUDA is not available"
    );
    true
}

#[test]
fn cuda_amp_training_learns_and_half_val_agrees() {
    if !gpu() {
        return;
    }
    let d = tmp("gpu-overfit");
    let yaml = common::overfit_data(&d);
    let a = args(&format!(
        "model=yolo11n.yaml data={} epochs=60 imgsz=96 batch=4 nbs=4 seed=0 workers=2 project={} name=run mosaic=0 hsv_h=0 hsv_s=0 hsv_v=0 fliplr=0 translate=0 scale=0 val=False close_mosaic=0 warmup_epochs=1 device=0 amp=True",
        yaml.display(),
        d.display()
    ));
    let out = train(&a, &mut Callbacks::default()).unwrap();
    let m = &out.final_val.expect("final validation").metrics;
    println!(
        "CUDA AMP overfit: mAP50 {:.3} mAP50-95 {:.3}",
        m.map50(),
        m.map()
    );
    assert!(m.map50() >= 0.5, "mAP50 {}", m.map50());
}

#[test]
fn cuda_forward_matches_the_fixture() {
    if !gpu() {
        return;
    }
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics");
    let dev = tch::Device::Cuda(0);
    let m = ryolo::weights::load_model(fx.join("bt_yolo11n_best.pt").to_str().unwrap(), None, dev)
        .unwrap()
        .model;
    let x = tch::Tensor::read_npy(fx.join("bt_input.npy"))
        .unwrap()
        .to_device(dev);
    let want = tch::Tensor::read_npy(fx.join("bt_output.npy")).unwrap();
    let got = tch::no_grad(|| m.predict(&x)).to_device(tch::Device::Cpu);
    let err = (got.narrow(1, 4, 2) - want.narrow(1, 4, 2))
        .abs()
        .max()
        .double_value(&[]);
    println!("CUDA fp32 score error {err:.2e}");
    assert!(err < 1e-3, "{err}");
    let half = ryolo::util::amp::cuda_autocast(true, || tch::no_grad(|| m.predict(&x)))
        .to_kind(tch::Kind::Float)
        .to_device(tch::Device::Cpu);
    let err = (half.narrow(1, 4, 2) - want.narrow(1, 4, 2))
        .abs()
        .max()
        .double_value(&[]);
    println!("CUDA autocast fp16 score error {err:.2e}");
    assert!(err < 2e-2, "{err}");
}
