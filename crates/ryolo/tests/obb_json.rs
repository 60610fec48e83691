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

/// Copies a folder tree.
fn copy_tree(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let to = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &to);
        } else if p.extension().is_none_or(|x| x != "cache") {
            std::fs::copy(&p, &to).unwrap();
        }
    }
}

/// A validation run with `collect` on dota8 (copied to a `DOTA8` folder) keeps every rotated box
/// in original pixels: the corners of each `predictions.json` row bound the run's axis-aligned
/// box (clipped to the image), and the DOTA files cover every row.
#[test]
fn val_rows_carry_the_rotated_boxes_of_the_run() {
    use ryolo::data::{list_images, load_data_yaml, scan_with, LabelFormat};
    use ryolo::engine::val::{obb_out, validate, ValConfig};
    let Some(sh) = common::shared() else { return };
    let fx = sh.join("fixtures/ultralytics/obb");
    let d = common::tmp("obb-json-val");
    copy_tree(&sh.join("datasets/dota8"), &d.join("DOTA8"));
    let yaml = d.join("DOTA8/dota8.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("path:") {
                format!("path: {}", d.join("DOTA8").display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&yaml, text).unwrap();
    let dc = load_data_yaml(&yaml).unwrap();
    assert!(obb_out::is_dota(dc.split("val").unwrap()));
    let files = list_images(dc.split("val").unwrap()).unwrap();
    let entries = scan_with("val", &files, dc.nc(), false, LabelFormat::Obb).entries;
    // The seed-0 model with calibrated BatchNorm buffers: class scores up to ~0.0024.
    let mut m = ryolo::weights::load_model(
        fx.join("yolo11n-obb_seed0.pt").to_str().unwrap(),
        None,
        tch::Device::Cpu,
    )
    .unwrap()
    .model;
    let bufs: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_npz(fx.join("bn_calibration.npz"))
            .unwrap()
            .into_iter()
            .collect();
    ryolo::weights::load_state(&mut m, &bufs, false).unwrap();
    let cfg = ValConfig {
        imgsz: 320,
        batch: 4,
        conf: 0.001,
        collect: true,
        save_json: true,
        obb: true,
        ..Default::default()
    };
    let r = validate(&m, &entries, &cfg, |_, _| {}).unwrap();
    let rows = obb_out::obb_rows(&entries, &r);
    let n: usize = r.predictions.iter().map(|p| p.1.len()).sum();
    assert_eq!(rows.len(), n);
    assert!(n > 50, "only {n} detections");
    let mut k = 0;
    let mut worst = 0f64;
    for (i, dets) in &r.predictions {
        let (h, w) = (entries[*i].shape.0 as f64, entries[*i].shape.1 as f64);
        for (b, _, cls) in dets {
            let row = &rows[k];
            k += 1;
            assert_eq!(row.category_id, cls + 1);
            let xs = [row.poly[0], row.poly[2], row.poly[4], row.poly[6]];
            let ys = [row.poly[1], row.poly[3], row.poly[5], row.poly[7]];
            let lo = |v: [f64; 4]| v.into_iter().fold(f64::INFINITY, f64::min);
            let hi = |v: [f64; 4]| v.into_iter().fold(f64::NEG_INFINITY, f64::max);
            let want = [
                lo(xs).clamp(0.0, w),
                lo(ys).clamp(0.0, h),
                hi(xs).clamp(0.0, w),
                hi(ys).clamp(0.0, h),
            ];
            for (g, e) in b.iter().zip(want) {
                worst = worst.max((*g as f64 - e).abs());
            }
        }
    }
    // The axis-aligned boxes go through the same mapping in float32; the corners are rounded to
    // 3 decimals and recomputed from the mapped box (float32 at ~1000 px: ~1e-4).
    assert!(worst < 2e-3, "corner bounds vs boxes: {worst}");
    // save_txt: one file per image with predictions, 9 values per row (no confidence unless
    // save_conf), the corners of the same rows normalised by the image size.
    obb_out::write_obb_labels(&d, &entries, &r, false).unwrap();
    let mut k = 0;
    for (i, dets) in &r.predictions {
        let e = &entries[*i];
        let stem = e.im_file.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(d.join(format!("labels/{stem}.txt"))).unwrap();
        assert_eq!(text.lines().count(), dets.len());
        let (h, w) = (e.shape.0 as f64, e.shape.1 as f64);
        for line in text.lines() {
            let v: Vec<f64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
            assert_eq!(v.len(), 9, "{line}");
            assert_eq!(v[0] as usize + 1, rows[k].category_id);
            for (j, x) in v[1..].iter().enumerate() {
                let want = rows[k].poly[j] / if j % 2 == 0 { w } else { h };
                // Half a unit of the 6th significant digit (`%g`) plus the 3-decimal rounding
                // of the JSON corners (< 1e-6 of the image size).
                let tol = 0.5e-5 * 10f64.powf(x.abs().max(1e-3).log10().floor()) + 1e-6;
                assert!((x - want).abs() <= tol, "{line} vs {:?}", rows[k].poly);
            }
            k += 1;
        }
    }
    obb_out::write_obb_labels(&d, &entries, &r, true).unwrap();
    let any = std::fs::read_dir(d.join("labels"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let first = std::fs::read_to_string(any.path()).unwrap();
    assert_eq!(first.lines().next().unwrap().split(' ').count(), 10);
    let names = dc.names.clone();
    obb_out::write_dota(&d, &rows, &names).unwrap();
    let count = |sub: &str| -> usize {
        std::fs::read_dir(d.join(sub))
            .unwrap()
            .map(|e| {
                std::fs::read_to_string(e.unwrap().path())
                    .unwrap()
                    .lines()
                    .count()
            })
            .sum()
    };
    assert_eq!(count("predictions_txt"), n);
    assert!(count("predictions_merged_txt") <= n);
    eprintln!("{n} rows; corner bounds within {worst:.2e} of the boxes");
    let _ = std::fs::remove_dir_all(&d);
}
