//! ONNX models (ours and Ultralytics' exports) run in ONNX Runtime, loaded at run time.
//!
//! The runtime library is found from `ORT_DYLIB_PATH`, else the one `scripts/setup.sh` linked at
//! `.venv/libonnxruntime.so` (baked in at build time), else the system's `libonnxruntime.so`.

use anyhow::{anyhow, bail, Context, Result};
use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// An ONNX model with Ultralytics' interface: `images (B,3,H,W)` -> `output0 (B,4+nc,A)` (detect),
/// or `output0 (B,4+nc+nm,A)` and `output1 (B,nm,H/4,W/4)` prototypes (segment), or `output0 (B,nc)`
/// softmax probabilities (classify).
pub struct OnnxModel {
    session: Mutex<Session>,
    input: String,
    /// Output names in graph order.
    outputs: Vec<String>,
    /// Class names from the metadata (`class0..` when absent); `4 + names.len() + nm` output rows.
    pub names: Vec<String>,
    /// A segment model: metadata `task: segment`, or a second, 4-d output (the prototypes).
    pub segment: bool,
    /// A classify model: metadata `task: classify`, or (without one) a 2-d `output0 (B, nc)`.
    pub classify: bool,
    /// Mask coefficients per anchor (the prototypes' channels; 32 when dynamic); 0 for detect.
    pub nm: usize,
    /// The task (metadata `task`, else guessed from the outputs).
    pub task: crate::task::TaskKind,
    /// Pose models: `kpt_shape` from the metadata.
    pub kpt_shape: Option<(usize, usize)>,
    /// Largest stride (metadata, default 32).
    pub stride: usize,
    /// Fixed input `(H, W)`, or `None` when the graph has dynamic spatial axes.
    pub imgsz: Option<(usize, usize)>,
    /// Fixed batch size, or `None` when dynamic.
    pub batch: Option<usize>,
    /// The file (for an in-memory export: the weights it was exported from).
    pub path: PathBuf,
    /// Set when the graph is an in-memory export of a loaded libtorch model (not a `.onnx` file).
    pub exported: Option<super::ortpath::Exported>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OnnxModel({})", self.path.display())
    }
}

fn runtime_library() -> PathBuf {
    crate::util::locate(
        "ORT_DYLIB_PATH",
        option_env!("RYOLO_ORT_DYLIB"),
        "libonnxruntime.so",
    )
}

fn environment() -> Result<&'static ort::environment::Environment> {
    static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> =
        OnceLock::new();
    ENV.get_or_init(|| {
        let lib = runtime_library();
        let env = ort::init_from(&lib)
            .map_err(|e| {
                format!(
                    "cannot load ONNX Runtime from {} ({e}); install it with scripts/setup.sh \
                     or set ORT_DYLIB_PATH to a libonnxruntime.so",
                    lib.display()
                )
            })?
            .with_name("ryolo")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("ONNX Runtime environment: {e}"))?;
        Ok(env)
    })
    .as_ref()
    .map_err(|e| anyhow!("{e}"))
}

/// ONNX Runtime loading on a background thread (a use meanwhile waits for it), so that the
/// library's load and start-up overlap the caller's own work (reading and exporting a model).
/// Dropping it waits for the load: no thread is left inside the runtime when the caller returns.
#[derive(Debug)]
pub struct Preload(Option<std::thread::JoinHandle<()>>);

impl Preload {
    /// Starts the load (nothing when the runtime is already loaded).
    pub fn start() -> Self {
        static ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if ONCE.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return Self(None);
        }
        Self(Some(std::thread::spawn(|| {
            let _ = environment();
        })))
    }
}

impl Drop for Preload {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// Parses Ultralytics' `names` metadata, a Python dict repr: `{0: 'person', 1: "it's"}`.
pub fn parse_names(s: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")"#)
        .expect("valid regex");
    let mut pairs: Vec<(usize, String)> = re
        .captures_iter(s)
        .filter_map(|c| {
            let i = c[1].parse().ok()?;
            let v = c.get(2).or(c.get(3))?.as_str();
            Some((i, py_unescape(v)))
        })
        .collect();
    // Indices past the cap are dropped here; `names_and_stride` refuses them with the file's name.
    pairs.retain(|p| p.0 < super::onnx_check::MAX_NAMES);
    pairs.sort_by_key(|p| p.0);
    let n = pairs.last().map(|p| p.0 + 1).unwrap_or(0);
    let mut names: Vec<String> = (0..n).map(|i| format!("class{i}")).collect();
    for (i, v) in pairs {
        names[i] = v;
    }
    names
}

/// Undoes the escapes of Python's string `repr` (`\'`, `\\`, `\n`, `\xNN`, ...).
fn py_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(k @ ('x' | 'u' | 'U')) => {
                let n = match k {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = it.by_ref().take(n).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => {
                        out.push('\\');
                        out.push(k);
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn dim(d: i64) -> Option<usize> {
    (d > 0).then_some(d as usize)
}

/// The task an ONNX model serves (what [`OnnxModel`] runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Detect,
    Segment,
    Classify,
    Pose,
    Obb,
}

/// The model's task: its `task` metadata or, without one (older Ultralytics exports), a 4-d second
/// output `protos` (segment), a 2-d `output0` (classify), else detect. Refuses a
/// `segment` model without prototypes and a `classify` one whose `output0` is not 2-d.
fn check_task(path: &Path, task: Option<&str>, protos: bool, two_d: bool) -> Result<Task> {
    let shape = |protos: bool| match (protos, two_d) {
        (true, _) => Task::Segment,
        (false, true) => Task::Classify,
        _ => Task::Detect,
    };
    match task.map(str::trim) {
        None => Ok(shape(protos)),
        Some("detect") => Ok(shape(protos)),
        Some("segment") if protos => Ok(Task::Segment),
        Some("pose") if !two_d && !protos => Ok(Task::Pose),
        Some("obb") if !two_d && !protos => Ok(Task::Obb),
        Some("classify") if two_d => Ok(Task::Classify),
        Some("classify") => bail!(
            "{}: metadata task='classify' but output0 is not 2-d (batch, nc); cannot run it as a \
             classify model",
            path.display()
        ),
        Some("segment") => bail!(
            "{}: metadata task='segment' but the graph has no prototype output (a second output \
             (batch, nm, H/4, W/4)); cannot run it as a segment model",
            path.display()
        ),
        Some(task) => bail!(
            "{}: this is a '{task}' model (metadata task={task}) whose outputs do not fit that \
             task, or a task ryolo does not run (detect, segment, classify, pose, obb)",
            path.display()
        ),
    }
}

/// Refuses a model whose output rows are not `4 + len(names) + nm` (`nm`: 0 for detect, mask
/// coefficients, keypoint values or the angle row), or for a
/// classify model (`nm` = [`CLASSIFY`]) whose `output0` columns are not `len(names)`.
fn check_rows(path: &Path, rows: usize, names: &[String], nm: usize, what: &str) -> Result<()> {
    if nm == CLASSIFY {
        if rows != names.len() {
            bail!(
                "{}: the model's outputs do not match its names: output0 has {rows} classes, {} \
                 names",
                path.display(),
                names.len()
            );
        }
        return Ok(());
    }
    if rows != 4 + names.len() + nm {
        let coefs = if nm > 0 {
            format!(" + {nm} {what}")
        } else {
            String::new()
        };
        bail!(
            "{}: the model's outputs do not match its names: the output has {rows} rows, \
             4 + {} names{coefs} = {} expected",
            path.display(),
            names.len(),
            4 + names.len() + nm
        );
    }
    Ok(())
}

/// `nm` marking a classify model in [`check_rows`] (its `output0` holds `nc` columns, no boxes).
const CLASSIFY: usize = usize::MAX;

/// Task, class names and largest stride from the metadata, after checking the task and that the
/// output has `4 + len(names) + nm` rows (`rows`, when static; classify: `len(names)` columns of a
/// 2-d `output0`, `two_d`); `nm` is the prototypes' channels (`None`: no 4-d second output;
/// dynamic: 32). No `names`: `class0..` for the rows. Pose models also give their `kpt_shape`.
fn names_and_stride(
    session: &Session,
    path: &Path,
    rows: Option<usize>,
    nm: Option<usize>,
    two_d: bool,
) -> Result<ModelMeta> {
    let meta = session.metadata().map_err(|e| anyhow!("{e}"))?;
    let kind = check_task(path, meta.custom("task").as_deref(), nm.is_some(), two_d)?;
    let kpt_shape = match kind {
        Task::Pose => {
            let raw = meta.custom("kpt_shape").unwrap_or_default();
            Some(parse_kpt_shape(&raw).ok_or_else(|| {
                anyhow!(
                    "{}: a pose model needs 'kpt_shape' metadata like '[17, 3]' (1 to {} keypoints \
                     of 2 or 3 values), found {raw:?}",
                    path.display(),
                    super::onnx_check::MAX_KEYPOINTS
                )
            })?)
        }
        _ => None,
    };
    let nm = match kind {
        Task::Segment => nm.unwrap_or(32),
        Task::Classify => CLASSIFY,
        Task::Detect => 0,
        Task::Pose => kpt_shape.map_or(0, |(k, d)| k * d),
        Task::Obb => 1,
    };
    let names = match meta.custom("names") {
        Some(s) => {
            if let Some(i) = names_index_over_cap(&s) {
                bail!(
                    "{}: metadata 'names' holds class index {i}, over the limit of {} classes",
                    path.display(),
                    super::onnx_check::MAX_NAMES
                );
            }
            parse_names(&s)
        }
        None if nm == CLASSIFY => (0..rows.unwrap_or(0))
            .map(|i| format!("class{i}"))
            .collect(),
        None => (0..rows.map_or(0, |r| r.saturating_sub(4 + nm)))
            .map(|i| format!("class{i}"))
            .collect(),
    };
    if let Some(rows) = rows {
        let what = match kind {
            Task::Pose => "keypoint values",
            Task::Obb => "angle",
            _ => "mask coefficients",
        };
        check_rows(path, rows, &names, nm, what)?;
    }
    let stride = super::onnx_check::stride(meta.custom("stride").as_deref(), path)?;
    Ok((kind, names, stride, kpt_shape))
}

/// The first class index of the `names` metadata that is not below [`parse_names`]' cap.
fn names_index_over_cap(s: &str) -> Option<String> {
    let re = regex::Regex::new(r#"(\d+)\s*:\s*['"]"#).expect("valid regex");
    let over = re.captures_iter(s).map(|c| c[1].to_string()).find(|i| {
        i.parse::<usize>()
            .map_or(true, |i| i >= super::onnx_check::MAX_NAMES)
    });
    over
}

/// What the metadata says: task, class names, largest stride, pose `kpt_shape`.
type ModelMeta = (Task, Vec<String>, usize, Option<(usize, usize)>);

/// Parses `kpt_shape` metadata (`[17, 3]`): K >= 1 keypoints of 2 or 3 values.
fn parse_kpt_shape(s: &str) -> Option<(usize, usize)> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    let v: Vec<usize> = inner
        .split(',')
        .map(|x| x.trim().parse().ok())
        .collect::<Option<_>>()?;
    match v.as_slice() {
        &[k, d] if (1..=super::onnx_check::MAX_KEYPOINTS).contains(&k) && (d == 2 || d == 3) => {
            Some((k, d))
        }
        _ => None,
    }
}

/// The shape of a session input or output (empty when not a tensor; -1 for symbolic axes).
fn tensor_shape(t: &ort::value::ValueType) -> Vec<i64> {
    t.tensor_shape()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default()
}

impl OnnxModel {
    /// Opens an ONNX file with `threads` intra-op threads (0 = ONNX Runtime's default).
    pub fn load(path: &Path, threads: usize) -> Result<Self> {
        let bytes = super::onnx_check::read(path)?;
        super::onnx_check::check(&bytes, path)?;
        let ctx = || format!("loading ONNX model {}", path.display());
        let session = Self::builder(threads)
            .with_context(ctx)?
            .commit_from_memory(&bytes)
            .map_err(|e| anyhow!("{e}"))
            .with_context(ctx)?;
        Self::from_session(session, path)
    }

    /// Opens an ONNX graph held in memory (an in-memory export); `label` names it in messages.
    pub fn load_bytes(bytes: &[u8], label: &Path, threads: usize) -> Result<Self> {
        let ctx = || format!("loading the ONNX export of {}", label.display());
        super::onnx_check::check(bytes, label).with_context(ctx)?;
        let session = Self::builder(threads)
            .with_context(ctx)?
            .commit_from_memory(bytes)
            .map_err(|e| anyhow!("{e}"))
            .with_context(ctx)?;
        Self::from_session(session, label)
    }

    /// A session builder: full graph optimisation, `threads` intra-op threads (0 = default).
    fn builder(threads: usize) -> Result<ort::session::builder::SessionBuilder> {
        let env = environment()?;
        let mut b = Session::builder(env)
            .map_err(|e| anyhow!("{e}"))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| anyhow!("{e}"))?;
        if threads > 0 {
            b = b.with_intra_threads(threads).map_err(|e| anyhow!("{e}"))?;
        }
        // ONNX Runtime's pool follows the process's wait policy: no spinning under `yolo`'s
        // OMP_WAIT_POLICY=PASSIVE (spinning threads steal the CPU from the working ones on a busy
        // machine; session creation took seconds at load 6 on 2 cores), ONNX Runtime's default
        // (spin) otherwise.
        if crate::util::threads::passive_wait() {
            b = b
                .with_intra_op_spinning(false)
                .map_err(|e| anyhow!("{e}"))?
                .with_inter_op_spinning(false)
                .map_err(|e| anyhow!("{e}"))?;
        }
        Ok(b)
    }

    /// Whether ONNX Runtime can be loaded (the library is found and initialises).
    pub fn available() -> bool {
        environment().is_ok()
    }

    /// Why ONNX Runtime cannot be loaded, if it cannot.
    pub fn unavailable_reason() -> Option<String> {
        environment().err().map(|e| e.to_string())
    }

    /// Reads a session's interface and metadata (`path` names the model in messages).
    fn from_session(session: Session, path: &Path) -> Result<Self> {
        let (input, shape) = {
            let i = session
                .inputs()
                .first()
                .ok_or_else(|| anyhow!("{} has no inputs", path.display()))?;
            (i.name().to_string(), tensor_shape(i.dtype()))
        };
        if shape.len() != 4 {
            bail!(
                "{}: input {input} has shape {shape:?}, expected (batch, 3, height, width)",
                path.display()
            );
        }
        let shapes: Vec<Vec<i64>> = session
            .outputs()
            .iter()
            .map(|o| tensor_shape(o.dtype()))
            .collect();
        let outputs: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        if outputs.is_empty() {
            bail!("{} has no outputs", path.display());
        }
        // Rows of a detect output (B, 4+nc[+nm], A), or the classes of a classify one (B, nc).
        let two_d = shapes[0].len() == 2;
        let rows = if shapes[0].len() == 3 || two_d {
            dim(shapes[0][1])
        } else {
            None
        };
        // The prototypes: a second, 4-d output; its channels (32 when symbolic).
        let nm = shapes
            .get(1)
            .filter(|s| s.len() == 4)
            .map(|s| dim(s[1]).unwrap_or(32));
        let (kind, names, stride, kpt_shape) = names_and_stride(&session, path, rows, nm, two_d)?;
        let segment = kind == Task::Segment;
        let imgsz = dim(shape[2]).zip(dim(shape[3]));
        Ok(Self {
            session: Mutex::new(session),
            input,
            outputs,
            names,
            segment,
            classify: kind == Task::Classify,
            nm: if segment { nm.unwrap_or(32) } else { 0 },
            task: match kind {
                Task::Detect => crate::task::TaskKind::Detect,
                Task::Segment => crate::task::TaskKind::Segment,
                Task::Classify => crate::task::TaskKind::Classify,
                Task::Pose => crate::task::TaskKind::Pose,
                Task::Obb => crate::task::TaskKind::Obb,
            },
            kpt_shape,
            stride,
            imgsz,
            batch: dim(shape[0]),
            path: path.to_path_buf(),
            exported: None,
        })
    }

    /// Values per anchor after the class scores: mask coefficients (segment), `K·D` keypoint
    /// values (pose), the angle (obb), none (detect).
    pub fn extra_rows(&self) -> usize {
        match self.task {
            crate::task::TaskKind::Pose => self.kpt_shape.map_or(0, |(k, d)| k * d),
            crate::task::TaskKind::Obb => 1,
            _ => self.nm,
        }
    }

    /// Runs `x` (`B,3,H,W` floats, row-major) and returns the output with its `(B, rows, anchors)`
    /// shape (detect models; a segment or classify model is an error naming the file: use
    /// [`Self::run_all`]).
    /// A fixed-batch model is run once per `batch` images, the last run padded with zeros.
    pub fn run(&self, x: &[f32], shape: [usize; 4]) -> Result<(Vec<f32>, [usize; 3])> {
        if self.classify {
            bail!(
                "{}: a classify model (output0 (batch, nc) probabilities) needs run_all; this \
                 caller runs detect models only",
                self.path.display()
            );
        }
        if self.segment {
            bail!(
                "{}: a segment model (output0 with mask coefficients, output1 prototypes) needs \
                 run_all; this caller runs detect models only",
                self.path.display()
            );
        }
        let (out, d) = self
            .run_all(x, shape)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("{}: no outputs", self.path.display()))?;
        // An empty batch never reaches the runtime: no dims then.
        let at = |i: usize| d.get(i).copied().unwrap_or(0);
        Ok((out, [shape[0], at(1), at(2)]))
    }

    /// Runs `x` (`B,3,H,W` floats, row-major) and returns every output in graph order with its
    /// shape, batch first (`output0 (B, 4+nc[+nm], A)`; segment: `output1 (B, nm, H/4, W/4)`;
    /// classify: `output0 (B, nc)` probabilities).
    /// A fixed-batch model is run once per `batch` images, the last run padded with zeros.
    pub fn run_all(&self, x: &[f32], shape: [usize; 4]) -> Result<Vec<(Vec<f32>, Vec<usize>)>> {
        let [b, c, h, w] = shape;
        if x.len() != b * c * h * w {
            bail!("input of {} values does not hold {shape:?}", x.len());
        }
        let step = self.batch.unwrap_or(b).max(1);
        let per = c * h * w;
        let padded;
        let x = if b % step != 0 {
            let mut v = x.to_vec();
            v.resize(b.div_ceil(step) * step * per, 0.0);
            padded = v;
            &padded[..]
        } else {
            x
        };
        let mut outs: Vec<(Vec<f32>, Vec<usize>)> =
            vec![(Vec::new(), Vec::new()); self.outputs.len()];
        let mut session = self
            .session
            .lock()
            .map_err(|_| anyhow!("ONNX session poisoned"))?;
        for s in (0..x.len() / per).step_by(step) {
            let t = TensorRef::from_array_view(([step, c, h, w], &x[s * per..(s + step) * per]))
                .map_err(|e| anyhow!("{e}"))?;
            let results = session
                .run(ort::inputs![self.input.as_str() => t])
                .map_err(|e| anyhow!("{}: {e}", self.path.display()))?;
            for (k, name) in self.outputs.iter().enumerate() {
                let (oshape, data) = results[name.as_str()]
                    .try_extract_tensor::<f32>()
                    .map_err(|e| anyhow!("{}: output {name}: {e}", self.path.display()))?;
                let dims: Vec<usize> = oshape.iter().map(|&d| d.max(0) as usize).collect();
                if k == 0 && self.classify {
                    if dims.len() != 2 {
                        bail!(
                            "{}: output {name} has shape {dims:?}, expected (batch, nc)",
                            self.path.display()
                        );
                    }
                    if !self.names.is_empty() {
                        check_rows(&self.path, dims[1], &self.names, CLASSIFY, "")?;
                    }
                } else if k == 0 {
                    if dims.len() != 3 {
                        bail!(
                            "{}: output {name} has shape {dims:?}, expected (batch, 4+nc, anchors)",
                            self.path.display()
                        );
                    }
                    if !self.names.is_empty() {
                        check_rows(
                            &self.path,
                            dims[1],
                            &self.names,
                            self.extra_rows(),
                            match self.task {
                                crate::task::TaskKind::Pose => "keypoint values",
                                crate::task::TaskKind::Obb => "angle",
                                _ => "mask coefficients",
                            },
                        )?;
                    }
                }
                if dims.first() != Some(&step) {
                    bail!(
                        "{}: output {name} has shape {dims:?}, expected batch {step} first",
                        self.path.display()
                    );
                }
                outs[k].0.extend_from_slice(data);
                outs[k].1 = dims;
            }
        }
        for (data, dims) in &mut outs {
            if let Some(d0) = dims.first_mut() {
                *d0 = b;
            }
            data.truncate(dims.iter().product());
        }
        Ok(outs)
    }
}
