//! Which engine runs a loaded `.pt` / `.safetensors` / `.yaml` model on the CPU: ONNX Runtime
//! through an in-memory ONNX export of the fused model when the runtime is present, else libtorch
//! (`RYOLO_BACKEND=auto|torch|onnxruntime`).
//!
//! The choice is an environment variable, not a `key=value` argument: Ultralytics' grammar has no
//! such key (an unknown key is an error there and here), and the same switch must reach library
//! callers and tests that never parse a command line.

use super::backend::Backend;
use super::onnx::OnnxModel;
use crate::nn::DetectionModel;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;

/// The environment variable choosing the CPU inference engine of libtorch models.
pub const ENV: &str = "RYOLO_BACKEND";

/// The CPU inference engine asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// ONNX Runtime when it loads and the model exports, else libtorch (the default).
    Auto,
    /// libtorch always.
    Torch,
    /// ONNX Runtime; an error when it cannot run the model (on CPU).
    OnnxRuntime,
}

impl Engine {
    /// Parses a value of [`ENV`]: `auto` (or empty), `torch` / `libtorch` / `pytorch`,
    /// `onnxruntime` / `ort` / `onnx` (any case).
    pub fn parse(v: &str) -> Result<Self> {
        Ok(match v.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Engine::Auto,
            "torch" | "libtorch" | "pytorch" => Engine::Torch,
            "onnxruntime" | "ort" | "onnx" => Engine::OnnxRuntime,
            other => bail!(
                "{ENV}={other} is not an engine; use {ENV}=auto (ONNX Runtime when present, else \
                 libtorch), {ENV}=torch or {ENV}=onnxruntime"
            ),
        })
    }

    /// The engine asked for: the one [`scoped`] set on this thread, else [`ENV`]'s (`Auto` when
    /// unset).
    pub fn from_env() -> Result<Self> {
        if let Some(e) = SCOPED.with(|s| s.get()) {
            return Ok(e);
        }
        match std::env::var(ENV) {
            Ok(v) => Self::parse(&v),
            Err(std::env::VarError::NotPresent) => Ok(Engine::Auto),
            Err(std::env::VarError::NotUnicode(_)) => bail!("{ENV} is not valid UTF-8"),
        }
    }

    /// Its canonical name (what [`Engine::parse`] reads back).
    pub fn name(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::Torch => "torch",
            Engine::OnnxRuntime => "onnxruntime",
        }
    }
}

thread_local! {
    static SCOPED: std::cell::Cell<Option<Engine>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with `engine` chosen for the models loaded on this thread (over [`ENV`]), for library
/// callers and tests that run one process-wide command (`val::run`, `predict::run`) per engine.
pub fn scoped<T>(engine: Engine, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Engine>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SCOPED.with(|s| s.replace(Some(engine))));
    f()
}

/// How an in-memory ONNX graph was made: the libtorch model's summary line and the export time.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The fused libtorch model's summary (`YOLO11n summary (fused): ...`).
    pub summary: String,
    /// Seconds spent writing the graph and opening the ONNX Runtime session.
    pub secs: f64,
    /// Of which writing the graph bytes.
    pub export_secs: f64,
}

/// Exports a fused model to an in-memory ONNX graph with dynamic batch, height and width (one
/// export serves every shape: rect validation batches, any `imgsz`, any batch) and opens it in ONNX
/// Runtime with `threads` intra-op threads (0: the runtime's default). `label` names the weights.
pub fn export_to_ort(model: &DetectionModel, label: &Path, threads: usize) -> Result<OnnxModel> {
    let t = Instant::now();
    let cfg = crate::export::ExportConfig {
        imgsz: (640, 640),
        opset: crate::cfg::mode_defaults::OPSET,
        metadata: crate::export::metadata(model, (640, 640), 1, "{}"),
        batch: 1,
        dynamic: true,
    };
    let bytes = crate::export::to_onnx(model, &cfg)
        .with_context(|| format!("in-memory ONNX export of {}", label.display()))?;
    let export_secs = t.elapsed().as_secs_f64();
    let mut m = OnnxModel::load_bytes(&bytes, label, threads)?;
    // Exactly the model's own names and stride (not their round trip through the metadata).
    let r = super::backend::ModelRef::Torch(model);
    m.names = model.names.clone();
    m.stride = r.stride();
    m.kpt_shape = r.kpt_shape();
    m.exported = Some(Exported {
        summary: model.info().to_string(),
        secs: t.elapsed().as_secs_f64(),
        export_secs,
    });
    Ok(m)
}

/// Why a model stays on libtorch whatever the engine: a CUDA device or test-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: the CPU engine may be chosen.
    Nothing,
    /// The model runs on CUDA (ONNX Runtime runs on the CPU here).
    Cuda,
    /// `augment=True`: test-time augmentation runs on libtorch only.
    Augment,
}

/// The backend that runs a loaded, fused `model` for inference under `engine`: ONNX Runtime
/// through [`export_to_ort`] (of the model fused) on the CPU when it loads (`Auto`) or always (`OnnxRuntime`: its
/// failures are errors), else libtorch. `needs` keeps libtorch (with a warning when ONNX Runtime
/// was asked for explicitly). `label` names the weights in messages.
pub fn select(
    model: DetectionModel,
    label: &Path,
    engine: Engine,
    needs: Needs,
) -> Result<Backend> {
    if engine == Engine::Torch {
        return Ok(Backend::Torch(model));
    }
    let cpu = model.device() == tch::Device::Cpu;
    let keep = match (cpu, needs) {
        (false, _) | (_, Needs::Cuda) => {
            Some("the model runs on CUDA (ONNX Runtime runs on the CPU here)")
        }
        (_, Needs::Augment) => Some("augment=True (test-time augmentation) runs on libtorch only"),
        _ => None,
    };
    if let Some(why) = keep {
        if engine == Engine::OnnxRuntime {
            eprintln!("WARNING {ENV}=onnxruntime ignored: {why}; running on libtorch");
        }
        return Ok(Backend::Torch(model));
    }
    if engine == Engine::Auto && !OnnxModel::available() {
        return Ok(Backend::Torch(model));
    }
    let mut model = model;
    if !model.is_fused() {
        model.fuse();
    }
    match export_to_ort(&model, label, tch::get_num_threads().max(1) as usize) {
        Ok(m) => Ok(Backend::Onnx(m)),
        Err(e) if engine == Engine::Auto => {
            eprintln!(
                "WARNING {}: ONNX Runtime cannot run this model ({e:#}); running on libtorch \
                 ({ENV}=torch skips the attempt)",
                label.display()
            );
            Ok(Backend::Torch(model))
        }
        Err(e) => Err(e.context(format!("{ENV}=onnxruntime"))),
    }
}

/// The name of the engine a backend runs on, for reports: `libtorch`, `ONNX Runtime (in-memory
/// export)` or `ONNX Runtime`.
pub fn engine_name(b: &Backend) -> &'static str {
    match b {
        Backend::Torch(_) => "libtorch",
        Backend::Onnx(m) if m.exported.is_some() => "ONNX Runtime (in-memory export)",
        Backend::Onnx(_) => "ONNX Runtime",
    }
}
