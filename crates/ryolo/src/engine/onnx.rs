//! ONNX models (ours and Ultralytics' exports) run in ONNX Runtime, loaded at run time.
//!
//! The runtime library is found from `ORT_DYLIB_PATH`, else the one `scripts/setup.sh` linked at
//! `.venv/libonnxruntime.so` (baked in at build time), else the system's `libonnxruntime.so`.

use anyhow::{anyhow, bail, Context, Result};
use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// An ONNX detection model with Ultralytics' interface: `images (B,3,H,W)` -> `output0 (B,4+nc,A)`.
pub struct OnnxModel {
    session: Mutex<Session>,
    input: String,
    output: String,
    /// Class names from the metadata (`class0..` when absent); `4 + names.len()` output rows.
    pub names: Vec<String>,
    /// Largest stride (metadata, default 32).
    pub stride: usize,
    /// Fixed input `(H, W)`, or `None` when the graph has dynamic spatial axes.
    pub imgsz: Option<(usize, usize)>,
    /// Fixed batch size, or `None` when dynamic.
    pub batch: Option<usize>,
    /// The file.
    pub path: PathBuf,
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

/// Refuses a model whose `task` metadata is not `detect` (absent: detect, as older Ultralytics
/// exports).
fn check_task(path: &Path, task: Option<&str>) -> Result<()> {
    let task = task.map(str::trim).unwrap_or("detect");
    if task != "detect" {
        bail!(
            "{}: this is a '{task}' model (metadata task={task}); ryolo runs detect models only, \
             segment, classify, pose and obb models are not supported yet",
            path.display()
        );
    }
    Ok(())
}

/// Refuses a detect model whose output rows are not `4 + len(names)`.
fn check_rows(path: &Path, rows: usize, names: &[String]) -> Result<()> {
    if rows != 4 + names.len() {
        bail!(
            "{}: the model's outputs do not match its names: the output has {rows} rows, \
             4 + {} names = {} expected",
            path.display(),
            names.len(),
            4 + names.len()
        );
    }
    Ok(())
}

/// Class names and largest stride from the metadata, after checking the task and that the output
/// has `4 + len(names)` rows (`rows`, when static). No `names`: `class0..` for the rows.
fn names_and_stride(
    session: &Session,
    path: &Path,
    rows: Option<usize>,
) -> Result<(Vec<String>, usize)> {
    let meta = session.metadata().map_err(|e| anyhow!("{e}"))?;
    check_task(path, meta.custom("task").as_deref())?;
    let names = match meta.custom("names") {
        Some(s) => parse_names(&s),
        None => (0..rows.map_or(0, |r| r.saturating_sub(4)))
            .map(|i| format!("class{i}"))
            .collect(),
    };
    if let Some(rows) = rows {
        check_rows(path, rows, &names)?;
    }
    let stride = meta
        .custom("stride")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32);
    Ok((names, stride))
}

impl OnnxModel {
    /// Opens an ONNX file with `threads` intra-op threads (0 = ONNX Runtime's default).
    pub fn load(path: &Path, threads: usize) -> Result<Self> {
        if !path.is_file() {
            bail!("model file {} not found", path.display());
        }
        let env = environment()?;
        let ctx = || format!("loading ONNX model {}", path.display());
        let mut b = Session::builder(env)
            .map_err(|e| anyhow!("{e}"))
            .with_context(ctx)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| anyhow!("{e}"))?;
        if threads > 0 {
            b = b.with_intra_threads(threads).map_err(|e| anyhow!("{e}"))?;
        }
        let session = b
            .commit_from_file(path)
            .map_err(|e| anyhow!("{e}"))
            .with_context(ctx)?;
        let (input, shape) = {
            let i = session
                .inputs()
                .first()
                .ok_or_else(|| anyhow!("{} has no inputs", path.display()))?;
            let shape: Vec<i64> = i
                .dtype()
                .tensor_shape()
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            (i.name().to_string(), shape)
        };
        if shape.len() != 4 {
            bail!(
                "{}: input {input} has shape {shape:?}, expected (batch, 3, height, width)",
                path.display()
            );
        }
        let (output, rows) = {
            let o = session
                .outputs()
                .first()
                .ok_or_else(|| anyhow!("{} has no outputs", path.display()))?;
            let shape: Vec<i64> = o
                .dtype()
                .tensor_shape()
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            let rows = if shape.len() == 3 {
                dim(shape[1])
            } else {
                None
            };
            (o.name().to_string(), rows)
        };
        let (names, stride) = names_and_stride(&session, path, rows)?;
        let imgsz = dim(shape[2]).zip(dim(shape[3]));
        Ok(Self {
            session: Mutex::new(session),
            input,
            output,
            names,
            stride,
            imgsz,
            batch: dim(shape[0]),
            path: path.to_path_buf(),
        })
    }

    /// Runs `x` (`B,3,H,W` floats, row-major) and returns the output with its `(B, rows, anchors)`
    /// shape. A fixed-batch model is run once per `batch` images, the last run padded with zeros.
    pub fn run(&self, x: &[f32], shape: [usize; 4]) -> Result<(Vec<f32>, [usize; 3])> {
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
        let mut out = Vec::new();
        let mut dims = [0usize; 3];
        let mut session = self
            .session
            .lock()
            .map_err(|_| anyhow!("ONNX session poisoned"))?;
        for s in (0..x.len() / per).step_by(step) {
            let t = TensorRef::from_array_view(([step, c, h, w], &x[s * per..(s + step) * per]))
                .map_err(|e| anyhow!("{e}"))?;
            let outputs = session
                .run(ort::inputs![self.input.as_str() => t])
                .map_err(|e| anyhow!("{}: {e}", self.path.display()))?;
            let (oshape, data) = outputs[self.output.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(|e| anyhow!("{}: output: {e}", self.path.display()))?;
            if oshape.len() != 3 {
                bail!(
                    "{}: output has shape {:?}, expected (batch, 4+nc, anchors)",
                    self.path.display(),
                    &oshape[..]
                );
            }
            if !self.names.is_empty() {
                check_rows(&self.path, oshape[1] as usize, &self.names)?;
            }
            dims = [b, oshape[1] as usize, oshape[2] as usize];
            out.extend_from_slice(data);
        }
        out.truncate(b * dims[1] * dims[2]);
        Ok((out, dims))
    }
}
