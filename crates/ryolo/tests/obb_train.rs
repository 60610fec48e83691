//! OBB training end to end on the built-in synthetic rotated-rectangle set (needs nothing outside
//! the repo): a from-scratch overfit run that must learn rotated boxes, a complete run folder, the
//! best weights reloading as an OBB model and validating to the same numbers.

mod common;
use common::{args, tmp};
use ryolo::engine::train::{train, Callbacks};

/// The synthetic OBB set with validation on the training images (an overfit check).
fn overfit_obb(dir: &std::path::Path, n: usize, imgsz: usize) -> std::path::PathBuf {
    let yaml = ryolo::data::synth_po::generate_obb(&dir.join("data"), n, imgsz, 1).unwrap();
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(&yaml, text.replace("val: images/val", "val: images/train")).unwrap();
    yaml
}

#[test]
fn obb_overfits_synthetic_rotated_rectangles() {
    let d = tmp("obb_overfit");
    let yaml = overfit_obb(&d, 16, 128);
    let a = args(&format!(
        "model=yolo11n-obb.yaml data={} epochs=40 imgsz=128 batch=4 nbs=4 seed=0 workers=2 project={} name=run mosaic=0 hsv_h=0 hsv_s=0 hsv_v=0 fliplr=0 translate=0 scale=0 val=False close_mosaic=0 warmup_epochs=1",
        yaml.display(),
        d.display()
    ));
    let out = train(&a, &mut Callbacks::default()).unwrap();
    let r = out.final_val.expect("final validation");
    let m = &r.metrics;
    println!(
        "obb overfit: P {:.3} R {:.3} mAP50 {:.3} mAP50-95 {:.3}",
        m.mp(),
        m.mr(),
        m.map50(),
        m.map()
    );
    // An untrained model scores 0. Ultralytics 8.4.190 on this exact recipe and data (seed 0,
    // measured in the same sitting as ours) reaches mAP50 0.36 / mAP50-95 0.24, ryolo 0.49 / 0.22;
    // 0.3 is below both.
    assert!(m.map50() >= 0.3, "OBB mAP50 {} after 40 epochs", m.map50());
    let run = d.join("run");
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    assert!(
        csv.starts_with("epoch,time,train/box_loss,train/cls_loss,train/dfl_loss,train/angle_loss,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,val/angle_loss,lr/pg0,lr/pg1,lr/pg2\n"),
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
        "confusion_matrix.png",
        "weights/best.pt",
        "weights/last.pt",
        "weights/best.safetensors",
    ] {
        assert!(run.join(f).exists(), "{f} missing from the run folder");
    }
    // best.pt reloads as an OBB model; best.safetensors (what the final validation used)
    // validates through `yolo val` to the same numbers.
    let best = run.join("weights/best.pt");
    let loaded =
        ryolo::weights::load_model(best.to_str().unwrap(), None, tch::Device::Cpu).unwrap();
    assert_eq!(loaded.model.task(), ryolo::task::TaskKind::Obb);
    // On libtorch, the engine of the final validation (ONNX Runtime vs libtorch is engine_parity's).
    let v = ryolo::engine::ortpath::scoped(ryolo::engine::ortpath::Engine::Torch, || {
        ryolo::engine::val::run(&args(&format!(
            "model={} data={} imgsz=128 batch=4 plots=False",
            run.join("weights/best.safetensors").display(),
            yaml.display()
        )))
    })
    .unwrap();
    assert!(
        (v.metrics.map50() - m.map50()).abs() < 1e-9,
        "val {} vs final validation {}",
        v.metrics.map50(),
        m.map50()
    );
}
