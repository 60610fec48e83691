//! Per-mode defaults laid under the user's arguments (what `yolo MODE` and the Python `YOLO`
//! methods add before a run, as Ultralytics' `Model.predict/train/export` do).

use serde_yaml::{Mapping, Value};

/// The overrides of a `mode` run with the mode's own defaults added where the user gave none:
/// predict, track and export run at batch 1; classify training runs at imgsz 224 (Ultralytics'
/// `ClassificationTrainer`). `task` is the run's resolved task.
pub fn with_mode_defaults(mode: &str, task: crate::task::TaskKind, overrides: &Mapping) -> Mapping {
    let mut o = overrides.clone();
    match mode {
        "predict" | "track" | "export" => {
            o.entry("batch".into()).or_insert(Value::from(1));
        }
        "train" if task == crate::task::TaskKind::Classify => {
            o.entry("imgsz".into()).or_insert(Value::from(224));
        }
        _ => {}
    }
    o
}
