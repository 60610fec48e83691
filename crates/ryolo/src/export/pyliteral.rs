//! Python literals for export metadata: Ultralytics reads `imgsz`, `names`, `args`, `kpt_shape` and
//! `end2end` with `ast.literal_eval`, so they must be Python's `str()` of the value (`None`,
//! `True`, single-quoted strings, int dict keys), not JSON (spec/export.md §4).

use crate::cfg::Args;
use serde_yaml::Value;

/// Python's `repr()` of a string: single quotes unless the text has a `'` and no `"`.
pub fn py_str(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Python's `repr()` of a float (`1.0`, `0.25`, `inf`).
fn py_float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{f:?}")
    }
}

/// A YAML value as the Python literal of the value `yaml.safe_load` would give.
pub fn py_value(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => py_float(f),
            _ => "None".into(),
        },
        Value::String(s) => py_str(s),
        Value::Sequence(s) => format!(
            "[{}]",
            s.iter().map(py_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Mapping(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_value(k), py_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Tagged(t) => py_value(&t.value),
    }
}

/// `names` as Python's dict literal: `{0: 'person', 1: 'bicycle'}`.
pub fn py_names(names: &[String]) -> String {
    let items: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i}: {}", py_str(n)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// The ONNX export's `args` entry: the export arguments valid for ONNX, in `default.yaml` order,
/// as Ultralytics records them (`{'data': None, 'batch': 1, ..., 'opset': None}`). `simplify` is
/// False because ryolo does not run onnxslim.
pub fn onnx_args(args: &Args, batch: i64, dynamic: bool) -> String {
    let items = [
        ("data", args.get("data").clone()),
        ("batch", Value::from(batch)),
        ("fraction", args.get("fraction").clone()),
        ("quantize", args.get("quantize").clone()),
        ("nms", args.get("nms").clone()),
        ("dynamic", Value::Bool(dynamic)),
        ("simplify", Value::Bool(false)),
        ("opset", args.get("opset").clone()),
    ];
    let body: Vec<String> = items
        .iter()
        .map(|(k, v)| format!("{}: {}", py_str(k), py_value(v)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_as_python_repr() {
        assert_eq!(py_str("person"), "'person'");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_str("back\\slash"), "'back\\\\slash'");
    }

    #[test]
    fn values_as_python_literals() {
        let v: Value = serde_yaml::from_str("{a: null, b: true, c: [1, 2.5], d: x}").unwrap();
        assert_eq!(
            py_value(&v),
            "{'a': None, 'b': True, 'c': [1, 2.5], 'd': 'x'}"
        );
        assert_eq!(py_value(&Value::from(1.0)), "1.0");
        assert_eq!(py_names(&["a".into(), "b c".into()]), "{0: 'a', 1: 'b c'}");
    }

    #[test]
    fn onnx_args_like_ultralytics() {
        let a = Args::new(&serde_yaml::Mapping::new());
        assert_eq!(
            onnx_args(&a, 1, false),
            "{'data': None, 'batch': 1, 'fraction': 1.0, 'quantize': None, 'nms': None, \
             'dynamic': False, 'simplify': False, 'opset': None}"
        );
    }
}
