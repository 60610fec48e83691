//! Model weights: Ultralytics `.pt` checkpoints read safely (zip + pickle, nothing executed) and our
//! own checkpoint format (safetensors + JSON metadata, written atomically).

pub mod pickle;
pub mod ptwrite;

use crate::nn::{DetectionModel, ModelSpec};
use anyhow::{anyhow, bail, Context, Result};
use pickle::{Pickle, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// What an Ultralytics checkpoint holds that a model needs.
#[derive(Debug)]
pub struct PtCheckpoint {
    /// The model YAML dict stored in the DetectionModel.
    pub yaml: serde_yaml::Value,
    /// Model name stem, e.g. `yolo11n`.
    pub stem: String,
    /// Class names.
    pub names: Vec<String>,
    /// The state dict, converted to f32 (integer buffers kept as they are).
    pub tensors: HashMap<String, Tensor>,
    /// The stored training arguments (`train_args`), if any.
    pub train_args: serde_yaml::Value,
}

fn storage_kind(dtype: &str) -> Result<(Kind, usize)> {
    Ok(match dtype {
        "FloatStorage" => (Kind::Float, 4),
        "HalfStorage" => (Kind::Half, 2),
        "BFloat16Storage" => (Kind::BFloat16, 2),
        "DoubleStorage" => (Kind::Double, 8),
        "LongStorage" => (Kind::Int64, 8),
        "IntStorage" => (Kind::Int, 4),
        "BoolStorage" => (Kind::Bool, 1),
        "ByteStorage" => (Kind::Uint8, 1),
        other => bail!("unsupported tensor storage type {other}"),
    })
}

/// Reads an Ultralytics `.pt` file: the `ema` model if present, else `model`.
pub fn read_pt(path: &Path) -> Result<PtCheckpoint> {
    let ctx = || format!("reading Ultralytics checkpoint {}", path.display());
    let file = std::fs::File::open(path).with_context(ctx)?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| {
            anyhow!("not a PyTorch zip checkpoint ({e}); the file may be truncated or not a .pt")
        })
        .with_context(ctx)?;
    let pkl_name = (0..zip.len())
        .filter_map(|i| zip.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .ok_or_else(|| anyhow!("no data.pkl inside the zip"))
        .with_context(ctx)?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let mut buf = Vec::new();
    zip.by_name(&pkl_name)
        .and_then(|mut f| f.read_to_end(&mut buf).map_err(Into::into))
        .map_err(|e| anyhow!("reading {pkl_name}: {e}"))
        .with_context(ctx)?;
    let pk = pickle::parse(&buf)
        .map_err(|e| anyhow!("{e}"))
        .with_context(ctx)?;
    let model = ["ema", "model"]
        .iter()
        .filter_map(|k| pk.lookup(pk.root, k))
        .find(|&id| matches!(pk.get(id), Value::Object { .. }))
        .ok_or_else(|| {
            anyhow!("no 'ema' or 'model' entry holding a model (not an Ultralytics checkpoint?)")
        })
        .with_context(ctx)?;
    let yaml_id = pk
        .lookup(model, "yaml")
        .ok_or_else(|| anyhow!("the model has no 'yaml' attribute"))
        .with_context(ctx)?;
    let yaml = pk.to_yaml(yaml_id);
    let stem = yaml
        .get("yaml_file")
        .and_then(serde_yaml::Value::as_str)
        .and_then(|f| {
            Path::new(f)
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "model".into());
    let mut names: Vec<(i64, String)> = pk
        .lookup(model, "names")
        .map(|id| {
            pk.dict_items(id)
                .into_iter()
                .filter_map(|(k, v)| match pk.get(v) {
                    Value::Str(s) => Some((k.parse().unwrap_or(0), s.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut refs = Vec::new();
    collect_tensors(&pk, model, "", &mut refs, 0);
    if refs.is_empty() {
        bail!("{}: the model holds no tensors", path.display());
    }
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut tensors = HashMap::new();
    for (name, t) in refs {
        if !storages.contains_key(&t.key) {
            let entry = format!("{prefix}data/{}", t.key);
            let mut b = Vec::new();
            zip.by_name(&entry)
                .and_then(|mut f| f.read_to_end(&mut b).map_err(Into::into))
                .map_err(|e| anyhow!("tensor {name}: storage {entry}: {e}"))
                .with_context(ctx)?;
            storages.insert(t.key.clone(), b);
        }
        let bytes = &storages[&t.key];
        let (kind, es) = storage_kind(&t.dtype).with_context(ctx)?;
        let numel: i64 = t.size.iter().product();
        if t.size.iter().any(|&s| s < 0) || t.offset < 0 || t.size.len() != t.stride.len() {
            bail!("{}: tensor {name} has an invalid shape", path.display());
        }
        let extent = if numel == 0 {
            0
        } else {
            1 + t
                .size
                .iter()
                .zip(&t.stride)
                .map(|(s, st)| (s - 1) * st)
                .sum::<i64>()
        };
        let (start, end) = (t.offset as usize * es, (t.offset + extent) as usize * es);
        if end > bytes.len() {
            bail!("{}: tensor {name} needs bytes {start}..{end} of storage {} which has {} (truncated file?)", path.display(), t.key, bytes.len());
        }
        let flat = Tensor::from_data_size(&bytes[start..end], &[extent], kind);
        let tensor = if numel == 0 {
            Tensor::zeros(&t.size, (kind, Device::Cpu))
        } else {
            flat.as_strided(&t.size, &t.stride, 0).contiguous()
        };
        let tensor = if matches!(kind, Kind::Half | Kind::BFloat16 | Kind::Double) {
            tensor.to_kind(Kind::Float)
        } else {
            tensor
        };
        tensors.insert(name, tensor);
    }
    let train_args = pk
        .lookup(pk.root, "train_args")
        .map(|id| pk.to_yaml(id))
        .unwrap_or(serde_yaml::Value::Null);
    Ok(PtCheckpoint {
        yaml,
        stem,
        names: names.into_iter().map(|(_, n)| n).collect(),
        tensors,
        train_args,
    })
}

fn collect_tensors(
    pk: &Pickle,
    module: usize,
    prefix: &str,
    out: &mut Vec<(String, pickle::TensorRef)>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    for field in ["_parameters", "_buffers"] {
        if let Some(d) = pk.lookup(module, field) {
            for (name, v) in pk.dict_items(d) {
                if let Value::Tensor(t) = pk.get(v) {
                    out.push((format!("{prefix}{name}"), t.clone()));
                }
            }
        }
    }
    if let Some(d) = pk.lookup(module, "_modules") {
        for (name, child) in pk.dict_items(d) {
            collect_tensors(pk, child, &format!("{prefix}{name}."), out, depth + 1);
        }
    }
}

/// Copies named tensors into the model's variables. Every model variable must be present with the
/// same shape (`strict`), or else only matching ones are copied; returns how many were copied.
pub fn load_state(
    model: &mut DetectionModel,
    tensors: &HashMap<String, Tensor>,
    strict: bool,
) -> Result<usize> {
    let mut n = 0;
    let mut problems = Vec::new();
    tch::no_grad(|| {
        for (name, mut var) in model.vs.variables() {
            match tensors.get(&name) {
                Some(t) if t.size() == var.size() => {
                    var.copy_(&t.to_kind(var.kind()));
                    n += 1;
                }
                Some(t) => problems.push(format!(
                    "{name}: checkpoint shape {:?}, model {:?}",
                    t.size(),
                    var.size()
                )),
                None => problems.push(format!("{name}: missing from checkpoint")),
            }
        }
    });
    if strict && !problems.is_empty() {
        problems.sort();
        bail!(
            "weights do not fit the architecture ({} problems), first: {}",
            problems.len(),
            problems[..problems.len().min(5)].join("; ")
        );
    }
    Ok(n)
}

/// Metadata stored with our checkpoints.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
pub struct CheckpointMeta {
    /// Model YAML (with `scale` and `nc`).
    pub yaml: String,
    /// Model name stem (`yolo11n`).
    pub stem: String,
    /// Class names.
    pub names: Vec<String>,
    /// Training arguments.
    #[serde(default)]
    pub args: serde_json::Value,
    /// Last completed epoch (-1 when final).
    #[serde(default)]
    pub epoch: i64,
    /// Metrics at save time.
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// Training state needed to resume (absent in final checkpoints).
    #[serde(default)]
    pub train_state: serde_json::Value,
    /// The task word (`detect`, ...); absent in checkpoints written before tasks were stored.
    #[serde(default = "default_task")]
    pub task: String,
}

fn default_task() -> String {
    "detect".into()
}

/// Writes the model as safetensors with JSON metadata, atomically (temp file + rename).
pub fn save_checkpoint(
    model: &DetectionModel,
    stem: &str,
    meta_extra: CheckpointMeta,
    path: &Path,
) -> Result<()> {
    let meta = CheckpointMeta {
        yaml: model.spec.to_yaml_string(),
        stem: stem.to_string(),
        names: model.names.clone(),
        ..meta_extra
    };
    let vars: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
    save_tensors(&vars, &meta, path)
}

/// Writes named f32 tensors and metadata as one safetensors file, atomically.
pub fn save_tensors(
    tensors: &[(String, Tensor)],
    meta: &CheckpointMeta,
    path: &Path,
) -> Result<()> {
    let mut owned = Vec::new();
    let mut sorted: Vec<&(String, Tensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in sorted {
        let t = t
            .detach()
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let mut bytes = vec![0u8; t.numel() * 4];
        t.copy_data_u8(&mut bytes, t.numel());
        owned.push((
            name.clone(),
            t.size().iter().map(|&s| s as usize).collect::<Vec<_>>(),
            bytes,
        ));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, s, b)| {
            Ok((
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)?,
            ))
        })
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    let md = HashMap::from([("ryolo".to_string(), serde_json::to_string(meta)?)]);
    let bytes = safetensors::serialize(views, &Some(md))?;
    write_atomic(path, &bytes)
}

pub use crate::util::write_atomic;

/// Reads one of our checkpoints: metadata and tensors.
pub fn read_checkpoint(path: &Path) -> Result<(CheckpointMeta, HashMap<String, Tensor>)> {
    let ctx = || format!("reading checkpoint {}", path.display());
    let bytes = std::fs::read(path).with_context(ctx)?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("not a safetensors file: {e}"))
        .with_context(ctx)?;
    let meta: CheckpointMeta = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("ryolo"))
        .ok_or_else(|| anyhow!("no ryolo metadata in the safetensors header"))
        .and_then(|s| serde_json::from_str(s).map_err(Into::into))
        .with_context(ctx)?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{e}"))
        .with_context(ctx)?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            bail!("{}: tensor {name} is not f32", path.display());
        }
        let shape: Vec<i64> = view.shape().iter().map(|&s| s as i64).collect();
        tensors.insert(
            name,
            Tensor::from_data_size(view.data(), &shape, Kind::Float),
        );
    }
    Ok((meta, tensors))
}

/// A loaded model and where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The model, on the requested device.
    pub model: DetectionModel,
    /// Model name stem (`yolo11n`).
    pub stem: String,
    /// Training arguments stored with the weights (imgsz etc.), if any.
    pub train_args: serde_yaml::Value,
}

/// Loads a model from a name or path: `yolo11n.yaml` (fresh weights), an Ultralytics `.pt`, or one of
/// our `.safetensors` checkpoints. `nc` overrides the class count of a YAML model.
pub fn load_model(model: &str, nc: Option<i64>, device: Device) -> Result<Loaded> {
    let path = Path::new(model);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "yaml" | "yml" => {
            let spec = ModelSpec::from_name(model, nc)?;
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("model")
                .to_string();
            Ok(Loaded {
                model: DetectionModel::new(spec, device)?,
                stem,
                train_args: serde_yaml::Value::Null,
            })
        }
        "pt" => {
            if !path.exists() {
                bail!("model file '{model}' not found (ryolo does not download weights)");
            }
            let ck = read_pt(path)?;
            let spec = ModelSpec::from_yaml(ck.yaml, &ck.stem, None, None)
                .with_context(|| format!("architecture stored in {model}"))?;
            let mut m = DetectionModel::new(spec, device)?;
            load_state(&mut m, &ck.tensors, true)
                .with_context(|| format!("loading weights from {model}"))?;
            if ck.names.len() as i64 == m.nc() {
                m.names = ck.names;
            }
            Ok(Loaded {
                model: m,
                stem: ck.stem,
                train_args: ck.train_args,
            })
        }
        "safetensors" => {
            let (meta, tensors) = read_checkpoint(path)?;
            if let Some(t) = crate::task::TaskKind::parse(&meta.task) {
                t.ensure_implemented(&format!("stored in {model}"))?;
            }
            let yaml: serde_yaml::Value = serde_yaml::from_str(&meta.yaml)
                .with_context(|| format!("architecture stored in {model}"))?;
            let spec = ModelSpec::from_yaml(yaml, &meta.stem, None, None)?;
            let mut m = DetectionModel::new(spec, device)?;
            load_state(&mut m, &tensors, true)
                .with_context(|| format!("loading weights from {model}"))?;
            m.names = meta.names;
            let args = serde_yaml::to_value(&meta.args).unwrap_or(serde_yaml::Value::Null);
            Ok(Loaded {
                model: m,
                stem: meta.stem,
                train_args: args,
            })
        }
        _ => bail!("model '{model}': expected a .yaml, .pt or .safetensors file"),
    }
}
