//! Configuration: the `yolo [TASK] MODE key=value` grammar, defaults, settings and run folders
//! (spec/cli.md).

mod modes;
mod settings;
mod unsupported;

pub use modes::with_mode_defaults;

pub use settings::{
    default_settings, load_settings, save_settings, settings_path, update_settings, UNUSED_SETTINGS,
};
pub use unsupported::{warn_unimplemented, UNIMPLEMENTED};

use anyhow::{anyhow, bail, Context, Result};
use serde_yaml::{Mapping, Value};
use std::path::{Path, PathBuf};

/// The defaults (Ultralytics 8.4 default.yaml keys and values).
pub const DEFAULT_YAML: &str = include_str!("default.yaml");

/// Tasks accepted on the command line.
pub const TASKS: &[&str] = &[
    "detect", "segment", "semantic", "depth", "classify", "pose", "obb",
];
/// Modes accepted on the command line.
pub const MODES: &[&str] = &["train", "val", "predict", "export", "track", "benchmark"];
/// Single-word commands.
pub const SPECIAL: &[&str] = &[
    "help", "checks", "version", "settings", "cfg", "copy-cfg", "info", "data", "bench",
];

/// Keys whose values must lie in [0, 1].
const FRACTION_KEYS: &[&str] = &[
    "dropout",
    "lr0",
    "lrf",
    "momentum",
    "weight_decay",
    "warmup_momentum",
    "warmup_bias_lr",
    "hsv_h",
    "hsv_s",
    "hsv_v",
    "translate",
    "scale",
    "perspective",
    "flipud",
    "fliplr",
    "bgr",
    "mosaic",
    "mixup",
    "cutmix",
    "copy_paste",
    "conf",
    "iou",
    "fraction",
];
/// Keys that must be integers.
const INT_KEYS: &[&str] = &[
    "epochs",
    "patience",
    "workers",
    "seed",
    "close_mosaic",
    "mask_ratio",
    "max_det",
    "vid_stride",
    "line_width",
    "nbs",
    "save_period",
    "opset",
];

/// Mode defaults for keys `default.yaml` leaves empty (Ultralytics fills them per mode).
pub mod mode_defaults {
    /// `model=` when none is given (ryolo ships YAMLs, not downloaded weights).
    pub const MODEL: &str = "yolo11n.yaml";
    /// `conf=` of predict.
    pub const PREDICT_CONF: f64 = 0.25;
    /// `conf=` of val (and validation during training).
    pub const VAL_CONF: f64 = 0.001;
    /// `opset=` of ONNX export.
    pub const OPSET: i64 = 18;
}

impl Args {
    /// `model=`, or the default model.
    pub fn model(&self) -> String {
        self.str("model")
            .unwrap_or_else(|| mode_defaults::MODEL.into())
    }
}

/// Inclusive ranges of numeric keys (beyond them a run would be meaningless or would try to
/// allocate absurd amounts of memory).
const RANGES: &[(&str, f64, f64)] = &[
    ("epochs", 1.0, 1e6),
    ("patience", 0.0, 1e9),
    ("workers", 0.0, 1024.0),
    ("seed", 0.0, 4294967295.0),
    ("close_mosaic", 0.0, 1e6),
    ("mask_ratio", 1.0, 64.0),
    ("max_det", 1.0, 100_000.0),
    ("vid_stride", 1.0, 1e6),
    ("line_width", 1.0, 1000.0),
    ("nbs", 1.0, 100_000.0),
    ("opset", 7.0, 30.0),
    ("time", 0.0, 1e6),
];

/// Largest `imgsz` accepted (a side; 8192x8192 RGB is already 200 MB per image).
pub const MAX_IMGSZ: i64 = 8192;

/// Largest `batch` accepted.
pub const MAX_BATCH: i64 = 4096;

/// Range checks of `batch` (-1, a fraction in (0, 1), or 1..=MAX_BATCH) and `imgsz` (each side
/// 1..=MAX_IMGSZ).
fn check_size(key: &str, v: &Value) -> Result<()> {
    let bad = |why: &str| anyhow!("'{key}={}' is an invalid value: {why}", show(v));
    match key {
        "batch" => {
            let b = v.as_f64().ok_or_else(|| bad("'batch' must be a number"))?;
            let ok = b == -1.0
                || (b > 0.0 && b < 1.0)
                || (b.fract() == 0.0 && (1.0..=MAX_BATCH as f64).contains(&b));
            if !ok {
                return Err(bad(&format!(
                    "use -1 (AutoBatch), a fraction in (0, 1) or an integer from 1 to {MAX_BATCH}"
                )));
            }
        }
        "imgsz" => {
            let sides: Vec<&Value> = match v {
                Value::Sequence(s) => s.iter().collect(),
                one => vec![one],
            };
            for s in sides {
                let n = s
                    .as_f64()
                    .ok_or_else(|| bad("'imgsz' must be an integer or [h, w]"))?;
                if n.fract() != 0.0 || !(1.0..=MAX_IMGSZ as f64).contains(&n) {
                    return Err(bad(&format!(
                        "each side must be an integer from 1 to {MAX_IMGSZ}"
                    )));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The parsed default configuration, in file order.
pub fn defaults() -> Mapping {
    serde_yaml::from_str(DEFAULT_YAML).expect("built-in default.yaml is valid")
}

/// Maps Ultralytics' renamed keys (with a warning) and drops its removed ones; returns the key to
/// store `v` under, or `None` when the key was consumed here.
fn deprecated<'k>(k: &'k str, v: &str, overrides: &mut Mapping) -> Option<&'k str> {
    let renamed = |new: &str| {
        eprintln!(
            "WARNING '{k}' is deprecated and will be removed in the future. Use '{new}' instead."
        );
    };
    match k {
        "boxes" => {
            renamed("show_boxes");
            Some("show_boxes")
        }
        "line_thickness" => {
            renamed("line_width");
            Some("line_width")
        }
        "end2end" => {
            renamed("nms");
            Some("nms")
        }
        "hide_labels" | "hide_conf" => {
            let nk = if k == "hide_labels" {
                "show_labels"
            } else {
                "show_conf"
            };
            renamed(nk);
            let val = smart_value(k, v).as_bool().map(|b| !b).unwrap_or(true);
            overrides.insert(nk.into(), Value::Bool(val));
            None
        }
        "half" | "int8" => {
            renamed("quantize");
            if smart_value(k, v).as_bool() == Some(true) {
                let q = if k == "half" { 16 } else { 8 };
                overrides.insert("quantize".into(), Value::from(q));
            }
            None
        }
        "label_smoothing" | "save_hybrid" | "crop_fraction" | "keras" => {
            eprintln!("WARNING '{k}' was removed from Ultralytics and is ignored.");
            None
        }
        other => Some(other),
    }
}

/// A parsed command line.
#[derive(Debug, Clone, Default)]
pub struct Command {
    /// Task word, if given.
    pub task: Option<String>,
    /// Mode word or special command, if given.
    pub mode: Option<String>,
    /// `key=value` overrides (already merged with `cfg=`).
    pub overrides: Mapping,
    /// Bare words after a special command (e.g. `settings reset`).
    pub extra: Vec<String>,
}

/// Re-joins tokens split around `=` and inside `[...]` (`imgsz=[640, 480]`, `conf = 0.5`).
fn merge_tokens(args: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let mut a = args[i].clone();
        if a.ends_with('=') && i + 1 < args.len() {
            a.push_str(&args[i + 1]);
            i += 1;
        } else if i + 1 < args.len() && args[i + 1].starts_with('=') && !a.contains('=') {
            a.push_str(&args[i + 1]);
            i += 1;
            if a.ends_with('=') && i + 1 < args.len() {
                a.push_str(&args[i + 1]);
                i += 1;
            }
        }
        while a.matches('[').count() > a.matches(']').count() && i + 1 < args.len() {
            a.push_str(&args[i + 1]);
            i += 1;
        }
        out.push(a);
        i += 1;
    }
    out
}

/// Converts a command-line value as Ultralytics' `smart_value` does.
pub fn smart_value(key: &str, v: &str) -> Value {
    let lower = v.to_ascii_lowercase();
    if lower == "none" {
        return Value::Null;
    }
    if key == "name" || key == "project" {
        return Value::String(v.to_string());
    }
    match lower.as_str() {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = v.parse::<f64>() {
        return Value::from(f);
    }
    let looks_list = (v.starts_with('[') && v.ends_with(']'))
        || (v.starts_with('(') && v.ends_with(')'))
        || (v.contains(',') && !v.contains(' '));
    if looks_list {
        let inner = v
            .trim_start_matches(['[', '('])
            .trim_end_matches([']', ')']);
        let items: Vec<Value> = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| smart_value("", s.trim_matches(['\'', '"'])))
            .collect();
        return Value::Sequence(items);
    }
    Value::String(v.trim_matches(['\'', '"']).to_string())
}

fn suggest(key: &str, keys: impl Iterator<Item = String>) -> String {
    let mut scored: Vec<(f64, String)> = keys
        .map(|k| (strsim::jaro_winkler(key, &k), k))
        .filter(|(s, _)| *s > 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let close: Vec<String> = scored.into_iter().take(3).map(|(_, k)| k).collect();
    if close.is_empty() {
        String::new()
    } else {
        format!(" Similar arguments are i.e. {}.", close.join(", "))
    }
}

/// Checks a value's type against the key's default.
fn check_value(key: &str, v: &Value) -> Result<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    if FRACTION_KEYS.contains(&key) {
        let f = v.as_f64().ok_or_else(|| {
            anyhow!(
                "'{key}={}' is of invalid type; '{key}' must be a number between 0.0 and 1.0",
                show(v)
            )
        })?;
        if !(0.0..=1.0).contains(&f) {
            bail!(
                "'{key}={}' is an invalid value. Valid '{key}' values are between 0.0 and 1.0.",
                show(v)
            );
        }
    }
    check_size(key, v)?;
    if let Some((_, lo, hi)) = RANGES.iter().find(|(k, _, _)| *k == key) {
        if let Some(f) = v.as_f64() {
            if !(*lo..=*hi).contains(&f) {
                bail!(
                    "'{key}={}' is an invalid value: '{key}' must be between {lo} and {hi}",
                    show(v)
                );
            }
        }
    }
    if INT_KEYS.contains(&key) {
        match v.as_f64() {
            Some(f) if f.fract() == 0.0 => return Ok(Value::from(f as i64)),
            _ => bail!(
                "'{key}={}' is of invalid type; '{key}' must be an int (i.e. '{key}=8')",
                show(v)
            ),
        }
    }
    let cache_mode = key == "cache" && matches!(v.as_str(), Some("ram" | "disk"));
    // `amp=bf16`: our extension, bfloat16 autocast for CPU training (Ultralytics' amp is CUDA-only).
    let amp_bf16 = key == "amp" && v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("bf16"));
    // `channels_last` defaults to null (unset) but is a bool when given.
    let nullable_bool = key == "channels_last" && !v.is_null();
    let bool_key = matches!(defaults().get(key), Some(Value::Bool(_))) && !(cache_mode || amp_bf16);
    if (bool_key || nullable_bool) && !v.is_bool() {
        bail!("'{key}={}' is of invalid type; '{key}' must be a bool (i.e. '{key}=True' or '{key}=False')", show(v));
    }
    Ok(v.clone())
}

fn show(v: &Value) -> String {
    serde_yaml::to_string(v)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Parses `yolo` arguments (without the program name).
pub fn parse_args(args: &[String]) -> Result<Command> {
    let defaults = defaults();
    let mut cmd = Command::default();
    let mut cfg_file: Option<String> = None;
    for tok in merge_tokens(args) {
        let mut tok = tok;
        if let Some(t) = tok.strip_prefix("--") {
            eprintln!(
                "WARNING argument '{tok}' does not require leading dashes '--', updating to '{t}'."
            );
            tok = t.to_string();
        }
        if tok.ends_with(',') && tok.contains('=') {
            eprintln!(
                "WARNING argument '{tok}' does not require trailing comma ',', updating to '{}'.",
                tok.trim_end_matches(',')
            );
            tok = tok.trim_end_matches(',').to_string();
        }
        if let Some((k, v)) = tok.split_once('=') {
            let (k, v) = (k.trim(), v.trim());
            if v.is_empty() {
                bail!("'{k}=' is missing a value: use '{k}=<value>'");
            }
            if matches!(cmd.mode.as_deref(), Some("settings" | "data" | "bench")) {
                cmd.overrides.insert(k.into(), smart_value(k, v));
                continue;
            }
            let Some(k) = deprecated(k, v, &mut cmd.overrides) else {
                continue;
            };
            if k == "cfg" {
                cfg_file = Some(v.to_string());
                continue;
            }
            if !defaults.contains_key(k) {
                bail!(
                    "'{k}' is not a valid YOLO argument.{}",
                    suggest(
                        k,
                        defaults
                            .keys()
                            .filter_map(|k| k.as_str().map(str::to_string))
                    )
                );
            }
            let val = check_value(k, &smart_value(k, v))?;
            cmd.overrides.insert(k.into(), val);
        } else if TASKS.contains(&tok.as_str()) {
            cmd.task = Some(tok);
        } else if MODES.contains(&tok.as_str()) || SPECIAL.contains(&tok.as_str()) {
            if cmd.mode.is_some() {
                cmd.extra.push(tok);
            } else {
                cmd.mode = Some(tok);
            }
        } else if matches!(tok.as_str(), "-h" | "--help" | "-help") {
            cmd.mode = Some("help".into());
        } else if matches!(defaults.get(tok.as_str()), Some(Value::Bool(_)))
            || ["half", "int8", "nms", "end2end"].contains(&tok.as_str())
        {
            let key = if tok == "half" || tok == "int8" {
                "quantize"
            } else {
                tok.as_str()
            };
            cmd.overrides.insert(
                key.into(),
                if key == "quantize" {
                    Value::from(if tok == "half" { 16 } else { 8 })
                } else {
                    Value::Bool(true)
                },
            );
        } else if cmd.mode.as_deref().is_some_and(|m| SPECIAL.contains(&m)) {
            cmd.extra.push(tok);
        } else if defaults.contains_key(tok.as_str()) {
            bail!("'{tok}' is a valid YOLO argument but is missing an '=' sign to set its value, i.e. try '{tok}=...'");
        } else {
            let words = TASKS
                .iter()
                .chain(MODES)
                .chain(SPECIAL)
                .map(|s| s.to_string())
                .chain(
                    defaults
                        .keys()
                        .filter_map(|k| k.as_str().map(str::to_string)),
                );
            bail!(
                "'{tok}' is not a valid YOLO argument or mode.{}",
                suggest(&tok, words)
            );
        }
    }
    if let Some(t) = &cmd.task {
        match cmd.overrides.get("task").and_then(Value::as_str) {
            Some(k) if k != t => bail!("the task word '{t}' contradicts task={k}"),
            _ => {
                cmd.overrides.insert("task".into(), Value::from(t.as_str()));
            }
        }
    }
    if let Some(f) = cfg_file {
        let text = std::fs::read_to_string(&f).with_context(|| format!("reading cfg={f}"))?;
        let m: Mapping = serde_yaml::from_str(&text).with_context(|| format!("parsing cfg={f}"))?;
        for (k, v) in m {
            let ks = k
                .as_str()
                .ok_or_else(|| anyhow!("{f}: keys must be strings"))?
                .to_string();
            if !defaults.contains_key(ks.as_str()) {
                bail!(
                    "{f}: '{ks}' is not a valid YOLO argument.{}",
                    suggest(
                        &ks,
                        defaults
                            .keys()
                            .filter_map(|k| k.as_str().map(str::to_string))
                    )
                );
            }
            if !cmd.overrides.contains_key(ks.as_str()) {
                let v = check_value(&ks, &v).with_context(|| format!("in {f}"))?;
                cmd.overrides.insert(k, v);
            }
        }
    }
    Ok(cmd)
}

/// Typed access to the merged configuration (defaults under overrides).
#[derive(Debug, Clone)]
pub struct Args(pub Mapping);

impl Args {
    /// Defaults, then `overrides` on top.
    pub fn new(overrides: &Mapping) -> Self {
        let mut m = defaults();
        for (k, v) in overrides {
            m.insert(k.clone(), v.clone());
        }
        Self(m)
    }
    /// The raw value.
    pub fn get(&self, key: &str) -> &Value {
        self.0.get(key).unwrap_or(&Value::Null)
    }
    /// A string value (None when null).
    pub fn str(&self, key: &str) -> Option<String> {
        match self.get(key) {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            v => Some(show(v)),
        }
    }
    /// A float value.
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).as_f64()
    }
    /// An integer value.
    pub fn i64(&self, key: &str) -> Option<i64> {
        self.get(key).as_i64()
    }
    /// A number the run needs: an error naming the key when it is null or not a number.
    pub fn num(&self, key: &str) -> Result<f64> {
        self.f64(key)
            .ok_or_else(|| anyhow!("'{key}' must be a number, got {}", show(self.get(key))))
    }
    /// An integer the run needs: an error naming the key when it is null or not an integer.
    pub fn int(&self, key: &str) -> Result<i64> {
        self.i64(key)
            .ok_or_else(|| anyhow!("'{key}' must be an integer, got {}", show(self.get(key))))
    }
    /// A boolean that defaults to true (`save`, `plots`, `val`, `verbose`, ...): false only when
    /// set to false.
    pub fn on(&self, key: &str) -> bool {
        self.get(key).as_bool().unwrap_or(true)
    }
    /// A boolean value (false when null).
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).as_bool().unwrap_or(false)
    }
    /// `imgsz` as `(h, w)`: an int, or a list `[h, w]`.
    pub fn imgsz(&self) -> Result<(usize, usize)> {
        match self.get("imgsz") {
            Value::Number(n) => {
                let s = n
                    .as_u64()
                    .ok_or_else(|| anyhow!("imgsz must be a positive integer"))?
                    as usize;
                Ok((s, s))
            }
            Value::Sequence(v) if v.len() == 2 && v.iter().all(|x| x.as_u64().is_some()) => Ok((
                v[0].as_u64().unwrap_or(640) as usize,
                v[1].as_u64().unwrap_or(640) as usize,
            )),
            v => bail!("imgsz must be an integer or [h, w], got {}", show(v)),
        }
    }
    /// `classes` as a list of class ids.
    pub fn classes(&self) -> Result<Option<Vec<usize>>> {
        match self.get("classes") {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(Some(vec![n
                .as_u64()
                .ok_or_else(|| anyhow!("classes must be non-negative integers"))?
                as usize])),
            Value::Sequence(v) => v
                .iter()
                .map(|x| {
                    x.as_u64()
                        .map(|u| u as usize)
                        .ok_or_else(|| anyhow!("classes must be non-negative integers"))
                })
                .collect::<Result<_>>()
                .map(Some),
            v => bail!("classes must be an integer or a list, got {}", show(v)),
        }
    }
    /// The device: `cpu` (default when no GPU), `0`, `cuda:0`.
    pub fn device(&self) -> Result<tch::Device> {
        parse_device(self.str("device").as_deref())
    }

    /// The run's task, resolved once from `task=` (or the positional word) and the model's name;
    /// an unimplemented task is an error that names it.
    pub fn task(&self) -> Result<crate::task::TaskKind> {
        let explicit = self.str("task").filter(|t| t != "detect");
        crate::task::resolve(explicit.as_deref(), self.str("model").as_deref(), None)
    }
}

/// Parses a device string. An explicit CUDA request fails clearly when CUDA is unavailable. The
/// CUDA libraries are loaded here, on a CUDA request or, for the default device, when a GPU
/// driver is present (`util::cuda`); a CPU run never maps them.
pub fn parse_device(s: Option<&str>) -> Result<tch::Device> {
    use crate::util::cuda;
    let s = s.unwrap_or("").trim().to_ascii_lowercase();
    if s.is_empty() {
        return Ok(if cuda::is_available() {
            tch::Device::Cuda(0)
        } else {
            tch::Device::Cpu
        });
    }
    if s == "cpu" {
        return Ok(tch::Device::Cpu);
    }
    let idx = s
        .trim_start_matches("cuda:")
        .trim_start_matches("cuda")
        .split(',')
        .next()
        .unwrap_or("0");
    let idx: usize = if idx.is_empty() {
        0
    } else {
        idx.parse().map_err(|_| {
            anyhow!("invalid device '{s}': use device=cpu, device=0 or device=cuda:0")
        })?
    };
    if let Err(why) = cuda::load() {
        bail!("device={s} requested but CUDA is not available on this machine ({why}); use device=cpu");
    }
    if !tch::Cuda::is_available() {
        bail!("device={s} requested but CUDA is not available on this machine (torch sees {} CUDA devices{}); use device=cpu", tch::Cuda::device_count(), if cuda::driver_present() { "" } else { ", no NVIDIA driver found" });
    }
    if idx as i64 >= tch::Cuda::device_count() {
        bail!(
            "device={s} requested but only {} CUDA devices are visible",
            tch::Cuda::device_count()
        );
    }
    Ok(tch::Device::Cuda(idx))
}

/// Ultralytics 8.4 `increment_path`: `path`, else `path-2`, `path-3`, ... (first free).
pub fn increment_path(path: &Path, exist_ok: bool) -> PathBuf {
    if exist_ok || !path.exists() {
        return path.to_path_buf();
    }
    for n in 2..9999 {
        let p = PathBuf::from(format!("{}-{n}", path.display()));
        if !p.exists() {
            return p;
        }
    }
    path.to_path_buf()
}

/// The run folder for a mode: `<runs_dir>/<task>/<project>/<name or mode>`, incremented.
pub fn save_dir(args: &Args, mode: &str) -> PathBuf {
    if let Some(d) = args.str("save_dir") {
        return PathBuf::from(d);
    }
    let settings = load_settings();
    let runs = settings
        .get("runs_dir")
        .and_then(|v| v.as_str())
        .unwrap_or("runs")
        .to_string();
    let project = args.str("project").unwrap_or_default();
    let task = args.str("task").unwrap_or_else(|| "detect".into());
    let base = if Path::new(&project).is_absolute() {
        PathBuf::from(&project)
    } else {
        Path::new(&runs).join(&task).join(&project)
    };
    let name = args.str("name").unwrap_or_else(|| mode.to_string());
    increment_path(&base.join(name), args.bool("exist_ok"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command> {
        parse_args(&s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn grammar() {
        let c = p("detect predict model=yolo11n.yaml conf = 0.5 imgsz=[640, 480] show_labels=False save_txt").unwrap();
        assert_eq!(c.task.as_deref(), Some("detect"));
        assert_eq!(c.mode.as_deref(), Some("predict"));
        let a = Args::new(&c.overrides);
        assert_eq!(a.f64("conf"), Some(0.5));
        assert_eq!(a.imgsz().unwrap(), (640, 480));
        assert!(!a.bool("show_labels"));
        assert!(a.bool("save_txt"));
        assert_eq!(a.str("model").as_deref(), Some("yolo11n.yaml"));
        let a = Args::new(
            &p("predict imgsz=320,256 name=123 classes=0,2 hide_conf=True")
                .unwrap()
                .overrides,
        );
        assert_eq!(a.imgsz().unwrap(), (320, 256));
        assert_eq!(a.str("name").as_deref(), Some("123"));
        assert_eq!(a.classes().unwrap(), Some(vec![0, 2]));
        assert!(!a.bool("show_conf"));
    }

    #[test]
    fn numbers_out_of_range_are_named() {
        for (arg, key) in [
            ("train batch=abc", "batch"),
            ("train batch=5000", "batch"),
            ("train batch=0", "batch"),
            ("train epochs=1e30", "epochs"),
            ("train epochs=0", "epochs"),
            ("predict imgsz=100000", "imgsz"),
            ("predict imgsz=[640,0]", "imgsz"),
            ("train workers=-1", "workers"),
            ("train nbs=0", "nbs"),
            ("predict max_det=0", "max_det"),
        ] {
            let e = p(arg).unwrap_err().to_string();
            assert!(e.contains(&format!("'{key}=")), "{arg}: {e}");
        }
        for ok in [
            "train batch=-1",
            "train batch=0.6",
            "train batch=4096",
            "predict imgsz=[480,640]",
        ] {
            assert!(p(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn renamed_and_removed_keys_as_key_value() {
        let c = p("predict half=True").unwrap();
        assert_eq!(c.overrides.get("quantize"), Some(&Value::from(16)));
        let c = p("export int8=False dynamic=True").unwrap();
        assert_eq!(c.overrides.get("quantize"), None);
        assert_eq!(c.overrides.get("dynamic"), Some(&Value::Bool(true)));
        let c = p("export int8=True").unwrap();
        assert_eq!(c.overrides.get("quantize"), Some(&Value::from(8)));
        let c = p("train label_smoothing=0.1 save_hybrid=True").unwrap();
        assert!(c.overrides.get("label_smoothing").is_none());
        let c = p("predict hide_labels=True boxes=False").unwrap();
        assert_eq!(c.overrides.get("show_labels"), Some(&Value::Bool(false)));
        assert_eq!(c.overrides.get("show_boxes"), Some(&Value::Bool(false)));
    }

    #[test]
    fn errors_name_the_key_and_suggest() {
        let e = p("predict cnf=0.5").unwrap_err().to_string();
        assert!(
            e.contains("'cnf' is not a valid YOLO argument") && e.contains("conf"),
            "{e}"
        );
        let e = p("predit").unwrap_err().to_string();
        assert!(e.contains("'predit'") && e.contains("predict"), "{e}");
        assert!(p("predict conf=2")
            .unwrap_err()
            .to_string()
            .contains("between 0.0 and 1.0"));
        assert!(p("train epochs=1.5")
            .unwrap_err()
            .to_string()
            .contains("must be an int"));
        assert!(p("predict conf=").is_err());
        assert!(p("predict imgsz")
            .unwrap_err()
            .to_string()
            .contains("missing an '=' sign"));
    }

    #[test]
    fn increments_with_dash() {
        let d = std::env::temp_dir().join(format!("ryolo-inc-{}", std::process::id()));
        let run = d.join("predict");
        assert_eq!(increment_path(&run, false), run);
        std::fs::create_dir_all(&run).unwrap();
        assert_eq!(increment_path(&run, false), d.join("predict-2"));
        assert_eq!(increment_path(&run, true), run);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
