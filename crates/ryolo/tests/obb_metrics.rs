//! OBB metric parity: for both scenarios of `fixtures/ultralytics/obb/metrics_fixture.json`
//! (3 classes at 320×320, 4 classes at 256×320), every per-image ProbIoU matrix and correct flag,
//! every metric value and both confusion matrices (conf 0.01 and 0.25) must match Ultralytics
//! 8.4.190's `OBBValidator` + `OBBMetrics` + `ConfusionMatrix(task="obb")`.

mod common;
use ryolo::metrics::obb::{add_obb_image, confusion_obb, gt_rbox_px, ObbMetrics, RESULT_KEYS};
use ryolo::metrics::{ConfusionMatrix, Stats};
use serde_json::Value;

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

/// Whether our float32 ProbIoU `got` equals the fixture's 7-decimal `want` up to the libm
/// difference. ProbIoU = 1 − sqrt(1 − exp(−bd) + 1e-7): PyTorch's CPU build evaluates exp, log,
/// sin and cos with its vectorised routines (Intel MKL VML, not correctly rounded; even a
/// one-element tensor differs from libm by an ulp in 1-5 of 100 values), ours are libm's, and near
/// ProbIoU ≈ 1 one float32 ulp of exp(−bd) (6e-8) moves the result by 6e-8 / (2·(1 − ProbIoU)).
/// So compare `hd² = (1 − ProbIoU)²`: allowed 8 ulps of exp near 1 (4.8e-7), the 7-decimal
/// rounding of the fixture (2·hd·5e-8) and 1e-5 relative for the other float32 operations.
fn hd2_close(got: f32, want: f64) -> bool {
    let (g, w) = (1.0 - got as f64, 1.0 - want);
    (g * g - w * w).abs() <= 4.8e-7 + 2.0 * w * 5e-8 + 1e-5 * w * w
}

/// Runs one scenario and compares everything; returns the largest ProbIoU difference.
fn check_scenario(name: &str, sc: &Value) -> f64 {
    let nc = sc["nc"].as_u64().unwrap() as usize;
    let hw = classes(&sc["imgsz_hw"]);
    let img_hw = (hw[0], hw[1]);
    let want = &sc["summary"];
    let mut stats = Stats::default();
    let mut cms = [
        ConfusionMatrix::new(nc, 0.01),
        ConfusionMatrix::new(nc, 0.25),
    ];
    let (mut worst, mut n_matrices) = (0f64, 0);
    for (i, im) in sc["images"].as_array().unwrap().iter().enumerate() {
        let gt: Vec<([f32; 5], usize)> = rboxes(&im["gt_xywhr_norm"])
            .iter()
            .map(|b| gt_rbox_px(b, img_hw))
            .zip(classes(&im["gt_cls"]))
            .collect();
        let pred: Vec<([f32; 5], f32, usize)> = rboxes(&im["pred_xywhr_px"])
            .into_iter()
            .zip(f64s(&im["pred_conf"]))
            .zip(classes(&im["pred_cls"]))
            .map(|((b, c), k)| (b, c as f32, k))
            .collect();
        let before = stats.tp.len();
        let iou = add_obb_image(&mut stats, &pred, &gt);
        assert_eq!(stats.tp[before..], flags(&im["tp"]), "{name} image {i}: tp");
        match im.get("probiou_gt_by_pred") {
            Some(w) => {
                n_matrices += 1;
                let w = w.as_array().unwrap();
                assert_eq!(iou.len(), w.len());
                for (g, wr) in iou.iter().zip(w) {
                    let wr = f64s(wr);
                    assert_eq!(g.len(), wr.len());
                    for (a, b) in g.iter().zip(&wr) {
                        assert!(hd2_close(*a, *b), "{name} image {i}: ProbIoU {a} vs {b}");
                        worst = worst.max((*a as f64 - b).abs());
                    }
                }
            }
            None => assert!(iou.is_empty()),
        }
        for cm in &mut cms {
            confusion_obb(cm, &pred, &gt);
        }
    }
    assert!(n_matrices > 0);

    let m = ObbMetrics::compute(&stats, nc);
    assert_eq!(m.boxes.classes, classes(&want["ap_class_index"]));
    let rd = m.results_dict();
    let want_rd = want["results_dict"].as_object().unwrap();
    let mut want_keys: Vec<&str> = want_rd.keys().map(String::as_str).collect();
    let mut keys = RESULT_KEYS.to_vec();
    want_keys.sort();
    keys.sort();
    assert_eq!(want_keys, keys, "{name}: results_dict keys");
    for (key, v) in &rd {
        close(
            &format!("{name} {key}"),
            *v,
            want_rd[*key].as_f64().unwrap(),
        );
    }
    let b = &m.boxes;
    close_all(&format!("{name} p"), &b.p, &f64s(&want["p"]));
    close_all(&format!("{name} r"), &b.r, &f64s(&want["r"]));
    close_all(&format!("{name} f1"), &b.f1, &f64s(&want["f1"]));
    let ap50: Vec<f64> = b.ap.iter().map(|a| a[0]).collect();
    close_all(&format!("{name} ap50"), &ap50, &f64s(&want["ap50"]));
    let ap: Vec<f64> = b.ap.iter().map(|a| a.iter().sum::<f64>() / 10.0).collect();
    close_all(&format!("{name} ap50_95"), &ap, &f64s(&want["ap50_95"]));
    let all_ap = want["all_ap"].as_array().unwrap();
    assert_eq!(b.ap.len(), all_ap.len());
    for (i, row) in all_ap.iter().enumerate() {
        close_all(&format!("{name} all_ap[{i}]"), &b.ap[i], &f64s(row));
    }
    for (cm, key) in cms
        .iter()
        .zip(["confusion_matrix_conf0.01", "confusion_matrix_conf0.25"])
    {
        let w: Vec<Vec<f64>> = want[key].as_array().unwrap().iter().map(f64s).collect();
        assert_eq!(cm.m, w, "{name}: {key}");
    }
    println!(
        "{name}: {n_matrices} ProbIoU matrices (max diff {worst:e}, 7-decimal fixture), \
         fitness {} (want {}), confusion matrices equal",
        m.fitness(),
        want_rd["fitness"]
    );
    worst
}

#[test]
fn probiou_matching_metrics_and_confusion_match_ultralytics_8_4() {
    let Some(shared) = common::shared() else {
        return;
    };
    let p = shared.join("fixtures/ultralytics/obb/metrics_fixture.json");
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let scenarios = fx["scenarios"].as_object().unwrap();
    assert_eq!(scenarios.len(), 2);
    for (name, sc) in scenarios {
        check_scenario(name, sc);
    }
}

#[test]
fn console_table_and_empty_runs() {
    assert_eq!(
        ObbMetrics::table_header(),
        "                 Class     Images  Instances      Box(P          R      mAP50  mAP50-95)"
    );
    let m = ObbMetrics::compute(&Stats::default(), 2);
    assert_eq!(m.fitness(), 0.0);
    assert_eq!(m.maps(2), vec![0.0, 0.0]);
    assert_eq!(m.table_rows(&["a".into(), "b".into()], 0, true).len(), 2);
    // A background image with a prediction and an image whose ground truth is found exactly.
    let mut s = Stats::default();
    let b = [40.0f32, 30.0, 20.0, 10.0, 0.4];
    assert!(add_obb_image(&mut s, &[(b, 0.9, 1)], &[]).is_empty());
    let iou = add_obb_image(&mut s, &[(b, 0.8, 1)], &[(b, 1)]);
    assert!(iou[0][0] > 0.999);
    assert_eq!(s.tp, vec![[false; 10], [true; 10]]);
    let mut cm = ConfusionMatrix::new(2, 0.25);
    confusion_obb(&mut cm, &[(b, 0.8, 0), (b, 0.1, 1)], &[(b, 1)]);
    assert_eq!(cm.m[0][1], 1.0, "wrong-class match counted as confusion");
    assert_eq!(
        cm.m.iter().flatten().sum::<f64>(),
        1.0,
        "low-conf prediction ignored"
    );
    let m = ObbMetrics::compute(&s, 2);
    let rows = m.table_rows(&["a".into(), "b".into()], 2, true);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[1].trim_start().starts_with("b          1          1"));
}
