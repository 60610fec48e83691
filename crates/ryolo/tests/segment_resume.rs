//! Exact resume of a segment run: 3 epochs straight == 2 epochs, interrupted, + resume 1
//! (results.csv rows and weights). Its own test binary: libtorch's global RNG is per process.

mod common;
use common::{args, rows_without_time, tmp};
use ryolo::engine::train::{train, Callbacks};
use std::sync::atomic::Ordering;

#[test]
fn segment_resume_continues_exactly() {
    let d = tmp("seg_resume");
    let yaml = ryolo::data::synth::generate_with(&d.join("data"), 12, 64, 2, true).unwrap();
    let common = format!("model=yolo11n-seg.yaml data={} epochs=3 imgsz=64 batch=4 nbs=8 seed=3 workers=2 project={} warmup_epochs=1 close_mosaic=1 plots=False", yaml.display(), d.display());
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
    let last = d.join("split/weights/last.safetensors");
    train(
        &args(&format!("resume model={}", last.display())),
        &mut Callbacks::default(),
    )
    .unwrap();
    let (a, b) = (
        rows_without_time(&d.join("straight/results.csv")),
        rows_without_time(&d.join("split/results.csv")),
    );
    assert_eq!(a.len(), 4);
    assert!(a[0].contains("train/seg_loss"));
    assert_eq!(a, b);
    let (_, wa) =
        ryolo::weights::read_checkpoint(&d.join("straight/weights/last.safetensors")).unwrap();
    let (_, wb) = ryolo::weights::read_checkpoint(&last).unwrap();
    assert_eq!(wa.len(), wb.len());
    for (k, t) in &wa {
        let diff = (t - &wb[k]).abs().max().double_value(&[]);
        assert_eq!(diff, 0.0, "weight {k} differs by {diff}");
    }
}
