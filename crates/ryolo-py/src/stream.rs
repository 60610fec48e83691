//! The predict iterator: `predict(stream=True)` returns it; `predict()` drains it into a list.
//! Each step predicts with the GIL released, saves what was asked and fires the predict callbacks.

use crate::callbacks::{fire, namespace, Registry};
use crate::results::Results;
use crate::runner::{Output, Runner};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use ryolo::engine::predict::{save_labels_and_crops, save_prediction, SaveOptions};
use std::sync::Mutex;

/// A predict (or track) call in progress.
#[pyclass(module = "ryolo", name = "ResultsStream")]
pub struct ResultsStream {
    runner: Mutex<Option<Runner>>,
    save: Option<SaveOptions>,
    callbacks: Registry,
    started: bool,
}

impl ResultsStream {
    /// A stream over `runner`; `save`: what to write per result (None: nothing).
    pub fn new(runner: Runner, save: Option<SaveOptions>, callbacks: Registry) -> Self {
        Self {
            runner: Mutex::new(Some(runner)),
            save,
            callbacks,
            started: false,
        }
    }

    fn save_dir(&self) -> Option<String> {
        self.save
            .as_ref()
            .map(|o| o.dir.to_string_lossy().into_owned())
    }

    /// The predictor namespace passed to predict callbacks.
    fn predictor_ns<'py>(
        &self,
        py: Python<'py>,
        results: Option<Vec<Py<Results>>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = PyDict::new(py);
        d.set_item("save_dir", self.save_dir())?;
        d.set_item("results", results.unwrap_or_default())?;
        namespace(py, &d)
    }

    /// Writes what was asked for one output.
    fn save_output(&self, r: &Runner, o: &Output) -> anyhow::Result<()> {
        let Some(opts) = &self.save else {
            return Ok(());
        };
        let path = std::path::Path::new(&o.path);
        if ryolo::data::video::is_stream(&o.path) || ryolo::data::video::is_video(path) {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "stream".into());
            // Video frames: labels and crops per frame (no annotated video from the Python API).
            crate::runner::with_p(&r.p, |p| {
                save_labels_and_crops(p, &stem, &o.img, &o.pred, opts)
            })
        } else {
            crate::runner::with_p(&r.p, |p| save_prediction(p, path, &o.img, &o.pred, opts))
        }
    }

    /// The next result, or None at the end (then the closing line and `on_predict_end`).
    pub fn step(&mut self, py: Python<'_>) -> PyResult<Option<Py<Results>>> {
        if !self.started {
            self.started = true;
            let ns = self.predictor_ns(py, None)?;
            fire(py, &self.callbacks, "on_predict_start", &ns)?;
        }
        let mut guard = self
            .runner
            .lock()
            .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("predict state poisoned"))?;
        let Some(runner) = guard.as_mut() else {
            return Ok(None);
        };
        let out = py.allow_threads(|| {
            crate::errors::guard(|| {
                let o = runner.next_output()?;
                if let Some(o) = &o {
                    self.save_output(runner, o)?;
                }
                Ok(o)
            })
        });
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                *guard = None;
                return Err(crate::errors::to_py(e));
            }
        };
        py.check_signals()?;
        match out {
            Some(o) => {
                let r = Py::new(
                    py,
                    Results::new(runner.p.clone(), o.img, o.pred, o.path, self.save_dir()),
                )?;
                let ns = self.predictor_ns(py, Some(vec![r.clone_ref(py)]))?;
                fire(py, &self.callbacks, "on_predict_batch_end", &ns)?;
                Ok(Some(r))
            }
            None => {
                runner.speed_line();
                if let Some(o) = &self.save {
                    if runner.verbose && (o.save || o.save_txt) {
                        println!("Results saved to {}", o.dir.display());
                    }
                }
                *guard = None;
                drop(guard);
                let ns = self.predictor_ns(py, None)?;
                fire(py, &self.callbacks, "on_predict_end", &ns)?;
                Ok(None)
            }
        }
    }
}

#[pymethods]
impl ResultsStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<Results>>> {
        self.step(py)
    }
}
