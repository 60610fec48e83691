//! `metric=coco` reproduces pycocotools' COCOeval on the fixture predictions. The reference numbers
//! were produced once by pycocotools 2.0 (numpy 2.4) with tests/tools/coco_reference.py.

mod common;
use ryolo::metrics::coco::{evaluate, CocoDt, CocoGt, STAT_NAMES};

const PYCOCOTOOLS: [f64; 12] = [
    0.3611250976576352,
    0.5118850839039855,
    0.4248293143869864,
    0.34566277283919966,
    0.38623230837721795,
    0.5669966996699669,
    0.618383340797134,
    0.7323518435587402,
    0.7347999701447978,
    0.6444444444444445,
    0.7535800677310112,
    0.6333333333333333,
];

#[test]
fn matches_pycocotools_on_brain_tumor_val() {
    let Some(shared) = common::shared() else {
        return;
    };
    let root = shared.join("datasets/brain-tumor/valid");
    let images = ryolo::data::list_images(&[root.join("images")]).unwrap();
    let mut ids = Vec::new();
    let mut gts = Vec::new();
    for im in &images {
        let stem = im.file_stem().unwrap().to_str().unwrap().to_string();
        let dims = image::image_dimensions(im).unwrap();
        let (w, h) = (dims.0 as f64, dims.1 as f64);
        if let Ok(text) = std::fs::read_to_string(root.join("labels").join(format!("{stem}.txt"))) {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let v: Vec<f64> = line
                    .split_whitespace()
                    .map(|x| x.parse().unwrap())
                    .collect();
                let bbox = [
                    (v[1] - v[3] / 2.0) * w,
                    (v[2] - v[4] / 2.0) * h,
                    v[3] * w,
                    v[4] * h,
                ];
                gts.push(CocoGt {
                    image: stem.clone(),
                    category: v[0] as i64 + 1,
                    bbox,
                    area: bbox[2] * bbox[3],
                    crowd: false,
                });
            }
        }
        ids.push(stem);
    }
    let preds: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared.join("fixtures/ultralytics/bt_val_predictions.json"))
            .unwrap(),
    )
    .unwrap();
    let dts: Vec<CocoDt> = preds
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let b: Vec<f64> = p["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            CocoDt {
                image: p["image_id"].as_str().unwrap().to_string(),
                category: p["category_id"].as_i64().unwrap(),
                bbox: [b[0], b[1], b[2], b[3]],
                score: p["score"].as_f64().unwrap(),
            }
        })
        .collect();
    let stats = evaluate(&ids, &gts, &dts);
    for (i, name) in STAT_NAMES.iter().enumerate() {
        println!(
            "{name}: ours {:.12} pycocotools {:.12}",
            stats[i], PYCOCOTOOLS[i]
        );
        assert!(
            (stats[i] - PYCOCOTOOLS[i]).abs() < 1e-12,
            "{name}: {} vs {}",
            stats[i],
            PYCOCOTOOLS[i]
        );
    }
}
