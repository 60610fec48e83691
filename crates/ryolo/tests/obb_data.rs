//! The OBB data side (spec/obb.md §1, §12): `minAreaRect` bit-exact with OpenCV on the 383 point
//! sets of `tests/data/min_area_rect_cv2.json` (made by `tests/tools/min_area_rect_reference.py`),
//! the canonical xywhr and 8.3 regularisation of the geometry fixture, the DOTA converter byte for
//! byte, and the non-augmented OBB batch of the loss fixture (images and targets).
//!
//! The batch check regenerates the fixture's synthetic DOTA set with the fixtures' own
//! `make_obb_dataset` (NumPy + OpenCV, a few seconds) through `RYOLO_ULTRALYTICS_PYTHON` or the
//! repository's `.venv`; it converts it with our `from_dota` and builds the batch with ours.

mod common;
use common::tmp;
use ryolo::data::min_area_rect::min_area_rect;
use ryolo::data::obb::xywhr_from_points;
use ryolo::data::{list_images, scan_with, LabelFormat};
use ryolo::ops::obb::{regularize_rbox, xywhr_to_corners};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The numbers of a JSON array.
fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A JSON file.
fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn min_area_rect_is_bit_exact_with_opencv() {
    let f =
        json(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/min_area_rect_cv2.json"));
    let cases = f["cases"].as_array().unwrap();
    let (mut rect_ok, mut xywhr_ok) = (0, 0);
    for c in cases {
        let pts: Vec<[f32; 2]> = c["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let v = nums(p);
                [v[0] as f32, v[1] as f32]
            })
            .collect();
        let want: Vec<f32> = nums(&c["rect"]).iter().map(|&v| v as f32).collect();
        let r = min_area_rect(&pts);
        let got = [r.center[0], r.center[1], r.size[0], r.size[1], r.angle];
        if got
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits())
        {
            rect_ok += 1;
        } else {
            eprintln!("{} {pts:?}: got {got:?}, OpenCV {want:?}", c["kind"]);
        }
        let want: Vec<f32> = nums(&c["xywhr"]).iter().map(|&v| v as f32).collect();
        let got = xywhr_from_points(&pts);
        if got
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits())
        {
            xywhr_ok += 1;
        } else {
            eprintln!("{} {pts:?}: xywhr {got:?}, Ultralytics {want:?}", c["kind"]);
        }
    }
    println!(
        "OpenCV {}: minAreaRect {rect_ok}/{n}, xyxyxyxy2xywhr {xywhr_ok}/{n} bit-exact",
        f["opencv"],
        n = cases.len()
    );
    assert_eq!(rect_ok, cases.len());
    assert_eq!(xywhr_ok, cases.len());
}

#[test]
fn canonical_xywhr_and_regularisation_match_the_geometry_fixture() {
    let Some(shared) = common::shared() else {
        return;
    };
    let f = json(&shared.join("fixtures/ultralytics/obb/nms_geometry_fixture.json"));
    let g = &f["xyxyxyxy2xywhr"];
    let rows = |k: &str| -> Vec<Vec<f64>> { g[k].as_array().unwrap().iter().map(nums).collect() };
    let (corners, xywhr, back, reg) = (
        rows("corners"),
        rows("xywhr"),
        rows("xywhr2xyxyxyxy_of_xywhr"),
        rows("regularize_rboxes_8.3_predict"),
    );
    // The fixture is rounded to 6 decimals: allow that plus float32 rounding of ~300 px values.
    let tol = |v: f64| 1e-6 + v.abs() * 2e-7;
    for i in 0..corners.len() {
        let pts: Vec<[f32; 2]> = corners[i]
            .chunks(2)
            .map(|p| [p[0] as f32, p[1] as f32])
            .collect();
        let b = xywhr_from_points(&pts);
        for (a, w) in b.iter().zip(&xywhr[i]) {
            assert!(
                (*a as f64 - w).abs() <= tol(*w),
                "row {i}: {b:?} vs {:?}",
                xywhr[i]
            );
        }
        let w5: [f32; 5] = std::array::from_fn(|k| xywhr[i][k] as f32);
        let c = xywhr_to_corners(&w5);
        for (a, w) in c.iter().flatten().zip(&back[i]) {
            assert!(
                (*a as f64 - w).abs() <= 1e-4,
                "row {i}: {c:?} vs {:?}",
                back[i]
            );
        }
        let r = regularize_rbox(&b); // from the unrounded canonical box
        for (a, w) in r.iter().zip(&reg[i]) {
            assert!(
                (*a as f64 - w).abs() <= tol(*w),
                "row {i}: {r:?} vs {:?}",
                reg[i]
            );
        }
    }
    println!(
        "{} corner sets: canonical xywhr, corners and regularisation agree",
        corners.len()
    );
}

/// A DOTA root with one labelled PNG (the fixture's), a PNG without labels and a JPEG.
fn dota_root(f: &Value, tag: &str) -> PathBuf {
    let root = tmp(tag);
    for p in [
        "images/train",
        "images/val",
        "labels/train_original",
        "labels/val_original",
    ] {
        std::fs::create_dir_all(root.join(p)).unwrap();
    }
    let hw = nums(&f["image_hw"]);
    let img = image::RgbImage::new(hw[1] as u32, hw[0] as u32);
    img.save(root.join(f["image"].as_str().unwrap())).unwrap();
    img.save(root.join("images/train/background.png")).unwrap();
    img.save(root.join("images/val/photo.jpg")).unwrap();
    std::fs::write(
        root.join("labels/val_original/photo.txt"),
        "1 1 2 1 2 2 1 2 ship 0\n",
    )
    .unwrap();
    let lines: Vec<&str> = f["original_label"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let stem = Path::new(f["image"].as_str().unwrap())
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    std::fs::write(
        root.join(format!("labels/train_original/{stem}.txt")),
        lines.join("\n") + "\n",
    )
    .unwrap();
    root
}

#[test]
fn dota_labels_convert_byte_for_byte() {
    let Some(shared) = common::shared() else {
        return;
    };
    let f = json(&shared.join("fixtures/ultralytics/obb/dota_convert_fixture.json"));
    let names: Vec<(String, u64)> = f["class_mapping"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    for (n, i) in &names {
        assert_eq!(ryolo::data::dota::DOTA_CLASSES[*i as usize], n);
    }
    let root = dota_root(&f, "dota");
    let rep = ryolo::data::convert::from_dota(&root).unwrap();
    let want: Vec<&str> = f["converted_label"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let got = std::fs::read_to_string(root.join("labels/train/otrain03.txt")).unwrap();
    assert_eq!(got, want.join("\n") + "\n");
    assert_eq!((rep.images, rep.boxes, rep.skipped), (1, 3, 2));
    assert!(!root.join("labels/val/photo.txt").exists());
    assert!(!root.join("labels/train/background.txt").exists());
    println!(
        "{} rows equal to Ultralytics' convert_dota_to_yolo_obb",
        want.len()
    );
}

#[test]
fn non_augmented_obb_batch_matches_the_loss_fixture() {
    let Some(shared) = common::shared() else {
        return;
    };
    let Some(py) = common::fixture_python() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/obb");
    let f = json(&fx.join("loss_fixture.json"));
    let root = tmp("obb-loss-batch");
    common::make_fixture_dataset(&py, &fx, "make_obb_dataset", &root);
    ryolo::data::convert::from_dota(&root).unwrap();
    let files = list_images(&[root.join("images/train")]).unwrap();
    let scan = scan_with("train", &files, 15, false, LabelFormat::Obb);
    let entries: Vec<_> = f["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            scan.entries
                .iter()
                .find(|e| e.im_file.file_name().unwrap().to_str() == n.as_str())
                .unwrap_or_else(|| panic!("{n} not in the scan"))
        })
        .collect();
    let b = ryolo::data::plain::plain_batch(&entries, 320).unwrap();
    // images
    let want = Tensor::read_npy(fx.join("loss_input_uint8.npy")).unwrap();
    let (n, h, w) = b.shape;
    let got = Tensor::from_slice(&b.pixels)
        .view([n as i64, h as i64, w as i64, 3])
        .permute([0, 3, 1, 2]);
    let d = (got.to_kind(Kind::Int) - want.to_kind(Kind::Int)).abs();
    for i in 0..n as i64 {
        let di = d.get(i);
        println!(
            "image {i}: {} values differ, by at most {}",
            di.gt(0).sum(Kind::Int64).int64_value(&[]),
            di.max().int64_value(&[])
        );
    }
    let diff = d.max().int64_value(&[]);
    assert_eq!(diff, 0, "letterboxed pixels differ by up to {diff}");
    // targets (the fixture's last row was appended by hand)
    let t = &b.targets;
    let rows = t.rboxes.len();
    let bi: Vec<i64> = nums(&f["targets_batch_idx"])
        .iter()
        .map(|&v| v as i64)
        .collect();
    let cls: Vec<i64> = nums(&f["targets_cls"]).iter().map(|&v| v as i64).collect();
    assert_eq!(rows + 1, bi.len());
    assert_eq!(t.batch_idx, bi[..rows]);
    assert_eq!(t.cls, cls[..rows]);
    let boxes: Vec<Vec<f64>> = f["targets_bboxes_xywhr_norm"]
        .as_array()
        .unwrap()
        .iter()
        .map(nums)
        .collect();
    let mut exact = 0;
    for (g, w) in t.rboxes.iter().zip(&boxes) {
        let w: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        assert!(
            g.iter().zip(&w).all(|(a, b)| (a - b).abs() <= 1e-6),
            "{g:?} vs {w:?}"
        );
        exact += g.iter().zip(&w).all(|(a, b)| a.to_bits() == b.to_bits()) as usize;
    }
    println!("OBB batch: pixels equal, {rows} targets, {exact}/{rows} bit-exact");
    assert_eq!(exact, rows);
}
