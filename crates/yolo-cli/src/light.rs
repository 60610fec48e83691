//! What both binaries share without libtorch: the help text, the commands the `yolo` launcher
//! answers itself (help, version, cfg, copy-cfg) and the process set-up.

pub const HELP: &str = "ryolo: Ultralytics YOLO (v8, 11) in Rust

Usage: yolo [TASK] MODE [key=value ...]
  TASK: detect, segment, classify, pose, obb (inferred from the model when omitted)
  MODE: train, val, predict, export (format=onnx|pt), track, benchmark, info
  Data tools: yolo data synth out=DIR [n=200 imgsz=320 seed=0 task=detect|segment|pose|obb] | yolo data check data=data.yaml [task=...]\n              yolo data convert from=coco|voc source=PATH out=DIR [images=DIR use_segments=True cls91to80=True] | from=dota source=DOTA_ROOT (labels/{train,val}_original -> labels/{train,val}) | yolo data split source=DIR weights=0.9,0.1,0.0\n              yolo data split_dota source=DOTA_ROOT out=DIR [crop_size=1024 gap=200 rates=1.0 splits=train,val,test] (Ultralytics split_trainval/split_test tiles)\n              yolo data mot gt=GT.txt|SEQ_DIR|MOT17/train results=RES.txt|DIR [mot17=auto|True|False save_json=metrics.json] (MOTA, IDF1, ... as py-motmetrics)
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

/// The defaults file `yolo cfg` prints (the same file as `ryolo::cfg::DEFAULT_YAML`).
pub const DEFAULT_YAML: &str = include_str!("../../ryolo/src/cfg/default.yaml");

/// A command line the launcher answers itself, without libtorch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Light {
    Help,
    Version,
    Cfg,
    CopyCfg,
}

/// The light command a command line is, if it is one: nothing or one word among `help`,
/// `-h`/`--help`/`-help`, `version`, `cfg`, `copy-cfg` (the lines `cfg::parse_args` reads the
/// same way, with nothing to check or warn about). Anything else goes to the engine.
pub fn light_command(argv: &[String]) -> Option<Light> {
    match argv {
        [] => Some(Light::Help),
        [one] => match one.as_str() {
            "help" | "-h" | "--help" | "-help" => Some(Light::Help),
            "version" => Some(Light::Version),
            "cfg" => Some(Light::Cfg),
            "copy-cfg" => Some(Light::CopyCfg),
            _ => None,
        },
        _ => None,
    }
}

/// Answers a light command as the engine does.
pub fn run_light(cmd: Light) -> Result<(), String> {
    match cmd {
        Light::Help => println!("{HELP}"),
        Light::Version => println!("{}", env!("CARGO_PKG_VERSION")),
        Light::Cfg => print!("{DEFAULT_YAML}"),
        Light::CopyCfg => {
            let dir = std::env::current_dir()
                .map_err(|e| format!("cannot read the current folder: {e}"))?;
            let out = dir.join("default_copy.yaml");
            std::fs::write(&out, DEFAULT_YAML)
                .map_err(|e| format!("writing {}: {e}", out.display()))?;
            println!("default.yaml copied to {}\nExample YOLO command with this new custom cfg:\n    yolo cfg='{}' imgsz=320 batch=8", out.display(), out.display());
        }
    }
    Ok(())
}

/// Process set-up shared by both binaries: output into a closed pipe (`yolo help | head`) ends the
/// process quietly, as for any Unix tool, instead of a "failed printing to stdout" panic; a panic
/// anywhere (a bug, never an input's fault) is an error with exit code 3, not a silent thread
/// death or a Rust backtrace.
pub fn init_process() {
    // SAFETY: restoring the default SIGPIPE action before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn only_bare_light_words_are_light() {
        for (line, want) in [
            ("", Some(Light::Help)),
            ("help", Some(Light::Help)),
            ("--help", Some(Light::Help)),
            ("-h", Some(Light::Help)),
            ("version", Some(Light::Version)),
            ("cfg", Some(Light::Cfg)),
            ("copy-cfg", Some(Light::CopyCfg)),
            ("--version", None),
            ("version imgsz=320", None),
            ("settings", None),
            ("checks", None),
            ("predict model=a.pt", None),
            ("cfg=my.yaml", None),
        ] {
            assert_eq!(light_command(&argv(line)), want, "{line}");
        }
    }

    #[test]
    fn the_light_lines_parse_to_the_same_mode_in_the_engine() {
        for (line, want) in [
            ("help", "help"),
            ("-h", "help"),
            ("--help", "help"),
            ("-help", "help"),
            ("version", "version"),
            ("cfg", "cfg"),
            ("copy-cfg", "copy-cfg"),
        ] {
            let cmd = ryolo::cfg::parse_args(&argv(line)).unwrap();
            assert_eq!(cmd.mode.as_deref(), Some(want), "{line}");
        }
        assert_eq!(DEFAULT_YAML, ryolo::cfg::DEFAULT_YAML);
    }
}
