//! Training end to end on the built-in synthetic dataset (needs nothing outside the repo): an overfit
//! run that must learn. (Its own test binary: libtorch's global RNG is per process.)

mod common;
use common::{args, tmp};
use ryolo::engine::train::{train, Callbacks};

#[test]
fn overfits_a_handful_of_synthetic_images() {
    let d = tmp("overfit");
    let yaml = common::overfit_data(&d);
    let a = args(&format!(
        "model=yolo11n.yaml data={} epochs=60 imgsz=96 batch=4 nbs=4 seed=0 workers=2 project={} name=run mosaic=0 hsv_h=0 hsv_s=0 hsv_v=0 fliplr=0 translate=0 scale=0 val=False close_mosaic=0 warmup_epochs=1 amp=False",
        yaml.display(),
        d.display()
    ));
    let out = train(&a, &mut Callbacks::default()).unwrap();
    let m = &out.final_val.expect("final validation").metrics;
    println!("overfit: mAP50 {:.3} mAP50-95 {:.3}", m.map50(), m.map());
    assert!(
        m.map50() >= 0.5,
        "mAP50 {} after 60 epochs on 16 images",
        m.map50()
    );
    assert!(d.join("run/results.csv").exists() && d.join("run/args.yaml").exists());
}
