//! Exact resume of a segment run: 3 epochs straight == 2 epochs, interrupted, + resume 1
//! (results.csv rows and weights). Its own test binary: libtorch's global RNG is per process.

mod common;
use common::{assert_exact_resume, tmp};

#[test]
fn segment_resume_continues_exactly() {
    let d = tmp("seg_resume");
    let yaml = ryolo::data::synth::generate_with(&d.join("data"), 12, 64, 2, true).unwrap();
    let common = format!("model=yolo11n-seg.yaml data={} epochs=3 imgsz=64 batch=4 nbs=8 seed=3 workers=2 project={} warmup_epochs=1 close_mosaic=1 plots=False", yaml.display(), d.display());
    let rows = assert_exact_resume(&d, &common, 2, false);
    assert_eq!(rows.len(), 4);
    assert!(rows[0].contains("train/seg_loss"));
}
