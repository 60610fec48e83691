//! The Ultralytics model YAML format: parsing, scale selection and depth/width scaling (spec/model.md §1).

use super::pose::MAX_KEYPOINTS;
use anyhow::{anyhow, bail, Context, Result};
use serde_yaml::Value;
use std::path::Path;

/// The model definitions shipped inside the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("yolov8.yaml", include_str!("../../models/yolov8.yaml")),
    ("yolo11.yaml", include_str!("../../models/yolo11.yaml")),
    (
        "yolov8-seg.yaml",
        include_str!("../../models/yolov8-seg.yaml"),
    ),
    (
        "yolo11-seg.yaml",
        include_str!("../../models/yolo11-seg.yaml"),
    ),
    (
        "yolov8-obb.yaml",
        include_str!("../../models/yolov8-obb.yaml"),
    ),
    (
        "yolo11-obb.yaml",
        include_str!("../../models/yolo11-obb.yaml"),
    ),
    (
        "yolov8-cls.yaml",
        include_str!("../../models/yolov8-cls.yaml"),
    ),
    (
        "yolo11-cls.yaml",
        include_str!("../../models/yolo11-cls.yaml"),
    ),
    (
        "yolov8-pose.yaml",
        include_str!("../../models/yolov8-pose.yaml"),
    ),
    (
        "yolo11-pose.yaml",
        include_str!("../../models/yolo11-pose.yaml"),
    ),
];

/// What a box head adds to the Detect branches.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// Boxes and classes only.
    Detect,
    /// `Segment`: `nm` mask coefficients per anchor and a Proto of hidden width `npr` (scaled).
    Segment { nm: i64, npr: i64 },
    /// `OBB`: `ne` extra values (the rotation angle) per anchor from the `cv4` branch.
    Obb { ne: i64 },
    /// `Pose`: `kpt_shape = (K, D)` keypoint values per anchor.
    Pose { kpt_shape: (i64, i64) },
}

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
    /// `Classify(c1, nc)`: Conv 1x1 to 1280, global average pool, dropout, Linear to `nc`.
    Classify { c1: i64, nc: i64 },
    /// `Detect(nc, reg_max, ch)` or a head composing it (`head`); `legacy` is the YOLOv8 class branch.
    Detect {
        nc: i64,
        ch: Vec<i64>,
        legacy: bool,
        head: HeadKind,
    },
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
    /// How many arguments the YAML row wrote (Ultralytics' layer table prints only those).
    pub args_given: usize,
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
            read_text(path, MAX_YAML_BYTES).with_context(|| format!("reading model YAML {name}"))?
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
        let yaml_nc = match map.get("nc") {
            None => 80,
            Some(v) => v
                .as_i64()
                .ok_or_else(|| anyhow!("model YAML 'nc' must be an integer, got {}", flow(v)))?,
        };
        let nc = nc.unwrap_or(yaml_nc);
        check_nc(nc)?;
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
                    .ok_or_else(|| anyhow!("model YAML has no scale '{key}'"))?;
                let r = scale_row(row).with_context(|| format!("model YAML scale '{key}'"))?;
                map.insert("scale".into(), key.clone().into());
                r
            }
            None => (
                multiple(map, "depth_multiple")?,
                multiple(map, "width_multiple")?,
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
        if rows.len() > MAX_LAYERS {
            bail!(
                "model YAML has {} layers, more than {MAX_LAYERS}",
                rows.len()
            );
        }
        if let Some(module) = rows.last().and_then(|r| r.get(2)).and_then(Value::as_str) {
            if let Some(task) = crate::task::TaskKind::from_head_module(module) {
                if !task.has_model() {
                    task.ensure_implemented(&format!("the model ends with a {module} head"))?;
                }
            }
        }
        let legacy = !rows
            .iter()
            .any(|r| r.get(2).and_then(Value::as_str) == Some("C3k2"));
        let big = matches!(scale.as_deref(), Some("m" | "l" | "x"));
        let mut ch: Vec<i64> = Vec::new();
        let mut layers = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let ctx = RowCtx {
                nc,
                gd,
                gw,
                max_ch,
                legacy,
                big,
                kpt_shape: map.get("kpt_shape").and_then(|v| kpt_shape_value(v).ok()),
            };
            let layer = parse_row(row, i as i64, &ch, ctx)
                .with_context(|| format!("model YAML layer {i}: {}", flow(row)))?;
            if matches!(
                layer.kind,
                LayerKind::Detect { .. } | LayerKind::Classify { .. }
            ) && i + 1 != rows.len()
            {
                bail!(
                    "model YAML layer {i}: the head (Detect, Segment, OBB) must be the last layer"
                );
            }
            ch.push(layer.c_out);
            layers.push(layer);
        }
        match layers.last().map(|l| &l.kind) {
            Some(LayerKind::Detect { .. } | LayerKind::Classify { .. }) => {}
            _ => bail!("model YAML must end with a Detect, Segment, OBB or Classify layer"),
        }
        check_cost(&walk(&layers)?)?;
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

    /// Parameters, work and the largest activation of this model, estimated without building it.
    pub fn cost(&self) -> Result<SpecCost> {
        walk(&self.layers)
    }

    /// The keypoint shape `(K, D)` of a Pose head, None for the other heads.
    pub fn kpt_shape(&self) -> Option<(i64, i64)> {
        match self.layers.last().map(|l| &l.kind) {
            Some(LayerKind::Detect {
                head: HeadKind::Pose { kpt_shape },
                ..
            }) => Some(*kpt_shape),
            _ => None,
        }
    }

    /// Takes the dataset's `kpt_shape` instead of the YAML's, as `PoseModel(cfg, data_kpt_shape=…)`
    /// does: when it differs, the YAML's top-level `kpt_shape` is replaced (with Ultralytics' log
    /// line) and a Pose row whose argument is the name `kpt_shape` follows it (a literal `[K, D]`
    /// argument stays, as in Ultralytics).
    pub fn override_kpt_shape(&mut self, kpt: (i64, i64)) -> Result<()> {
        self.set_kpt_shape(kpt, true)
    }

    /// [`override_kpt_shape`](Self::override_kpt_shape), logging the change when `log`.
    pub(crate) fn set_kpt_shape(&mut self, kpt: (i64, i64), log: bool) -> Result<()> {
        let new: Value = serde_yaml::from_str(&format!("[{}, {}]", kpt.0, kpt.1))?;
        kpt_shape_value(&new).context("the dataset's kpt_shape")?;
        let map = self
            .yaml
            .as_mapping_mut()
            .ok_or_else(|| anyhow!("model YAML is not a mapping"))?;
        let old = map.get("kpt_shape").cloned();
        if old.as_ref().and_then(|v| kpt_shape_value(v).ok()) == Some(kpt) {
            return Ok(());
        }
        if log {
            let old_text = old.as_ref().map_or("None".to_string(), flow);
            eprintln!(
                "Overriding model.yaml kpt_shape={old_text} with kpt_shape=[{}, {}]",
                kpt.0, kpt.1
            );
        }
        map.insert("kpt_shape".into(), new);
        let named = map
            .get("head")
            .and_then(Value::as_sequence)
            .and_then(|rows| rows.last())
            .and_then(|row| row.get(3))
            .and_then(|args| args.get(1))
            .and_then(Value::as_str)
            == Some("kpt_shape");
        if let Some(LayerKind::Detect {
            head: HeadKind::Pose { kpt_shape },
            ..
        }) = self.layers.last_mut().map(|l| &mut l.kind)
        {
            if named {
                *kpt_shape = kpt;
            }
        }
        check_cost(&walk(&self.layers)?)
    }

    /// Whether the Detect head uses the YOLOv8 (legacy) class branch.
    pub fn legacy(&self) -> bool {
        matches!(
            self.layers.last().map(|l| &l.kind),
            Some(LayerKind::Detect { legacy: true, .. })
        )
    }
}

/// The hidden width of the Classify head (every scale).
pub const CLASSIFY_HIDDEN: i64 = 1280;

/// Most classes a model may have.
pub const MAX_NC: i64 = 10_000;
/// Most channels a layer may have (after width scaling).
pub const MAX_CHANNELS: i64 = 65_536;
/// Largest kernel and stride of a Conv, SPPF pool and Upsample factor.
pub const MAX_KERNEL: i64 = 64;
/// Most repeats of a block after depth scaling.
pub const MAX_REPEATS: i64 = 100;
/// Largest depth or width multiple.
pub const MAX_MULTIPLE: f64 = 100.0;
/// Most layers in a model.
pub const MAX_LAYERS: usize = 1000;
/// Most parameters a model may have (yolo11x has 57 million).
pub const MAX_PARAMS: f64 = 1e9;
/// Most multiply-accumulates of a 640x640 forward (yolo11x needs about 1e11).
pub const MAX_MACS: f64 = 2e12;

/// A YAML value on one line, in flow style: `[-1, 1, Conv, [64, 3, 2]]`.
pub fn flow(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(s) => format!("[{}]", s.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::Mapping(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", flow(k), flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Tagged(t) => format!("{} {}", t.tag, flow(&t.value)),
    }
}

/// Largest model YAML file read: 16 MiB.
pub const MAX_YAML_BYTES: u64 = 16 << 20;

/// A UTF-8 text file of at most `cap` bytes (read through `take`, so a device or a growing file
/// cannot make it read forever).
fn read_text(path: &Path, cap: u64) -> Result<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(cap + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        bail!("the file is larger than {cap} bytes");
    }
    Ok(String::from_utf8(buf)?)
}

/// Checks a class count.
fn check_nc(nc: i64) -> Result<()> {
    if !(1..=MAX_NC).contains(&nc) {
        bail!("the number of classes 'nc' must be in 1..={MAX_NC}, got {nc}");
    }
    Ok(())
}

/// A scale row `[depth, width, max_channels]`: three finite positive numbers, multiples at most
/// [`MAX_MULTIPLE`].
fn scale_row(row: &Value) -> Result<(f64, f64, f64)> {
    let nums: Vec<f64> = row
        .as_sequence()
        .map(|r| r.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let ok = row.as_sequence().map(Vec::len) == Some(3)
        && nums.len() == 3
        && nums.iter().all(|x| x.is_finite() && *x > 0.0)
        && nums[0] <= MAX_MULTIPLE
        && nums[1] <= MAX_MULTIPLE;
    if !ok {
        bail!(
            "must be [depth, width, max_channels]: three finite numbers > 0, multiples at most \
             {MAX_MULTIPLE}; got {}",
            flow(row)
        );
    }
    Ok((nums[0], nums[1], nums[2]))
}

/// `depth_multiple` or `width_multiple` (1 when absent): a finite number in (0, MAX_MULTIPLE].
fn multiple(map: &serde_yaml::Mapping, key: &str) -> Result<f64> {
    let Some(v) = map.get(key) else {
        return Ok(1.0);
    };
    match v.as_f64() {
        Some(x) if x.is_finite() && x > 0.0 && x <= MAX_MULTIPLE => Ok(x),
        _ => bail!(
            "model YAML '{key}' must be a number in (0, {MAX_MULTIPLE}], got {}",
            flow(v)
        ),
    }
}

/// Refuses models whose parameters or work exceed [`MAX_PARAMS`] / [`MAX_MACS`].
fn check_cost(c: &SpecCost) -> Result<()> {
    if c.params > MAX_PARAMS {
        bail!(
            "the model would have {:.3e} parameters, more than the {MAX_PARAMS:.0e} cap",
            c.params
        );
    }
    let macs = c.macs + c.extra_macs;
    if macs > MAX_MACS {
        bail!(
            "the model would need {macs:.3e} multiply-accumulates per 640x640 image, more than \
             the {MAX_MACS:.0e} cap"
        );
    }
    Ok(())
}

/// The `yolo11` / `yolov8` prefix of a stem such as `yolo11n` (everything up to the scale letter).
fn stem_digits(stem: &str) -> String {
    let re = regex::Regex::new(r"yolo(e-)?v?\d+").expect("valid regex");
    re.find(stem)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default()
}

/// Integer argument `i` (named `key`), `default` when absent (None: required), in `lo..=hi`.
fn arg_in(
    module: &str,
    args: &[Value],
    (i, key): (usize, &str),
    default: Option<i64>,
    (lo, hi): (i64, i64),
) -> Result<i64> {
    let v = match (args.get(i), default) {
        (None, Some(d)) => d,
        (None, None) => bail!("{module} '{key}' (argument {i}) is missing"),
        (Some(v), _) => v.as_i64().ok_or_else(|| {
            anyhow!(
                "{module} '{key}' (argument {i}) must be an integer, got {}",
                flow(v)
            )
        })?,
    };
    if !(lo..=hi).contains(&v) {
        bail!("{module} '{key}' (argument {i}) must be in {lo}..={hi}, got {v}");
    }
    Ok(v)
}

fn arg_bool(args: &[Value], i: usize, default: bool) -> Result<bool> {
    match args.get(i) {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| anyhow!("argument {i} must be True/False, got {}", flow(v))),
    }
}

/// The `from` field of layer `idx`: indices as written and resolved (-1 at layer 0 is the image).
fn parse_from(v: &Value, idx: i64) -> Result<(Vec<i64>, Vec<i64>)> {
    let raw: Vec<i64> = match v {
        Value::Sequence(s) => s
            .iter()
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| anyhow!("bad 'from' entry {}", flow(v)))
            })
            .collect::<Result<_>>()?,
        v => vec![v
            .as_i64()
            .ok_or_else(|| anyhow!("bad 'from' {}", flow(v)))?],
    };
    if raw.is_empty() {
        bail!("'from' is an empty list");
    }
    let from = raw
        .iter()
        .map(|&f| {
            let a = if f < 0 { idx.saturating_add(f) } else { f };
            if a < 0 && !(idx == 0 && f == -1) {
                bail!("'from' {f} points before the first layer");
            }
            if a >= idx {
                bail!("'from' {f} points at a later layer");
            }
            Ok(a)
        })
        .collect::<Result<_>>()?;
    Ok((raw, from))
}

/// Repeats after depth scaling (`max(round(n * gd), 1)` when `n > 1`); only C2f, C3k2 and C2PSA
/// repeat, the other modules need 1.
fn parse_repeats(v: &Value, module: &str, gd: f64) -> Result<i64> {
    let repeats = v
        .as_i64()
        .ok_or_else(|| anyhow!("repeats must be an integer, got {}", flow(v)))?;
    if !matches!(module, "C2f" | "C3k2" | "C2PSA") {
        if repeats != 1 {
            bail!(
                "repeats must be 1 for {module} (only C2f, C3k2 and C2PSA repeat), got {repeats}"
            );
        }
        return Ok(1);
    }
    if repeats < 0 {
        bail!("repeats must be >= 0, got {repeats}");
    }
    let n = if repeats > 1 {
        (round_half_even(repeats as f64 * gd) as i64).max(1)
    } else {
        repeats
    };
    if n > MAX_REPEATS {
        bail!("repeats {repeats} at depth {gd} give {n}, more than {MAX_REPEATS}");
    }
    Ok(n)
}

/// What a layer's arguments resolve against: classes, scaling and the model family.
#[derive(Debug, Clone, Copy)]
struct RowCtx {
    nc: i64,
    gd: f64,
    gw: f64,
    max_ch: f64,
    legacy: bool,
    big: bool,
    /// The top-level `kpt_shape` (what a Pose row's `kpt_shape` argument names), if valid.
    kpt_shape: Option<(i64, i64)>,
}

impl RowCtx {
    /// Output channels after width scaling of argument 0 (`c2`) of `module`.
    fn width(&self, module: &str, args: &[Value]) -> Result<i64> {
        let c = arg_in(module, args, (0, "c2"), None, (1, MAX_CHANNELS))?;
        let w = make_divisible((c as f64).min(self.max_ch) * self.gw, 8);
        if !(1..=MAX_CHANNELS).contains(&w) {
            bail!(
                "{module} 'c2' {c} at width {} gives {w} channels, outside 1..={MAX_CHANNELS}",
                self.gw
            );
        }
        Ok(w)
    }
}

/// Resolves one `[from, repeats, module, args]` row (layer `idx`; `ch`: earlier output channels).
fn parse_row(row: &Value, idx: i64, ch: &[i64], ctx: RowCtx) -> Result<LayerSpec> {
    let row = row
        .as_sequence()
        .filter(|r| r.len() == 4)
        .ok_or_else(|| anyhow!("a layer row must be [from, repeats, module, args]"))?;
    let (from_raw, from) = parse_from(&row[0], idx)?;
    let module = row[2]
        .as_str()
        .ok_or_else(|| anyhow!("module must be a name"))?;
    let n = parse_repeats(&row[1], module, ctx.gd)?;
    let c_in = |k: usize| -> i64 {
        match usize::try_from(from[k]) {
            Ok(f) => ch[f],
            Err(_) => 3,
        }
    };
    let one_input = || -> Result<i64> {
        if from.len() != 1 {
            bail!("{module} takes one input, 'from' lists {}", from.len());
        }
        Ok(c_in(0))
    };
    let args_given = row[3].as_sequence().map_or(0, Vec::len);
    let args: Vec<Value> = match &row[3] {
        Value::Sequence(a) => a.clone(),
        Value::Null => vec![],
        v => bail!("args must be a list, got {}", flow(v)),
    }
    .into_iter()
    .map(|v| match v.as_str() {
        Some("nc") => Value::from(ctx.nc),
        Some("None") => Value::Null,
        Some("True") => Value::Bool(true),
        Some("False") => Value::Bool(false),
        _ => v,
    })
    .collect();
    let (kind, c_out) = match module {
        "Conv" => {
            let c1 = one_input()?;
            let c2 = ctx.width(module, &args)?;
            let k = arg_in(module, &args, (1, "k"), Some(1), (1, MAX_KERNEL))?;
            let s = arg_in(module, &args, (2, "s"), Some(1), (1, MAX_KERNEL))?;
            (LayerKind::Conv { c1, c2, k, s }, c2)
        }
        "C2f" => {
            let c1 = one_input()?;
            let c2 = ctx.width(module, &args)?;
            let shortcut = arg_bool(&args, 1, false)?;
            (LayerKind::C2f { c1, c2, n, shortcut }, c2)
        }
        "C3k2" => {
            let c1 = one_input()?;
            let c2 = ctx.width(module, &args)?;
            let c3k = ctx.big || arg_bool(&args, 1, false)?;
            let e = c3k2_e(&args, c2)?;
            (LayerKind::C3k2 { c1, c2, n, c3k, e }, c2)
        }
        "SPPF" => {
            let c1 = one_input()?;
            let c2 = ctx.width(module, &args)?;
            let k = arg_in(module, &args, (1, "k"), Some(5), (1, MAX_KERNEL))?;
            if k % 2 == 0 {
                bail!("SPPF 'k' (argument 1) must be odd (an even pool changes the map size), got {k}");
            }
            if c1 < 2 {
                bail!("SPPF needs at least 2 input channels, got {c1}");
            }
            (LayerKind::Sppf { c1, c2, k }, c2)
        }
        "C2PSA" => {
            let c1 = one_input()?;
            let c2 = ctx.width(module, &args)?;
            c2psa_check(c1, c2)?;
            (LayerKind::C2psa { c1, c2, n }, c2)
        }
        "nn.Upsample" | "Upsample" => {
            let c1 = one_input()?;
            let scale = arg_in(module, &args, (1, "scale_factor"), Some(2), (1, MAX_KERNEL))?;
            (LayerKind::Upsample { scale }, c1)
        }
        "Concat" => (LayerKind::Concat, (0..from.len()).map(c_in).sum()),
        "Detect" => {
            let chs: Vec<i64> = (0..from.len()).map(c_in).collect();
            if chs.len() != 3 {
                bail!("Detect needs 3 inputs (P3, P4, P5), got {}", chs.len());
            }
            let nc = arg_in(module, &args, (0, "nc"), Some(ctx.nc), (1, MAX_NC))?;
            (LayerKind::Detect { nc, ch: chs, legacy: ctx.legacy, head: HeadKind::Detect }, 0)
        }
        "Classify" => {
            let c1 = one_input()?;
            let nc = arg_in(module, &args, (0, "nc"), Some(ctx.nc), (1, MAX_NC))?;
            (LayerKind::Classify { c1, nc }, nc)
        }
        "Pose" => {
            let chs: Vec<i64> = (0..from.len()).map(c_in).collect();
            if chs.len() != 3 {
                bail!("Pose needs 3 inputs (P3, P4, P5), got {}", chs.len());
            }
            let nc = arg_in(module, &args, (0, "nc"), Some(ctx.nc), (1, MAX_NC))?;
            let kpt_shape = match args.get(1) {
                None => (17, 3),
                Some(Value::String(s)) if s == "kpt_shape" => ctx.kpt_shape.ok_or_else(|| {
                    anyhow!("Pose 'kpt_shape' (argument 1) names the top-level 'kpt_shape', which is missing or not [K, D] (K in 1..={MAX_KEYPOINTS}, D 2 or 3)")
                })?,
                Some(v) => kpt_shape_value(v).context("Pose 'kpt_shape' (argument 1)")?,
            };
            let head = HeadKind::Pose { kpt_shape };
            (LayerKind::Detect { nc, ch: chs, legacy: ctx.legacy, head }, 0)
        }
        "Segment" => {
            let chs: Vec<i64> = (0..from.len()).map(c_in).collect();
            if chs.len() != 3 {
                bail!("Segment needs 3 inputs (P3, P4, P5), got {}", chs.len());
            }
            let nc = arg_in(module, &args, (0, "nc"), Some(ctx.nc), (1, MAX_NC))?;
            let nm = arg_in(module, &args, (1, "nm"), Some(32), (1, 1024))?;
            let npr = arg_in(module, &args, (2, "npr"), Some(256), (1, MAX_CHANNELS))?;
            let npr = make_divisible((npr as f64).min(ctx.max_ch) * ctx.gw, 8);
            if !(1..=MAX_CHANNELS).contains(&npr) {
                bail!("Segment 'npr' at width {} gives {npr} channels, outside 1..={MAX_CHANNELS}", ctx.gw);
            }
            let head = HeadKind::Segment { nm, npr };
            (LayerKind::Detect { nc, ch: chs, legacy: ctx.legacy, head }, 0)
        }
        "OBB" => {
            let chs: Vec<i64> = (0..from.len()).map(c_in).collect();
            if chs.len() != 3 {
                bail!("OBB needs 3 inputs (P3, P4, P5), got {}", chs.len());
            }
            let nc = arg_in(module, &args, (0, "nc"), Some(ctx.nc), (1, MAX_NC))?;
            // One angle per anchor is all the decode and the loss know.
            let ne = arg_in(module, &args, (1, "ne"), Some(1), (1, 1))?;
            let head = HeadKind::Obb { ne };
            (LayerKind::Detect { nc, ch: chs, legacy: ctx.legacy, head }, 0)
        }
        other => bail!("unknown module '{other}' (supported: Conv, C2f, C3k2, SPPF, C2PSA, nn.Upsample, Concat, Detect, Segment, Pose, OBB, Classify)"),
    };
    if c_out > MAX_CHANNELS {
        bail!("{module} would output {c_out} channels, more than {MAX_CHANNELS}");
    }
    Ok(LayerSpec {
        from,
        from_raw,
        n,
        kind,
        args_given,
        c_out,
    })
}

/// A keypoint shape `[K, D]`: K in 1..=[`MAX_KEYPOINTS`], D 2 (x, y) or 3 (x, y, visibility).
pub fn kpt_shape_value(v: &Value) -> Result<(i64, i64)> {
    let nums: Vec<i64> = v
        .as_sequence()
        .map(|s| s.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    match nums[..] {
        [k, d]
            if v.as_sequence().map(Vec::len) == Some(2)
                && (1..=MAX_KEYPOINTS).contains(&k)
                && (d == 2 || d == 3) =>
        {
            Ok((k, d))
        }
        _ => bail!(
            "kpt_shape must be [K, D] with K in 1..={MAX_KEYPOINTS} keypoints and D 2 (x, y) or 3 \
             (x, y, visibility), got {}",
            flow(v)
        ),
    }
}

/// C3k2's hidden-width ratio `e` (argument 2, default 0.5): finite, in (0, 4], and leaving at least
/// two hidden channels.
fn c3k2_e(args: &[Value], c2: i64) -> Result<f64> {
    let e = match args.get(2) {
        None => 0.5,
        Some(v) => v
            .as_f64()
            .ok_or_else(|| anyhow!("C3k2 'e' (argument 2) must be a number, got {}", flow(v)))?,
    };
    if !(e.is_finite() && e > 0.0 && e <= 4.0) {
        bail!("C3k2 'e' (argument 2) must be in (0, 4], got {e}");
    }
    if ((c2 as f64 * e) as i64) < 2 {
        bail!("C3k2 'e' (argument 2) = {e} leaves fewer than 2 hidden channels of {c2}");
    }
    Ok(e)
}

/// C2PSA keeps its width, and its attention heads (`c1 / 2 / 64`, at least 1) must divide `c1 / 2`.
fn c2psa_check(c1: i64, c2: i64) -> Result<()> {
    if c2 != c1 {
        bail!("C2PSA needs equal input and output channels ({c1} vs {c2})");
    }
    let c = (c1 as f64 * 0.5) as i64;
    let heads = (c / 64).max(1);
    if c < 2 || c % heads != 0 {
        bail!("C2PSA 'c2' {c2}: half of it ({c}) must be at least 2 and divisible by its {heads} attention heads");
    }
    Ok(())
}

/// What a model costs, estimated from its layer list without building it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecCost {
    /// Parameters as `DetectionModel::info` counts them (BatchNorm running statistics excluded).
    pub params: f64,
    /// Multiply-accumulates of one 640x640 image as `DetectionModel::info` (and thop) count them:
    /// convolutions, BatchNorm, attention products, DFL.
    pub macs: f64,
    /// Multiply-accumulates of SPPF pooling at 640x640 (not counted by `info`, but real work).
    pub extra_macs: f64,
    /// The part of `macs` in BatchNorm layers (gone once the model is fused).
    pub bn_macs: f64,
    /// Elements of the largest single activation (attention maps included) at 640x640.
    pub peak: f64,
    /// The head's strides (input side / feature-map side at a 256x256 probe, as Ultralytics
    /// measures them with a forward).
    pub strides: Vec<f64>,
}

/// The square input sizes the size walk follows: the usual image size and the build probe.
const PROBES: [i64; 2] = [640, 256];

/// One layer output in the size walk: channels, side at each probe and stride (numerator, denominator).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geom {
    c: i64,
    side: [i64; 2],
    stride: (i64, i64),
}

/// Output side of `Conv(k, s)` with autopad `k // 2`.
fn conv_side(h: i64, k: i64, s: i64) -> i64 {
    (h + 2 * (k / 2) - k) / s + 1
}

/// Running totals of the size walk.
#[derive(Debug, Default)]
struct Tally {
    params: f64,
    macs: f64,
    extra: f64,
    bn: f64,
    peak: f64,
}

impl Tally {
    /// A `Conv(c1, c2, k, g)` (conv, BatchNorm, optional SiLU, which thop counts as free) producing a
    /// `side` x `side` map.
    fn conv(&mut self, c1: i64, c2: i64, k: i64, g: i64, _act: bool, side: i64) {
        let (c1, c2, k, g) = (c1 as f64, c2 as f64, k as f64, g.max(1) as f64);
        let out = c2 * (side as f64).powi(2);
        self.params += c2 * (c1 / g).floor() * k * k + 2.0 * c2;
        self.macs += out * (c1 / g).floor() * k * k + 4.0 * out;
        self.bn += 4.0 * out;
        self.peak = self.peak.max(out);
    }
    /// A plain 1x1 `Conv2d(c1, c2)` with bias producing a `side` x `side` map.
    fn conv2d(&mut self, c1: i64, c2: i64, side: i64) {
        let out = c2 as f64 * (side as f64).powi(2);
        self.params += (c2 * c1 + c2) as f64;
        self.macs += out * c1 as f64;
        self.peak = self.peak.max(out);
    }
    /// The layer's own output map.
    fn output(&mut self, c: i64, side: i64) {
        self.peak = self.peak.max(c as f64 * (side as f64).powi(2));
    }
}

/// Adds one layer (not Detect) to the tally at the 640 probe side `h` of its first input.
fn tally_layer(t: &mut Tally, kind: &LayerKind, n: i64, h: i64) {
    match *kind {
        LayerKind::Conv { c1, c2, k, s } => t.conv(c1, c2, k, 1, true, conv_side(h, k, s)),
        LayerKind::C2f { c1, c2, n, .. } => {
            let c = (c2 as f64 * 0.5) as i64;
            t.conv(c1, 2 * c, 1, 1, true, h);
            for _ in 0..n {
                t.conv(c, c, 3, 1, true, h);
                t.conv(c, c, 3, 1, true, h);
            }
            t.conv((2 + n) * c, c2, 1, 1, true, h);
        }
        LayerKind::C3k2 { c1, c2, n, c3k, e } => {
            let c = (c2 as f64 * e) as i64;
            let c_ = (c as f64 * 0.5) as i64;
            t.conv(c1, 2 * c, 1, 1, true, h);
            for _ in 0..n {
                if c3k {
                    t.conv(c, c_, 1, 1, true, h);
                    t.conv(c, c_, 1, 1, true, h);
                    for _ in 0..2 {
                        t.conv(c_, c_, 3, 1, true, h);
                        t.conv(c_, c_, 3, 1, true, h);
                    }
                    t.conv(2 * c_, c, 1, 1, true, h);
                } else {
                    t.conv(c, c_, 3, 1, true, h);
                    t.conv(c_, c, 3, 1, true, h);
                }
            }
            t.conv((2 + n) * c, c2, 1, 1, true, h);
        }
        LayerKind::Sppf { c1, c2, k } => {
            let c_ = c1 / 2;
            t.conv(c1, c_, 1, 1, true, h);
            t.extra += 3.0 * (c_ as f64) * (h as f64).powi(2) * (k as f64).powi(2);
            t.output(4 * c_, h);
            t.conv(4 * c_, c2, 1, 1, true, h);
        }
        LayerKind::C2psa { c1, .. } => {
            let c = (c1 as f64 * 0.5) as i64;
            let heads = (c / 64).max(1);
            let head_dim = c / heads;
            let key_dim = (head_dim as f64 * 0.5) as i64;
            let tokens = (h as f64).powi(2);
            t.conv(c1, 2 * c, 1, 1, true, h);
            for _ in 0..n {
                t.conv(c, c + 2 * key_dim * heads, 1, 1, false, h);
                t.conv(c, c, 1, 1, false, h);
                t.conv(c, c, 3, c, false, h);
                t.conv(c, 2 * c, 1, 1, true, h);
                t.conv(2 * c, c, 1, 1, false, h);
                t.macs += heads as f64 * tokens * tokens * (key_dim + head_dim) as f64;
                t.peak = t.peak.max(heads as f64 * tokens * tokens);
            }
            t.conv(2 * c, c1, 1, 1, true, h);
        }
        LayerKind::Upsample { scale } => t.output(0, h * scale),
        LayerKind::Classify { c1, nc } => {
            // Conv 1x1 to 1280, the pool (thop: one op per input element) and the Linear.
            t.conv(c1, CLASSIFY_HIDDEN, 1, 1, true, h);
            t.macs += (CLASSIFY_HIDDEN * h * h) as f64;
            t.params += (CLASSIFY_HIDDEN * nc + nc) as f64;
            t.macs += (CLASSIFY_HIDDEN * nc) as f64;
        }
        LayerKind::Concat | LayerKind::Detect { .. } => {}
    }
}

/// Adds the Detect head: box and class branches per level (`sides` at 640) and the DFL weights.
fn tally_detect(t: &mut Tally, nc: i64, ch: &[i64], legacy: bool, sides: &[i64]) {
    let c0 = ch.first().copied().unwrap_or(0);
    let c2 = 16.max(c0 / 4).max(4 * 16);
    let c3 = c0.max(nc.min(100));
    for (&c, &h) in ch.iter().zip(sides) {
        t.conv(c, c2, 3, 1, true, h);
        t.conv(c2, c2, 3, 1, true, h);
        t.conv2d(c2, 4 * 16, h);
        if legacy {
            t.conv(c, c3, 3, 1, true, h);
            t.conv(c3, c3, 3, 1, true, h);
        } else {
            t.conv(c, c, 3, c, true, h);
            t.conv(c, c3, 1, 1, true, h);
            t.conv(c3, c3, 3, c3, true, h);
            t.conv(c3, c3, 1, 1, true, h);
        }
        t.conv2d(c3, nc, h);
    }
    // The DFL 1x1 conv: 16 bins to 1 for 4 sides of every anchor.
    t.params += 16.0;
    t.macs += sides.iter().map(|&h| (4 * 16 * h * h) as f64).sum::<f64>();
}

/// Adds the Segment extras: the mask-coefficient branch per level and the Proto at stride 4.
fn tally_segment(t: &mut Tally, nm: i64, npr: i64, ch: &[i64], sides: &[i64]) {
    let c0 = ch.first().copied().unwrap_or(0);
    let c4 = (c0 / 4).max(nm);
    for (&c, &h) in ch.iter().zip(sides) {
        t.conv(c, c4, 3, 1, true, h);
        t.conv(c4, c4, 3, 1, true, h);
        t.conv2d(c4, nm, h);
    }
    let h = sides.first().copied().unwrap_or(0);
    t.conv(c0, npr, 3, 1, true, h);
    // ConvTranspose2d(npr, npr, 2, 2) with bias doubles the side.
    let h2 = 2 * h;
    let out = (npr as f64) * (h2 as f64).powi(2);
    t.params += (npr * npr * 4 + npr) as f64;
    t.macs += out * npr as f64;
    t.peak = t.peak.max(out);
    t.conv(npr, npr, 3, 1, true, h2);
    t.conv(npr, nm, 1, 1, true, h2);
}

/// Adds a head's `cv4` branch per level (Pose keypoints, OBB angle): Conv 3x3, Conv 3x3, Conv2d
/// 1x1 to `n` outputs.
fn tally_cv4(t: &mut Tally, n: i64, ch: &[i64], sides: &[i64]) {
    let c4 = (ch.first().copied().unwrap_or(0) / 4).max(n);
    for (&c, &h) in ch.iter().zip(sides) {
        t.conv(c, c4, 3, 1, true, h);
        t.conv(c4, c4, 3, 1, true, h);
        t.conv2d(c4, n, h);
    }
}

/// Greatest common divisor of two positive numbers.
fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A stride `num / den` multiplied by `mul / div`, in lowest terms; None past 2^20 either way.
fn scale_stride((num, den): (i64, i64), mul: i64, div: i64) -> Option<(i64, i64)> {
    let (n, d) = (num.checked_mul(mul)?, den.checked_mul(div)?);
    let g = gcd(n, d).max(1);
    let r = (n / g, d / g);
    (r.0 <= 1 << 20 && r.1 <= 1 << 20).then_some(r)
}

/// Writes a stride for messages: `16` or `1/2`.
fn stride_text((num, den): (i64, i64)) -> String {
    if den == 1 {
        num.to_string()
    } else {
        format!("{num}/{den}")
    }
}

/// The geometry of one layer's output from those of its inputs, checking that Concat inputs agree.
fn layer_geom(l: &LayerSpec, ins: &[Geom]) -> Result<Geom> {
    let first = *ins
        .first()
        .ok_or_else(|| anyhow!("the layer has no input"))?;
    let map = |f: &dyn Fn(i64) -> i64| [f(first.side[0]), f(first.side[1])];
    let too_big = || anyhow!("its stride exceeds 2^20 (or 1/2^20)");
    Ok(match l.kind {
        LayerKind::Conv { k, s, c2, .. } => Geom {
            c: c2,
            side: map(&|h| conv_side(h, k, s)),
            stride: scale_stride(first.stride, s, 1).ok_or_else(too_big)?,
        },
        LayerKind::Sppf { k, c2, .. } => Geom {
            c: c2,
            side: map(&|h| h + 2 * (k / 2) - k + 1),
            ..first
        },
        LayerKind::Upsample { scale } => Geom {
            side: map(&|h| h * scale),
            stride: scale_stride(first.stride, 1, scale).ok_or_else(too_big)?,
            ..first
        },
        LayerKind::Concat => {
            for (g, &f) in ins.iter().zip(&l.from).skip(1) {
                if g.side != first.side || g.stride != first.stride {
                    bail!(
                        "Concat inputs differ in size: input {} has stride {} ({}x{} at a {}x{} image) \
                         but input {f} has stride {} ({}x{}); Concat needs equal strides",
                        l.from[0],
                        stride_text(first.stride),
                        first.side[0],
                        first.side[0],
                        PROBES[0],
                        PROBES[0],
                        stride_text(g.stride),
                        g.side[0],
                        g.side[0],
                    );
                }
            }
            Geom {
                c: l.c_out,
                ..first
            }
        }
        _ => Geom {
            c: l.c_out,
            ..first
        },
    })
}

/// Largest activation (elements) one layer may produce at 640x640: 2^28 (1 GiB as f32).
pub const MAX_ACTIVATION: f64 = (1u64 << 28) as f64;

/// Walks the layers following feature-map sizes: checks Concat inputs and activation sizes, and adds
/// up parameters and work.
fn walk(layers: &[LayerSpec]) -> Result<SpecCost> {
    let input = Geom {
        c: 3,
        side: PROBES,
        stride: (1, 1),
    };
    let mut geoms: Vec<Geom> = Vec::with_capacity(layers.len());
    let mut t = Tally::default();
    let mut strides = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let ins: Vec<Geom> = l
            .from
            .iter()
            .map(|&f| {
                usize::try_from(f)
                    .ok()
                    .and_then(|f| geoms.get(f))
                    .copied()
                    .unwrap_or(input)
            })
            .collect();
        let g = layer_geom(l, &ins).with_context(|| format!("model YAML layer {i}"))?;
        if let LayerKind::Detect {
            nc,
            ref ch,
            legacy,
            head,
        } = l.kind
        {
            let sides: Vec<i64> = ins.iter().map(|g| g.side[0]).collect();
            strides = ins
                .iter()
                .map(|g| PROBES[1] as f64 / g.side[1] as f64)
                .collect();
            tally_detect(&mut t, nc, ch, legacy, &sides);
            match head {
                HeadKind::Segment { nm, npr } => tally_segment(&mut t, nm, npr, ch, &sides),
                HeadKind::Obb { ne } => tally_cv4(&mut t, ne, ch, &sides),
                HeadKind::Pose { kpt_shape } => {
                    tally_cv4(&mut t, kpt_shape.0 * kpt_shape.1, ch, &sides)
                }
                HeadKind::Detect => {}
            }
        } else {
            tally_layer(&mut t, &l.kind, l.n, ins[0].side[0]);
            t.output(g.c, g.side[0]);
        }
        if t.peak > MAX_ACTIVATION {
            bail!(
                "model YAML layer {i}: an activation of {:.3e} elements at a 640x640 image is over \
                 the 2^28 cap (channels {}, map {}x{})",
                t.peak,
                g.c,
                g.side[0],
                g.side[0]
            );
        }
        geoms.push(g);
    }
    Ok(SpecCost {
        params: t.params,
        macs: t.macs,
        extra_macs: t.extra,
        bn_macs: t.bn,
        peak: t.peak,
        strides,
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
    fn cost_matches_the_built_models() {
        // Every head kind, both generations, two scales; unfused and fused: the walk's count is
        // what `info` prints, so it must equal the counted forward.
        for name in [
            "yolov8n.yaml",
            "yolo11n.yaml",
            "yolo11s.yaml",
            "yolov8n-seg.yaml",
            "yolo11n-seg.yaml",
            "yolov8s-seg.yaml",
            "yolov8n-pose.yaml",
            "yolo11n-pose.yaml",
            "yolov8n-obb.yaml",
            "yolo11n-obb.yaml",
            "yolov8n-cls.yaml",
            "yolo11n-cls.yaml",
        ] {
            let spec = ModelSpec::from_name(name, Some(7)).unwrap();
            let cost = spec.cost().unwrap();
            let mut m = crate::nn::DetectionModel::new(spec, tch::Device::Cpu).unwrap();
            assert_eq!(cost.params, m.info().params as f64, "{name}");
            assert_eq!(cost.macs, m.counted_macs(), "{name}");
            if !name.contains("-cls") {
                // Ultralytics' stride probe: a 256x256 forward.
                let raw = tch::no_grad(|| {
                    m.forward_raw(
                        &tch::Tensor::zeros([1, 3, 256, 256], tch::kind::FLOAT_CPU),
                        false,
                    )
                });
                let probed: Vec<f64> = raw.shapes.iter().map(|(h, _)| 256.0 / *h as f64).collect();
                assert_eq!(cost.strides, probed, "{name}");
                assert_eq!(m.stride, probed, "{name}");
            }
            m.fuse();
            assert_eq!(cost.macs - cost.bn_macs, m.counted_macs(), "{name} fused");
        }
    }

    #[test]
    fn unknown_module_is_an_error() {
        let y: Value =
            serde_yaml::from_str("nc: 2\nbackbone: [[-1, 1, Foo, [1]]]\nhead: []").unwrap();
        let e = ModelSpec::from_yaml(y, "x", None, None).unwrap_err();
        assert!(format!("{e:#}").contains("unknown module 'Foo'"), "{e:#}");
    }
}
