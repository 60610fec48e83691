//! Pose metric parity: for the three scenarios of `fixtures/ultralytics/pose/metrics_fixture.json`
//! (COCO σ, 4×2 keypoints with 2 classes, custom `kpt_oks_sigmas`), every per-image OKS and box IoU
//! matrix, every box and pose correct flag, and every Box/Pose metric must match Ultralytics
//! 8.4.190's `PoseValidator._process_batch` + `PoseMetrics`.

mod common;
use ryolo::metrics::pose::{
    gt_box_px, gt_kpts_px, oks_sigmas, PoseImage, PoseMetrics, PoseStats, RESULT_KEYS,
};
use ryolo::metrics::{box_iou, DetMetrics};
use serde_json::Value;

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn f32_rows<const N: usize>(v: &Value) -> Vec<[f32; N]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| std::array::from_fn(|i| b[i].as_f64().unwrap() as f32))
        .collect()
}

fn classes(v: &Value) -> Vec<usize> {
    f64s(v).into_iter().map(|c| c as usize).collect()
}

fn flags(v: &Value) -> Vec<[bool; 10]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| std::array::from_fn(|t| r[t].as_i64().unwrap() == 1))
        .collect()
}

/// Largest difference of a float32 matrix to one written with 7 decimals (so at most 5e-8 off).
fn matrix_diff(got: &[Vec<f32>], want: &Value) -> f64 {
    let want = want.as_array().unwrap();
    assert_eq!(got.len(), want.len(), "matrix rows");
    let mut worst = 0f64;
    for (g, w) in got.iter().zip(want) {
        let w = f64s(w);
        assert_eq!(g.len(), w.len(), "matrix columns");
        for (a, b) in g.iter().zip(&w) {
            worst = worst.max((*a as f64 - b).abs());
        }
    }
    worst
}

fn close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9,
        "{what}: got {got}, want {want} (diff {:e})",
        (got - want).abs()
    );
}

fn close_all(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        close(&format!("{what}[{i}]"), *g, *w);
    }
}

/// Per-class p, r, f1, AP50, AP50-95 and all_ap of one side against the JSON block.
fn check_side(tag: &str, m: &DetMetrics, want: &Value) {
    close_all(&format!("{tag} p"), &m.p, &f64s(&want["p"]));
    close_all(&format!("{tag} r"), &m.r, &f64s(&want["r"]));
    close_all(&format!("{tag} f1"), &m.f1, &f64s(&want["f1"]));
    let ap50: Vec<f64> = m.ap.iter().map(|a| a[0]).collect();
    close_all(&format!("{tag} ap50"), &ap50, &f64s(&want["ap50"]));
    let ap: Vec<f64> = m.ap.iter().map(|a| a.iter().sum::<f64>() / 10.0).collect();
    close_all(&format!("{tag} ap50_95"), &ap, &f64s(&want["ap50_95"]));
    let all_ap = want["all_ap"].as_array().unwrap();
    assert_eq!(m.ap.len(), all_ap.len(), "{tag} all_ap rows");
    for (i, row) in all_ap.iter().enumerate() {
        close_all(&format!("{tag} all_ap[{i}]"), &m.ap[i], &f64s(row));
    }
}

/// Runs one scenario through [`PoseStats`] / [`PoseMetrics`] and compares everything.
fn check_scenario(name: &str, sc: &Value) {
    let ks = classes(&sc["kpt_shape"]);
    let (k, d) = (ks[0], ks[1]);
    let nc = sc["nc"].as_u64().unwrap() as usize;
    let hw = classes(&sc["imgsz_hw"]);
    let img_hw = (hw[0], hw[1]);
    let custom = sc["kpt_oks_sigmas"]
        .as_array()
        .map(|_| f64s(&sc["kpt_oks_sigmas"]));
    let sigma = oks_sigmas((k, d), custom.as_deref()).unwrap();
    let want = &sc["summary"];
    let want_sigma = f64s(&want["sigma"]);
    for (s, w) in sigma.iter().zip(&want_sigma) {
        assert!((*s as f64 - w).abs() < 5e-9, "{name}: sigma {s} vs {w}");
    }
    assert_eq!(sigma.len(), want_sigma.len());

    let mut stats = PoseStats::default();
    let (mut worst_oks, mut worst_iou, mut n_matrices) = (0f64, 0f64, 0);
    for (i, im) in sc["images"].as_array().unwrap().iter().enumerate() {
        let gt_boxes: Vec<[f32; 4]> = f32_rows::<4>(&im["gt_bboxes_cxcywh_norm"])
            .iter()
            .map(|b| gt_box_px(b, img_hw))
            .collect();
        let gt: Vec<([f32; 4], usize)> = gt_boxes
            .iter()
            .copied()
            .zip(classes(&im["gt_cls"]))
            .collect();
        let gt_kpts: Vec<Vec<[f32; 3]>> = im["gt_keypoints_xyv_norm"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| gt_kpts_px(&f32_rows::<3>(o), img_hw))
            .collect();
        let pred: Vec<([f32; 4], f32, usize)> = f32_rows::<4>(&im["pred_bboxes_xyxy_px"])
            .into_iter()
            .zip(f64s(&im["pred_conf"]))
            .zip(classes(&im["pred_cls"]))
            .map(|((b, c), k)| (b, c as f32, k))
            .collect();
        let pred_kpts: Vec<Vec<[f32; 2]>> = im["pred_keypoints_px"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                assert_eq!(o[0].as_array().unwrap().len(), d);
                f32_rows::<2>(o)
            })
            .collect();
        let before = stats.tp_p.len();
        let image = PoseImage {
            pred: &pred,
            pred_kpts: &pred_kpts,
            gt: &gt,
            gt_kpts: &gt_kpts,
        };
        let oks = stats.add_image(&image, &sigma).unwrap();
        assert_eq!(
            stats.boxes.tp[before..],
            flags(&im["tp_box"]),
            "{name} image {i}: tp_box"
        );
        assert_eq!(
            stats.tp_p[before..],
            flags(&im["tp_pose"]),
            "{name} image {i}: tp_pose"
        );
        if im.get("oks_gt_by_pred").is_some() {
            n_matrices += 1;
            // PyTorch's CPU build evaluates `exp` with its vectorised routine (Intel MKL VML, not
            // correctly rounded: 1-5 in 100 float32 results differ from libm by an ulp) and sums
            // the 17 terms in its own order; ours uses libm `expf` and a serial sum, so values may
            // differ by a few float32 ulps (≤ 5e-7) on top of the 7-decimal rounding. The correct
            // flags and every metric below must still be equal.
            let od = matrix_diff(&oks, &im["oks_gt_by_pred"]);
            assert!(od <= 5e-7, "{name} image {i}: OKS off by {od:e}");
            let pb: Vec<[f32; 4]> = pred.iter().map(|p| p.0).collect();
            let id = matrix_diff(&box_iou(&gt_boxes, &pb), &im["box_iou_gt_by_pred"]);
            assert!(id <= 6e-8, "{name} image {i}: box IoU off by {id:e}");
            (worst_oks, worst_iou) = (worst_oks.max(od), worst_iou.max(id));
        } else {
            assert!(oks.is_empty() && (gt.is_empty() || pred.is_empty()));
        }
    }
    assert!(n_matrices > 0, "{name}: no image with both sides");

    let m = PoseMetrics::compute(&stats, nc);
    assert_eq!(m.boxes.classes, classes(&want["ap_class_index"]));
    let rd = m.results_dict();
    let want_rd = want["results_dict"].as_object().unwrap();
    let mut want_keys: Vec<&str> = want_rd.keys().map(String::as_str).collect();
    let mut keys = RESULT_KEYS.to_vec();
    want_keys.sort();
    keys.sort();
    assert_eq!(want_keys, keys, "{name}: results_dict keys");
    assert_eq!(rd.iter().map(|kv| kv.0).collect::<Vec<_>>(), RESULT_KEYS);
    let mut worst = 0f64;
    for (key, v) in &rd {
        let w = want_rd[*key].as_f64().unwrap();
        close(&format!("{name} {key}"), *v, w);
        worst = worst.max((v - w).abs());
    }
    check_side(&format!("{name} box"), &m.boxes, &want["box"]);
    check_side(&format!("{name} pose"), &m.pose, &want["pose"]);
    close_all(
        &format!("{name} maps"),
        &m.maps(nc),
        &f64s(&want["maps_box_plus_pose"]),
    );
    println!(
        "{name}: {n_matrices} matrices, OKS max diff {worst_oks:e}, box IoU {worst_iou:e} \
         (7-decimal fixture); results_dict max diff {worst:e}; fitness {} (want {})",
        m.fitness(),
        want_rd["fitness"]
    );
}

#[test]
fn oks_tp_flags_and_pose_metrics_match_ultralytics_8_4() {
    let Some(shared) = common::shared() else {
        return;
    };
    let p = shared.join("fixtures/ultralytics/pose/metrics_fixture.json");
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let scenarios = fx["scenarios"].as_object().unwrap();
    assert_eq!(scenarios.len(), 3);
    for (name, sc) in scenarios {
        check_scenario(name, sc);
    }
}

#[test]
fn console_table_and_empty_runs() {
    assert_eq!(
        PoseMetrics::table_header(),
        "                 Class     Images  Instances      Box(P          R      mAP50  mAP50-95)     Pose(P          R      mAP50  mAP50-95)"
    );
    // No labels: the measured all-zero row of spec/pose.md §6 plus the warning.
    let m = PoseMetrics::compute(&PoseStats::default(), 1);
    assert_eq!(m.fitness(), 0.0);
    let rows = m.table_rows(&["person".into()], 6, true);
    assert_eq!(rows.len(), 2);
    assert!(rows[0].starts_with("                   all          6          0          0"));
    // Background image with a prediction; object without labelled keypoints never matches by OKS.
    let mut s = PoseStats::default();
    let sigma = oks_sigmas((2, 3), None).unwrap();
    let pred = [([0.0f32, 0.0, 10.0, 10.0], 0.9f32, 0usize)];
    let pk = vec![vec![[2.0f32, 2.0], [8.0, 8.0]]];
    let empty = PoseImage {
        pred: &pred,
        pred_kpts: &pk,
        gt: &[],
        gt_kpts: &[],
    };
    assert!(s.add_image(&empty, &sigma).unwrap().is_empty());
    let gt = [([0.0f32, 0.0, 10.0, 10.0], 0usize)];
    let gk = vec![vec![[2.0f32, 2.0, 0.0], [8.0, 8.0, 0.0]]];
    let unlabelled = PoseImage {
        gt: &gt,
        gt_kpts: &gk,
        ..empty
    };
    assert_eq!(s.add_image(&unlabelled, &sigma).unwrap(), vec![vec![0.0]]);
    assert_eq!(s.tp_p, vec![[false; 10]; 2]);
    assert_eq!(s.boxes.tp, vec![[false; 10], [true; 10]]);
    let m = PoseMetrics::compute(&s, 1);
    assert_eq!(m.pose.map(), 0.0);
    assert!((m.fitness() - m.boxes.map()).abs() < 1e-12);
    // Mismatched keypoint counts are an error, not a panic.
    let bad = PoseImage {
        pred_kpts: &[],
        ..empty
    };
    assert!(s.add_image(&bad, &sigma).is_err());
}
