//! Exact classify resume: 4 epochs straight == 2 epochs, interrupted, + resume 2 (results.csv rows and weights),
//! resumed with `model=.../last.pt`.
//! (Its own test binary: libtorch's global RNG is per process.)

mod common;
use common::{args, colour_folder, tmp};
use ryolo::engine::train::{train, Callbacks};
use std::path::Path;
use std::sync::atomic::Ordering;

fn rows_without_time(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != 1)
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[test]
fn classify_resume_continues_exactly() {
    let d = tmp("clsresume");
    let data = colour_folder(&d.join("colours"), 6, 3);
    // nbs=8 over batch 4: accumulation across batches, so pending gradients are resumed too.
    let common = format!("model=yolo11n-cls.yaml data={} epochs=4 imgsz=32 batch=4 nbs=8 seed=3 workers=2 project={} warmup_epochs=1 dropout=0.1", data.display(), d.display());
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
