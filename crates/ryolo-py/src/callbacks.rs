//! `add_callback(event, fn)` with Ultralytics' event names: the registry, the namespace each
//! callback receives (`trainer.epoch`, `metrics`, `save_dir`, ...), and the bridge to the Rust
//! trainer's hooks, which also turns Ctrl-C and callback errors into a clean stop.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use ryolo::engine::train::{Callbacks, EpochReport};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Ultralytics' callback events.
pub const EVENTS: &[&str] = &[
    "on_pretrain_routine_start",
    "on_pretrain_routine_end",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_batch_start",
    "optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
    "on_train_epoch_end",
    "on_fit_epoch_end",
    "on_model_save",
    "on_train_end",
    "on_params_update",
    "teardown",
    "on_val_start",
    "on_val_batch_start",
    "on_val_batch_end",
    "on_val_end",
    "on_predict_start",
    "on_predict_batch_start",
    "on_predict_postprocess_end",
    "on_predict_batch_end",
    "on_predict_end",
    "on_export_start",
    "on_export_end",
];

/// The events ryolo fires (the others are accepted and never called).
pub const FIRED: &[&str] = &[
    "on_pretrain_routine_start",
    "on_pretrain_routine_end",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_batch_end",
    "on_train_epoch_end",
    "on_fit_epoch_end",
    "on_model_save",
    "on_train_end",
    "on_val_start",
    "on_val_end",
    "on_predict_start",
    "on_predict_batch_end",
    "on_predict_end",
    "on_export_start",
    "on_export_end",
];

/// Registered callbacks by event.
pub type Registry = HashMap<String, Vec<Py<PyAny>>>;

/// Checks an event name: unknown names are a ValueError listing the valid ones; events ryolo
/// never fires are accepted with a warning.
pub fn check_event(event: &str) -> PyResult<()> {
    if !EVENTS.contains(&event) {
        return Err(PyValueError::new_err(format!(
            "'{event}' is not a valid callback event; valid events are {}",
            EVENTS.join(", ")
        )));
    }
    if !FIRED.contains(&event) {
        eprintln!(
            "WARNING callback event '{event}' is accepted but ryolo does not fire it (fired: {})",
            FIRED.join(", ")
        );
    }
    Ok(())
}

/// A `types.SimpleNamespace` with `fields`.
pub fn namespace<'py>(py: Python<'py>, fields: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
    py.import("types")?
        .getattr("SimpleNamespace")?
        .call((), Some(fields))
}

/// A `pathlib.Path`.
pub fn path<'py>(py: Python<'py>, p: &std::path::Path) -> PyResult<Bound<'py, PyAny>> {
    py.import("pathlib")?.getattr("Path")?.call1((p,))
}

/// Calls every callback of `event` with `arg`; the first error is returned.
pub fn fire(py: Python<'_>, reg: &Registry, event: &str, arg: &Bound<'_, PyAny>) -> PyResult<()> {
    for f in reg.get(event).map(Vec::as_slice).unwrap_or(&[]) {
        f.call1(py, (arg,))?;
    }
    Ok(())
}

/// The YAML arguments as a namespace (`trainer.args.epochs`).
pub fn args_namespace<'py>(
    py: Python<'py>,
    a: &serde_yaml::Mapping,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(a).unwrap_or_else(|_| "{}".into());
    let d = py.import("json")?.call_method1("loads", (json,))?;
    namespace(py, d.downcast::<PyDict>()?)
}

/// What the training bridge shares with the hooks.
struct Shared {
    reg: Registry,
    /// The first callback error or KeyboardInterrupt (raised once training stopped cleanly).
    error: Option<PyErr>,
    /// The argument namespace (`trainer.args`).
    args: Py<PyAny>,
    /// Metric keys and loss names of the task.
    metric_keys: Vec<String>,
    loss_names: Vec<String>,
    best_fitness: Option<f64>,
}

/// The training side of the callbacks: builds the Rust trainer's [`Callbacks`] over the Python
/// registry. Create it with the GIL held, then use it inside `allow_threads`.
#[derive(Clone)]
pub struct TrainBridge {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl TrainBridge {
    /// A bridge over a copy of `reg` for a run of `task` with arguments `args`.
    pub fn new(
        py: Python<'_>,
        reg: &Registry,
        task: ryolo::task::TaskKind,
        args: &serde_yaml::Mapping,
    ) -> PyResult<Self> {
        let t = ryolo::task::for_kind(task).map_err(crate::errors::to_py)?;
        let reg = reg
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|f| f.clone_ref(py)).collect()))
            .collect();
        Ok(Self {
            shared: Arc::new(Mutex::new(Shared {
                reg,
                error: None,
                args: args_namespace(py, args)?.unbind(),
                metric_keys: t.metric_columns().iter().map(|s| s.to_string()).collect(),
                loss_names: t.loss_names().iter().map(|s| s.to_string()).collect(),
                best_fitness: None,
            })),
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// The error to raise after the run (a callback's, or KeyboardInterrupt).
    pub fn take_error(&self) -> Option<PyErr> {
        self.shared.lock().ok().and_then(|mut s| s.error.take())
    }

    /// Fires `event` with a namespace of `r` (None: only `args` and `save_dir`), then polls
    /// Ctrl-C; errors stop the run after the current epoch.
    pub fn event(&self, event: &str, r: Option<&EpochReport>, save_dir: Option<&std::path::Path>) {
        Python::with_gil(|py| {
            let Ok(mut s) = self.shared.lock() else {
                return;
            };
            // After a callback failed no callback runs; after Ctrl-C they still do (the epoch
            // finishes and saves as usual).
            let interrupted =
                |e: &PyErr| e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py);
            if s.error.as_ref().is_some_and(|e| !interrupted(e)) {
                return;
            }
            // A pending Ctrl-C is taken before the hook runs, so that it is not raised inside the
            // user's function (which would then not run); the hook runs either way.
            let pre = py.check_signals();
            let res = self
                .call(py, &mut s, event, r, save_dir)
                .and_then(|_| py.check_signals());
            let res = match (pre, res) {
                (_, Err(e)) if !interrupted(&e) => Err(e),
                (Err(e), _) => Err(e),
                (Ok(()), res) => res,
            };
            if let Err(e) = res {
                if s.error.is_some() && interrupted(&e) {
                    return; // a second Ctrl-C: already stopping
                }
                if interrupted(&e) {
                    eprintln!("KeyboardInterrupt: stopping after this epoch; checkpoints are kept (resume with model.train(resume=True, model=\".../weights/last.safetensors\"))");
                }
                s.error = Some(e);
                self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        })
    }

    fn call(
        &self,
        py: Python<'_>,
        s: &mut Shared,
        event: &str,
        r: Option<&EpochReport>,
        save_dir: Option<&std::path::Path>,
    ) -> PyResult<()> {
        let hooks = s.reg.get(event).map_or(0, Vec::len);
        let also_val = event == "on_fit_epoch_end"
            && r.is_some_and(|r| !r.metrics.is_empty())
            && s.reg.get("on_val_end").is_some_and(|v| !v.is_empty());
        if hooks == 0 && !also_val {
            return Ok(());
        }
        let d = PyDict::new(py);
        d.set_item("args", s.args.bind(py))?;
        let dir = r.map(|r| r.save_dir.as_path()).or(save_dir);
        if let Some(dir) = dir {
            let wdir = dir.join("weights");
            d.set_item("save_dir", path(py, dir)?)?;
            d.set_item("wdir", path(py, &wdir)?)?;
            d.set_item("best", path(py, &wdir.join("best.pt"))?)?;
            d.set_item("last", path(py, &wdir.join("last.pt"))?)?;
            d.set_item("csv", path(py, &dir.join("results.csv"))?)?;
        }
        d.set_item("stop", false)?;
        if let Some(r) = r {
            // Ultralytics' trainer.epoch is 0-based.
            d.set_item("epoch", r.epoch.saturating_sub(1))?;
            d.set_item("epochs", r.epochs)?;
            let tloss =
                numpy::PyArray1::from_vec(py, r.train_loss.iter().map(|&v| v as f32).collect());
            d.set_item("tloss", tloss)?;
            let lr = PyDict::new(py);
            for (k, v) in r.lr.iter().enumerate() {
                lr.set_item(format!("lr/pg{k}"), v)?;
            }
            d.set_item("lr", lr)?;
            d.set_item("loss_names", PyList::new(py, &s.loss_names)?)?;
            let m = PyDict::new(py);
            if !r.metrics.is_empty() {
                for (k, v) in s.metric_keys.iter().zip(&r.metrics) {
                    m.set_item(k, v)?;
                }
                for (k, v) in s.loss_names.iter().zip(&r.val_loss) {
                    m.set_item(format!("val/{k}"), v)?;
                }
                d.set_item("fitness", r.fitness)?;
                if event == "on_fit_epoch_end" {
                    s.best_fitness = Some(s.best_fitness.map_or(r.fitness, |b| b.max(r.fitness)));
                }
            } else {
                d.set_item("fitness", py.None())?;
            }
            d.set_item("metrics", m)?;
            d.set_item("best_fitness", s.best_fitness)?;
        }
        let ns = namespace(py, &d)?;
        if also_val {
            // Validation ran just before on_fit_epoch_end (Ultralytics fires on_val_end then).
            fire(py, &s.reg, "on_val_end", &ns)?;
        }
        fire(py, &s.reg, event, &ns)?;
        // Ultralytics' `trainer.stop = True` from a callback stops the run.
        if ns
            .getattr("stop")
            .and_then(|v| v.is_truthy())
            .unwrap_or(false)
        {
            self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    /// The trainer's hooks firing this bridge's Python callbacks.
    pub fn callbacks(&self) -> Callbacks {
        let mut cb = Callbacks {
            stop: self.stop.clone(),
            ..Default::default()
        };
        macro_rules! hook {
            ($field:ident, $name:literal) => {{
                let b = self.clone();
                cb.$field.push(Box::new(move |r: &EpochReport| {
                    b.event($name, Some(r), None)
                }));
            }};
        }
        hook!(on_train_start, "on_train_start");
        hook!(on_train_epoch_start, "on_train_epoch_start");
        hook!(on_train_batch_end, "on_train_batch_end");
        hook!(on_train_epoch_end, "on_train_epoch_end");
        hook!(on_fit_epoch_end, "on_fit_epoch_end");
        hook!(on_model_save, "on_model_save");
        hook!(on_train_end, "on_train_end");
        cb
    }
}
