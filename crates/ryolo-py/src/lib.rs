//! `ryolo._ryolo`: the compiled Python extension over the ryolo library (`from ryolo import YOLO`).

mod callbacks;
mod data;
mod errors;
mod fields;
mod kwargs;
mod metrics;
mod model;
mod results;
mod runner;
mod sources;
mod stream;

use pyo3::prelude::*;

#[pymodule]
fn _ryolo(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model::Yolo>()?;
    m.add_class::<results::Results>()?;
    m.add_class::<stream::ResultsStream>()?;
    m.add_class::<fields::Boxes>()?;
    m.add_class::<fields::Masks>()?;
    m.add_class::<fields::Keypoints>()?;
    m.add_class::<fields::Probs>()?;
    m.add_class::<fields::Obb>()?;
    m.add_class::<metrics::Metrics>()?;
    m.add_class::<metrics::Metric>()?;
    m.add("EVENTS", callbacks::EVENTS.to_vec())?;
    m.add_function(wrap_pyfunction!(data::synth_dataset, m)?)?;
    Ok(())
}
