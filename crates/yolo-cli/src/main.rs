//! `yolo`: the command line over the ryolo library. Parses arguments, dispatches, prints.

use anyhow::{bail, Result};
use ryolo::cfg::{self, Args};
use ryolo::engine::backend::Backend;
use ryolo::weights::load_model;

const HELP: &str = "ryolo: Ultralytics YOLO (v8, 11) detection in Rust

Usage: yolo [TASK] MODE [key=value ...]
  TASK: detect, segment (implemented); classify (predict only); pose, obb are recognised and refused for now
  MODE: train, val, predict, export (format=onnx|pt), track, benchmark, info
  Data tools: yolo data synth out=DIR [n=200 imgsz=320 seed=0 task=detect|segment|pose|obb] | yolo data check data=data.yaml [task=...]\n              yolo data convert from=coco|voc source=PATH out=DIR [images=DIR use_segments=True cls91to80=True] | from=dota source=DOTA_ROOT (labels/{train,val}_original -> labels/{train,val}) | yolo data split source=DIR weights=0.9,0.1,0.0
  Special: help, version, cfg (print defaults), settings [key=value ...] | settings reset

Examples:
  yolo info model=yolo11n.yaml
  yolo predict model=path/to/best.pt source=images/ conf=0.25 imgsz=640
  yolo predict model=best.pt source='data/*.jpg' save_txt=True save_conf=True
  yolo val model=best.pt data=data.yaml batch=16 imgsz=640
  yolo predict model=best.onnx source=images/      (.onnx files run on ONNX Runtime)
  yolo track model=best.pt source=video.mp4 [tracker=bytetrack.yaml|botsort.yaml|tracktrack.yaml|my.yaml] [persist] [save_mot]
  yolo benchmark model=best.pt data=data.yaml imgsz=640
  yolo settings runs_dir=/data/runs

Models: yolov8{n,s,m,l,x}.yaml and yolo11{n,s,m,l,x}.yaml are built in; Ultralytics .pt files and
ryolo .safetensors checkpoints load directly; .onnx exports (ours and Ultralytics') run on ONNX Runtime. Arguments and defaults follow Ultralytics 8.4.";

fn main() {
    // Output into a closed pipe (`yolo help | head`) ends the process quietly, as for any Unix
    // tool, instead of a "failed printing to stdout" panic.
    // SAFETY: restoring the default SIGPIPE action before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A panic anywhere (a bug, never an input's fault) is an error with a non-zero exit, not a
    // silent thread death or a Rust backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("Error: internal error: {msg}{at} (a bug in ryolo; please report it with the command line)");
        std::process::exit(3);
    }));
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
    // `persist` and `save_mot` are track-mode words, not cfg keys.
    let mut argv = argv.to_vec();
    let track_flags = if argv.iter().any(|a| a == "track") {
        ryolo::engine::predict::track::take_track_flags(&mut argv)?
    } else {
        Default::default()
    };
    let cmd = cfg::parse_args(&argv)?;
    let mode = cmd.mode.clone().unwrap_or_else(|| {
        eprintln!("WARNING 'mode' argument is missing. Valid modes are train, val, predict, export, track, benchmark. Using default 'mode=train'.");
        "train".into()
    });
    let args = Args::new(&cmd.overrides);
    if cfg::MODES.contains(&mode.as_str()) || mode == "info" {
        // The task is resolved once, before anything is loaded or written; unimplemented
        // arguments are named once.
        args.task()?;
        cfg::warn_unimplemented(&args);
    }
    match mode.as_str() {
        "help" => println!("{HELP}"),
        "version" => println!("{}", env!("CARGO_PKG_VERSION")),
        "cfg" => print!("{}", cfg::DEFAULT_YAML),
        "copy-cfg" => {
            let out = std::env::current_dir()?.join("default_copy.yaml");
            ryolo::util::write_atomic(&out, cfg::DEFAULT_YAML.as_bytes())?;
            println!("default.yaml copied to {}\nExample YOLO command with this new custom cfg:\n    yolo cfg='{}' imgsz=320 batch=8", out.display(), out.display());
        }
        "checks" => {
            println!(
                "ryolo {} | libtorch {} | CUDA available: {} ({} devices)",
                env!("CARGO_PKG_VERSION"),
                ryolo::util::LIBTORCH_VERSION,
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
            let model = args.model();
            let loaded = load_model(&model, None, args.device()?)?;
            println!("{}", loaded.model.info());
        }
        "predict" => {
            // Predict's own default: batch 1 (Ultralytics' Model.predict overrides cfg's 16).
            let o = cfg::with_mode_defaults("predict", args.task()?, &cmd.overrides);
            ryolo::engine::predict::run(&Args::new(&o))?
        }
        "val" => {
            ryolo::engine::val::run(&args)?;
        }
        "train" => {
            let mut cb = ryolo::engine::train::Callbacks::default();
            // Classification trains at 224 unless imgsz is given (Ultralytics' ClassificationTrainer).
            let o = cfg::with_mode_defaults("train", args.task()?, &cmd.overrides);
            ryolo::engine::train::train(&Args::new(&o), &mut cb)?;
        }
        "data" => data_tool(&cmd)?,
        "bench" => bench(&cmd)?,
        "export" => {
            // Export's own default: batch 1 (Ultralytics overlays it under the user's args).
            let o = cfg::with_mode_defaults("export", args.task()?, &cmd.overrides);
            ryolo::export::run(&Args::new(&o))?;
        }
        "benchmark" => ryolo::engine::benchmark::run(&args)?,
        "track" => {
            // Track's own default: batch 1, as predict (Ultralytics' Model.track).
            let o = cfg::with_mode_defaults("track", args.task()?, &cmd.overrides);
            ryolo::engine::predict::track::run(&Args::new(&o), track_flags)?
        }
        other => bail!("unknown mode '{other}'"),
    }
    Ok(())
}

fn data_tool(cmd: &cfg::Command) -> Result<()> {
    // Values as text; lists (`weights=0.9,0.1,0.0` parses as one) joined with commas.
    let text = |v: &serde_yaml::Value| match v {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    let get = |k: &str| {
        cmd.overrides.get(k).map(|v| match v {
            serde_yaml::Value::Sequence(items) => {
                items.iter().map(text).collect::<Vec<_>>().join(",")
            }
            other => text(other),
        })
    };
    let flag = |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    match cmd.extra.first().map(String::as_str) {
        Some("synth") => {
            let out = get("out").unwrap_or_else(|| "synth".into());
            let num = |k: &str, d: usize, max: usize| -> Result<usize> {
                let v = get(k)
                    .map(|v| v.parse::<usize>())
                    .transpose()
                    .map_err(|_| anyhow::anyhow!("{k}= must be a whole number from 1 to {max}"))?;
                match v.unwrap_or(d) {
                    v if (1..=max).contains(&v) => Ok(v),
                    _ => bail!("{k}= must be a whole number from 1 to {max}"),
                }
            };
            let n = num("n", 200, 100_000)?;
            let imgsz = num("imgsz", 320, cfg::MAX_IMGSZ as usize)?;
            let seed: u64 = get("seed").map(|v| v.parse()).transpose()?.unwrap_or(0);
            let task = get("task");
            if matches!(task.as_deref(), Some("pose") | Some("obb")) {
                let dir = std::path::Path::new(&out);
                let yaml = if task.as_deref() == Some("pose") {
                    ryolo::data::synth_po::generate_pose(dir, n, imgsz, seed)?
                } else {
                    ryolo::data::synth_po::generate_obb(dir, n, imgsz, seed)?
                };
                println!(
                    "Synthetic {} dataset written: {} ({n} train images of {imgsz}x{imgsz})",
                    task.unwrap_or_default(),
                    yaml.display()
                );
                return Ok(());
            }
            let polygons = match task.as_deref() {
                None | Some("detect") => false,
                Some("segment") => true,
                Some(t) => bail!("yolo data synth task={t}: use task=detect, segment, pose or obb"),
            };
            let yaml = ryolo::data::synth::generate_with(
                std::path::Path::new(&out),
                n,
                imgsz,
                seed,
                polygons,
            )?;
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
            let format = dc.label_format(get("task").as_deref().unwrap_or("detect"))?;
            for (split, sources) in &dc.splits {
                let files = ryolo::data::list_images(sources)?;
                let s = ryolo::data::scan_with(split, &files, dc.nc(), false, format);
                s.check_parts_in(split, format)?;
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
                .ok_or_else(|| anyhow::anyhow!("yolo data convert needs from=coco|voc|dota"))?;
            let source = get("source").ok_or_else(|| {
                anyhow::anyhow!("yolo data convert needs source=<json file or folder>")
            })?;
            let out = std::path::PathBuf::from(get("out").unwrap_or_else(|| "converted".into()));
            if from.eq_ignore_ascii_case("dota") {
                let r = ryolo::data::convert::from_dota(std::path::Path::new(&source))?;
                println!("Converted {} DOTA label files ({} boxes, {} images skipped: not .png or no original label) into {source}/labels/{{train,val}}", r.images, r.boxes, r.skipped);
                return Ok(());
            }
            let rep = match from.to_ascii_lowercase().as_str() {
                "coco" => ryolo::data::convert::from_coco_with(
                    std::path::Path::new(&source),
                    get("images").as_deref().map(std::path::Path::new),
                    &out,
                    ryolo::data::convert::CocoOptions {
                        use_segments: flag("use_segments"),
                        cls91to80: flag("cls91to80"),
                    },
                )?,
                "voc" => {
                    let names = get("names").map(|n| {
                        n.trim_matches(['[', ']'])
                            .split(',')
                            .map(|s| s.trim().trim_matches(['\'', '"']).to_string())
                            .collect()
                    });
                    ryolo::data::convert::from_voc_with(
                        std::path::Path::new(&source),
                        get("images").as_deref().map(std::path::Path::new),
                        names,
                        &out,
                    )?
                }
                f => bail!("from={f}: use from=coco, from=voc or from=dota"),
            };
            for d in rep.dropped.iter().chain(&rep.warnings) {
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
                .map(|v| {
                    v.trim().parse::<f64>().map_err(|_| {
                        anyhow::anyhow!("weights: '{v}' is not a number (use weights=0.9,0.1,0.0)")
                    })
                })
                .collect::<Result<_>>()?;
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
            let model = a.model();
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
            let model = a.model();
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
