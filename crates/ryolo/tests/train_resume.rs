//! Exact resume: 4 epochs straight == 2 epochs, interrupted, + resume 2 (results.csv rows and weights),
//! resumed with `model=.../last.pt`.
//! (Its own test binary: libtorch's global RNG is per process.)

mod common;
use common::{args, rows_without_time, tmp};
use ryolo::engine::train::{train, Callbacks};
use std::sync::atomic::Ordering;

#[test]
fn resume_continues_exactly() {
    let d = tmp("resume");
    let yaml = ryolo::data::synth::generate(&d.join("data"), 12, 64, 2).unwrap();
    let common = format!("model=yolo11n.yaml data={} epochs=4 imgsz=64 batch=4 nbs=8 seed=3 workers=2 project={} warmup_epochs=1 close_mosaic=1", yaml.display(), d.display());
    train(
        &args(&format!("{common} name=straight")),
        &mut Callbacks::default(),
    )
    .unwrap();
    let mut cb = Callbacks::default();
    let stop = cb.stop.clone();
    cb.on_fit_epoch_end.push(Box::new(move |r| {
        if r.epoch == 2 {
            stop.store(true, Ordering::SeqCst);
        }
    }));
    train(&args(&format!("{common} name=split")), &mut cb).unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("split/results.csv"))
            .unwrap()
            .lines()
            .count(),
        3,
        "stopped after 2 epochs"
    );
    let last = d.join("split/weights/last.safetensors");
    // Through the Ultralytics-format last.pt, which resumes from its last.safetensors sibling.
    train(
        &args(&format!(
            "resume model={}",
            last.with_extension("pt").display()
        )),
        &mut Callbacks::default(),
    )
    .unwrap();
    assert_eq!(
        rows_without_time(&d.join("straight/results.csv")),
        rows_without_time(&d.join("split/results.csv"))
    );
    let (_, a) =
        ryolo::weights::read_checkpoint(&d.join("straight/weights/last.safetensors")).unwrap();
    let (_, b) = ryolo::weights::read_checkpoint(&last).unwrap();
    assert_eq!(a.len(), b.len());
    for (k, t) in &a {
        let diff = (t - &b[k]).abs().max().double_value(&[]);
        assert_eq!(diff, 0.0, "weight {k} differs by {diff}");
    }
}
