//! Arguments ryolo accepts but does not implement: each one set to a non-default value is named in
//! one warning (never silently ignored).

use super::Args;
use std::collections::HashSet;
use std::sync::Mutex;

/// `(key, why)` for every `default.yaml` key that ryolo does not honour yet.
pub const UNIMPLEMENTED: &[(&str, &str)] = &[
    ("profile", "profiling of export formats is not implemented"),
    (
        "compile",
        "torch.compile has no libtorch equivalent; running eagerly",
    ),
    ("multi_scale", "multi-scale training is not implemented yet"),
    (
        "rle",
        "the RLE keypoint-loss gain of YOLO26 pose models; YOLOv8/YOLO11 pose (v8PoseLoss) has no RLE term",
    ),
    ("dlog", "a loss gain of a task ryolo does not implement"),
    ("dgrad", "a loss gain of a task ryolo does not implement"),
    ("dlam", "a loss gain of a task ryolo does not implement"),
    (
        "cls_pw",
        "class-frequency weighting of the class loss is not implemented",
    ),
    ("distill_model", "knowledge distillation is not implemented"),
    ("dis", "knowledge distillation is not implemented"),
    (
        "dnn",
        "OpenCV DNN is not available; .onnx models run on ONNX Runtime",
    ),
    (
        "nms",
        "NMS inside the exported graph is not implemented; NMS runs after the model",
    ),
    ("visualize", "feature-map visualisation is not implemented"),
    ("embed", "feature embeddings are not implemented"),
    (
        "show",
        "ryolo opens no window; results are saved to the run folder",
    ),
    (
        "optimize",
        "TorchScript mobile optimisation is not available (ONNX export only)",
    ),
    (
        "simplify",
        "has no effect: the ONNX graph is written already simplified",
    ),
    (
        "workspace",
        "a TensorRT setting; TensorRT export is not implemented",
    ),
    (
        "bgr",
        "the BGR channel-swap augmentation is not implemented yet",
    ),
];

static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Warns (once per key and process) about every unimplemented argument set to a non-default
/// value; returns the warnings it printed.
pub fn warn_unimplemented(args: &Args) -> Vec<String> {
    let defaults = super::defaults();
    let mut out = Vec::new();
    let Ok(mut warned) = WARNED.lock() else {
        return out;
    };
    let warned = warned.get_or_insert_with(HashSet::new);
    for (key, why) in UNIMPLEMENTED {
        let v = args.get(key);
        let d = defaults.get(*key).unwrap_or(&serde_yaml::Value::Null);
        if v != d && !same_number(v, d) && warned.insert((*key).to_string()) {
            let line = format!("WARNING {key}={} is ignored: {why}", super::show(v));
            eprintln!("{line}");
            out.push(line);
        }
    }
    out
}

/// `0` and `0.0` are the same setting.
fn same_number(a: &serde_yaml::Value, b: &serde_yaml::Value) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}
