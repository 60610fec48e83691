//! Exact resume: 4 epochs straight == 2 epochs, interrupted, + resume 2 (results.csv rows and weights),
//! resumed with `model=.../last.pt`.
//! (Its own test binary: libtorch's global RNG is per process.)

mod common;
use common::{assert_exact_resume, tmp};

#[test]
fn resume_continues_exactly() {
    let d = tmp("resume");
    let yaml = ryolo::data::synth::generate(&d.join("data"), 12, 64, 2).unwrap();
    let common = format!("model=yolo11n.yaml data={} epochs=4 imgsz=64 batch=4 nbs=8 seed=3 workers=2 project={} warmup_epochs=1 close_mosaic=1", yaml.display(), d.display());
    assert_exact_resume(&d, &common, 2, true);
}
