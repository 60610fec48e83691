//! OBB `save_json` outputs equal Ultralytics' OBBValidator (tests/data/obb_json_fixture.json, made
//! by make_obb_json_fixture.py): predictions.json rows (score, rbox, poly) from the same float32
//! detections, and the DOTA Task1 files, split and merged, byte for byte.

mod common;

use ryolo::engine::val::obb_out::{py_repr, py_round, tile_offset, write_dota, ImageId, ObbRow};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("data/obb_json_fixture.json")).unwrap()
}

fn f32s<const N: usize>(v: &Value) -> [f32; N] {
    let a = v.as_array().unwrap();
    std::array::from_fn(|i| a[i].as_f64().unwrap() as f32)
}

/// Our rows of the fixture's detections.
fn rows(fx: &Value) -> Vec<ObbRow> {
    fx["preds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap();
            ObbRow::new(
                name,
                &format!("{name}.jpg"),
                &f32s::<5>(&p["xywhr"]),
                p["conf"].as_f64().unwrap() as f32,
                p["cls"].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

#[test]
fn prediction_rows_equal_ultralytics_pred_to_json() {
    let fx = fixture();
    let want = fx["rows"].as_array().unwrap();
    let got = rows(&fx);
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(&g.json(), w, "row {k}");
    }
    // A numeric stem is an int id; the 100.0625 tie rounds to even as Python's round().
    assert!(want.iter().any(|w| w["image_id"] == serde_json::json!(42)));
    assert!(got.iter().any(|g| g.poly.contains(&120.062)));
    eprintln!("{} rows equal", got.len());
}

#[test]
fn dota_task1_files_equal_ultralytics_eval_json() {
    let fx = fixture();
    let names: Vec<String> = fx["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let d = common::tmp("obb-json-dota");
    // A stale file from an earlier run is dropped, as Ultralytics unlinks them.
    std::fs::create_dir_all(d.join("predictions_txt")).unwrap();
    std::fs::write(d.join("predictions_txt/Task1_old.txt"), "x\n").unwrap();
    write_dota(&d, &rows(&fx), &names).unwrap();
    let want = fx["files"].as_object().unwrap();
    let mut got: Vec<String> = Vec::new();
    for sub in ["predictions_txt", "predictions_merged_txt"] {
        for e in std::fs::read_dir(d.join(sub)).unwrap() {
            got.push(format!(
                "{sub}/{}",
                e.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    got.sort();
    assert_eq!(got, want.keys().cloned().collect::<Vec<_>>());
    let (mut split, mut merged) = (0, 0);
    for (name, text) in want {
        let g = std::fs::read_to_string(d.join(name)).unwrap();
        assert_eq!(g, text.as_str().unwrap(), "{name}");
        if name.starts_with("predictions_merged") {
            merged += g.lines().count();
        } else {
            split += g.lines().count();
        }
    }
    assert!(
        merged < split,
        "the merge suppressed nothing: {merged} of {split}"
    );
    eprintln!(
        "{} files equal: {split} tile rows, {merged} merged rows",
        want.len()
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn python_repr_round_and_tile_names() {
    for (v, s) in [
        (0.5, "0.5"),
        (12.0, "12.0"),
        (-3.25, "-3.25"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (123.456, "123.456"),
        (1e16, "1e+16"),
        (1.5e16, "1.5e+16"),
        (0.0, "0.0"),
    ] {
        assert_eq!(py_repr(v), s);
    }
    assert_eq!(py_round(100.0625, 3), 100.062);
    assert_eq!(py_round(0.123456789, 5), 0.12346);
    assert_eq!(tile_offset("P0001__1024__0___512"), Some((0, 512)));
    assert_eq!(tile_offset("P0001__1024__824___0"), Some((824, 0)));
    assert_eq!(tile_offset("P0001"), None);
    assert_eq!(ImageId::of("0012").text(), "12");
    assert_eq!(ImageId::of("a12").text(), "a12");
}
