//! The Ultralytics model YAML format: parsing, scale selection and depth/width scaling (spec/model.md §1).

use anyhow::{anyhow, bail, Context, Result};
use serde_yaml::Value;
use std::path::Path;

/// The model definitions shipped inside the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("yolov8.yaml", include_str!("../../models/yolov8.yaml")),
    ("yolo11.yaml", include_str!("../../models/yolo11.yaml")),
];

/// One layer after scaling: the module with its resolved constructor arguments (field names follow
/// Ultralytics' constructor arguments: c1 in, c2 out, n repeats, k kernel, s stride).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq)]
pub enum LayerKind {
    /// `Conv(c1, c2, k, s)`.
    Conv { c1: i64, c2: i64, k: i64, s: i64 },
    /// `C2f(c1, c2, n, shortcut)`.
    C2f {
        c1: i64,
        c2: i64,
        n: i64,
        shortcut: bool,
    },
    /// `C3k2(c1, c2, n, c3k, e)`.
    C3k2 {
        c1: i64,
        c2: i64,
        n: i64,
        c3k: bool,
        e: f64,
    },
    /// `SPPF(c1, c2, k)`.
    Sppf { c1: i64, c2: i64, k: i64 },
    /// `C2PSA(c1, c2, n)`.
    C2psa { c1: i64, c2: i64, n: i64 },
    /// `nn.Upsample(None, scale, "nearest")`.
    Upsample { scale: i64 },
    /// `Concat(dim)`.
    Concat,
    /// `Detect(nc, reg_max, ch)`; `legacy` is the YOLOv8 class branch.
    Detect { nc: i64, ch: Vec<i64>, legacy: bool },
}

/// A resolved layer: where its inputs come from, what it is and its output channels.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    /// Input layer indices (absolute; -1 resolved), in YAML order.
    pub from: Vec<i64>,
    /// `from` exactly as written (for the layer table).
    pub from_raw: Vec<i64>,
    /// Repeats after depth scaling.
    pub n: i64,
    /// The module and its arguments.
    pub kind: LayerKind,
    /// Output channels.
    pub c_out: i64,
}

/// A model definition: the YAML (kept to store in checkpoints) and the resolved layers.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// The YAML mapping as given (with `scale` and `nc` filled in).
    pub yaml: Value,
    /// Display name, e.g. `YOLO11n`.
    pub name: String,
    /// Scale letter (`n`, `s`, `m`, `l`, `x`), if the YAML has scales.
    pub scale: Option<String>,
    /// Number of classes.
    pub nc: i64,
    /// Resolved layers, backbone then head.
    pub layers: Vec<LayerSpec>,
}

/// Scale letter from a model file stem: the regex `yolo(e-)?v?\d+([nslmx])`, group 2.
pub fn guess_scale(stem: &str) -> Option<String> {
    let re = regex::Regex::new(r"yolo(e-)?v?\d+([nslmx])").expect("valid regex");
    re.captures(stem).map(|c| c[2].to_string())
}

/// Display name for a model stem: `yolo11n` -> `YOLO11n`.
pub fn display_name(stem: &str) -> String {
    match stem.strip_prefix("yolo") {
        Some(rest) => format!("YOLO{rest}"),
        None => stem.to_string(),
    }
}

pub use crate::util::round_half_even;

fn make_divisible(x: f64, d: i64) -> i64 {
    ((x / d as f64).ceil() as i64) * d
}

impl ModelSpec {
    /// Loads a model YAML named on the command line: a path to a user's file, or one of the built-in
    /// names (`yolo11n.yaml`, `yolov8s.yaml`, ...). `nc` overrides the YAML's class count.
    pub fn from_name(name: &str, nc: Option<i64>) -> Result<Self> {
        let path = Path::new(name);
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| anyhow!("model '{name}' has no file name"))?
            .to_string();
        let scale = guess_scale(&stem);
        let text = if path.exists() {
            std::fs::read_to_string(path).with_context(|| format!("reading model YAML {name}"))?
        } else {
            let unified = match &scale {
                Some(s) => stem.replacen(
                    &format!("{}{s}", stem_digits(&stem)),
                    &stem_digits(&stem),
                    1,
                ),
                None => stem.clone(),
            };
            let file = format!("{unified}.yaml");
            BUILTIN
                .iter()
                .find(|(n, _)| *n == file)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| {
                    anyhow!(
                        "model '{name}' not found: not a file, and not a built-in model \
                         (yolov8n/s/m/l/x.yaml, yolo11n/s/m/l/x.yaml)"
                    )
                })?
        };
        let yaml: Value =
            serde_yaml::from_str(&text).with_context(|| format!("parsing model YAML {name}"))?;
        Self::from_yaml(yaml, &stem, scale, nc)
    }

    /// Builds from a YAML mapping (e.g. the one stored in a checkpoint). `stem` names the model.
    pub fn from_yaml(
        mut yaml: Value,
        stem: &str,
        scale: Option<String>,
        nc: Option<i64>,
    ) -> Result<Self> {
        let map = yaml
            .as_mapping_mut()
            .ok_or_else(|| anyhow!("model YAML is not a mapping"))?;
        let yaml_nc = map.get("nc").and_then(Value::as_i64).unwrap_or(80);
        let nc = nc.unwrap_or(yaml_nc);
        if nc != yaml_nc {
            eprintln!("Overriding model.yaml nc={yaml_nc} with nc={nc}");
        }
        map.insert("nc".into(), nc.into());
        let scale = scale.or_else(|| map.get("scale").and_then(Value::as_str).map(str::to_string));
        let (gd, gw, max_ch) = match map.get("scales").and_then(Value::as_mapping) {
            Some(scales) => {
                let key = match &scale {
                    Some(s) => s.clone(),
                    None => {
                        let first = scales
                            .keys()
                            .next()
                            .and_then(Value::as_str)
                            .ok_or_else(|| anyhow!("model YAML 'scales' is empty"))?
                            .to_string();
                        eprintln!("WARNING no model scale passed. Assuming scale='{first}'.");
                        first
                    }
                };
                let row = scales
                    .get(key.as_str())
                    .and_then(Value::as_sequence)
                    .ok_or_else(|| anyhow!("model YAML has no scale '{key}'"))?;
                let f = |i: usize| row.get(i).and_then(Value::as_f64).unwrap_or(f64::INFINITY);
                let r = (f(0), f(1), f(2));
                map.insert("scale".into(), key.clone().into());
                r
            }
            None => (
                map.get("depth_multiple")
                    .and_then(Value::as_f64)
                    .unwrap_or(1.0),
                map.get("width_multiple")
                    .and_then(Value::as_f64)
                    .unwrap_or(1.0),
                f64::INFINITY,
            ),
        };
        let scale = map.get("scale").and_then(Value::as_str).map(str::to_string);
        let mut rows = Vec::new();
        for section in ["backbone", "head"] {
            let seq = map
                .get(section)
                .and_then(Value::as_sequence)
                .ok_or_else(|| anyhow!("model YAML has no '{section}' list"))?;
            rows.extend(seq.iter().cloned());
        }
        if let Some(module) = rows.last().and_then(|r| r.get(2)).and_then(Value::as_str) {
            if let Some(task) = crate::task::TaskKind::from_head_module(module) {
                task.ensure_implemented(&format!("the model ends with a {module} head"))?;
            }
        }
        let legacy = !rows
            .iter()
            .any(|r| r.get(2).and_then(Value::as_str) == Some("C3k2"));
        let big = matches!(scale.as_deref(), Some("m" | "l" | "x"));
        let mut ch: Vec<i64> = Vec::new();
        let mut layers = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let layer = parse_row(row, i as i64, &ch, nc, gd, gw, max_ch, legacy, big)
                .with_context(|| {
                    format!(
                        "model YAML layer {i}: {}",
                        serde_yaml::to_string(row).unwrap_or_default().trim()
                    )
                })?;
            ch.push(layer.c_out);
            layers.push(layer);
        }
        match layers.last().map(|l| &l.kind) {
            Some(LayerKind::Detect { .. }) => {}
            _ => bail!("model YAML must end with a Detect layer"),
        }
        let stem_scaled = match (&scale, guess_scale(stem)) {
            (Some(s), None) => format!("{}{s}", stem),
            _ => stem.to_string(),
        };
        Ok(Self {
            yaml,
            name: display_name(&stem_scaled),
            scale,
            nc,
            layers,
        })
    }

    /// The YAML as text (for checkpoints).
    pub fn to_yaml_string(&self) -> String {
        serde_yaml::to_string(&self.yaml).unwrap_or_default()
    }

    /// Whether the Detect head uses the YOLOv8 (legacy) class branch.
    pub fn legacy(&self) -> bool {
        matches!(
            self.layers.last().map(|l| &l.kind),
            Some(LayerKind::Detect { legacy: true, .. })
        )
    }
}

/// The `yolo11` / `yolov8` prefix of a stem such as `yolo11n` (everything up to the scale letter).
fn stem_digits(stem: &str) -> String {
    let re = regex::Regex::new(r"yolo(e-)?v?\d+").expect("valid regex");
    re.find(stem)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default()
}

fn arg_i64(args: &[Value], i: usize, default: i64) -> Result<i64> {
    match args.get(i) {
        None => Ok(default),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| anyhow!("argument {i} must be an integer, got {v:?}")),
    }
}

fn arg_bool(args: &[Value], i: usize, default: bool) -> Result<bool> {
    match args.get(i) {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| anyhow!("argument {i} must be True/False, got {v:?}")),
    }
}

#[allow(clippy::too_many_arguments)]
fn parse_row(
    row: &Value,
    idx: i64,
    ch: &[i64],
    nc: i64,
    gd: f64,
    gw: f64,
    max_ch: f64,
    legacy: bool,
    big: bool,
) -> Result<LayerSpec> {
    let row = row
        .as_sequence()
        .filter(|r| r.len() == 4)
        .ok_or_else(|| anyhow!("a layer row must be [from, repeats, module, args]"))?;
    let from_raw: Vec<i64> = match &row[0] {
        Value::Sequence(s) => s
            .iter()
            .map(|v| v.as_i64().ok_or_else(|| anyhow!("bad 'from' entry {v:?}")))
            .collect::<Result<_>>()?,
        v => vec![v.as_i64().ok_or_else(|| anyhow!("bad 'from' {v:?}"))?],
    };
    let from: Vec<i64> = from_raw
        .iter()
        .map(|&f| {
            let a = if f < 0 { idx + f } else { f };
            if a < 0 && !(idx == 0 && f == -1) {
                bail!("'from' {f} points before the first layer");
            }
            if a >= idx {
                bail!("'from' {f} points at a later layer");
            }
            Ok(a)
        })
        .collect::<Result<_>>()?;
    let c_in = |k: usize| -> i64 {
        let f = from[k];
        if f < 0 {
            3
        } else {
            ch[f as usize]
        }
    };
    let repeats = row[1]
        .as_i64()
        .ok_or_else(|| anyhow!("repeats must be an integer"))?;
    let n = if repeats > 1 {
        (round_half_even(repeats as f64 * gd) as i64).max(1)
    } else {
        repeats
    };
    let module = row[2]
        .as_str()
        .ok_or_else(|| anyhow!("module must be a name"))?;
    let args: Vec<Value> = row[3]
        .as_sequence()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|v| match v.as_str() {
            Some("nc") => Value::from(nc),
            Some("None") => Value::Null,
            Some("True") => Value::Bool(true),
            Some("False") => Value::Bool(false),
            _ => v,
        })
        .collect();
    let width = |c: i64| make_divisible((c as f64).min(max_ch) * gw, 8);
    let (kind, c_out) = match module {
        "Conv" => {
            let c2 = width(arg_i64(&args, 0, 0)?);
            let k = arg_i64(&args, 1, 1)?;
            let s = arg_i64(&args, 2, 1)?;
            (LayerKind::Conv { c1: c_in(0), c2, k, s }, c2)
        }
        "C2f" => {
            let c2 = width(arg_i64(&args, 0, 0)?);
            (LayerKind::C2f { c1: c_in(0), c2, n, shortcut: arg_bool(&args, 1, false)? }, c2)
        }
        "C3k2" => {
            let c2 = width(arg_i64(&args, 0, 0)?);
            let c3k = big || arg_bool(&args, 1, false)?;
            let e = args.get(2).and_then(Value::as_f64).unwrap_or(0.5);
            (LayerKind::C3k2 { c1: c_in(0), c2, n, c3k, e }, c2)
        }
        "SPPF" => {
            let c2 = width(arg_i64(&args, 0, 0)?);
            (LayerKind::Sppf { c1: c_in(0), c2, k: arg_i64(&args, 1, 5)? }, c2)
        }
        "C2PSA" => {
            let c2 = width(arg_i64(&args, 0, 0)?);
            if c2 != c_in(0) {
                bail!("C2PSA needs equal input and output channels ({} vs {c2})", c_in(0));
            }
            (LayerKind::C2psa { c1: c_in(0), c2, n }, c2)
        }
        "nn.Upsample" | "Upsample" => (LayerKind::Upsample { scale: arg_i64(&args, 1, 2)? }, c_in(0)),
        "Concat" => (LayerKind::Concat, (0..from.len()).map(c_in).sum()),
        "Detect" => {
            let chs: Vec<i64> = (0..from.len()).map(c_in).collect();
            if chs.len() != 3 {
                bail!("Detect needs 3 inputs (P3, P4, P5), got {}", chs.len());
            }
            (LayerKind::Detect { nc: arg_i64(&args, 0, nc)?, ch: chs, legacy }, 0)
        }
        other => bail!("unknown module '{other}' (supported: Conv, C2f, C3k2, SPPF, C2PSA, nn.Upsample, Concat, Detect)"),
    };
    Ok(LayerSpec {
        from,
        from_raw,
        n,
        kind,
        c_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_from_name() {
        assert_eq!(guess_scale("yolo11n").as_deref(), Some("n"));
        assert_eq!(guess_scale("yolov8x").as_deref(), Some("x"));
        assert_eq!(guess_scale("yolo11"), None);
        assert_eq!(display_name("yolov8s"), "YOLOv8s");
    }

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(0.99), 1.0);
    }

    #[test]
    fn yolov8n_channels() {
        let s = ModelSpec::from_name("yolov8n.yaml", None).unwrap();
        let outs: Vec<i64> = s.layers.iter().map(|l| l.c_out).collect();
        assert_eq!(&outs[..10], &[16, 32, 32, 64, 64, 128, 128, 256, 256, 256]);
        assert_eq!(s.layers[4].n, 2);
        assert!(s.legacy());
        assert_eq!(s.name, "YOLOv8n");
    }

    #[test]
    fn yolo11m_forces_c3k() {
        let s = ModelSpec::from_name("yolo11m.yaml", None).unwrap();
        assert!(matches!(
            s.layers[2].kind,
            LayerKind::C3k2 { c3k: true, .. }
        ));
        assert!(!s.legacy());
    }

    #[test]
    fn unknown_module_is_an_error() {
        let y: Value =
            serde_yaml::from_str("nc: 2\nbackbone: [[-1, 1, Foo, [1]]]\nhead: []").unwrap();
        let e = ModelSpec::from_yaml(y, "x", None, None).unwrap_err();
        assert!(format!("{e:#}").contains("unknown module 'Foo'"), "{e:#}");
    }
}
