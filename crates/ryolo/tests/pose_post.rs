//! Pose predict post-processing parity: the synthetic raw output of
//! `fixtures/ultralytics/pose/postprocess_raw_output.npy` through NMS (predict settings), box and
//! keypoint scaling to the original image and `save_txt(save_conf=True)` must reproduce Ultralytics
//! 8.4.190's kept anchors, rows, boxes, keypoints and lines.

mod common;
use ryolo::ops::keypoints::{nms_pose, pose_txt_line, scale_pose};
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

/// Largest difference of `got` to `want` (a JSON array, nested arrays flattened) written with
/// `nd` decimals; fails when any value is off by more than the rounding (half a unit of the last
/// decimal, plus float32 spacing at that magnitude).
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
fn nms_scaling_and_save_txt_match_ultralytics_8_4() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = shared.join("fixtures/ultralytics/pose");
    let fx: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("postprocess_fixture.json")).unwrap())
            .unwrap();
    let raw = Tensor::read_npy(d.join("postprocess_raw_output.npy")).unwrap();
    let size = raw.size();
    assert_eq!(size[..2], [1, 56]);
    let anchors = size[2] as usize;
    let pred: Vec<f32> = Vec::try_from(raw.view([-1])).unwrap();
    let hw = |k: &str| {
        let v = f64s(&fx[k]);
        (v[0] as usize, v[1] as usize)
    };
    let (input_hw, orig_hw) = (hw("input_hw"), hw("orig_hw"));
    let cfg = NmsConfig {
        conf: fx["conf"].as_f64().unwrap() as f32,
        iou: fx["iou"].as_f64().unwrap() as f32,
        max_det: fx["max_det"].as_u64().unwrap() as usize,
        multi_label: fx["multi_label"].as_bool().unwrap(),
        ..Default::default()
    };
    let kept = nms_pose(&pred, 1, anchors, (17, 3), &cfg).unwrap();
    let anchors_kept: Vec<u64> = kept.iter().map(|k| k.1 as u64).collect();
    let want_anchors: Vec<u64> = fx["keep_anchor_indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(anchors_kept, want_anchors, "kept anchors");

    let rows: Vec<f32> = kept
        .iter()
        .flat_map(|(p, _)| {
            let mut r = p.det.xyxy.to_vec();
            r.extend([p.det.conf, p.det.cls as f32]);
            r.extend(&p.kpts);
            r
        })
        .collect();
    let r = check_rounded("nms rows", &rows, &fx["nms_rows_letterbox"], 5);

    let mut dets: Vec<_> = kept.into_iter().map(|k| k.0).collect();
    scale_pose(&mut dets, 3, input_hw, orig_hw);
    let boxes: Vec<f32> = dets.iter().flat_map(|p| p.det.xyxy).collect();
    let b = check_rounded("boxes", &boxes, &fx["boxes_xyxy_orig"], 4);
    let kpts: Vec<f32> = dets.iter().flat_map(|p| p.kpts.clone()).collect();
    let k = check_rounded("keypoints", &kpts, &fx["keypoints_orig"], 4);
    let (w0, h0) = (orig_hw.1 as f32, orig_hw.0 as f32);
    assert!(kpts
        .chunks(3)
        .all(|p| (0.0..=w0).contains(&p[0]) && (0.0..=h0).contains(&p[1])));

    let lines: Vec<String> = dets
        .iter()
        .map(|p| pose_txt_line(p, 3, orig_hw, true))
        .collect();
    let want_lines: Vec<&str> = fx["save_txt_lines_save_conf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(lines, want_lines, "save_txt lines");
    assert_eq!(lines[0].split(' ').count(), 5 + 51 + 1);
    println!(
        "{} detections; max diff rows {r:e} (5 dp), boxes {b:e}, keypoints {k:e} (4 dp); {} lines equal",
        dets.len(),
        lines.len()
    );
}
