//! Library API: stream predictions over a video file, webcam (`0`) or URL, and write an annotated
//! copy.
//!
//! `cargo run --release -p ryolo --example predict_video -- <model> <video|0|url> [out.avi] [vid_stride]`

use ryolo::data::video::VideoWriter;
use ryolo::engine::predict::{annotate, Predictor, SaveOptions};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(source)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: predict_video <model> <video|0|url> [out.avi] [vid_stride]");
    };
    let out = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "annotated.avi".into());
    let stride = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let p = Predictor::load(model, 640, tch::Device::Cpu)?;
    let frames = p.predict_video(source, stride, false)?;
    let info = frames.info().clone();
    let mut writer = VideoWriter::create(out.as_ref(), info.width, info.height, info.fps)?;
    let style = SaveOptions {
        dir: ".".into(),
        save: true,
        save_txt: false,
        save_conf: false,
        save_crop: false,
        show_labels: true,
        show_conf: true,
        show_boxes: true,
        line_width: None,
    };
    for r in frames {
        let (n, frame, pred) = r?;
        println!(
            "frame {n}/{}: {}",
            info.frames,
            p.describe(&pred.detections)
        );
        writer.write(&annotate(&p, &frame, &pred, &style))?;
    }
    writer.finish()?;
    println!("saved {out}");
    Ok(())
}
