//! Exact resume of a pose run: 3 epochs straight == 2 epochs, interrupted, + resume 1 through
//! `last.pt` (results.csv rows and weights). Its own test binary: libtorch's global RNG is per
//! process.

mod common;
use common::{assert_exact_resume, tmp};

#[test]
fn pose_resume_continues_exactly() {
    let d = tmp("pose_resume");
    let yaml = ryolo::data::synth_po::generate_pose(&d.join("data"), 8, 64, 2).unwrap();
    let common = format!("model=yolo11n-pose.yaml data={} epochs=3 imgsz=64 batch=4 nbs=8 seed=3 workers=2 project={} warmup_epochs=1 close_mosaic=1 plots=False", yaml.display(), d.display());
    let rows = assert_exact_resume(&d, &common, 2, true);
    assert_eq!(rows.len(), 4);
    assert!(rows[0].contains("train/kobj_loss"));
}
