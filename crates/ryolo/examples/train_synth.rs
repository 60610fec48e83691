//! Library API: generate the synthetic dataset, train a YOLO11n on it with a callback, predict.
//!
//! `cargo run --release -p ryolo --example train_synth`

use ryolo::cfg::{parse_args, Args};
use ryolo::engine::train::{train, Callbacks};

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join("ryolo-example");
    let yaml = ryolo::data::synth::generate(&dir.join("data"), 128, 128, 0)?;
    let argv = format!("model=yolo11n.yaml data={} epochs=10 imgsz=128 batch=16 project={} name=train exist_ok=True", yaml.display(), dir.display());
    let args = Args::new(
        &parse_args(
            &argv
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>(),
        )?
        .overrides,
    );
    let mut cb = Callbacks::default();
    cb.on_fit_epoch_end.push(Box::new(|r| {
        println!("callback: epoch {} mAP50-95 {:.3}", r.epoch, r.metrics[3])
    }));
    let out = train(&args, &mut cb)?;
    println!("best weights: {}", out.best.display());
    Ok(())
}
