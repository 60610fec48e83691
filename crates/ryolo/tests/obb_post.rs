//! OBB predict post-processing parity: the synthetic raw output of
//! `fixtures/ultralytics/obb/postprocess_raw_output.npy` through rotated NMS (predict settings),
//! `scale_boxes(xywh=True)` to the original image, the `Results.obb` views and
//! `save_txt(save_conf=True)` must reproduce Ultralytics 8.4.190's anchors, rows, boxes and lines.

mod common;
use ryolo::ops::obb::{nms_rotated, obb_txt_line, scale_rboxes, xywhr_to_corners, xywhr_to_xyxy};
use ryolo::ops::NmsConfig;
use serde_json::Value;
use tch::Tensor;

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Compares float32 values with a nested JSON array written with `nd` decimals (rounding plus
/// float32 spacing allowed); returns the largest difference.
fn check_rounded(what: &str, got: &[f32], want: &Value, nd: i32) -> f64 {
    fn flat(v: &Value, out: &mut Vec<f64>) {
        match v.as_array() {
            Some(a) => a.iter().for_each(|x| flat(x, out)),
            None => out.push(v.as_f64().unwrap()),
        }
    }
    let mut w = Vec::new();
    flat(want, &mut w);
    assert_eq!(got.len(), w.len(), "{what}: count");
    let mut worst = 0f64;
    for (i, (g, w)) in got.iter().zip(&w).enumerate() {
        let tol = 0.5 * 10f64.powi(-nd) + (*g as f64).abs() * f32::EPSILON as f64;
        let d = (*g as f64 - w).abs();
        assert!(d <= tol, "{what}[{i}]: got {g}, want {w}");
        worst = worst.max(d);
    }
    worst
}

#[test]
fn rotated_nms_scaling_and_save_txt_match_ultralytics_8_4() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = shared.join("fixtures/ultralytics/obb");
    let fx: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("postprocess_fixture.json")).unwrap())
            .unwrap();
    let raw = Tensor::read_npy(d.join("postprocess_raw_output.npy")).unwrap();
    let size = raw.size();
    let (rows, anchors) = (size[1] as usize, size[2] as usize);
    assert_eq!(rows, 20);
    let pred: Vec<f32> = Vec::try_from(raw.view([-1])).unwrap();
    let hw = |k: &str| {
        let v = f64s(&fx[k]);
        (v[0] as usize, v[1] as usize)
    };
    let (input_hw, orig_hw) = (hw("input_hw"), hw("orig_hw"));
    let cfg = NmsConfig {
        conf: fx["conf"].as_f64().unwrap() as f32,
        iou: fx["iou"].as_f64().unwrap() as f32,
        multi_label: fx["multi_label"].as_bool().unwrap(),
        ..Default::default()
    };
    let kept = nms_rotated(&pred, rows - 5, anchors, &cfg).unwrap();
    let idx: Vec<u64> = kept.iter().map(|k| k.1 as u64).collect();
    let want_idx: Vec<u64> = f64s(&fx["keep_anchor_indices"])
        .iter()
        .map(|&v| v as u64)
        .collect();
    assert_eq!(idx, want_idx, "kept anchors");
    let nms_rows: Vec<f32> = kept
        .iter()
        .flat_map(|(r, _)| {
            let b = r.xywhr;
            [b[0], b[1], b[2], b[3], r.conf, r.cls as f32, b[4]]
        })
        .collect();
    let dr = check_rounded("nms rows", &nms_rows, &fx["nms_rows_letterbox"], 5);

    let mut dets: Vec<_> = kept.into_iter().map(|k| k.0).collect();
    scale_rboxes(&mut dets, input_hw, orig_hw);
    let xywhr: Vec<f32> = dets.iter().flat_map(|r| r.xywhr).collect();
    let dx = check_rounded("xywhr", &xywhr, &fx["obb_xywhr_orig"], 4);
    let corners: Vec<f32> = dets
        .iter()
        .flat_map(|r| xywhr_to_corners(&r.xywhr).concat())
        .collect();
    let dc = check_rounded("xyxyxyxy", &corners, &fx["obb_xyxyxyxy_orig"], 4);
    let xyxy: Vec<f32> = dets.iter().flat_map(|r| xywhr_to_xyxy(&r.xywhr)).collect();
    check_rounded("xyxy", &xyxy, &fx["obb_xyxy_orig"], 4);

    let lines: Vec<String> = dets
        .iter()
        .map(|r| obb_txt_line(r, orig_hw, true))
        .collect();
    let want: Vec<&str> = fx["save_txt_lines_save_conf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(lines, want, "save_txt lines");
    println!(
        "{} detections; max diff rows {dr:e} (5 dp), xywhr {dx:e}, corners {dc:e} (4 dp); lines equal",
        dets.len()
    );
}
