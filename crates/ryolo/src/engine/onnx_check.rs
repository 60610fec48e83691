//! Checks of an `.onnx` file before ONNX Runtime sees it (size, protobuf, input, outputs, weights).

use crate::export::proto::{ModelProto, TensorProto, ValueInfoProto};
use anyhow::{bail, Context, Result};
use prost::Message;
use std::collections::HashSet;
use std::path::Path;

/// Largest `.onnx` file read: protobuf's own 2 GiB message limit (larger models keep their
/// weights in external data files, which ryolo does not load).
pub const MAX_ONNX_BYTES: u64 = (2 << 30) - 1;
/// Largest class index accepted in the `names` metadata.
pub const MAX_NAMES: usize = 100_000;
/// Largest `stride` metadata accepted.
pub const MAX_STRIDE: usize = 1024;
/// Largest keypoint count accepted in `kpt_shape` metadata.
pub const MAX_KEYPOINTS: usize = 10_000;
/// Largest fixed batch accepted in the input shape.
pub const MAX_BATCH: i64 = crate::cfg::MAX_BATCH;
/// Largest output dimension accepted (a fixed output axis beyond this cannot be a YOLO output).
const MAX_OUTPUT_DIM: i64 = 1 << 31;

/// Reads `path` after checking that it is a regular file under [`MAX_ONNX_BYTES`].
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("model file {} not found", path.display()))?;
    if !meta.is_file() {
        bail!(
            "model file {} is not a regular file (a folder, FIFO or device)",
            path.display()
        );
    }
    if meta.len() > MAX_ONNX_BYTES {
        bail!(
            "{}: {} bytes, over the 2 GiB protobuf limit of an .onnx file (external weight files \
             are not supported)",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("reading ONNX model {}", path.display()))
}

/// Bytes per element of an ONNX tensor data type (`None`: unknown or variable, e.g. strings).
fn elem_bytes(data_type: i32) -> Option<u64> {
    Some(match data_type {
        1 | 6 | 12 => 4,          // float, int32, uint32
        2 | 3 | 9 | 17..=20 => 1, // uint8, int8, bool, float8 kinds
        4 | 5 | 10 | 16 => 2,     // uint16, int16, float16, bfloat16
        7 | 11 | 13 | 14 => 8,    // int64, double, uint64, complex64
        15 => 16,                 // complex128
        _ => return None,
    })
}

/// The input/output shape of a value info: `Some(dims)` (`-1`: symbolic) or `None` (no shape).
fn shape_of(v: &ValueInfoProto) -> Option<Vec<i64>> {
    let s = v.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref()?;
    Some(
        s.dim
            .iter()
            .map(|d| d.dim_value.filter(|_| d.dim_param.is_none()).unwrap_or(-1))
            .collect(),
    )
}

/// Refuses an initializer whose dims are negative, whose element count overflows, whose type is
/// unknown, or whose raw data does not hold its declared size.
fn check_initializer(t: &TensorProto, path: &Path) -> Result<()> {
    let name = &t.name;
    let mut n: u64 = 1;
    for &d in &t.dims {
        if d < 0 {
            bail!(
                "{}: initializer '{name}' has a negative dimension {:?}",
                path.display(),
                t.dims
            );
        }
        n = n.checked_mul(d as u64).with_context(|| {
            format!(
                "{}: initializer '{name}' declares {:?}, an element count that overflows",
                path.display(),
                t.dims
            )
        })?;
    }
    if t.raw_data.is_empty() {
        // Typed data fields or external data: ONNX Runtime checks those.
        return Ok(());
    }
    let Some(size) = elem_bytes(t.data_type) else {
        bail!(
            "{}: initializer '{name}' has raw data of unknown data type {}",
            path.display(),
            t.data_type
        );
    };
    let want = n.checked_mul(size);
    if want != Some(t.raw_data.len() as u64) {
        bail!(
            "{}: initializer '{name}' declares {:?} (data type {}) but holds {} bytes of data \
             (a truncated or corrupt file?)",
            path.display(),
            t.dims,
            t.data_type,
            t.raw_data.len()
        );
    }
    Ok(())
}

/// Checks `bytes` (the file `path`) as ryolo's runner needs it, with messages naming the file.
pub fn check(bytes: &[u8], path: &Path) -> Result<()> {
    let p = path.display();
    let m = ModelProto::decode(bytes)
        .with_context(|| format!("{p}: not a valid ONNX model (protobuf decode failed)"))?;
    if m.ir_version < 3 {
        bail!(
            "{p}: ONNX IR version {} is not a valid model (3 or newer expected; a truncated or \
             corrupt file?)",
            m.ir_version
        );
    }
    let default = m
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx");
    match default {
        None => bail!("{p}: the model imports no default ONNX opset (opset_import)"),
        Some(o) if o.version < 1 => bail!("{p}: invalid ONNX opset version {}", o.version),
        _ => {}
    }
    let Some(g) = m.graph.as_ref() else {
        bail!("{p}: the ONNX model has no graph");
    };
    if g.node.is_empty() {
        bail!("{p}: the ONNX graph has no nodes");
    }
    let mut defined: HashSet<&str> = HashSet::new();
    let mut inits: HashSet<&str> = HashSet::new();
    for t in &g.initializer {
        check_initializer(t, path)?;
        if !inits.insert(t.name.as_str()) {
            bail!("{p}: initializer '{}' is defined twice", t.name);
        }
        defined.insert(&t.name);
    }
    // Older IR versions list the initializers among the inputs too.
    let inputs: Vec<&ValueInfoProto> = g
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
        .collect();
    let [input] = inputs.as_slice() else {
        bail!(
            "{p}: the graph has {} inputs, expected one image input (batch, 3, height, width)",
            inputs.len()
        );
    };
    let elem = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .map_or(0, |t| t.elem_type);
    if elem != 1 {
        bail!(
            "{p}: input '{}' has element type {elem}, expected float32 (1)",
            input.name
        );
    }
    let shape = shape_of(input).unwrap_or_default();
    let bad = match shape.as_slice() {
        [b, c, h, w] => {
            let side = |d: i64| d == -1 || (1..=crate::cfg::MAX_IMGSZ).contains(&d);
            !(*b == -1 || (1..=MAX_BATCH).contains(b))
                || !(*c == -1 || *c == 3)
                || !side(*h)
                || !side(*w)
        }
        _ => true,
    };
    if bad {
        bail!(
            "{p}: input '{}' has shape {shape:?} (-1: dynamic), expected (batch 1..={MAX_BATCH}, \
             3, height, width 1..={})",
            input.name,
            crate::cfg::MAX_IMGSZ
        );
    }
    defined.insert(&input.name);
    for n in &g.node {
        for o in &n.output {
            if !o.is_empty() {
                defined.insert(o);
            }
        }
    }
    for n in &g.node {
        if let Some(i) = n
            .input
            .iter()
            .find(|i| !i.is_empty() && !defined.contains(i.as_str()))
        {
            bail!(
                "{p}: node '{}' ({}) reads '{i}', which no input, initializer or node defines",
                n.name,
                n.op_type
            );
        }
    }
    if g.output.is_empty() {
        bail!("{p}: the graph has no outputs");
    }
    let mut seen = HashSet::new();
    for (k, o) in g.output.iter().enumerate() {
        if !defined.contains(o.name.as_str()) {
            bail!("{p}: output '{}' is not produced by any node", o.name);
        }
        if !seen.insert(o.name.as_str()) {
            bail!("{p}: output '{}' is listed twice", o.name);
        }
        if let Some(s) = shape_of(o) {
            let rank_ok = k > 0 || matches!(s.len(), 2 | 3);
            if !rank_ok
                || s.iter()
                    .any(|&d| d != -1 && !(0..=MAX_OUTPUT_DIM).contains(&d))
            {
                bail!(
                    "{p}: output '{}' has shape {s:?} (-1: dynamic), expected {}",
                    o.name,
                    if k == 0 {
                        "(batch, rows, anchors) or (batch, classes)"
                    } else {
                        "non-negative dimensions"
                    }
                );
            }
        }
    }
    Ok(())
}

/// Parses the `stride` metadata: an integer in 1..=[`MAX_STRIDE`] (absent: 32).
pub fn stride(raw: Option<&str>, path: &Path) -> Result<usize> {
    let Some(raw) = raw else { return Ok(32) };
    match raw.trim().parse::<usize>() {
        Ok(s) if (1..=MAX_STRIDE).contains(&s) => Ok(s),
        _ => bail!(
            "{}: metadata stride={raw:?} is not an integer from 1 to {MAX_STRIDE}",
            path.display()
        ),
    }
}
