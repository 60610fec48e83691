//! What a validation run writes: COCO-format predictions (`save_json`), pycocotools-exact stats
//! (`metric=coco`) and YOLO label files (`save_txt`).

use super::ValResult;
use crate::data::LabelEntry;
use anyhow::Result;
use std::path::Path;

/// Detections of a run in COCO results format (`image_id` = `int(stem)` for an all-digit stem,
/// else the stem, `category_id` = class + 1,
/// `bbox` = `[x, y, w, h]` rounded to 3 decimals, `score` to 5), as Ultralytics' `save_json`.
pub fn predictions_json(entries: &[LabelEntry], r: &ValResult) -> serde_json::Value {
    let round = |v: f64, d: i32| (v * 10f64.powi(d)).round() / 10f64.powi(d);
    let mut out = Vec::new();
    for (k, (i, dets)) in r.predictions.iter().enumerate() {
        let e = &entries[*i];
        let stem = e
            .im_file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let file = e
            .im_file
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let masks = r.mask_outputs.get(k);
        for (j, (b, conf, cls)) in dets.iter().enumerate() {
            let b = b.map(|v| v as f64);
            let mut v = serde_json::json!({
                "image_id": super::obb_out::ImageId::of(&stem).json(), "file_name": file, "category_id": cls + 1,
                "bbox": [round(b[0], 3), round(b[1], 3), round(b[2] - b[0], 3), round(b[3] - b[1], 3)],
                "score": round(*conf as f64, 5),
            });
            if let Some((h, w, counts)) = masks.and_then(|m| m.get(j)).and_then(|m| m.rle.clone()) {
                v["segmentation"] = serde_json::json!({"size": [h, w], "counts": counts});
            }
            out.push(v);
        }
    }
    serde_json::Value::Array(out)
}

/// pycocotools-exact COCOeval numbers (`metric=coco`) of a run made with `collect`.
pub fn coco_stats(entries: &[LabelEntry], r: &ValResult) -> crate::metrics::coco::CocoStats {
    use crate::metrics::coco::{evaluate, CocoDt, CocoGt};
    let stem = |e: &LabelEntry| {
        e.im_file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default()
    };
    let ids: Vec<String> = entries.iter().map(stem).collect();
    let mut gts = Vec::new();
    for e in entries {
        let (h, w) = (e.shape.0 as f64, e.shape.1 as f64);
        for (b, c) in e.boxes.iter().zip(&e.cls) {
            let (cx, cy, bw, bh) = (b[0] as f64, b[1] as f64, b[2] as f64, b[3] as f64);
            let bbox = [(cx - bw / 2.0) * w, (cy - bh / 2.0) * h, bw * w, bh * h];
            gts.push(CocoGt {
                image: stem(e),
                category: *c as i64 + 1,
                bbox,
                area: bbox[2] * bbox[3],
                crowd: false,
            });
        }
    }
    let mut dts = Vec::new();
    for (i, dets) in &r.predictions {
        for (b, conf, cls) in dets {
            let b = b.map(|v| v as f64);
            dts.push(CocoDt {
                image: ids[*i].clone(),
                category: *cls as i64 + 1,
                bbox: [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                score: *conf as f64,
            });
        }
    }
    evaluate(&ids, &gts, &dts)
}

/// `labels/<stem>.txt` for every validated image with detections (Ultralytics writes no file for
/// none): `cls cx cy w h` rows (segment: polygons), normalised, `conf` last with `save_conf`.
pub fn write_labels(
    dir: &Path,
    entries: &[LabelEntry],
    r: &ValResult,
    save_conf: bool,
) -> Result<()> {
    let ldir = dir.join("labels");
    crate::util::fsio::create_dir_all(&ldir)?;
    for (k, (i, dets)) in r.predictions.iter().enumerate() {
        let e = &entries[*i];
        let (h, w) = (e.shape.0 as f64, e.shape.1 as f64);
        let text = match r.mask_outputs.get(k) {
            // Segment: polygon lines, the confidence last with `save_conf` (as Ultralytics' val).
            Some(masks) => dets
                .iter()
                .zip(masks)
                .filter_map(|((_, conf, cls), m)| {
                    crate::ops::contour::segment_txt_line(
                        *cls,
                        &m.polygon,
                        save_conf.then_some(*conf),
                    )
                })
                .map(|l| l + "\n")
                .collect(),
            None => {
                crate::ops::yolo_txt(dets.iter().map(|(b, c, cl)| (*b, *c, *cl)), w, h, save_conf)
            }
        };
        let stem = e
            .im_file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if !text.is_empty() {
            crate::util::fsio::write(ldir.join(format!("{stem}.txt")), text)?;
        }
    }
    Ok(())
}
