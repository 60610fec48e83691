//! Library API: load a model and predict an image, printing typed results.
//!
//! `cargo run --release -p ryolo --example predict -- <model.pt|.safetensors> <image> [imgsz]`

use ryolo::engine::predict::Predictor;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(image)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: predict <model> <image> [imgsz]");
    };
    let imgsz = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(640);
    let p = Predictor::load(model, imgsz, tch::Device::Cpu)?;
    let img = image::open(image)?;
    let pred = p.predict_dynamic(&img)?;
    let (w, h) = (img.width() as f32, img.height() as f32);
    for d in &pred.detections {
        println!(
            "{:<12} conf {:.3} xyxy {:?} xywhn {:?}",
            p.name(d.cls),
            d.conf,
            d.xyxy,
            d.xywhn(w, h)
        );
    }
    println!(
        "{} detections in {:.1} ms",
        pred.detections.len(),
        pred.speed.preprocess + pred.speed.inference + pred.speed.postprocess
    );
    Ok(())
}
