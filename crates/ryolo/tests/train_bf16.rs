//! CPU bfloat16 autocast (the default `amp=True` on CPUs with native bfloat16, or `amp=bf16`)
//! must still learn and save float32 weights that validate from disk; `amp` refuses other values
//! with Ultralytics' message.
//! (Its own test binary: libtorch's global RNG is per process.)

mod common;
use common::{args, tmp};
use ryolo::engine::train::{train, Callbacks};

#[test]
fn amp_accepts_bf16_and_booleans_only() {
    for ok in ["amp=bf16", "amp=BF16", "amp=True", "amp=False"] {
        ryolo::cfg::parse_args(&[ok.to_string()]).unwrap_or_else(|e| panic!("{ok}: {e:#}"));
    }
    let e = ryolo::cfg::parse_args(&["amp=fp8".to_string()]).unwrap_err();
    assert!(format!("{e:#}").contains("'amp' must be a bool"), "{e:#}");
}

#[test]
fn bf16_training_overfits_like_float32() {
    let Some(isa) = ryolo::util::amp::cpu_bf16() else {
        eprintln!("SKIPPED: this CPU has no native bfloat16 (avx512_bf16 / amx_bf16); it trains in float32 (train_overfit.rs)");
        return;
    };
    let d = tmp("bf16_overfit");
    let yaml = common::overfit_data(&d);
    // The recipe of train_overfit.rs (float32 reaches ~0.9 mAP50 there, amp=False), with the
    // default amp=True: bfloat16 here.
    let a = args(&format!(
        "model=yolo11n.yaml data={} epochs=60 imgsz=96 batch=4 nbs=4 seed=0 workers=2 project={} name=run mosaic=0 hsv_h=0 hsv_s=0 hsv_v=0 fliplr=0 translate=0 scale=0 val=False close_mosaic=0 warmup_epochs=1",
        yaml.display(),
        d.display()
    ));
    let out = train(&a, &mut Callbacks::default()).unwrap();
    // The final validation reads best.safetensors back from disk in float32: channels-last
    // training weights must have been written in their logical order.
    let m = &out.final_val.expect("final validation").metrics;
    println!(
        "bf16 overfit ({isa}): mAP50 {:.3} mAP50-95 {:.3}",
        m.map50(),
        m.map()
    );
    assert!(
        m.map50() >= 0.5,
        "mAP50 {} after 60 bf16 epochs on 16 images",
        m.map50()
    );
    let args_yaml = std::fs::read_to_string(d.join("run/args.yaml")).unwrap();
    assert!(args_yaml.contains("amp: true"), "{args_yaml}");
    let _ = std::fs::remove_dir_all(&d);
}
