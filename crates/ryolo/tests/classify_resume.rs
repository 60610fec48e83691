//! Exact classify resume: 4 epochs straight == 2 epochs, interrupted, + resume 2 (results.csv rows and weights),
//! resumed with `model=.../last.pt`.
//! (Its own test binary: libtorch's global RNG is per process.)

mod common;
use common::{assert_exact_resume, colour_folder, tmp};

#[test]
fn classify_resume_continues_exactly() {
    let d = tmp("clsresume");
    let data = colour_folder(&d.join("colours"), 6, 3);
    // nbs=8 over batch 4: accumulation across batches, so pending gradients are resumed too.
    let common = format!("model=yolo11n-cls.yaml data={} epochs=4 imgsz=32 batch=4 nbs=8 seed=3 workers=2 project={} warmup_epochs=1 dropout=0.1", data.display(), d.display());
    assert_exact_resume(&d, &common, 2, true);
}
