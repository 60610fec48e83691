//! Pose training end to end on the built-in synthetic stick-figure set (COCO keypoint layout; needs
//! nothing outside the repo): a from-scratch overfit run that must learn boxes and keypoints, a
//! complete run folder, and the best weights reloading as a pose model that validates to the
//! same numbers.

mod common;
use common::{args, tmp};
use ryolo::engine::train::{train, Callbacks};

#[test]
fn pose_overfits_synthetic_stick_figures() {
    let d = tmp("pose_overfit");
    let yaml = ryolo::data::synth_po::generate_pose(&d.join("data"), 16, 128, 1).unwrap();
    // Validate on the training images (an overfit check) with 8.4's `kpt_oks_sigmas` at 0.1 for
    // every keypoint: COCO's sigmas (0.025-0.107) ask for 1-2 px accuracy on 30-60 px figures at
    // imgsz=128, where even Ultralytics' own run of this recipe scores pose mAP50 0.00-0.27
    // depending on the seed.
    let text = std::fs::read_to_string(&yaml).unwrap();
    let sigmas = vec!["0.1"; 17].join(", ");
    std::fs::write(
        &yaml,
        text.replace("val: images/val", "val: images/train")
            + &format!("kpt_oks_sigmas: [{sigmas}]\n"),
    )
    .unwrap();
    let a = args(&format!(
        "model=yolo11n-pose.yaml data={} epochs=40 imgsz=128 batch=4 nbs=4 seed=0 workers=2 project={} name=run mosaic=0 hsv_h=0 hsv_s=0 hsv_v=0 fliplr=0 translate=0 scale=0 val=False close_mosaic=0 warmup_epochs=1",
        yaml.display(),
        d.display()
    ));
    let out = train(&a, &mut Callbacks::default()).unwrap();
    let r = out.final_val.expect("final validation");
    let p = r.pose.as_ref().expect("pose validation has pose metrics");
    let v = p.mean_results();
    println!(
        "pose overfit: box mAP50 {:.3} mAP50-95 {:.3}, pose mAP50 {:.3} mAP50-95 {:.3}",
        v[2], v[3], v[6], v[7]
    );
    // An untrained model scores 0. Ultralytics 8.4.190 on this exact recipe and data (same
    // sitting) reaches box mAP50 0.31 / 0.14 / 0.30 and pose mAP50 0.43 / 0.08 / 0.47 with seeds
    // 0 / 1 / 2 (the recipe is that seed-sensitive); ryolo's seed-0 run 0.57 and 0.77. 0.3 keeps
    // a margin under ours while requiring real keypoint learning.
    assert!(v[2] >= 0.3, "box mAP50 {}", v[2]);
    assert!(v[6] >= 0.3, "pose mAP50 {} after 40 epochs", v[6]);
    let run = d.join("run");
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    assert!(
        csv.starts_with("epoch,time,train/box_loss,train/pose_loss,train/kobj_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),metrics/precision(P),metrics/recall(P),metrics/mAP50(P),metrics/mAP50-95(P),val/box_loss,val/pose_loss,val/kobj_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 41);
    for f in [
        "args.yaml",
        "results.png",
        "labels.jpg",
        "train_batch0.jpg",
        "val_batch0_labels.jpg",
        "val_batch0_pred.jpg",
        "BoxPR_curve.png",
        "PosePR_curve.png",
        "PoseF1_curve.png",
        "PoseP_curve.png",
        "PoseR_curve.png",
        "confusion_matrix.png",
        "weights/best.pt",
        "weights/last.pt",
        "weights/best.safetensors",
    ] {
        assert!(run.join(f).exists(), "{f} missing from the run folder");
    }
    // best.pt reloads as a pose model; best.safetensors (what the final validation used)
    // validates through `yolo val` to the same numbers.
    let best = run.join("weights/best.pt");
    let loaded =
        ryolo::weights::load_model(best.to_str().unwrap(), None, tch::Device::Cpu).unwrap();
    assert_eq!(loaded.model.task(), ryolo::task::TaskKind::Pose);
    // On libtorch, the engine of the final validation (ONNX Runtime vs libtorch is engine_parity's).
    let r2 = ryolo::engine::ortpath::scoped(ryolo::engine::ortpath::Engine::Torch, || {
        ryolo::engine::val::run(&args(&format!(
            "model={} data={} imgsz=128 batch=8 plots=False",
            run.join("weights/best.safetensors").display(),
            yaml.display()
        )))
    })
    .unwrap();
    let v2 = r2.pose.as_ref().expect("pose metrics").mean_results();
    for (a, b) in v.iter().zip(v2) {
        assert!((a - b).abs() < 1e-9, "val {v2:?} vs final validation {v:?}");
    }
}
