//! Validation metrics as Ultralytics' `DetMetrics` / `SegmentMetrics` / `PoseMetrics` /
//! `ClassifyMetrics` present them: `results_dict` with its key names, `box` / `seg` / `pose`
//! summaries, `top1` / `top5`, `fitness`, `speed`.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use ryolo::engine::val::ValResult;
use ryolo::metrics::DetMetrics;
use ryolo::task::TaskKind;

/// One side's summary (Ultralytics' `Metric`: `box`, `seg`, `pose`).
#[pyclass(module = "ryolo", name = "Metric", frozen)]
pub struct Metric {
    /// Mean precision.
    #[pyo3(get)]
    mp: f64,
    /// Mean recall.
    #[pyo3(get)]
    mr: f64,
    /// mAP at IoU 0.5.
    #[pyo3(get)]
    map50: f64,
    /// mAP at IoU 0.75.
    #[pyo3(get)]
    map75: f64,
    /// mAP at IoU 0.5:0.95.
    #[pyo3(get)]
    map: f64,
    /// Per class id, mAP50-95 (absent classes: the mean).
    #[pyo3(get)]
    maps: Vec<f64>,
}

impl Metric {
    fn new(m: &DetMetrics, nc: usize) -> Self {
        Self {
            mp: m.mp(),
            mr: m.mr(),
            map50: m.map50(),
            map75: m.map75(),
            map: m.map(),
            maps: m.maps(nc),
        }
    }
}

#[pymethods]
impl Metric {
    /// `[mp, mr, map50, map]`.
    fn mean_results(&self) -> Vec<f64> {
        vec![self.mp, self.mr, self.map50, self.map]
    }
    fn __repr__(&self) -> String {
        format!(
            "ryolo.Metric(mp={:.4}, mr={:.4}, map50={:.4}, map={:.4})",
            self.mp, self.mr, self.map50, self.map
        )
    }
}

/// What `val()` (and `train()`'s final validation) returns.
#[pyclass(module = "ryolo", name = "Metrics", frozen)]
pub struct Metrics {
    /// The model's task.
    #[pyo3(get)]
    task: String,
    keys: Vec<String>,
    values: Vec<f64>,
    /// Fitness (what picks `best`).
    #[pyo3(get)]
    fitness: f64,
    /// Box metrics (None for classify).
    #[pyo3(get, name = "box")]
    boxes: Option<Py<Metric>>,
    /// Mask metrics (segment).
    #[pyo3(get)]
    seg: Option<Py<Metric>>,
    /// Keypoint metrics (pose).
    #[pyo3(get)]
    pose: Option<Py<Metric>>,
    /// Top-1 accuracy (classify).
    #[pyo3(get)]
    top1: Option<f64>,
    /// Top-5 accuracy (classify).
    #[pyo3(get)]
    top5: Option<f64>,
    speed: [f64; 3],
    /// The run folder, when the run wrote one.
    #[pyo3(get)]
    save_dir: Option<String>,
}

impl Metrics {
    /// The metrics of a validation of a `task` model with `nc` classes.
    pub fn new(
        py: Python<'_>,
        r: &ValResult,
        task: TaskKind,
        nc: usize,
        save_dir: Option<String>,
    ) -> PyResult<Self> {
        let t = ryolo::task::for_kind(task).map_err(crate::errors::to_py)?;
        let values = t.metrics(r);
        let keys: Vec<String> = t.metric_columns().iter().map(|s| s.to_string()).collect();
        let fitness = t.fitness(&values);
        let m = |d: &DetMetrics| Py::new(py, Metric::new(d, nc));
        let (boxes, seg, pose) = match (task, &r.seg, &r.pose) {
            (TaskKind::Classify, _, _) => (None, None, None),
            (TaskKind::Segment, Some(s), _) => (Some(m(&s.boxes)?), Some(m(&s.masks)?), None),
            (TaskKind::Pose, _, Some(p)) => (Some(m(&p.boxes)?), None, Some(m(&p.pose)?)),
            _ => (Some(m(&r.metrics)?), None, None),
        };
        Ok(Self {
            task: task.to_string(),
            keys,
            values,
            fitness,
            boxes,
            seg,
            pose,
            top1: r.cls.as_ref().map(|c| c.top1),
            top5: r.cls.as_ref().map(|c| c.top5),
            speed: [r.speed.preprocess, r.speed.inference, r.speed.postprocess],
            save_dir,
        })
    }
}

#[pymethods]
impl Metrics {
    /// `{metric key: value, ..., "fitness": value}` with Ultralytics' key names.
    #[getter]
    fn results_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.keys.iter().zip(&self.values) {
            d.set_item(k, v)?;
        }
        d.set_item("fitness", self.fitness)?;
        Ok(d)
    }
    /// The `results_dict` keys.
    #[getter]
    fn keys(&self) -> Vec<String> {
        let mut k = self.keys.clone();
        k.push("fitness".into());
        k
    }
    /// Milliseconds per image: `preprocess`, `inference`, `loss`, `postprocess`.
    #[getter]
    fn speed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("preprocess", self.speed[0])?;
        d.set_item("inference", self.speed[1])?;
        d.set_item("loss", 0.0)?;
        d.set_item("postprocess", self.speed[2])?;
        Ok(d)
    }
    /// The metric values in `keys` order (without fitness).
    fn mean_results(&self) -> Vec<f64> {
        self.values.clone()
    }
    fn __repr__(&self) -> String {
        let kv: Vec<String> = self
            .keys
            .iter()
            .zip(&self.values)
            .map(|(k, v)| format!("'{k}': {v:.5}"))
            .collect();
        format!(
            "ryolo.Metrics({{{}}}, fitness={:.5})",
            kv.join(", "),
            self.fitness
        )
    }
}
