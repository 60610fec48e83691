//! OBB geometry and rotated-NMS parity against `fixtures/ultralytics/obb/nms_geometry_fixture.json`
//! and `nms_raw_prediction.npy` (Ultralytics 8.4.190): ProbIoU (batch, element-wise, floor 0.01,
//! w↔h twins, tiny boxes), Fast-NMS kept indices (random boxes, the suppression chain), the rotated
//! `non_max_suppression` (predict, val multi-label, agnostic), `xywhr2xyxyxyxy` and
//! `regularize_rboxes`.

mod common;
use ryolo::ops::obb::{
    batch_probiou, fast_nms, nms_rotated, points_to_xywhr, probiou, regularize_rbox,
    xywhr_to_corners,
};
use ryolo::ops::NmsConfig;
use serde_json::Value;
use tch::Tensor;

fn fixture() -> Option<(std::path::PathBuf, Value)> {
    let d = common::shared()?.join("fixtures/ultralytics/obb");
    let fx = serde_json::from_str(
        &std::fs::read_to_string(d.join("nms_geometry_fixture.json")).unwrap(),
    )
    .unwrap();
    Some((d, fx))
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn rboxes(v: &Value) -> Vec<[f32; 5]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| std::array::from_fn(|i| b[i].as_f64().unwrap() as f32))
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// Largest difference of float32 values to a JSON list written with `nd` decimals (fails beyond
/// the rounding plus 1e-6).
fn check(what: &str, got: &[f32], want: &[f64], nd: i32) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: count");
    let tol = 0.5 * 10f64.powi(-nd) + 1e-6;
    let mut worst = 0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (*g as f64 - w).abs();
        assert!(d <= tol, "{what}[{i}]: got {g}, want {w} (diff {d:e})");
        worst = worst.max(d);
    }
    worst
}

#[test]
fn probiou_values_match() {
    let Some((_, fx)) = fixture() else {
        return;
    };
    let p = &fx["probiou"];
    let (b1, b2) = (rboxes(&p["boxes1"]), rboxes(&p["boxes2"]));
    let m: Vec<f32> = batch_probiou(&b1, &b2).concat();
    let want: Vec<f64> = p["batch_probiou_1x2"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(f64s)
        .collect();
    let d1 = check("batch_probiou", &m, &want, 7);
    let pair: Vec<f32> = b1
        .iter()
        .zip(&b2)
        .map(|(a, b)| probiou(a, b, 0.0))
        .collect();
    check("probiou", &pair, &f64s(&p["probiou_pairwise"]), 7);
    let pair: Vec<f32> = b1
        .iter()
        .zip(&b2)
        .map(|(a, b)| probiou(a, b, 0.01))
        .collect();
    check(
        "probiou floor 0.01",
        &pair,
        &f64s(&p["probiou_pairwise_floor0.01"]),
        7,
    );
    let sw = rboxes(&p["boxes1_swapped_wh_angle_plus_pi_2"]);
    let twins: Vec<f32> = b1
        .iter()
        .zip(&sw)
        .map(|(a, b)| probiou(a, b, 0.0))
        .collect();
    check("twins", &twins, &f64s(&p["probiou_boxes1_vs_swapped"]), 7);
    let tiny = rboxes(&p["tiny_pair"]);
    let t0 = probiou(&tiny[0], &tiny[1], 0.0);
    let t1 = probiou(&tiny[0], &tiny[1], 0.01);
    let dt = check(
        "tiny",
        &[t0, t1],
        &[
            p["tiny_probiou"].as_f64().unwrap(),
            p["tiny_probiou_floor0.01"].as_f64().unwrap(),
        ],
        9,
    );
    let chain = &fx["fast_nms_chain"];
    // The chain boxes of the fixture are float64 (make_fixtures.py adds a float64 offset), so only
    // its off-diagonal values are comparable with float32; an identical pair gives the float32
    // value of `probiou(a, a)` (0.9995318, as the w↔h twins above), not float64's 0.9995528.
    let cb = rboxes(&chain["boxes_xywhr"]);
    let cm = batch_probiou(&cb, &cb);
    let want: Vec<Vec<f64>> = chain["probiou_matrix"]
        .as_array()
        .unwrap()
        .iter()
        .map(f64s)
        .collect();
    for (i, row) in cm.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            if i == j {
                assert_eq!(*v, probiou(&cb[i], &cb[i], 0.0));
                assert!((*v as f64 - 0.9995318).abs() < 1e-7, "diagonal {v}");
            } else {
                check("chain matrix", &[*v], &[want[i][j]], 6);
            }
        }
    }
    println!("batch_probiou max diff {d1:e} (7 dp); tiny pair {t0} / {t1} (diff {dt:e})");
}

#[test]
fn fast_nms_keeps_the_same_indices() {
    let Some((_, fx)) = fixture() else {
        return;
    };
    let f = &fx["fast_nms"];
    let boxes = rboxes(&f["boxes_xywhr"]);
    let scores: Vec<f32> = f64s(&f["scores"]).iter().map(|&s| s as f32).collect();
    for thr in ["0.7", "0.45", "0.3"] {
        let keep = fast_nms(&boxes, &scores, thr.parse().unwrap());
        assert_eq!(
            keep,
            usizes(&f[format!("keep_iou{thr}")]),
            "threshold {thr}"
        );
        println!("Fast-NMS at {thr}: {} of {} kept", keep.len(), boxes.len());
    }
    let c = &fx["fast_nms_chain"];
    let boxes = rboxes(&c["boxes_xywhr"]);
    let scores: Vec<f32> = f64s(&c["scores"]).iter().map(|&s| s as f32).collect();
    let thr = c["iou_thres"].as_f64().unwrap() as f32;
    assert_eq!(fast_nms(&boxes, &scores, thr), usizes(&c["keep_fast_nms"]));
    assert_ne!(
        fast_nms(&boxes, &scores, thr),
        usizes(&c["keep_if_greedy_nms_were_used"])
    );
}

#[test]
fn rotated_non_max_suppression_matches() {
    let Some((d, fx)) = fixture() else {
        return;
    };
    let n = &fx["non_max_suppression"];
    let raw = Tensor::read_npy(d.join("nms_raw_prediction.npy")).unwrap();
    let size = raw.size();
    let (rows, anchors) = (size[1] as usize, size[2] as usize);
    let nc = rows - 5;
    let pred: Vec<f32> = Vec::try_from(raw.view([-1])).unwrap();
    for case in ["predict", "val", "predict_agnostic"] {
        let c = &n[case];
        let cfg = NmsConfig {
            conf: c["conf"].as_f64().unwrap() as f32,
            iou: c["iou"].as_f64().unwrap() as f32,
            multi_label: c["multi_label"].as_bool().unwrap(),
            agnostic: c["agnostic"].as_bool().unwrap(),
            ..Default::default()
        };
        let kept = nms_rotated(&pred, nc, anchors, &cfg).unwrap();
        let idx: Vec<usize> = kept.iter().map(|k| k.1).collect();
        assert_eq!(idx, usizes(&c["keep_anchor_idx"]), "{case}: kept anchors");
        let got: Vec<f32> = kept
            .iter()
            .flat_map(|(r, _)| {
                let b = r.xywhr;
                [b[0], b[1], b[2], b[3], r.conf, r.cls as f32, b[4]]
            })
            .collect();
        let want: Vec<f64> = c["rows_xywh_conf_cls_angle"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(f64s)
            .collect();
        let w = check(case, &got, &want, 6);
        println!("{case}: {} kept, rows max diff {w:e} (6 dp)", kept.len());
    }
}

#[test]
fn corners_xywhr_and_regularize_match() {
    let Some((_, fx)) = fixture() else {
        return;
    };
    let x = &fx["xyxyxyxy2xywhr"];
    // Corners -> canonical xywhr (minimum-area rectangle). OpenCV's minAreaRect works in float32,
    // so centres and sides of boxes up to 320 px carry ~1e-5 px of its rounding: 1e-4 allowed.
    let sets: Vec<Vec<[f32; 2]>> = x["corners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            f64s(c)
                .chunks(2)
                .map(|p| [p[0] as f32, p[1] as f32])
                .collect()
        })
        .collect();
    let boxes: Vec<[f32; 5]> = sets.iter().map(|p| points_to_xywhr(p).unwrap()).collect();
    let want = rboxes(&x["xywhr"]);
    let mut worst = 0f64;
    for (i, (g, w)) in boxes.iter().zip(&want).enumerate() {
        for j in 0..5 {
            let d = (g[j] as f64 - w[j] as f64).abs();
            assert!(d <= 1e-4, "box {i} value {j}: got {g:?}, want {w:?}");
            worst = worst.max(d);
        }
    }
    assert!(points_to_xywhr(&[]).is_none());
    // xywhr -> corners from the fixture's 6-decimal xywhr: the input rounding (5e-7 on x, y, w, h
    // and θ) moves a corner by up to 5e-7 + (w + h)/2·5e-7, the output rounding adds 5e-7 and
    // float32 a few ulps.
    let want_c: Vec<Vec<f64>> = x["xywhr2xyxyxyxy_of_xywhr"]
        .as_array()
        .unwrap()
        .iter()
        .map(f64s)
        .collect();
    let mut wc = 0f64;
    for (b, wb) in want.iter().zip(&want_c) {
        let got = xywhr_to_corners(b).concat();
        for (g, w) in got.iter().zip(wb) {
            let tol = 1e-6 + (b[2] + b[3]) as f64 / 2.0 * 5e-7 + 4.0 * w.abs() * 1.2e-7;
            let d = (*g as f64 - w).abs();
            assert!(
                d <= tol,
                "corners of {b:?}: {g} vs {w} (diff {d:e}, allowed {tol:e})"
            );
            wc = wc.max(d);
        }
    }
    assert_eq!(want.len(), want_c.len());
    // regularize_rboxes of the full-precision boxes (the rounded ones sit exactly on the π/2 edge).
    let reg: Vec<f32> = boxes.iter().flat_map(regularize_rbox).collect();
    let want_r: Vec<f64> = x["regularize_rboxes_8.3_predict"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(f64s)
        .collect();
    for (i, (g, w)) in reg.iter().zip(&want_r).enumerate() {
        assert!((*g as f64 - w).abs() <= 1e-4, "regularize[{i}]: {g} vs {w}");
    }
    assert_eq!(reg.len(), want_r.len());
    println!(
        "{} point sets: xywhr max diff {worst:e}, corners {wc:e}",
        boxes.len()
    );
}
