//! Metric parity: Ultralytics' own val predictions (bt_val_predictions.json) plus the brain-tumor val
//! labels must give the metrics Ultralytics printed (bt_val_metrics.json) within 1e-3.

mod common;
use ryolo::data::{labels::verify, list_images};
use ryolo::metrics::{DetMetrics, Stats};
use std::collections::HashMap;

#[test]
fn bt_metrics_from_ultralytics_predictions() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics");
    let preds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("bt_val_predictions.json")).unwrap())
            .unwrap();
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("bt_val_metrics.json")).unwrap())
            .unwrap();
    let mut by_image: HashMap<String, Vec<([f32; 4], f32, usize)>> = HashMap::new();
    for p in preds.as_array().unwrap() {
        let b: Vec<f32> = p["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        // category_id is 1-based for non-COCO datasets (Ultralytics' class_map).
        let cls = p["category_id"].as_u64().unwrap() as usize - 1;
        by_image
            .entry(p["image_id"].as_str().unwrap().to_string())
            .or_default()
            .push((
                [b[0], b[1], b[0] + b[2], b[1] + b[3]],
                p["score"].as_f64().unwrap() as f32,
                cls,
            ));
    }
    let images = list_images(&[shared.join("datasets/brain-tumor/valid/images")]).unwrap();
    assert_eq!(images.len(), 223);
    let mut stats = Stats::default();
    for im in &images {
        let e = verify(im, 2, false).entry.expect("valid image");
        let (h, w) = (e.shape.0 as f32, e.shape.1 as f32);
        let gt: Vec<([f32; 4], usize)> = e
            .boxes
            .iter()
            .zip(&e.cls)
            .map(|(b, &c)| {
                (
                    [
                        (b[0] - b[2] / 2.0) * w,
                        (b[1] - b[3] / 2.0) * h,
                        (b[0] + b[2] / 2.0) * w,
                        (b[1] + b[3] / 2.0) * h,
                    ],
                    c as usize,
                )
            })
            .collect();
        let mut pred = by_image
            .remove(im.file_stem().unwrap().to_str().unwrap())
            .unwrap_or_default();
        pred.sort_by(|a, b| b.1.total_cmp(&a.1));
        stats.add_image(&pred, &gt);
    }
    assert!(
        by_image.is_empty(),
        "predictions for unknown images: {:?}",
        by_image.keys()
    );
    let m = DetMetrics::compute(&stats);
    let got = [
        ("map50_95", m.map()),
        ("map50", m.map50()),
        ("map75", m.map75()),
        ("mp", m.mp()),
        ("mr", m.mr()),
    ];
    for (k, v) in got {
        let w = want[k].as_f64().unwrap();
        println!(
            "{k}: ours {v:.5} ultralytics {w:.5} diff {:.2e}",
            (v - w).abs()
        );
        assert!((v - w).abs() <= 1e-3, "{k}: {v} vs {w}");
    }
    for c in 0..2 {
        let w = want["ap50_95_by_class_index"][c.to_string()]
            .as_f64()
            .unwrap();
        let v = m.class_map(c).unwrap();
        println!("class {c} mAP50-95: ours {v:.5} ultralytics {w:.5}");
        assert!((v - w).abs() <= 1e-3);
    }
}
