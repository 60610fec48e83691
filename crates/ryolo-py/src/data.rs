//! Dataset helpers exposed to Python: the synthetic shapes datasets of `yolo data synth`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::path::PathBuf;

/// Writes a synthetic dataset (as `yolo data synth`) of `n` train images of `imgsz` pixels
/// under `out` for `task` (detect, segment, pose or obb); returns its `data.yaml`.
#[pyfunction]
#[pyo3(signature = (out, n=200, imgsz=320, seed=0, task="detect"))]
pub fn synth_dataset(
    py: Python<'_>,
    out: PathBuf,
    n: usize,
    imgsz: usize,
    seed: u64,
    task: &str,
) -> PyResult<String> {
    if !(1..=100_000).contains(&n) {
        return Err(PyValueError::new_err(
            "n must be a whole number from 1 to 100000",
        ));
    }
    if !(1..=ryolo::cfg::MAX_IMGSZ as usize).contains(&imgsz) {
        return Err(PyValueError::new_err(format!(
            "imgsz must be a whole number from 1 to {}",
            ryolo::cfg::MAX_IMGSZ
        )));
    }
    let task = task.to_string();
    if !matches!(task.as_str(), "detect" | "segment" | "pose" | "obb") {
        return Err(PyValueError::new_err(format!(
            "task={task}: use task=detect, segment, pose or obb"
        )));
    }
    let yaml = py.allow_threads(|| {
        crate::errors::run(|| match task.as_str() {
            "pose" => ryolo::data::synth_po::generate_pose(&out, n, imgsz, seed),
            "obb" => ryolo::data::synth_po::generate_obb(&out, n, imgsz, seed),
            t => ryolo::data::synth::generate_with(&out, n, imgsz, seed, t == "segment"),
        })
    })?;
    Ok(yaml.to_string_lossy().into_owned())
}
