//! `YOLO`: the Ultralytics `Model` API over the ryolo engine — `predict` / `__call__`, `track`,
//! `val`, `train`, `export`, `info`, `add_callback`, `names`, `task`. Every keyword goes through
//! the CLI's parsing ([`crate::kwargs`]); the engine runs with the GIL released.

use crate::callbacks::{self, Registry, TrainBridge};
use crate::errors;
use crate::kwargs;
use crate::metrics::Metrics;
use crate::runner::{Runner, SharedPredictor};
use crate::sources;
use crate::stream::ResultsStream;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use ryolo::cfg::{self, Args};
use ryolo::engine::predict::track::{Tracking, TRACK_CONF};
use ryolo::engine::predict::SaveOptions;
use ryolo::task::TaskKind;
use serde_yaml::{Mapping, Value};
use std::sync::{Arc, Mutex};

/// What a `YOLO` object remembers between calls.
struct State {
    /// The weights or YAML (after `train()`: the run's `best.pt`).
    model: String,
    task: TaskKind,
    names: Vec<String>,
    callbacks: Registry,
    /// The predictor of the last predict call and the arguments it was built from.
    predictor: Option<(String, SharedPredictor, Args)>,
    /// Track mode's trackers (kept for `persist=True`) and the `tracker=` they came from.
    tracking: Option<(String, Arc<Mutex<Tracking>>)>,
    /// The metrics of the last `val()` or `train()`.
    metrics: Option<Py<Metrics>>,
}

/// A YOLO model: `YOLO("yolo11n.pt")`, `.safetensors`, `.onnx` or a model YAML.
#[pyclass(module = "ryolo", name = "YOLO")]
pub struct Yolo {
    state: Mutex<State>,
}

/// The model's task and class names, loading it on the CPU.
fn probe(model: &str) -> anyhow::Result<(TaskKind, Vec<String>)> {
    let b = ryolo::engine::backend::Backend::load(model, tch::Device::Cpu)?;
    let m = b.as_ref();
    Ok((m.task(), m.names().to_vec()))
}

fn lock<'a>(m: &'a Mutex<State>) -> PyResult<std::sync::MutexGuard<'a, State>> {
    m.lock()
        .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("YOLO state poisoned"))
}

impl Yolo {
    /// `model=` and `task=` of this model, under the call's own layers.
    fn base(&self) -> PyResult<Mapping> {
        let s = lock(&self.state)?;
        let mut m = Mapping::new();
        m.insert("model".into(), Value::from(s.model.clone()));
        m.insert("task".into(), Value::from(s.task.to_string()));
        Ok(m)
    }

    /// The predict or track stream of `source` with `kwargs` (already parsed).
    fn stream(
        &self,
        py: Python<'_>,
        mode: &str,
        source: Option<&Bound<'_, PyAny>>,
        user: Mapping,
        persist: bool,
    ) -> PyResult<ResultsStream> {
        let task = lock(&self.state)?.task;
        // Ultralytics' Python defaults: batch 1 and no saving unless asked.
        let mut custom = cfg::with_mode_defaults(mode, task, &Mapping::new());
        custom.insert("save".into(), Value::Bool(false));
        if mode == "track" {
            custom.insert("conf".into(), Value::from(TRACK_CONF));
        }
        let base = self.base()?;
        let mut merged = kwargs::merge(&[&base, &custom, &user]);
        let source = match source {
            Some(s) if !s.is_none() => s.clone(),
            _ => {
                let s = merged.remove("source").unwrap_or(Value::Null);
                match s {
                    Value::String(s) => pyo3::types::PyString::new(py, &s).into_any(),
                    Value::Number(n) => pyo3::types::PyString::new(py, &n.to_string()).into_any(),
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "{mode}() needs a source: a path, URL, NumPy array, PIL image or a list of them"
                        )))
                    }
                }
            }
        };
        let inputs = sources::collect(&source)?;
        let args = Args::new(&merged);
        cfg::warn_unimplemented(&args);
        warn_cli_only(&args, &inputs);
        let key = format!(
            "{mode}\n{}",
            serde_yaml::to_string(&args.0).unwrap_or_default()
        );
        let cached = lock(&self.state)?
            .predictor
            .as_ref()
            .filter(|(k, _, _)| *k == key)
            .map(|(_, p, a)| (p.clone(), a.clone()));
        let model = lock(&self.state)?.model.clone();
        let tracking = if mode == "track" {
            Some(self.tracking(&args, persist)?)
        } else {
            None
        };
        let (p, a) = match cached {
            Some(c) => c,
            None => {
                let (p, a) = py.allow_threads(|| {
                    errors::run(|| {
                        // A model YAML gets fresh weights at every load: the same ones for
                        // every call of this object (whatever the other arguments).
                        let lower = model.to_ascii_lowercase();
                        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
                            tch::manual_seed(0);
                        }
                        // ReID `model: auto` reads the detector's head inputs: keep it on libtorch.
                        let torch = match &tracking {
                            Some(t) => t
                                .lock()
                                .map_err(|_| anyhow::anyhow!("tracker state poisoned"))?
                                .needs_detector_features(),
                            None => false,
                        };
                        let load = || ryolo::engine::predict::predictor(&args, &model);
                        let (mut p, a) = if torch {
                            ryolo::engine::ortpath::scoped(
                                ryolo::engine::ortpath::Engine::Torch,
                                load,
                            )?
                        } else {
                            load()?
                        };
                        if let Some(t) = &tracking {
                            let t = t
                                .lock()
                                .map_err(|_| anyhow::anyhow!("tracker state poisoned"))?;
                            Tracking::check_task(p.model().task())?;
                            p.loose_iou = t.loose_iou(p.model().task());
                            p.reid_feats = t.reid_feats(p.model().task());
                        }
                        Ok((p, a))
                    })
                })?;
                let p: SharedPredictor = Arc::new(Mutex::new(p));
                lock(&self.state)?.predictor = Some((key, p.clone(), a.clone()));
                (p, a)
            }
        };
        if let Some(t) = &tracking {
            let mut t = t
                .lock()
                .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("tracker state poisoned"))?;
            errors::run(|| t.start(1, persist))?;
        }
        let save = a.on("save") && a.get("save").as_bool() == Some(true);
        let want = save || a.bool("save_txt") || a.bool("save_crop");
        // The CLI's options, with Python's default for `save` (off unless asked, as Model.predict).
        let opts = want.then(|| SaveOptions {
            save,
            ..ryolo::engine::predict::save_options(&a, mode)
        });
        let batch = errors::run(|| a.int("batch"))?.max(1) as usize;
        let vid_stride = errors::run(|| a.int("vid_stride"))?.max(1) as usize;
        let mut runner = Runner::new(p, inputs, batch, vid_stride, a.bool("stream_buffer"));
        runner.verbose = a.on("verbose");
        runner.tracking = tracking;
        let reg = lock(&self.state)?
            .callbacks
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|f| f.clone_ref(py)).collect()))
            .collect();
        Ok(ResultsStream::new(runner, opts, reg))
    }

    /// The trackers of a track call: kept across calls with `persist=True` (same `tracker=`).
    fn tracking(&self, a: &Args, persist: bool) -> PyResult<Arc<Mutex<Tracking>>> {
        let name = a
            .str("tracker")
            .unwrap_or_else(|| "tracktrack.yaml".to_string());
        let mut s = lock(&self.state)?;
        if let Some((n, t)) = &s.tracking {
            if *n == name && persist {
                return Ok(t.clone());
            }
        }
        let t = Arc::new(Mutex::new(errors::run(|| Tracking::load(&name))?));
        s.tracking = Some((name, t.clone()));
        Ok(t)
    }

    /// Runs `f` with the GIL released, then raises the callbacks' error (if any).
    fn registry(&self, py: Python<'_>) -> PyResult<Registry> {
        Ok(lock(&self.state)?
            .callbacks
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|f| f.clone_ref(py)).collect()))
            .collect())
    }

    /// Predict-call namespaces for val/export callbacks.
    fn fire_simple(
        &self,
        py: Python<'_>,
        event: &str,
        args: &Mapping,
        extra: &[(&str, Py<PyAny>)],
    ) -> PyResult<()> {
        let reg = self.registry(py)?;
        if reg.get(event).is_none_or(|v| v.is_empty()) {
            return Ok(());
        }
        let d = PyDict::new(py);
        d.set_item("args", callbacks::args_namespace(py, args)?)?;
        for (k, v) in extra {
            d.set_item(*k, v)?;
        }
        let ns = callbacks::namespace(py, &d)?;
        callbacks::fire(py, &reg, event, &ns)
    }

    /// Adopts a model file: task and names from it.
    fn adopt(&self, py: Python<'_>, model: String) -> PyResult<()> {
        let m = model.clone();
        let (task, names) = py.allow_threads(|| errors::run(|| probe(&m)))?;
        let mut s = lock(&self.state)?;
        s.model = model;
        s.task = task;
        s.names = names;
        s.predictor = None;
        Ok(())
    }
}

#[pymethods]
impl Yolo {
    /// Loads a model: `.pt` (Ultralytics), `.safetensors` (ryolo), `.onnx`, or a model YAML such
    /// as `yolo11n.yaml` / `yolo11n-seg.yaml` (fresh weights). `task` as Ultralytics: the model's
    /// own task wins, with a warning, when they disagree.
    #[new]
    #[pyo3(signature = (model="yolo11n.pt".into(), task=None, verbose=false))]
    fn new(
        py: Python<'_>,
        model: std::path::PathBuf,
        task: Option<String>,
        verbose: bool,
    ) -> PyResult<Self> {
        let model = model.to_string_lossy().into_owned();
        let m = model.clone();
        let (mtask, names) = py.allow_threads(|| errors::run(|| probe(&m)))?;
        let task = errors::run(|| ryolo::task::resolve(task.as_deref(), Some(&model), Some(mtask)))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        if verbose {
            println!("ryolo YOLO: {model} ({task}, {} classes)", names.len());
        }
        Ok(Self {
            state: Mutex::new(State {
                model,
                task,
                names,
                callbacks: Registry::new(),
                predictor: None,
                tracking: None,
                metrics: None,
            }),
        })
    }

    /// Predicts `source` (path, folder, glob, URL, video, NumPy HWC BGR array, PIL image, or a
    /// list of them): a list of `Results`, or an iterator of them with `stream=True`. Keywords
    /// are the CLI's (`conf=0.5`, `imgsz=320`, `classes=[0]`, `save=True`, ...).
    #[pyo3(signature = (source=None, stream=false, **kwargs))]
    fn predict(
        &self,
        py: Python<'_>,
        source: Option<&Bound<'_, PyAny>>,
        stream: bool,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyObject> {
        let user = kwargs::parse("predict", kwargs)?;
        let s = self.stream(py, "predict", source, user, false)?;
        collect_or_stream(py, s, stream)
    }

    /// `predict`.
    #[pyo3(signature = (source=None, stream=false, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        source: Option<&Bound<'_, PyAny>>,
        stream: bool,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyObject> {
        self.predict(py, source, stream, kwargs)
    }

    /// Tracks objects over `source` (detect, segment, pose models): results carry `boxes.id`.
    /// `persist=True` keeps the trackers from the previous call (frame-by-frame loops);
    /// `tracker=` names the tracker YAML. Detector `conf` defaults to 0.1 as Ultralytics.
    #[pyo3(signature = (source=None, stream=false, persist=false, **kwargs))]
    fn track(
        &self,
        py: Python<'_>,
        source: Option<&Bound<'_, PyAny>>,
        stream: bool,
        persist: bool,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyObject> {
        let user = kwargs::parse("track", kwargs)?;
        let s = self.stream(py, "track", source, user, persist)?;
        collect_or_stream(py, s, stream)
    }

    /// Validates on `data=` (default: the data the model was trained on): a `Metrics`.
    #[pyo3(signature = (**kwargs))]
    fn val(&self, py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Py<Metrics>> {
        let user = kwargs::parse("val", kwargs)?;
        let base = self.base()?;
        let merged = kwargs::merge(&[&base, &user]);
        let a = Args::new(&merged);
        cfg::warn_unimplemented(&a);
        let (task, nc) = {
            let s = lock(&self.state)?;
            (s.task, s.names.len())
        };
        let writes = a.on("plots") || a.bool("save_json") || a.bool("save_txt");
        let dir = writes.then(|| cfg::save_dir(&a, "val").to_string_lossy().into_owned());
        self.fire_simple(py, "on_val_start", &merged, &[])?;
        let r = py.allow_threads(|| errors::run(|| ryolo::engine::val::run(&a)))?;
        let m = Py::new(py, Metrics::new(py, &r, task, nc, dir)?)?;
        self.fire_simple(
            py,
            "on_val_end",
            &merged,
            &[("metrics", m.clone_ref(py).into_any())],
        )?;
        lock(&self.state)?.metrics = Some(m.clone_ref(py));
        Ok(m)
    }

    /// Trains with the CLI's arguments (`data=`, `epochs=`, `imgsz=`, ...), firing the registered
    /// callbacks; then the model is the run's `best.pt`. Returns the final validation's
    /// `Metrics` (None without a val split). Ctrl-C stops after the current epoch with the
    /// checkpoints intact, then raises KeyboardInterrupt.
    #[pyo3(signature = (**kwargs))]
    fn train(
        &self,
        py: Python<'_>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<Py<Metrics>>> {
        let user = kwargs::parse("train", kwargs)?;
        let task = lock(&self.state)?.task;
        let base = self.base()?;
        let merged = cfg::with_mode_defaults("train", task, &kwargs::merge(&[&base, &user]));
        let a = Args::new(&merged);
        cfg::warn_unimplemented(&a);
        let reg = self.registry(py)?;
        let bridge = TrainBridge::new(py, &reg, task, &a.0)?;
        bridge.event("on_pretrain_routine_start", None, None);
        if let Some(e) = bridge.take_error() {
            return Err(e);
        }
        let b = bridge.clone();
        let out = py.allow_threads(move || {
            errors::guard(|| {
                let trainer = ryolo::engine::train::Trainer::new(&a)?;
                b.event("on_pretrain_routine_end", None, None);
                let mut cb = b.callbacks();
                trainer.fit(&mut cb)
            })
        });
        if let Some(e) = bridge.take_error() {
            return Err(e);
        }
        let out = out.map_err(errors::to_py)?;
        let wdir = out.save_dir.join("weights");
        let best = [wdir.join("best.pt"), out.best.clone()]
            .into_iter()
            .find(|p| p.exists());
        if let Some(best) = best {
            self.adopt(py, best.to_string_lossy().into_owned())?;
        }
        let (task, nc) = {
            let s = lock(&self.state)?;
            (s.task, s.names.len())
        };
        let m = match &out.final_val {
            Some(r) => Some(Py::new(
                py,
                Metrics::new(
                    py,
                    r,
                    task,
                    nc,
                    Some(out.save_dir.to_string_lossy().into_owned()),
                )?,
            )?),
            None => None,
        };
        lock(&self.state)?.metrics = m.as_ref().map(|m| m.clone_ref(py));
        Ok(m)
    }

    /// Exports the model (`format="onnx"` or `"pt"`; ryolo has no TorchScript, so ONNX is the
    /// default) and returns the written file's path.
    #[pyo3(signature = (format="onnx".to_string(), **kwargs))]
    fn export(
        &self,
        py: Python<'_>,
        format: String,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let f = format.to_ascii_lowercase();
        if f != "onnx" && f != "pt" {
            return Err(PyValueError::new_err(format!(
                "format={format} is not supported; ryolo exports format=onnx and format=pt"
            )));
        }
        let user = kwargs::parse("export", kwargs)?;
        let task = lock(&self.state)?.task;
        let base = self.base()?;
        let mut merged = cfg::with_mode_defaults("export", task, &kwargs::merge(&[&base, &user]));
        merged.insert("format".into(), Value::from(f));
        self.fire_simple(py, "on_export_start", &merged, &[])?;
        let a = Args::new(&merged);
        cfg::warn_unimplemented(&a);
        let path = py.allow_threads(|| errors::run(|| ryolo::export::run(&a)))?;
        let path = path.to_string_lossy().into_owned();
        let file: Py<PyAny> = callbacks::path(py, std::path::Path::new(&path))?.unbind();
        self.fire_simple(py, "on_export_end", &merged, &[("file", file)])?;
        Ok(path)
    }

    /// Prints the model summary (`YOLO11n summary: 181 layers, ...`) and returns Ultralytics'
    /// `(layers, parameters, gradients, GFLOPs)` (None for ONNX models).
    #[pyo3(signature = (detailed=false, verbose=true))]
    fn info(
        &self,
        py: Python<'_>,
        detailed: bool,
        verbose: bool,
    ) -> PyResult<Option<(usize, i64, i64, f64)>> {
        if detailed {
            eprintln!("WARNING info(detailed=True): the per-layer table is not available in ryolo; printing the summary");
        }
        let model = lock(&self.state)?.model.clone();
        if model.to_ascii_lowercase().ends_with(".onnx") {
            let b = py.allow_threads(|| {
                errors::run(|| ryolo::engine::backend::Backend::load(&model, tch::Device::Cpu))
            })?;
            if verbose {
                println!("{}", b.as_ref().describe());
            }
            return Ok(None);
        }
        let i = py.allow_threads(|| {
            errors::run(|| {
                Ok(ryolo::weights::load_model(&model, None, tch::Device::Cpu)?
                    .model
                    .info())
            })
        })?;
        if verbose {
            println!("{i}");
        }
        Ok(Some((i.layers, i.params, i.grads, i.gflops)))
    }

    /// Registers `func` for an Ultralytics callback event (`on_train_epoch_end`, ...).
    fn add_callback(&self, event: &str, func: Py<PyAny>) -> PyResult<()> {
        callbacks::check_event(event)?;
        lock(&self.state)?
            .callbacks
            .entry(event.to_string())
            .or_default()
            .push(func);
        Ok(())
    }

    /// Removes every callback of `event`.
    fn clear_callback(&self, event: &str) -> PyResult<()> {
        callbacks::check_event(event)?;
        lock(&self.state)?.callbacks.remove(event);
        Ok(())
    }

    /// Removes every registered callback.
    fn reset_callbacks(&self) -> PyResult<()> {
        lock(&self.state)?.callbacks.clear();
        Ok(())
    }

    /// `{class id: name}`.
    #[getter]
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (i, n) in lock(&self.state)?.names.iter().enumerate() {
            d.set_item(i, n)?;
        }
        Ok(d)
    }

    /// `detect`, `segment`, `classify`, `pose` or `obb`.
    #[getter]
    fn task(&self) -> PyResult<String> {
        Ok(lock(&self.state)?.task.to_string())
    }

    /// The weights (or YAML) the model runs: after `train()`, the run's `best.pt`.
    #[getter]
    fn ckpt_path(&self) -> PyResult<String> {
        Ok(lock(&self.state)?.model.clone())
    }

    /// The model's name or path as given (Ultralytics' `model_name`).
    #[getter]
    fn model_name(&self) -> PyResult<String> {
        self.ckpt_path()
    }

    /// The metrics of the last `val()` or `train()` (None before).
    #[getter]
    fn metrics(&self, py: Python<'_>) -> PyResult<Option<Py<Metrics>>> {
        Ok(lock(&self.state)?.metrics.as_ref().map(|m| m.clone_ref(py)))
    }

    fn __repr__(&self) -> PyResult<String> {
        let s = lock(&self.state)?;
        Ok(format!(
            "ryolo.YOLO(model={:?}, task={}, {} classes)",
            s.model,
            s.task,
            s.names.len()
        ))
    }
}

/// A list of every result, or the stream itself.
fn collect_or_stream(py: Python<'_>, mut s: ResultsStream, stream: bool) -> PyResult<PyObject> {
    if stream {
        return Ok(Py::new(py, s)?.into_any());
    }
    let list = PyList::empty(py);
    while let Some(r) = s.step(py)? {
        list.append(r)?;
    }
    Ok(list.into_any().unbind())
}

/// Warns about predict arguments that only the CLI honours (never silently ignored).
fn warn_cli_only(a: &Args, inputs: &[sources::Input]) {
    let mut said = Vec::new();
    if a.str("format").is_some_and(|f| f == "json") {
        said.push("format=json (the CLI's stdout records; use Results.to_json() / summary())");
    }
    if a.bool("save_frames") {
        said.push("save_frames=True (use Results.save() per frame)");
    }
    let video = inputs.iter().any(|i| matches!(i, sources::Input::Video(_)));
    if video && a.get("save").as_bool() == Some(true) {
        said.push("save=True on a video (no annotated .avi from the Python API; labels and crops are written; use the CLI for the video)");
    }
    for w in said {
        eprintln!("WARNING {w}: not done by the Python API; ignored");
    }
}
