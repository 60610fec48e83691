//! ONNX metadata in the form Ultralytics parses (spec/export.md §4): `args`, `names`, `imgsz` and
//! `end2end` are Python literals (`ast.literal_eval`), not JSON; our own reader reads the names back
//! (old and new forms).

use ryolo::engine::onnx::parse_names;
use ryolo::export::pyliteral::{onnx_args, py_names};
use ryolo::nn::{DetectionModel, ModelSpec};
use tch::Device;

#[test]
fn metadata_values_are_python_literals() {
    let spec = ModelSpec::from_name("yolov8n.yaml", Some(3)).unwrap();
    let mut m = DetectionModel::new(spec, Device::Cpu).unwrap();
    m.names = vec!["it's".into(), "a \"b\"".into(), "back\\slash".into()];
    let a = ryolo::cfg::Args::new(&serde_yaml::Mapping::new());
    let meta = ryolo::export::metadata(&m, (320, 256), 1, &onnx_args(&a, 1, true));
    let get = |k: &str| {
        meta.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k}"))
    };
    assert_eq!(
        get("args"),
        "{'data': None, 'batch': 1, 'fraction': 1.0, 'quantize': None, 'nms': None, \
         'dynamic': True, 'simplify': False, 'opset': None}"
    );
    assert_eq!(get("imgsz"), "[320, 256]");
    assert_eq!(get("stride"), "32");
    assert_eq!(get("batch"), "1");
    assert_eq!(get("channels"), "3");
    assert_eq!(get("end2end"), "False");
    assert_eq!(get("head"), "Detect");
    assert_eq!(get("names"), r#"{0: "it's", 1: 'a "b"', 2: 'back\\slash'}"#);
    assert_eq!(
        parse_names(&get("names")),
        m.names,
        "our reader reads what we write"
    );
    let keys: Vec<&str> = meta.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "description",
            "author",
            "date",
            "version",
            "license",
            "docs",
            "stride",
            "task",
            "head",
            "batch",
            "imgsz",
            "names",
            "args",
            "channels",
            "end2end"
        ]
    );
}

#[test]
fn our_reader_reads_old_and_new_name_forms() {
    let names = vec!["a'b".to_string(), "tab\there".into(), "plain".into()];
    assert_eq!(parse_names(&py_names(&names)), names);
    // Written before names were Python reprs (a quote escaped inside single quotes).
    assert_eq!(parse_names(r"{0: 'a\'b', 1: 'x'}"), vec!["a'b", "x"]);
}
