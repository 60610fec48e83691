//! Shape and type checks of a resumed checkpoint's optimizer buffers and pending gradients
//! against the model's parameters, before any of them is used.

use anyhow::{bail, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::Tensor;

/// The per-parameter optimizer buffers ryolo writes (`<param>.<buffer>`).
const BUFFERS: [&str; 4] = ["momentum_buffer", "exp_avg", "exp_avg_sq", "square_avg"];

/// Refuses `train.optim.<param>.<buffer>` and `train.grad.<param>` tensors of `file` that name no
/// parameter, an unknown buffer, or whose shape or type differs from their parameter's.
pub fn check(
    file: &Path,
    tensors: &HashMap<String, Tensor>,
    params: &[(String, Tensor)],
) -> Result<()> {
    let by_name: HashMap<&str, &Tensor> = params.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut keys: Vec<&String> = tensors.keys().collect();
    keys.sort();
    for key in keys {
        let (param, what) = if let Some(k) = key.strip_prefix("train.optim.") {
            match k.rsplit_once('.') {
                Some((p, b)) if BUFFERS.contains(&b) => (p, "optimizer buffer"),
                _ => bail!(
                    "{}: resume state '{key}' is not an optimizer buffer ryolo writes \
                     (<parameter>.{{{}}}); a corrupt or foreign checkpoint",
                    file.display(),
                    BUFFERS.join(",")
                ),
            }
        } else if let Some(p) = key.strip_prefix("train.grad.") {
            (p, "pending gradient")
        } else {
            continue;
        };
        let Some(p) = by_name.get(param) else {
            bail!(
                "{}: resume state '{key}' ({what}) names no parameter of the model",
                file.display()
            );
        };
        let t = &tensors[key];
        if t.size() != p.size() || t.kind() != p.kind() {
            bail!(
                "{}: resume state '{key}' ({what}) is {:?} {:?}, its parameter is {:?} {:?}; a \
                 corrupt checkpoint",
                file.display(),
                t.kind(),
                t.size(),
                p.kind(),
                p.size()
            );
        }
    }
    Ok(())
}
