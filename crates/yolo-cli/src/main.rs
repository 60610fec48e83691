//! `yolo-engine`: the command line over the ryolo library (libtorch). Parses arguments, dispatches,
//! prints. The `yolo` launcher (launcher.rs) answers the light commands itself and execs this.

mod light;

use anyhow::{bail, Result};
use ryolo::cfg::{self, Args};
use ryolo::weights::load_model;

use light::HELP;

fn main() {
    light::init_process();
    ryolo::util::malloc::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e:#}");
            2
        }
    };
    exit_now(code)
}

/// Ends the process once everything is written: flushes stdout and stderr and exits without
/// running libtorch's static destructors (they unregister thousands of operators, about 0.1 s of
/// every command's wall time). Everything `run` started has finished or been dropped by now.
fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit ends the process; no Rust state is used afterwards.
    unsafe { libc::_exit(code) }
}

fn run(argv: &[String]) -> Result<()> {
    // The lines the launcher answers itself are answered here the same way.
    if let Some(c) = light::light_command(argv) {
        return light::run_light(c).map_err(anyhow::Error::msg);
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
        "checks" => checks(),
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
            // device=cpu,cpu / device=0,1: one process per device (data-parallel, Gloo).
            use ryolo::engine::dist::launch;
            if let Some(devs) = launch::device_list(args.str("device").as_deref())? {
                if std::env::var_os("RANK").is_none() {
                    let exe = std::env::current_exe()?;
                    return launch::launch(&exe, &argv, &devs, args.num("batch")?);
                }
            }
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

/// `yolo checks`: versions, CUDA (its libraries are loaded here to look) and the CPU thread set-up.
fn checks() {
    let cuda = ryolo::util::cuda::load();
    println!(
        "ryolo {} | libtorch {} | CUDA available: {} ({} devices)",
        env!("CARGO_PKG_VERSION"),
        ryolo::util::LIBTORCH_VERSION,
        cuda.is_ok() && tch::Cuda::is_available(),
        ryolo::util::cuda::device_count()
    );
    match cuda {
        Err(why) => println!("CUDA libraries: not loaded: {why}"),
        Ok(_) => println!("{}", ryolo::engine::dist::nccl::describe()),
    }
    println!("{}", ryolo::util::threads::summary());
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
    let tool = cmd.extra.first().map(String::as_str);
    if let Some(extra) = cmd.extra.get(1) {
        bail!(
            "yolo data {}: unexpected argument '{extra}' (arguments are key=value)",
            tool.unwrap_or("")
        );
    }
    // Keys each tool reads (split_dota checks its own); any other is named, never silently dropped.
    let known: &[&str] = match tool {
        Some("synth") => &["out", "n", "imgsz", "seed", "task"],
        Some("check") => &["data", "task"],
        Some("convert") => &[
            "from",
            "source",
            "out",
            "images",
            "use_segments",
            "cls91to80",
            "names",
        ],
        Some("split") => &["source", "weights", "annotated_only"],
        Some("mot") => &["gt", "results", "mot17", "save_json"],
        _ => &[],
    };
    if !known.is_empty() {
        for k in cmd.overrides.keys().map(text) {
            if !known.contains(&k.as_str()) {
                eprintln!(
                    "WARNING yolo data {}: '{k}' is not used (keys: {})",
                    tool.unwrap_or(""),
                    known.join(", ")
                );
            }
        }
    }
    match tool {
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
        Some("split_dota") => {
            let keys: Vec<String> = cmd.overrides.keys().map(text).collect();
            print!("{}", ryolo::data::split_dota::cli(&get, &keys)?);
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
        Some("mot") => {
            let need = |k: &str| {
                get(k).map(std::path::PathBuf::from).ok_or_else(|| {
                    anyhow::anyhow!("yolo data mot needs gt=<gt.txt, sequence folder or folder of sequences> results=<file or folder of <SEQ>.txt>")
                })
            };
            let mot17 = match get("mot17").map(|v| v.to_ascii_lowercase()).as_deref() {
                None | Some("auto") => None,
                Some("true") => Some(true),
                Some("false") => Some(false),
                Some(v) => bail!("mot17={v}: use mot17=auto, True or False"),
            };
            let json = get("save_json").map(std::path::PathBuf::from);
            ryolo::metrics::mot::run(&need("gt")?, &need("results")?, mot17, json.as_deref())?;
        }
        other => bail!(
            "unknown data tool {:?}: use synth, check, convert, split, split_dota or mot",
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
            let (ips, cpu_ms) = ryolo::engine::bench::loader(
                std::path::Path::new(&data),
                imgsz,
                batch,
                workers,
                cache,
                n.unwrap_or(320),
            )?;
            println!("bench loader: {ips:.1} images/s, {cpu_ms:.1} CPU ms/image (imgsz={imgsz} batch={batch} workers={workers} cache={cache}, mosaic on)");
        }
        Some("predict") => {
            let model = a.model();
            let img = a.str("source").map(std::path::PathBuf::from);
            let batch = a.i64("batch").unwrap_or(1).max(1) as usize;
            let (rows, default) = ryolo::engine::bench::predict_engines(
                &model,
                a.device()?,
                imgsz,
                batch,
                img.as_deref(),
                n.unwrap_or(30),
            )?;
            for r in &rows {
                let export = r
                    .export_secs
                    .map(|s| format!(", export {:.0} ms", s * 1e3))
                    .unwrap_or_default();
                println!("bench predict [{}]: forward median {:.1} ms (batch={batch} imgsz={imgsz}, {threads} threads{export})", r.engine, r.forward);
                if let Some(w) = r.whole {
                    println!("bench predict [{}]: whole pipeline median {w:.1} ms (decode + letterbox + forward + NMS, 1 image)", r.engine);
                }
            }
            if let [t, o] = rows.as_slice() {
                println!("bench predict: ONNX Runtime / libtorch forward {:.2}x; the default path runs {default} (RYOLO_BACKEND)", o.forward / t.forward);
            }
        }
        Some("train") => {
            let model = a.model();
            let data = a
                .str("data")
                .ok_or_else(|| anyhow::anyhow!("bench train needs data=<data.yaml>"))?;
            let dc = ryolo::data::load_data_yaml(std::path::Path::new(&data))?;
            let m = load_model(&model, Some(dc.nc() as i64), a.device()?)?.model;
            // Float32 channels-last (the training default) and NCHW (channels_last=False), then
            // with amp=bf16 bfloat16 autocast on the same model, side by side.
            let bf16 = a.str("amp").is_some_and(|s| s.eq_ignore_ascii_case("bf16"));
            if bf16 && ryolo::util::amp::cpu_bf16().is_none() {
                eprintln!("WARNING bench train amp=bf16: this CPU has no native bfloat16 instructions; the bf16 row is emulated");
            }
            let mut ips = Vec::new();
            let modes = [(false, true), (false, false), (true, false)];
            for mode in modes.into_iter().filter(|&(b, _)| !b || bf16) {
                let v = ryolo::engine::bench::train_step(
                    &m,
                    std::path::Path::new(&data),
                    imgsz,
                    batch,
                    n.unwrap_or(10),
                    mode,
                )?;
                let name = match mode {
                    (true, _) => "bf16",
                    (false, true) => "fp32 NCHW, channels_last=False",
                    (false, false) => "fp32",
                };
                println!("bench train [{name}]: {v:.1} images/s of the train step (forward + loss + backward + update; batch={batch} imgsz={imgsz}, {threads} threads)");
                ips.push(v);
            }
            println!(
                "bench train: fp32 NCHW / channels-last step time {:.2}x",
                ips[1] / ips[0]
            );
            if let [_, f, b] = ips.as_slice() {
                println!("bench train: bf16 / fp32 step time {:.2}x", f / b);
            }
        }
        Some("track") => {
            let src = a.str("source").ok_or_else(|| {
                anyhow::anyhow!("bench track needs source=<detections JSON with inputs[f] = [[x1,y1,x2,y2,conf,cls], ...]> (e.g. the track fixtures, or scripts/bench_track.py --make-crowd)")
            })?;
            for k in cmd.overrides.keys() {
                let k = serde_yaml::to_string(k)?.trim().to_string();
                if !["source", "tracker", "n"].contains(&k.as_str()) {
                    eprintln!("WARNING bench track: '{k}' is not used (keys: source, tracker, n)");
                }
            }
            let frames = ryolo::track::bench::load_stream(std::path::Path::new(&src))?;
            let names: Vec<String> = match cmd.overrides.get("tracker") {
                Some(v) => vec![serde_yaml::to_string(v)?.trim().to_string()],
                None => ["bytetrack.yaml", "botsort.yaml", "tracktrack.yaml"]
                    .map(String::from)
                    .to_vec(),
            };
            for name in names {
                let cfg = ryolo::track::TrackerConfig::load(&name)?;
                let runs = n.unwrap_or(5);
                let t = ryolo::track::bench::time_tracker(&cfg, &frames, runs)?;
                let runs_txt: Vec<String> =
                    t.run_means_ms.iter().map(|m| format!("{m:.4}")).collect();
                println!(
                    "bench track: ryolo {name:16} {:24} {:6.1} dets/frame  per-frame mean {:8.4} ms (median of {runs} runs; runs {})  frame median {:.4} ms  rows out {} (GMC off)",
                    std::path::Path::new(&src).file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default(),
                    t.dets_per_frame,
                    t.median_run_mean_ms(),
                    runs_txt.join(" "),
                    t.frame_median_ms,
                    t.rows_out
                );
            }
        }
        Some("start") => bail!(
            "`bench start` runs in the `yolo` launcher (it times `yolo` commands as fresh processes \
             from a small parent): use `yolo bench start ...`"
        ),
        other => bail!(
            "unknown benchmark {:?}: use yolo bench loader|predict|train|track|start",
            other.unwrap_or("")
        ),
    }
    Ok(())
}
