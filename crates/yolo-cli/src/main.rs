//! `yolo`: the command line over the ryolo library. Parses arguments, dispatches, prints.

use anyhow::{bail, Result};
use ryolo::cfg::{self, Args};
use ryolo::engine::predict::{expand_source, load_image, save_prediction, SaveOptions, Speed};
use ryolo::ops::NmsConfig;
use ryolo::weights::load_model;

const HELP: &str = "ryolo: Ultralytics YOLO (v8, 11) detection in Rust

Usage: yolo [TASK] MODE [key=value ...]
  TASK: detect (the only task implemented)
  MODE: predict, info (train, val, export, track, benchmark: not implemented yet)
  Special: help, version, cfg (print defaults), settings [key=value ...] | settings reset

Examples:
  yolo info model=yolo11n.yaml
  yolo predict model=path/to/best.pt source=images/ conf=0.25 imgsz=640
  yolo predict model=best.pt source='data/*.jpg' save_txt=True save_conf=True
  yolo settings runs_dir=/data/runs

Models: yolov8{n,s,m,l,x}.yaml and yolo11{n,s,m,l,x}.yaml are built in; Ultralytics .pt files and
ryolo .safetensors checkpoints load directly. Arguments and defaults follow Ultralytics 8.4.";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("Error: {e:#}");
        std::process::exit(2);
    }
}

fn run(argv: &[String]) -> Result<()> {
    if argv.is_empty() {
        println!("{HELP}");
        return Ok(());
    }
    let cmd = cfg::parse_args(argv)?;
    let mode = cmd.mode.clone().unwrap_or_else(|| {
        eprintln!("WARNING 'mode' argument is missing. Valid modes are predict, info. Using default 'mode=train'.");
        "train".into()
    });
    let args = Args::new(&cmd.overrides);
    match mode.as_str() {
        "help" => println!("{HELP}"),
        "version" => println!("{}", env!("CARGO_PKG_VERSION")),
        "cfg" | "copy-cfg" => print!("{}", cfg::DEFAULT_YAML),
        "checks" => {
            println!(
                "ryolo {} | libtorch {} | CUDA available: {} ({} devices)",
                env!("CARGO_PKG_VERSION"),
                tch_version(),
                tch::Cuda::is_available(),
                tch::Cuda::device_count()
            );
        }
        "settings" => {
            let s = if cmd.extra.iter().any(|w| w == "reset") {
                let d = cfg::default_settings();
                cfg::save_settings(&d)?;
                d
            } else if cmd.overrides.is_empty() {
                cfg::load_settings()
            } else {
                cfg::update_settings(&cmd.overrides)?
            };
            println!(
                "Settings: {}\n{}",
                cfg::settings_path().display(),
                serde_json::to_string_pretty(&s)?
            );
        }
        "info" => {
            let model = args.str("model").unwrap_or_else(|| "yolo11n.yaml".into());
            let loaded = load_model(&model, None, args.device()?)?;
            println!("{}", loaded.model.info());
        }
        "predict" => predict(&args)?,
        "train" | "val" | "export" | "track" | "benchmark" => {
            bail!("mode '{mode}' is not implemented in ryolo yet (available: predict, info)")
        }
        other => bail!("unknown mode '{other}'"),
    }
    Ok(())
}

fn tch_version() -> String {
    "2.11".into()
}

fn predict(args: &Args) -> Result<()> {
    let model = args
        .str("model")
        .ok_or_else(|| anyhow::anyhow!("predict needs model=<.pt, .safetensors or .yaml>"))?;
    let source = args.str("source").ok_or_else(|| {
        anyhow::anyhow!("predict needs source=<image, folder, glob or .txt list>")
    })?;
    let device = args.device()?;
    let loaded = load_model(&model, None, device)?;
    // A checkpoint's training imgsz is the default unless imgsz was given.
    let mut a = args.clone();
    if !args.0.contains_key("imgsz")
        || args.get("imgsz")
            == cfg::defaults()
                .get("imgsz")
                .unwrap_or(&serde_yaml::Value::Null)
    {
        if let Some(v) = loaded.train_args.get("imgsz").filter(|v| !v.is_null()) {
            a.0.insert("imgsz".into(), v.clone());
        }
    }
    let nms = NmsConfig {
        conf: a.f64("conf").unwrap_or(0.25) as f32,
        iou: a.f64("iou").unwrap_or(0.7) as f32,
        max_det: a.i64("max_det").unwrap_or(300).max(1) as usize,
        multi_label: false,
        agnostic: a.bool("agnostic_nms"),
        classes: a.classes()?,
    };
    let mut p = ryolo::engine::predict::Predictor::new(loaded.model, a.imgsz()?, nms);
    println!("{}", p.model.info());
    let files = expand_source(&source)?;
    let opts = SaveOptions {
        dir: cfg::save_dir(&a, "predict"),
        save: a.get("save").as_bool().unwrap_or(true),
        save_txt: a.bool("save_txt"),
        save_conf: a.bool("save_conf"),
        show_labels: a.get("show_labels").as_bool().unwrap_or(true),
        show_conf: a.get("show_conf").as_bool().unwrap_or(true),
        show_boxes: a.get("show_boxes").as_bool().unwrap_or(true),
        line_width: a.i64("line_width").map(|v| v.max(1) as u32),
    };
    p.rect = true;
    let mut total = Speed::default();
    let mut last_shape = (0, 0);
    let n = files.len();
    for (i, f) in files.iter().enumerate() {
        let img = match load_image(f) {
            Ok(img) => img,
            Err(e) => {
                eprintln!("WARNING skipping {}: {e:#}", f.display());
                continue;
            }
        };
        let pred = p.predict(&img)?;
        let s = pred.speed;
        total.preprocess += s.preprocess;
        total.inference += s.inference;
        total.postprocess += s.postprocess;
        last_shape = pred.letterbox.shape;
        println!(
            "image {}/{} {}: {}x{} {}, {:.1}ms",
            i + 1,
            n,
            f.display(),
            last_shape.0,
            last_shape.1,
            p.describe(&pred.detections),
            s.inference
        );
        save_prediction(&p, f, &img, &pred, &opts)?;
    }
    let k = n.max(1) as f64;
    println!(
        "Speed: {:.1}ms preprocess, {:.1}ms inference, {:.1}ms postprocess per image at shape (1, 3, {}, {})",
        total.preprocess / k,
        total.inference / k,
        total.postprocess / k,
        last_shape.0,
        last_shape.1
    );
    if opts.save || opts.save_txt {
        println!("Results saved to {}", opts.dir.display());
    }
    Ok(())
}
