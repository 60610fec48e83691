//! Model weights: Ultralytics `.pt` checkpoints read safely (zip + pickle, nothing executed) and our
//! own checkpoint format (safetensors + JSON metadata, written atomically).

pub mod pickle;
pub mod ptwrite;

use crate::nn::{DetectionModel, ModelSpec};
use anyhow::{anyhow, bail, Context, Result};
use pickle::{Pickle, Value};
use std::collections::HashMap;
use std::io::{Read, Seek};
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
    /// Pose models: `kpt_shape`, `kpt_names` and `kpt_oks_sigmas` attributes of the model object.
    pub pose: PoseAttrs,
}

/// The keypoint attributes of a `PoseModel` (spec/pose.md §9); all None for the other models.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoseAttrs {
    /// `model.kpt_shape` `[K, D]`.
    pub kpt_shape: Option<(i64, i64)>,
    /// `model.kpt_names` `{class: [K names]}`, by class id.
    pub kpt_names: Option<Vec<(i64, Vec<String>)>>,
    /// `model.kpt_oks_sigmas` (8.4; None unless the dataset defined them).
    pub kpt_oks_sigmas: Option<Vec<f64>>,
}

/// Reads the keypoint attributes of the model object; a malformed one is an error naming it.
fn pose_attrs(pk: &Pickle, model: usize) -> Result<PoseAttrs> {
    let attr = |key: &str| -> Result<Option<serde_yaml::Value>> {
        match pk.lookup(model, key)? {
            Some(id) => {
                Ok(Some(pk.to_yaml(id).map_err(|e| {
                    anyhow!("the model's '{key}' attribute: {e}")
                })?))
                .map(|v| v.filter(|v| !v.is_null()))
            }
            None => Ok(None),
        }
    };
    let kpt_shape = attr("kpt_shape")?
        .map(|v| crate::nn::yaml::kpt_shape_value(&v))
        .transpose()
        .context("the model's 'kpt_shape' attribute")?;
    let kpt_names = match attr("kpt_names")? {
        None => None,
        Some(serde_yaml::Value::Mapping(m)) => {
            let mut out = Vec::new();
            for (k, v) in m {
                let c = k
                    .as_i64()
                    .or_else(|| k.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| anyhow!("the model's 'kpt_names' has a non-integer key"))?;
                let names = v
                    .as_sequence()
                    .map(|s| {
                        s.iter()
                            .map(|n| match n {
                                serde_yaml::Value::String(s) => s.clone(),
                                other => crate::nn::yaml::flow(other),
                            })
                            .collect()
                    })
                    .ok_or_else(|| anyhow!("the model's 'kpt_names' of class {c} is not a list"))?;
                out.push((c, names));
            }
            out.sort_by_key(|(c, _)| *c);
            Some(out)
        }
        Some(_) => bail!("the model's 'kpt_names' attribute is not a dict"),
    };
    let kpt_oks_sigmas = match attr("kpt_oks_sigmas")? {
        None => None,
        Some(v) => Some(
            v.as_sequence()
                .and_then(|s| {
                    s.iter()
                        .map(serde_yaml::Value::as_f64)
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    anyhow!("the model's 'kpt_oks_sigmas' attribute is not a list of numbers")
                })?,
        ),
    };
    Ok(PoseAttrs {
        kpt_shape,
        kpt_names,
        kpt_oks_sigmas,
    })
}

/// Applies a checkpoint's keypoint attributes to a built model whose head is Pose: the names and
/// sigmas (checked against K). The shape must already be the head's.
pub fn apply_pose_attrs(model: &mut DetectionModel, attrs: &PoseAttrs) -> Result<()> {
    let Some(p) = model.head.pose_mut() else {
        return Ok(());
    };
    if let Some(s) = attrs.kpt_shape {
        if s != p.kpt_shape {
            bail!(
                "the model's kpt_shape [{}, {}] differs from its head's [{}, {}]",
                s.0,
                s.1,
                p.kpt_shape.0,
                p.kpt_shape.1
            );
        }
    }
    if let Some(sig) = &attrs.kpt_oks_sigmas {
        if sig.len() as i64 != p.kpt_shape.0 || !sig.iter().all(|&v| v > 0.0) {
            bail!(
                "'kpt_oks_sigmas' must be {} positive values, got {sig:?}",
                p.kpt_shape.0
            );
        }
    }
    p.kpt_names = attrs.kpt_names.clone();
    p.kpt_oks_sigmas = attrs.kpt_oks_sigmas.clone();
    Ok(())
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
    let file = std::fs::File::open(path)
        .with_context(|| format!("reading Ultralytics checkpoint {}", path.display()))?;
    read_pt_from(file, &path.display().to_string())
}

/// Largest zip entry (declared uncompressed size) a checkpoint may have: 4 GB.
pub const MAX_ENTRY_BYTES: u64 = 4_000_000_000;
/// Largest `data.pkl`: 256 MiB (Ultralytics' are a few hundred KB).
pub const MAX_PICKLE_BYTES: u64 = 256 << 20;
/// Most tensor bytes one checkpoint may hold in all: 4 GB.
pub const MAX_TENSOR_BYTES: u64 = 4_000_000_000;
/// Most modules visited when collecting the state dict (yolo11x has about 800).
pub const MAX_MODULES: usize = 100_000;
/// Most tensors in one state dict.
pub const MAX_TENSORS: usize = 100_000;
/// Deepest module nesting followed.
pub const MAX_MODULE_DEPTH: usize = 64;
/// Most work (dict entries scanned plus name bytes) collecting the state dict may take.
const MAX_WALK_WORK: usize = 20_000_000;

/// Reads an Ultralytics checkpoint from any seekable reader; `name` (the file) labels the errors.
pub fn read_pt_from<R: Read + Seek>(reader: R, name: &str) -> Result<PtCheckpoint> {
    read_pt_inner(reader).with_context(|| format!("reading Ultralytics checkpoint {name}"))
}

/// [`read_pt_from`] without the file context.
fn read_pt_inner<R: Read + Seek>(reader: R) -> Result<PtCheckpoint> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| {
        anyhow!("not a PyTorch zip checkpoint ({e}); the file may be truncated or not a .pt")
    })?;
    let pkl_name = (0..zip.len())
        .filter_map(|i| zip.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .ok_or_else(|| anyhow!("no data.pkl inside the zip"))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let (buf, _) = read_entry(&mut zip, &pkl_name, None, MAX_PICKLE_BYTES)?;
    let pk = pickle::parse(&buf).map_err(|e| anyhow!("{e}"))?;
    let model = find_model(&pk)?;
    let yaml_id = pk
        .lookup(model, "yaml")?
        .ok_or_else(|| anyhow!("the model has no 'yaml' attribute"))?;
    let yaml = pk
        .to_yaml(yaml_id)
        .map_err(|e| anyhow!("the model's 'yaml' attribute: {e}"))?;
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
    let names = class_names(&pk, model)?;
    let pose = pose_attrs(&pk, model)?;
    let refs = collect_tensors(&pk, model)?;
    if refs.is_empty() {
        bail!("the model holds no tensors");
    }
    let tensors = load_tensors(&mut zip, &prefix, &refs)?;
    let train_args = match pk.lookup(pk.root, "train_args")? {
        Some(id) => pk.to_yaml(id).map_err(|e| anyhow!("'train_args': {e}"))?,
        None => serde_yaml::Value::Null,
    };
    Ok(PtCheckpoint {
        yaml,
        stem,
        names,
        tensors,
        train_args,
        pose,
    })
}

/// The `ema` model object if present, else `model`.
fn find_model(pk: &Pickle) -> Result<usize> {
    for key in ["ema", "model"] {
        if let Some(id) = pk.lookup(pk.root, key)? {
            if matches!(pk.get(id), Value::Object { .. }) {
                return Ok(id);
            }
        }
    }
    bail!("no 'ema' or 'model' entry holding a model (not an Ultralytics checkpoint?)")
}

/// The model's class names (`names` dict, ordered by class id).
fn class_names(pk: &Pickle, model: usize) -> Result<Vec<String>> {
    let mut names: Vec<(i64, String)> = match pk.lookup(model, "names")? {
        Some(id) => pk
            .dict_items(id)
            .into_iter()
            .filter_map(|(k, v)| match pk.get(v) {
                Value::Str(s) => Some((k.parse().unwrap_or(0), s.clone())),
                _ => None,
            })
            .collect(),
        None => vec![],
    };
    names.sort();
    Ok(names.into_iter().map(|(_, n)| n).collect())
}

/// Reads one zip entry, refusing a declared size over `cap` and reading at most `want` bytes (all
/// when None) through `take`, so that a lying header cannot make it read more. Returns the bytes and
/// the declared size.
fn read_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    entry: &str,
    want: Option<u64>,
    cap: u64,
) -> Result<(Vec<u8>, u64)> {
    let f = zip
        .by_name(entry)
        .map_err(|e| anyhow!("reading {entry}: {e}"))?;
    let declared = f.size();
    if declared > cap {
        bail!("zip entry {entry} declares {declared} bytes uncompressed, over the {cap}-byte cap");
    }
    let want = want.unwrap_or(declared);
    if want > declared {
        bail!("zip entry {entry} holds {declared} bytes but {want} are needed (truncated file?)");
    }
    // Reading a whole entry goes one byte past its declared end: the zip reader checks the CRC at
    // the end of the data, and an entry that inflates past its declared size is caught.
    let whole = want == declared;
    let mut buf = Vec::with_capacity(usize::try_from(want.min(1 << 26)).unwrap_or(0));
    f.take(want + u64::from(whole))
        .read_to_end(&mut buf)
        .map_err(|e| anyhow!("reading {entry}: {e}"))?;
    if (buf.len() as u64) < want {
        bail!(
            "zip entry {entry} gave {} bytes but {want} are needed (truncated or corrupt file?)",
            buf.len()
        );
    }
    if buf.len() as u64 > want {
        bail!("zip entry {entry} holds more than the {declared} bytes it declares");
    }
    Ok((buf, declared))
}

/// Where one tensor view lies in its storage, in elements, all checked against overflow.
#[derive(Debug, Clone, Copy)]
struct ViewSpan {
    /// Elements of the view.
    numel: u64,
    /// First storage element read.
    start: u64,
    /// One past the last storage element read (`start` for an empty view).
    end: u64,
}

/// The storage span of a view: refuses negative sizes, strides and offsets, rank mismatches and any
/// arithmetic overflow.
fn view_span(t: &pickle::TensorRef) -> std::result::Result<ViewSpan, String> {
    if t.size.len() != t.stride.len() {
        return Err(format!(
            "size {:?} and stride {:?} differ in length",
            t.size, t.stride
        ));
    }
    if let Some(s) = t.size.iter().find(|&&s| s < 0) {
        return Err(format!("negative size {s} in {:?}", t.size));
    }
    if let Some(s) = t.stride.iter().find(|&&s| s < 0) {
        return Err(format!("negative stride {s} in {:?}", t.stride));
    }
    if t.offset < 0 {
        return Err(format!("negative storage offset {}", t.offset));
    }
    let overflow = || {
        format!(
            "size {:?}, stride {:?} and offset {} overflow 64-bit element indices",
            t.size, t.stride, t.offset
        )
    };
    // Everything is non-negative here; tch needs every count and index to fit an i64.
    let mut numel: i64 = 1;
    let mut nonzero: i64 = 1;
    let mut reach: i64 = 0;
    for (&s, &st) in t.size.iter().zip(&t.stride) {
        numel = numel.saturating_mul(s);
        if s > 0 {
            nonzero = nonzero.checked_mul(s).ok_or_else(overflow)?;
            let d = (s - 1).checked_mul(st).ok_or_else(overflow)?;
            reach = reach.checked_add(d).ok_or_else(overflow)?;
        }
    }
    let end = if numel == 0 {
        t.offset
    } else {
        t.offset
            .checked_add(reach)
            .and_then(|e| e.checked_add(1))
            .ok_or_else(overflow)?
    };
    Ok(ViewSpan {
        numel: numel as u64,
        start: t.offset as u64,
        end: end as u64,
    })
}

/// Reads the storages the tensors use (only the bytes they reach) and rebuilds every tensor.
fn load_tensors<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    prefix: &str,
    refs: &[(String, pickle::TensorRef)],
) -> Result<HashMap<String, Tensor>> {
    let mut spans = Vec::with_capacity(refs.len());
    let mut need: HashMap<&str, (u64, &str)> = HashMap::new();
    for (tname, t) in refs {
        let bad = |m: String| anyhow!("tensor {tname} (storage {}): {m}", t.key);
        let (_, es) = storage_kind(&t.dtype).map_err(|e| bad(e.to_string()))?;
        let span = view_span(t).map_err(bad)?;
        let end_bytes = span.end.checked_mul(es as u64).ok_or_else(|| {
            bad(format!(
                "reaches element {} of its storage, past any file",
                span.end
            ))
        })?;
        let slot = need.entry(t.key.as_str()).or_insert((0, t.dtype.as_str()));
        if slot.1 != t.dtype {
            return Err(bad(format!("viewed as both {} and {}", slot.1, t.dtype)));
        }
        slot.0 = slot.0.max(end_bytes);
        spans.push(span);
    }
    let total: u64 = need.values().map(|v| v.0).fold(0, u64::saturating_add);
    if total > MAX_TENSOR_BYTES {
        bail!("the tensors need {total} bytes, over the {MAX_TENSOR_BYTES}-byte cap");
    }
    let mut storages: HashMap<&str, (Vec<u8>, u64)> = HashMap::new();
    for (&key, &(bytes, _)) in &need {
        let entry = format!("{prefix}data/{key}");
        let b = read_entry(zip, &entry, Some(bytes), MAX_ENTRY_BYTES)
            .with_context(|| format!("storage {key}"))?;
        storages.insert(key, b);
    }
    let mut tensors = HashMap::new();
    for ((tname, t), span) in refs.iter().zip(spans) {
        let (bytes, declared) = storages
            .get(t.key.as_str())
            .ok_or_else(|| anyhow!("tensor {tname}: storage {} not read", t.key))?;
        let tensor = view_tensor(bytes, *declared, t, span)
            .with_context(|| format!("tensor {tname} (storage {})", t.key))?;
        tensors.insert(tname.clone(), tensor);
    }
    Ok(tensors)
}

/// Rebuilds one view from the bytes read of its storage (`declared`: the storage's full size): a
/// flat copy of the elements it reaches, strided, made contiguous; half, bfloat16 and double become
/// f32, bool bytes become 0/1.
fn view_tensor(
    bytes: &[u8],
    declared: u64,
    t: &pickle::TensorRef,
    span: ViewSpan,
) -> Result<Tensor> {
    let (kind, es) = storage_kind(&t.dtype)?;
    let es = es as u64;
    if span.numel.saturating_mul(es) > declared {
        bail!(
            "size {:?} declares {} elements, more than its {declared}-byte storage holds",
            t.size,
            span.numel,
        );
    }
    let range = (span.start * es) as usize..(span.end * es) as usize;
    let flat_bytes = bytes
        .get(range.clone())
        .ok_or_else(|| anyhow!("needs bytes {range:?} of a {}-byte storage", bytes.len()))?;
    let load_kind = if kind == Kind::Bool {
        Kind::Uint8
    } else {
        kind
    };
    let extent = (span.end - span.start) as i64;
    let tensor = if span.numel == 0 {
        Tensor::f_zeros(&t.size, (load_kind, Device::Cpu))?
    } else {
        Tensor::f_from_data_size(flat_bytes, &[extent], load_kind)?
            .f_as_strided(&t.size, &t.stride, 0)?
            .f_contiguous()?
    };
    Ok(match kind {
        Kind::Half | Kind::BFloat16 | Kind::Double => tensor.f_to_kind(Kind::Float)?,
        Kind::Bool => tensor.f_ne(0)?,
        _ => tensor,
    })
}

/// Collects the parameters and buffers of a module tree as `(state-dict name, tensor view)`.
fn collect_tensors(pk: &Pickle, model: usize) -> Result<Vec<(String, pickle::TensorRef)>> {
    let mut w = TensorWalk {
        pk,
        out: Vec::new(),
        path: Vec::new(),
        modules: 0,
        work: 0,
    };
    w.module(model, "")?;
    Ok(w.out)
}

/// The state of a [`collect_tensors`] walk: results, the module ids on the current path and budgets.
struct TensorWalk<'a> {
    pk: &'a Pickle,
    out: Vec<(String, pickle::TensorRef)>,
    path: Vec<usize>,
    modules: usize,
    work: usize,
}

impl TensorWalk<'_> {
    /// Adds `n` to the work done, failing past [`MAX_WALK_WORK`].
    fn charge(&mut self, n: usize) -> Result<()> {
        self.work = self.work.saturating_add(n);
        if self.work > MAX_WALK_WORK {
            bail!(
                "the module tree takes more than {MAX_WALK_WORK} steps to walk (shared sub-modules \
                 expanding, or huge names?)"
            );
        }
        Ok(())
    }

    /// The `(name, value)` entries of a field (`_parameters`, `_modules`, ...) of a module.
    fn field(&mut self, module: usize, field: &str) -> Result<Vec<(String, usize)>> {
        let state = self.pk.state(module)?;
        self.charge(self.pk.dict_len(state))?;
        let Some(d) = self.pk.lookup(module, field)? else {
            return Ok(vec![]);
        };
        let items = self.pk.dict_items(d);
        self.charge(items.iter().map(|(n, _)| n.len() + 1).sum())?;
        Ok(items)
    }

    /// Collects one module's tensors and its children's, refusing cycles, deep nesting and sharing
    /// that expands past [`MAX_MODULES`].
    fn module(&mut self, id: usize, prefix: &str) -> Result<()> {
        let at = if prefix.is_empty() {
            "the model"
        } else {
            prefix.trim_end_matches('.')
        };
        if self.path.contains(&id) {
            bail!("module {at} contains itself (a cycle)");
        }
        if self.path.len() >= MAX_MODULE_DEPTH {
            bail!("modules nested deeper than {MAX_MODULE_DEPTH} at {at}");
        }
        self.modules += 1;
        if self.modules > MAX_MODULES {
            bail!("more than {MAX_MODULES} modules (shared sub-modules expanding?) at {at}");
        }
        for field in ["_parameters", "_buffers"] {
            for (name, v) in self.field(id, field)? {
                if let Value::Tensor(t) = self.pk.get(v) {
                    if self.out.len() >= MAX_TENSORS {
                        bail!("more than {MAX_TENSORS} tensors");
                    }
                    self.charge(prefix.len())?;
                    self.out.push((format!("{prefix}{name}"), t.clone()));
                }
            }
        }
        let children = self.field(id, "_modules")?;
        self.path.push(id);
        for (name, child) in children {
            self.charge(prefix.len())?;
            self.module(child, &format!("{prefix}{name}."))?;
        }
        self.path.pop();
        Ok(())
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
                    match t.f_to_kind(var.kind()).and_then(|t| var.f_copy_(&t)) {
                        Ok(()) => n += 1,
                        Err(e) => problems.push(format!("{name}: {e}")),
                    }
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
    let bytes =
        std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    read_checkpoint_bytes(&bytes, &path.display().to_string())
}

/// Reads one of our checkpoints from its bytes; `name` (the file) labels the errors.
pub fn read_checkpoint_bytes(
    bytes: &[u8],
    name: &str,
) -> Result<(CheckpointMeta, HashMap<String, Tensor>)> {
    let ctx = || format!("reading checkpoint {name}");
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| anyhow!("not a safetensors file: {e}"))
        .with_context(ctx)?;
    let meta: CheckpointMeta = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("ryolo"))
        .ok_or_else(|| anyhow!("no ryolo metadata in the safetensors header"))
        .and_then(|s| serde_json::from_str(s).map_err(Into::into))
        .with_context(ctx)?;
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow!("{e}"))
        .with_context(ctx)?;
    let mut tensors = HashMap::new();
    for (tname, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            bail!("{name}: tensor {tname} is {:?}, not F32", view.dtype());
        }
        let t = tensor_from_bytes(view.data(), view.shape(), Kind::Float)
            .with_context(|| format!("{name}: tensor {tname}"))?;
        tensors.insert(tname, t);
    }
    Ok((meta, tensors))
}

/// A tensor of `kind` from exactly `numel(shape)` elements of bytes (tch copies without checking).
fn tensor_from_bytes(bytes: &[u8], shape: &[usize], kind: Kind) -> Result<Tensor> {
    let dims = shape
        .iter()
        .map(|&d| {
            i64::try_from(d).map_err(|_| anyhow!("dimension {d} in shape {shape:?} is too large"))
        })
        .collect::<Result<Vec<i64>>>()?;
    let numel = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| anyhow!("shape {shape:?} overflows"))?;
    let want = numel
        .checked_mul(kind.elt_size_in_bytes())
        .ok_or_else(|| anyhow!("shape {shape:?} overflows"))?;
    if want != bytes.len() {
        bail!(
            "shape {shape:?} needs {want} bytes but the data has {}",
            bytes.len()
        );
    }
    Ok(Tensor::f_from_data_size(bytes, &dims, kind)?)
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
            // Absent official weights (yolo11n.pt, ...) are downloaded into weights_dir.
            let found = crate::hub::assets::resolve_weights(model)?;
            let ck = read_pt(&found)?;
            let mut spec = ModelSpec::from_yaml(ck.yaml, &ck.stem, None, None)
                .with_context(|| format!("architecture stored in {model}"))?;
            if let (Some(k), Some(_)) = (ck.pose.kpt_shape, spec.kpt_shape()) {
                // The model object's own kpt_shape is what its Pose head was built with.
                spec.set_kpt_shape(k, false)
                    .with_context(|| format!("architecture stored in {model}"))?;
            }
            let mut m = DetectionModel::new(spec, device)?;
            load_state(&mut m, &ck.tensors, true)
                .with_context(|| format!("loading weights from {model}"))?;
            apply_pose_attrs(&mut m, &ck.pose).with_context(|| format!("reading {model}"))?;
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
