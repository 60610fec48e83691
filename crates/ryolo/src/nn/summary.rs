//! The per-layer model table Ultralytics prints while building a model (`from n params module
//! arguments`), from the resolved layers and the built weights.

use super::yaml::{LayerKind, LayerSpec};
use super::DetectionModel;

/// Python's `str()` of a list of already-rendered items.
fn py_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// Python's `str()` of a bool.
fn py_bool(b: bool) -> String {
    if b { "True" } else { "False" }.into()
}

/// Python's `str()` of a float (`0.25`, `1.0`).
fn py_float(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// The module's Python class path and its constructor arguments as Ultralytics 8.4 prints them.
fn module_and_args(kind: &LayerKind, given: usize) -> (&'static str, String) {
    let ints = |v: &[i64]| py_list(&v.iter().map(i64::to_string).collect::<Vec<_>>());
    match kind {
        LayerKind::Conv { c1, c2, k, s } => (
            "ultralytics.nn.modules.conv.Conv",
            ints(&[*c1, *c2, *k, *s]),
        ),
        LayerKind::C2f {
            c1,
            c2,
            n,
            shortcut,
        } => (
            "ultralytics.nn.modules.block.C2f",
            py_list(&[
                c1.to_string(),
                c2.to_string(),
                n.to_string(),
                py_bool(*shortcut),
            ]),
        ),
        LayerKind::C3k2 { c1, c2, n, c3k, e } => {
            let mut v = vec![c1.to_string(), c2.to_string(), n.to_string(), py_bool(*c3k)];
            // `e` is printed only when the YAML row wrote it.
            if given >= 3 {
                v.push(py_float(*e));
            }
            ("ultralytics.nn.modules.block.C3k2", py_list(&v))
        }
        LayerKind::Sppf { c1, c2, k } => {
            ("ultralytics.nn.modules.block.SPPF", ints(&[*c1, *c2, *k]))
        }
        LayerKind::C2psa { c1, c2, n } => {
            ("ultralytics.nn.modules.block.C2PSA", ints(&[*c1, *c2, *n]))
        }
        LayerKind::Upsample { scale } => (
            "torch.nn.modules.upsampling.Upsample",
            format!("[None, {scale}, 'nearest']"),
        ),
        LayerKind::Concat => ("ultralytics.nn.modules.conv.Concat", "[1]".into()),
        LayerKind::Classify { c1, nc } => {
            ("ultralytics.nn.modules.head.Classify", ints(&[*c1, *nc]))
        }
        LayerKind::Detect {
            nc,
            ch,
            head: super::yaml::HeadKind::Segment { nm, npr },
            ..
        } => (
            "ultralytics.nn.modules.head.Segment",
            format!("[{nc}, {nm}, {npr}, 16, None, {}]", ints(ch)),
        ),
        LayerKind::Detect {
            nc,
            ch,
            head: super::yaml::HeadKind::Obb { ne },
            ..
        } => (
            "ultralytics.nn.modules.head.OBB",
            format!("[{nc}, {ne}, 16, None, {}]", ints(ch)),
        ),
        LayerKind::Detect {
            nc,
            ch,
            head: super::yaml::HeadKind::Pose { kpt_shape: (k, d) },
            ..
        } => (
            "ultralytics.nn.modules.head.Pose",
            format!("[{nc}, [{k}, {d}], 16, None, {}]", ints(ch)),
        ),
        LayerKind::Detect { nc, ch, .. } => (
            "ultralytics.nn.modules.head.Detect",
            format!("[{nc}, 16, None, {}]", ints(ch)),
        ),
    }
}

/// `from` as Python prints it: `-1`, or `[-1, 6]` for several inputs.
fn from_text(l: &LayerSpec) -> String {
    match l.from_raw.as_slice() {
        [one] => one.to_string(),
        many => py_list(&many.iter().map(i64::to_string).collect::<Vec<_>>()),
    }
}

/// Parameters of layer `i` (BatchNorm running statistics are buffers, not parameters).
fn layer_params(m: &DetectionModel, i: usize) -> i64 {
    let prefix = format!("model.{i}.");
    m.vs.variables()
        .iter()
        .filter(|(n, _)| n.starts_with(&prefix))
        .filter(|(n, _)| !n.ends_with("running_mean") && !n.ends_with("running_var"))
        .map(|(_, t)| t.numel() as i64)
        .sum()
}

/// The table: a header and one row per layer, in Ultralytics' column widths.
pub fn layer_table(m: &DetectionModel) -> String {
    let mut out = format!(
        "\n{:>3}{:>20}{:>3}{:>10}  {:<45}{:<30}\n",
        "", "from", "n", "params", "module", "arguments"
    );
    for (i, l) in m.spec.layers.iter().enumerate() {
        let (module, args) = module_and_args(&l.kind, l.args_given);
        out.push_str(&format!(
            "{i:>3}{:>20}{:>3}{:>10}  {module:<45}{args:<30}\n",
            from_text(l),
            l.n,
            layer_params(m, i)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ModelSpec;

    #[test]
    fn yolo11n_rows_match_ultralytics() {
        let spec = ModelSpec::from_name("yolo11n.yaml", Some(80)).unwrap();
        let m = DetectionModel::new(spec, tch::Device::Cpu).unwrap();
        let t = layer_table(&m);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["from", "n", "params", "module", "arguments"]
        );
        // Rows as Ultralytics 8.4 prints them for yolo11n.yaml (nc=80).
        let row = |i: usize| {
            lines[i + 2]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            row(0),
            "0 -1 1 464 ultralytics.nn.modules.conv.Conv [3, 16, 3, 2]"
        );
        assert_eq!(
            row(2),
            "2 -1 1 6640 ultralytics.nn.modules.block.C3k2 [32, 64, 1, False, 0.25]"
        );
        // A C3k2 row whose YAML gave no `e` prints none (as Ultralytics).
        assert_eq!(
            row(6),
            "6 -1 1 87040 ultralytics.nn.modules.block.C3k2 [128, 128, 1, True]"
        );
        assert_eq!(
            row(11),
            "11 -1 1 0 torch.nn.modules.upsampling.Upsample [None, 2, 'nearest']"
        );
        assert_eq!(
            row(12),
            "12 [-1, 6] 1 0 ultralytics.nn.modules.conv.Concat [1]"
        );
        let total: i64 = (0..m.spec.layers.len()).map(|i| layer_params(&m, i)).sum();
        assert_eq!(total, m.info().params, "rows add up to the summary line");
    }
}
