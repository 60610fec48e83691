//! Classification training end to end (spec/classify.md §4-§6): yolo11n-cls from scratch on a
//! learnable ImageFolder set (three colour classes); the run folder is complete (val_batch plots
//! included) and top-1 is well above chance.

mod common;
use common::{args, colour_folder, tmp};
use ryolo::engine::train::{train, Callbacks};

#[test]
fn classify_trains_from_scratch_and_writes_a_complete_run() {
    let d = tmp("clstrain");
    let data = colour_folder(&d.join("colours"), 16, 8);
    let out = train(
        &args(&format!(
            "model=yolo11n-cls.yaml data={} epochs=8 imgsz=32 batch=8 nbs=8 seed=0 workers=2 project={} name=run",
            data.display(),
            d.display()
        )),
        &mut Callbacks::default(),
    )
    .unwrap();
    let run = d.join("run");
    assert_eq!(out.save_dir, run);
    assert_eq!(out.epochs_done, 8);
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "epoch,time,train/loss,metrics/accuracy_top1,metrics/accuracy_top5,val/loss,lr/pg0,lr/pg1,lr/pg2"
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 8);
    for r in &rows {
        assert_eq!(r.len(), 9);
        assert!(r[2].is_finite() && r[2] > 0.0 && r[5].is_finite());
        // nc = 3 < 5: the top-5 list holds every class.
        assert_eq!(r[4], 1.0);
    }
    for f in [
        "args.yaml",
        "weights/best.pt",
        "weights/last.pt",
        "weights/best.safetensors",
        "weights/last.safetensors",
        "train_batch0.jpg",
        "confusion_matrix.png",
        "confusion_matrix_normalized.png",
        "results.png",
        // The final validation's first batches (24 val images in batches of 2 x 8: two of them),
        // true names and top-1 predictions, as Ultralytics' ClassificationValidator.
        "val_batch0_labels.jpg",
        "val_batch0_pred.jpg",
        "val_batch1_labels.jpg",
        "val_batch1_pred.jpg",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    assert!(!run.join("val_batch2_labels.jpg").exists());
    // The label and prediction mosaics are the same images with different captions.
    let labels = std::fs::read(run.join("val_batch0_labels.jpg")).unwrap();
    let pred = std::fs::read(run.join("val_batch0_pred.jpg")).unwrap();
    assert!(labels.len() > 1000 && pred.len() > 1000);
    assert_ne!(labels, pred, "the pred mosaic carries confidences");
    assert!(!run.join("labels.jpg").exists());
    let stored = std::fs::read_to_string(run.join("args.yaml")).unwrap();
    assert!(stored.contains("imgsz: 32"), "{stored}");
    // The final validation of best: 3 colour classes with 8 images each; chance is 1/3. The classes
    // differ in their dominant channel, so a net that learnt anything separates most of them: the
    // floor 0.6 is far above what a constant or random predictor reaches (<= 1/3 expected).
    let r = out.final_val.expect("final validation");
    let c = r.cls.expect("classify metrics");
    let best_top1 = rows.iter().map(|r| r[3]).fold(0.0, f64::max);
    println!("final top1 {} (best epoch top1 {best_top1})", c.top1);
    assert!(c.top1 >= 0.6, "top1 {} not above chance", c.top1);
    // Training loss went down.
    assert!(rows[7][2] < rows[0][2], "{rows:?}");
}
