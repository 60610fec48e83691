//! `yolo`: the command line over the ryolo library. Parses arguments, dispatches, prints.

use anyhow::{bail, Result};
use ryolo::cfg::{self, Args};
use ryolo::engine::backend::Backend;
use ryolo::engine::predict::{expand_source, load_image, save_prediction, SaveOptions, Speed};
use ryolo::ops::NmsConfig;
use ryolo::weights::load_model;

const HELP: &str = "ryolo: Ultralytics YOLO (v8, 11) detection in Rust

Usage: yolo [TASK] MODE [key=value ...]
  TASK: detect (implemented); segment, classify, pose, obb are recognised and refused for now
  MODE: train, val, predict, export (format=onnx), benchmark, info (track: not implemented yet)
  Data tools: yolo data synth out=DIR [n=200 imgsz=320 seed=0] | yolo data check data=data.yaml\n              yolo data convert from=coco|voc source=PATH out=DIR [images=DIR] | yolo data split source=DIR weights=0.9,0.1,0.0
  Special: help, version, cfg (print defaults), settings [key=value ...] | settings reset

Examples:
  yolo info model=yolo11n.yaml
  yolo predict model=path/to/best.pt source=images/ conf=0.25 imgsz=640
  yolo predict model=best.pt source='data/*.jpg' save_txt=True save_conf=True
  yolo val model=best.pt data=data.yaml batch=16 imgsz=640
  yolo predict model=best.onnx source=images/      (.onnx files run on ONNX Runtime)
  yolo benchmark model=best.pt data=data.yaml imgsz=640
  yolo settings runs_dir=/data/runs

Models: yolov8{n,s,m,l,x}.yaml and yolo11{n,s,m,l,x}.yaml are built in; Ultralytics .pt files and
ryolo .safetensors checkpoints load directly; .onnx exports (ours and Ultralytics') run on ONNX Runtime. Arguments and defaults follow Ultralytics 8.4.";

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
        eprintln!("WARNING 'mode' argument is missing. Valid modes are train, val, predict, export, track, benchmark. Using default 'mode=train'.");
        "train".into()
    });
    let args = Args::new(&cmd.overrides);
    if cfg::MODES.contains(&mode.as_str()) || mode == "info" {
        // The task is resolved once, before anything is loaded or written.
        args.task()?;
    }
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
        "predict" => {
            // Predict's own default: batch 1 (Ultralytics' Model.predict overrides cfg's 16).
            let mut o = cmd.overrides.clone();
            o.entry("batch".into())
                .or_insert(serde_yaml::Value::from(1));
            predict(&Args::new(&o))?
        }
        "val" => {
            val(&args)?;
        }
        "train" => {
            let mut cb = ryolo::engine::train::Callbacks::default();
            ryolo::engine::train::train(&args, &mut cb)?;
        }
        "data" => data_tool(&cmd)?,
        "bench" => bench(&cmd)?,
        "export" => {
            // Export's own default: batch 1 (Ultralytics overlays it under the user's args).
            let mut o = cmd.overrides.clone();
            o.entry("batch".into())
                .or_insert(serde_yaml::Value::from(1));
            export(&Args::new(&o))?;
        }
        "benchmark" => benchmark(&args)?,
        "track" => {
            bail!("mode 'track' is not implemented in ryolo yet (available: train, val, predict, export, benchmark)")
        }
        other => bail!("unknown mode '{other}'"),
    }
    Ok(())
}

fn data_tool(cmd: &cfg::Command) -> Result<()> {
    let get = |k: &str| {
        cmd.overrides.get(k).map(|v| match v {
            serde_yaml::Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        })
    };
    match cmd.extra.first().map(String::as_str) {
        Some("synth") => {
            let out = get("out").unwrap_or_else(|| "synth".into());
            let n: usize = get("n").map(|v| v.parse()).transpose()?.unwrap_or(200);
            let imgsz: usize = get("imgsz").map(|v| v.parse()).transpose()?.unwrap_or(320);
            let seed: u64 = get("seed").map(|v| v.parse()).transpose()?.unwrap_or(0);
            let yaml = ryolo::data::synth::generate(std::path::Path::new(&out), n, imgsz, seed)?;
            println!(
                "Synthetic dataset written: {} ({} train images of {imgsz}x{imgsz}, classes {:?})",
                yaml.display(),
                n,
                ryolo::data::synth::NAMES
            );
        }
        Some("check") => {
            let data = get("data")
                .ok_or_else(|| anyhow::anyhow!("yolo data check needs data=<data.yaml>"))?;
            let dc = ryolo::data::load_data_yaml(std::path::Path::new(&data))?;
            for (split, sources) in &dc.splits {
                let files = ryolo::data::list_images(sources)?;
                let s = ryolo::data::scan(split, &files, dc.nc(), false);
                let mut counts = vec![0usize; dc.nc()];
                for e in &s.entries {
                    for &c in &e.cls {
                        counts[c as usize] += 1;
                    }
                }
                println!("{split}: {} instances", counts.iter().sum::<usize>());
                for (i, n) in counts.iter().enumerate() {
                    if *n > 0 {
                        println!("{:>22}{:>11}", dc.names[i], n);
                    }
                }
            }
        }
        Some("convert") => {
            let from = get("from")
                .ok_or_else(|| anyhow::anyhow!("yolo data convert needs from=coco|voc"))?;
            let source = get("source").ok_or_else(|| {
                anyhow::anyhow!("yolo data convert needs source=<json file or folder>")
            })?;
            let out = std::path::PathBuf::from(get("out").unwrap_or_else(|| "converted".into()));
            let rep = match from.to_ascii_lowercase().as_str() {
                "coco" => ryolo::data::convert::from_coco(
                    std::path::Path::new(&source),
                    get("images").as_deref().map(std::path::Path::new),
                    &out,
                )?,
                "voc" => {
                    let names = get("names").map(|n| {
                        n.trim_matches(['[', ']'])
                            .split(',')
                            .map(|s| s.trim().trim_matches(['\'', '"']).to_string())
                            .collect()
                    });
                    ryolo::data::convert::from_voc(std::path::Path::new(&source), names, &out)?
                }
                f => bail!("from={f}: use from=coco or from=voc"),
            };
            for d in &rep.dropped {
                println!("WARNING {d}");
            }
            println!("Converted {} images, {} boxes, {} classes {:?}; {} boxes or images dropped (listed above). Dataset: {}", rep.images, rep.boxes, rep.names.len(), rep.names, rep.dropped.len(), rep.yaml.display());
        }
        Some("split") => {
            let source = get("source")
                .ok_or_else(|| anyhow::anyhow!("yolo data split needs source=<images dir>"))?;
            let w: Vec<f64> = get("weights")
                .unwrap_or_else(|| "0.9,0.1,0.0".into())
                .trim_matches(['[', ']', '(', ')'])
                .split(',')
                .map(|v| v.trim().parse::<f64>())
                .collect::<Result<_, _>>()?;
            if w.len() != 3 {
                bail!("weights must be three numbers, e.g. weights=0.9,0.1,0.0");
            }
            let annotated = get("annotated_only").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let c = ryolo::data::convert::autosplit(
                std::path::Path::new(&source),
                [w[0], w[1], w[2]],
                annotated,
                0,
            )?;
            println!("Autosplitting images from {source}: train {}, val {}, test {} (autosplit_*.txt written next to it)", c[0], c[1], c[2]);
        }
        other => bail!(
            "unknown data tool {:?}: use synth, check, convert or split",
            other.unwrap_or("")
        ),
    }
    Ok(())
}

fn bench(cmd: &cfg::Command) -> Result<()> {
    let a = Args::new(&cmd.overrides);
    let n = a.i64("n").map(|v| v.max(1) as usize);
    let (h, w) = a.imgsz()?;
    let imgsz = h.max(w);
    let batch = a.i64("batch").unwrap_or(16).max(1) as usize;
    let threads = tch::get_num_threads();
    match cmd.extra.first().map(String::as_str) {
        Some("loader") => {
            let data = a
                .str("data")
                .ok_or_else(|| anyhow::anyhow!("bench loader needs data=<data.yaml>"))?;
            let workers = a.i64("workers").unwrap_or(2).max(1) as usize;
            let cache = match a.str("cache").as_deref() {
                Some("disk") => "disk",
                Some("ram") => "ram",
                _ if a.bool("cache") => "ram",
                _ => "false",
            };
            let ips = ryolo::engine::bench::loader(
                std::path::Path::new(&data),
                imgsz,
                batch,
                workers,
                cache,
                n.unwrap_or(320),
            )?;
            println!("bench loader: {ips:.1} images/s (imgsz={imgsz} batch={batch} workers={workers} cache={cache}, mosaic on)");
        }
        Some("predict") => {
            let model = a.str("model").unwrap_or_else(|| "yolo11n.yaml".into());
            let m = Backend::load(&model, a.device()?)?;
            let img = a.str("source").map(std::path::PathBuf::from);
            let batch = a.i64("batch").unwrap_or(1).max(1) as usize;
            let (fwd, whole) =
                ryolo::engine::bench::predict(m, imgsz, batch, img.as_deref(), n.unwrap_or(30))?;
            println!("bench predict: forward median {fwd:.1} ms (batch={batch} imgsz={imgsz}, {threads} threads)");
            if let Some(w) = whole {
                println!("bench predict: whole pipeline median {w:.1} ms (decode + letterbox + forward + NMS, 1 image)");
            }
        }
        Some("train") => {
            let model = a.str("model").unwrap_or_else(|| "yolo11n.yaml".into());
            let data = a
                .str("data")
                .ok_or_else(|| anyhow::anyhow!("bench train needs data=<data.yaml>"))?;
            let dc = ryolo::data::load_data_yaml(std::path::Path::new(&data))?;
            let m = load_model(&model, Some(dc.nc() as i64), a.device()?)?.model;
            let ips = ryolo::engine::bench::train_step(
                &m,
                std::path::Path::new(&data),
                imgsz,
                batch,
                n.unwrap_or(10),
            )?;
            println!("bench train: {ips:.1} images/s of the train step (forward + loss + backward + update; batch={batch} imgsz={imgsz}, {threads} threads)");
        }
        other => bail!(
            "unknown benchmark {:?}: use yolo bench loader|predict|train",
            other.unwrap_or("")
        ),
    }
    Ok(())
}

fn export(args: &Args) -> Result<std::path::PathBuf> {
    let model = args
        .str("model")
        .ok_or_else(|| anyhow::anyhow!("export needs model=<.pt, .safetensors or .yaml>"))?;
    let format = args.str("format").unwrap_or_default().to_ascii_lowercase();
    if format != "onnx" {
        bail!("format={format} is not supported; ryolo exports format=onnx");
    }
    let dynamic = args.bool("dynamic");
    let batch = args.i64("batch").unwrap_or(1).max(1);
    if let Some(q) = args.get("quantize").as_i64() {
        // Ultralytics: half=True needs a GPU export; int8 needs calibration formats.
        bail!("quantize={q} (half/int8) ONNX export is not supported on the CPU; export fp32");
    }
    let mut loaded = load_model(&model, None, tch::Device::Cpu)?;
    let a = with_checkpoint_imgsz(args, &loaded);
    let (h, w) = a.imgsz()?;
    let s = loaded.model.stride.iter().cloned().fold(32.0, f64::max) as usize;
    let imgsz = (
        ryolo::engine::predict::check_imgsz(h, s),
        ryolo::engine::predict::check_imgsz(w, s),
    );
    loaded.model.fuse();
    println!("{}", loaded.model.info());
    let opset = a.i64("opset").unwrap_or(18);
    let meta = ryolo::export::metadata(
        &loaded.model,
        imgsz,
        batch as usize,
        &serde_json::to_string(
            &serde_json::json!({"imgsz": [imgsz.0, imgsz.1], "batch": batch, "dynamic": dynamic}),
        )?,
    );
    let bytes = ryolo::export::to_onnx(
        &loaded.model,
        &ryolo::export::ExportConfig {
            imgsz,
            opset,
            metadata: meta,
            batch,
            dynamic,
        },
    )?;
    let out = std::path::Path::new(&model).with_extension("onnx");
    let out = if std::path::Path::new(&model).exists() {
        out
    } else {
        std::path::PathBuf::from(format!("{}.onnx", loaded.stem))
    };
    ryolo::weights::write_atomic(&out, &bytes)?;
    let shape = if dynamic {
        "(batch, 3, height, width)".to_string()
    } else {
        format!("({batch}, 3, {}, {})", imgsz.0, imgsz.1)
    };
    println!(
        "ONNX: export success, saved as '{}' ({:.1} MB), input images {shape}, opset {opset}",
        out.display(),
        bytes.len() as f64 / 1e6
    );
    Ok(out)
}

/// The per-image console/JSON reporter of predict.
type Report<'r> = dyn FnMut(
        String,
        &std::path::Path,
        Option<usize>,
        &ryolo::image::RgbImage,
        &ryolo::engine::predict::Prediction,
    ) + 'r;

/// Format, status, size (MB), (mAP50-95, ms per image).
type BenchRow = (String, String, f64, Option<(f64, f64)>);

/// Ultralytics' benchmark mode: for each format we run (PyTorch weights on libtorch, ONNX on ONNX
/// Runtime), the file size, mAP50-95 on the val split (batch 1) and the inference time per image.
fn benchmark(args: &Args) -> Result<()> {
    let model = args
        .str("model")
        .ok_or_else(|| anyhow::anyhow!("benchmark needs model=<.pt, .safetensors or .yaml>"))?;
    let data = args
        .str("data")
        .ok_or_else(|| anyhow::anyhow!("benchmark needs data=<data.yaml>"))?;
    let t0 = std::time::Instant::now();
    let mut o = args.0.clone();
    o.insert("batch".into(), serde_yaml::Value::from(1));
    o.insert("plots".into(), serde_yaml::Value::from(false));
    o.insert("verbose".into(), serde_yaml::Value::from(false));
    let base = Args::new(&o);
    let size_mb = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.len() as f64 / 1e6)
            .unwrap_or(0.0)
    };
    let mut rows: Vec<BenchRow> = Vec::new();
    println!("\nBenchmark: PyTorch ({model})");
    let torch = val(&base);
    rows.push(match torch {
        Ok(r) => (
            "PyTorch".into(),
            "✅".into(),
            size_mb(std::path::Path::new(&model)),
            Some((r.metrics.map(), r.speed.inference)),
        ),
        Err(e) => ("PyTorch".into(), format!("❌ {e:#}"), 0.0, None),
    });
    println!("\nBenchmark: ONNX");
    let mut eo = o.clone();
    eo.insert("format".into(), serde_yaml::Value::from("onnx"));
    let onnx = export(&Args::new(&eo)).and_then(|f| {
        let mut vo = o.clone();
        vo.insert(
            "model".into(),
            serde_yaml::Value::from(f.display().to_string()),
        );
        Ok((f, val(&Args::new(&vo))?))
    });
    rows.push(match onnx {
        Ok((f, r)) => (
            "ONNX".into(),
            "✅".into(),
            size_mb(&f),
            Some((r.metrics.map(), r.speed.inference)),
        ),
        Err(e) => ("ONNX".into(), format!("❌ {e:#}"), 0.0, None),
    });
    let (h, w) = args.imgsz()?;
    let mut out = format!(
        "\nBenchmarks complete for {model} on {data} at imgsz={} ({:.2}s)\n",
        h.max(w),
        t0.elapsed().as_secs_f64()
    );
    out.push_str(&format!(
        "{:<10} {:<7} {:>10} {:>20} {:>23} {:>8}\n",
        "Format", "Status", "Size (MB)", "metrics/mAP50-95(B)", "Inference time (ms/im)", "FPS"
    ));
    for (fmt, status, size, res) in &rows {
        let ok = res.is_some();
        let (map, ms) = res.unwrap_or((f64::NAN, f64::NAN));
        let st = if ok { status.as_str() } else { "❌" };
        out.push_str(&format!(
            "{fmt:<10} {st:<7} {size:>10.1} {map:>20.4} {ms:>23.2} {:>8.2}\n",
            1000.0 / ms
        ));
        if !ok {
            out.push_str(&format!("           {status}\n"));
        }
    }
    out.push_str("(TorchScript, OpenVINO, TensorRT, CoreML, TF*, PaddlePaddle, MNN, NCNN, IMX, RKNN: not available in ryolo)\n");
    print!("{out}");
    std::fs::write("benchmarks.log", &out)?;
    if rows.iter().all(|r| r.3.is_none()) {
        bail!("every format failed");
    }
    Ok(())
}

fn tch_version() -> String {
    "2.11".into()
}

/// Uses the checkpoint's training imgsz unless imgsz was given on the command line.
fn with_checkpoint_imgsz(args: &Args, loaded: &ryolo::weights::Loaded) -> Args {
    let mut a = args.clone();
    let given = args.get("imgsz")
        != cfg::defaults()
            .get("imgsz")
            .unwrap_or(&serde_yaml::Value::Null);
    if !given {
        if let Some(v) = loaded.train_args.get("imgsz").filter(|v| !v.is_null()) {
            a.0.insert("imgsz".into(), v.clone());
        }
    }
    a
}

/// Loads any model format for inference (fused), with the checkpoint's imgsz adopted.
fn load_backend(args: &Args, model: &str) -> Result<(Backend, Args)> {
    let device = args.device()?;
    if model.to_ascii_lowercase().ends_with(".onnx") {
        return Ok((Backend::load(model, device)?, args.clone()));
    }
    let loaded = load_model(model, None, device)?;
    let a = with_checkpoint_imgsz(args, &loaded);
    let mut m = loaded.model;
    m.fuse();
    Ok((Backend::Torch(m), a))
}

fn val(args: &Args) -> Result<ryolo::engine::val::ValResult> {
    let model = args
        .str("model")
        .ok_or_else(|| anyhow::anyhow!("val needs model=<.pt, .safetensors, .yaml or .onnx>"))?;
    let data = args
        .str("data")
        .ok_or_else(|| anyhow::anyhow!("val needs data=<data.yaml>"))?;
    let (backend, a) = load_backend(args, &model)?;
    let m = backend.as_ref();
    let dc = ryolo::data::load_data_yaml(std::path::Path::new(&data))?;
    if dc.nc() != m.names().len() {
        bail!(
            "{data} has {} classes but the model predicts {}",
            dc.nc(),
            m.names().len()
        );
    }
    println!("{}", m.describe());
    let split = a.str("split").unwrap_or_else(|| "val".into());
    let files = ryolo::data::list_images(dc.split(&split)?)?;
    let single_cls = a.bool("single_cls");
    let scan = ryolo::data::scan(&split, &files, dc.nc(), single_cls);
    if scan.entries.is_empty() {
        bail!("no valid images in the '{split}' split of {data}");
    }
    let (h, w) = a.imgsz()?;
    let vc = ryolo::engine::val::ValConfig {
        imgsz: h.max(w),
        batch: a.i64("batch").unwrap_or(16).max(1) as usize,
        conf: a.f64("conf").unwrap_or(0.001) as f32,
        iou: a.f64("iou").unwrap_or(0.7) as f32,
        max_det: a.i64("max_det").unwrap_or(300).max(1) as usize,
        single_cls,
        agnostic_nms: a.bool("agnostic_nms"),
        half: matches!(a.get("quantize").as_i64(), Some(16)) && m.device().is_cuda(),
        loss: None,
        collect: a.bool("save_json")
            || a.bool("save_txt")
            || a.str("metric").as_deref() == Some("coco"),
        plot_dir: None,
    };
    if matches!(a.get("quantize").as_i64(), Some(16)) && !vc.half {
        eprintln!("WARNING half precision needs CUDA; validating in fp32 on CPU");
    }
    println!("{}", ryolo::engine::val::table_header());
    let plots = a.get("plots").as_bool().unwrap_or(true);
    let wants_dir = plots || a.bool("save_json") || a.bool("save_txt");
    let dir = if wants_dir {
        cfg::save_dir(&a, "val")
    } else {
        std::path::PathBuf::new()
    };
    if plots {
        std::fs::create_dir_all(&dir)?;
    }
    let vc = ryolo::engine::val::ValConfig {
        plot_dir: plots.then(|| dir.clone()),
        ..vc
    };
    let r = ryolo::engine::val::validate(m, &scan.entries, &vc, |_, _| {})?;
    let names = if single_cls {
        vec!["item".to_string()]
    } else {
        dc.names.clone()
    };
    for row in
        ryolo::engine::val::table_rows(&r, &names, a.get("verbose").as_bool().unwrap_or(true))
    {
        println!("{row}");
    }
    println!(
        "Speed: {:.1}ms preprocess, {:.1}ms inference, 0.0ms loss, {:.1}ms postprocess per image",
        r.speed.preprocess, r.speed.inference, r.speed.postprocess
    );
    if a.str("metric").as_deref() == Some("coco") {
        let stats = ryolo::engine::val::coco_stats(&scan.entries, &r);
        println!("COCOeval (pycocotools-exact, maxDets 100):");
        for (name, v) in ryolo::metrics::coco::STAT_NAMES.iter().zip(stats) {
            println!("{name:>8} {v:.5}");
        }
    }
    if a.bool("save_json") {
        std::fs::create_dir_all(&dir)?;
        let p = dir.join("predictions.json");
        std::fs::write(
            &p,
            serde_json::to_string(&ryolo::engine::val::predictions_json(&scan.entries, &r))?,
        )?;
        println!("Saving {}...", p.display());
    }
    if a.bool("save_txt") {
        let ldir = dir.join("labels");
        std::fs::create_dir_all(&ldir)?;
        for (i, dets) in &r.predictions {
            let e = &scan.entries[*i];
            let (h, w) = (e.shape.0 as f64, e.shape.1 as f64);
            let mut text = String::new();
            for (b, conf, cls) in dets {
                let b = b.map(|v| v as f64);
                let row = [
                    (b[0] + b[2]) / 2.0 / w,
                    (b[1] + b[3]) / 2.0 / h,
                    (b[2] - b[0]) / w,
                    (b[3] - b[1]) / h,
                ];
                let vals: Vec<String> = row
                    .iter()
                    .chain(std::iter::once(&(*conf as f64)))
                    .map(|v| ryolo::util::fmt_g(*v, 6))
                    .collect();
                text.push_str(&format!("{cls} {}\n", vals.join(" ")));
            }
            let stem = e
                .im_file
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            std::fs::write(ldir.join(format!("{stem}.txt")), text)?;
        }
    }
    if a.get("plots").as_bool().unwrap_or(true) {
        std::fs::create_dir_all(&dir)?;
        ryolo::plot::charts::plot_curves(&r.metrics, &names, &dir)?;
        ryolo::plot::charts::plot_confusion(&r.confusion, &names, &dir, false)?;
        ryolo::plot::charts::plot_confusion(&r.confusion, &names, &dir, true)?;
        println!("Results saved to {}", dir.display());
    }
    Ok(r)
}

fn predict(args: &Args) -> Result<()> {
    let model = args.str("model").ok_or_else(|| {
        anyhow::anyhow!("predict needs model=<.pt, .safetensors, .yaml or .onnx>")
    })?;
    let source = args.str("source").ok_or_else(|| {
        anyhow::anyhow!(
            "predict needs source=<image, video, folder, glob, .txt list, webcam index or URL>"
        )
    })?;
    let (backend, a) = load_backend(args, &model)?;
    let nms = NmsConfig {
        conf: a.f64("conf").unwrap_or(0.25) as f32,
        iou: a.f64("iou").unwrap_or(0.7) as f32,
        max_det: a.i64("max_det").unwrap_or(300).max(1) as usize,
        multi_label: false,
        agnostic: a.bool("agnostic_nms"),
        classes: a.classes()?,
    };
    let mut p = ryolo::engine::predict::Predictor::with_backend(backend, a.imgsz()?, nms);
    if matches!(a.get("quantize").as_i64(), Some(16)) {
        if p.model().device().is_cuda() {
            p.half = true;
        } else {
            eprintln!("WARNING half precision needs CUDA; predicting in fp32");
        }
    }
    if a.bool("augment") {
        if matches!(p.model, Backend::Onnx(_)) {
            eprintln!("WARNING augment=True needs a .pt/.safetensors model; ignored for ONNX");
        } else {
            p.augment = true;
        }
    }
    // format=json: one JSON line per image on stdout for scripts; the human lines go to stderr.
    let json = a.str("format").as_deref() == Some("json");
    let say = |line: String| {
        if json {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    };
    say(p.model().describe());
    let streaming = ryolo::data::video::is_stream(&source);
    let files = if streaming {
        vec![std::path::PathBuf::from(&source)]
    } else {
        expand_source(&source)?
    };
    let opts = SaveOptions {
        dir: cfg::save_dir(&a, "predict"),
        save: a.get("save").as_bool().unwrap_or(true),
        save_txt: a.bool("save_txt"),
        save_conf: a.bool("save_conf"),
        save_crop: a.bool("save_crop"),
        show_labels: a.get("show_labels").as_bool().unwrap_or(true),
        show_conf: a.get("show_conf").as_bool().unwrap_or(true),
        show_boxes: a.get("show_boxes").as_bool().unwrap_or(true),
        line_width: a.i64("line_width").map(|v| v.max(1) as u32),
    };
    let save_frames = a.bool("save_frames");
    let vid_stride = a.i64("vid_stride").unwrap_or(1).max(1) as usize;
    let stream_buffer = a.bool("stream_buffer");
    let mut total = Speed::default();
    let mut count = 0usize;
    let mut last_shape = (0, 0);
    // One line (and one JSON record) per image or frame.
    let mut report = |what: String,
                      f: &std::path::Path,
                      frame: Option<usize>,
                      img: &ryolo::image::RgbImage,
                      pred: &ryolo::engine::predict::Prediction| {
        let s = pred.speed;
        total.preprocess += s.preprocess;
        total.inference += s.inference;
        total.postprocess += s.postprocess;
        count += 1;
        last_shape = pred.letterbox.shape;
        if json {
            let (w, h) = (img.width() as f32, img.height() as f32);
            let dets: Vec<serde_json::Value> = pred
                .detections
                .iter()
                .map(|d| serde_json::json!({"cls": d.cls, "name": p.name(d.cls), "conf": d.conf, "xyxy": d.xyxy, "xywh": d.xywh(), "xywhn": d.xywhn(w, h)}))
                .collect();
            let mut rec = serde_json::json!({"image": f.display().to_string(), "width": img.width(), "height": img.height(), "detections": dets, "speed_ms": {"preprocess": s.preprocess, "inference": s.inference, "postprocess": s.postprocess}});
            if let Some(n) = frame {
                rec["frame"] = serde_json::json!(n);
            }
            println!("{rec}");
        }
        say(format!(
            "{what}: {}x{} {}, {:.1}ms",
            last_shape.0,
            last_shape.1,
            p.describe(&pred.detections),
            s.inference
        ));
    };
    let n = files.len();
    let batch = a.i64("batch").unwrap_or(1).max(1) as usize;
    type Pending<'f> = Vec<(usize, &'f std::path::PathBuf, ryolo::image::RgbImage)>;
    let mut pending: Pending = Vec::new();
    // Predicts the waiting images in one batch, then reports and saves each.
    let flush = |pending: &mut Pending, report: &mut Report<'_>| -> Result<()> {
        let imgs: Vec<ryolo::image::RgbImage> = pending.iter().map(|x| x.2.clone()).collect();
        let preds = p.predict_batch(&imgs)?;
        for ((i, f, img), pred) in pending.drain(..).zip(preds) {
            report(
                format!("image {}/{n} {}", i + 1, f.display()),
                f,
                None,
                &img,
                &pred,
            );
            save_prediction(&p, f, &img, &pred, &opts)?;
        }
        Ok(())
    };
    for (i, f) in files.iter().enumerate() {
        if streaming || ryolo::data::video::is_video(f) {
            flush(&mut pending, &mut report)?;
            let src = f.to_string_lossy().to_string();
            let mut frames = p.predict_video(&src, vid_stride, stream_buffer)?;
            let info = frames.info().clone();
            let stem = if streaming {
                src.rsplit(['/', ':'])
                    .find(|s| !s.is_empty())
                    .unwrap_or("stream")
                    .to_string()
            } else {
                f.file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_else(|| "video".into())
            };
            let fps = if ryolo::data::video::is_live(&src) {
                30.0
            } else {
                info.fps / vid_stride as f64
            };
            let mut writer = None;
            if opts.save {
                std::fs::create_dir_all(&opts.dir)?;
                writer = Some(ryolo::data::video::VideoWriter::create(
                    &opts.dir.join(format!("{stem}.avi")),
                    info.width,
                    info.height,
                    fps,
                )?);
            }
            for r in frames.by_ref() {
                let (k, frame, pred) = r?;
                let what = if info.frames == 0 {
                    format!("{k}: {src}")
                } else {
                    format!(
                        "video {}/{n} (frame {k}/{}) {}",
                        i + 1,
                        info.frames,
                        f.display()
                    )
                };
                report(what, f, Some(k), &frame, &pred);
                if writer.is_some() || save_frames {
                    let canvas = ryolo::engine::predict::annotate(&p, &frame, &pred, &opts);
                    if let Some(w) = writer.as_mut() {
                        w.write(&canvas)?;
                    }
                    if save_frames {
                        let d = opts.dir.join(format!("{stem}_frames"));
                        std::fs::create_dir_all(&d)?;
                        canvas.save(d.join(format!("{k}.jpg")))?;
                    }
                }
                ryolo::engine::predict::save_labels_and_crops(
                    &p,
                    &format!("{stem}_{k}"),
                    &frame,
                    &pred,
                    &opts,
                )?;
            }
            if let Some(w) = writer {
                w.finish()?;
            }
            continue;
        }
        let img = match load_image(f) {
            Ok(img) => img,
            Err(e) => {
                eprintln!("WARNING skipping {}: {e:#}", f.display());
                continue;
            }
        };
        pending.push((i, f, img));
        if pending.len() >= batch {
            flush(&mut pending, &mut report)?;
        }
    }
    flush(&mut pending, &mut report)?;
    let k = count.max(1) as f64;
    say(format!(
        "Speed: {:.1}ms preprocess, {:.1}ms inference, {:.1}ms postprocess per image at shape ({}, 3, {}, {})",
        total.preprocess / k,
        total.inference / k,
        total.postprocess / k,
        batch.min(n.max(1)),
        last_shape.0,
        last_shape.1
    ));
    if opts.save || opts.save_txt {
        say(format!("Results saved to {}", opts.dir.display()));
    }
    Ok(())
}
