//! Segmentation metric parity: from the synthetic boxes and masks of `metrics_fixture.json`
//! (6 images, 3 classes, masks 80×80), the box and mask correct flags and every Box/Mask metric must
//! match Ultralytics 8.4.190's `SegmentationValidator._process_batch` + `SegmentMetrics`.

mod common;
use ryolo::metrics::segment::{mask_iou, SegMetrics, SegStats, RESULT_KEYS};
use ryolo::metrics::DetMetrics;
use serde_json::Value;
use tch::Tensor;

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn boxes(v: &Value) -> Vec<[f32; 4]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| std::array::from_fn(|i| b[i].as_f64().unwrap() as f32))
        .collect()
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
        (got - want).abs() <= 1e-6,
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

/// Per-class p, r, f1, AP50, AP50-95, all_ap and mAP75 of one side against the JSON block.
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
    close(
        &format!("{tag} map75"),
        m.map75(),
        want["map75"].as_f64().unwrap(),
    );
}

#[test]
fn tp_matrices_and_metrics_match_ultralytics_8_4() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = shared.join("fixtures/ultralytics/segment");
    let fx: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("metrics_fixture.json")).unwrap())
            .unwrap();
    let want = &fx["ultralytics_8_4_190"];
    let hw = usizes(&fx["mask_shape_hw"]);
    let npix = hw[0] * hw[1];
    let read = |name: &str| -> Vec<u8> {
        let t = Tensor::read_npy(d.join(fx[name].as_str().unwrap())).unwrap();
        assert_eq!(t.size()[1..], [hw[0] as i64, hw[1] as i64]);
        Vec::try_from(t.view([-1])).unwrap()
    };
    let (gt_masks, pred_masks) = (read("gt_masks_file"), read("pred_masks_file"));
    let (mut gi, mut pi) = (0, 0);
    let mut stats = SegStats::default();
    for (im, (img, corr)) in fx["images"]
        .as_array()
        .unwrap()
        .iter()
        .zip(want["per_image_correct"].as_array().unwrap())
        .enumerate()
    {
        let gt: Vec<([f32; 4], usize)> = boxes(&img["gt_boxes"])
            .into_iter()
            .zip(usizes(&img["gt_cls"]))
            .collect();
        let conf = f64s(&img["pred_conf"]);
        let pred: Vec<([f32; 4], f32, usize)> = boxes(&img["pred_boxes"])
            .into_iter()
            .zip(conf)
            .zip(usizes(&img["pred_cls"]))
            .map(|((b, c), k)| (b, c as f32, k))
            .collect();
        let (ng, np) = (gt.len(), pred.len());
        let gm = &gt_masks[gi * npix..(gi + ng) * npix];
        let pm = &pred_masks[pi * npix..(pi + np) * npix];
        (gi, pi) = (gi + ng, pi + np);
        let before = stats.boxes.tp.len();
        stats.add_image(&pred, pm, &gt, gm, npix);
        assert_eq!(
            stats.boxes.tp[before..],
            flags(&corr["tp_box"]),
            "image {im}: tp"
        );
        assert_eq!(
            stats.tp_m[before..],
            flags(&corr["tp_mask"]),
            "image {im}: tp_m"
        );
    }
    assert_eq!((gi, pi), (gt_masks.len() / npix, pred_masks.len() / npix));

    let nc = fx["names"].as_object().unwrap().len();
    let m = SegMetrics::compute(&stats, nc);
    assert_eq!(m.boxes.classes, usizes(&want["ap_class_index"]));
    assert_eq!(m.nt_per_class, usizes(&want["nt_per_class"]));
    assert_eq!(m.nt_per_image, usizes(&want["nt_per_image"]));
    close_all(
        "mean_results",
        &m.mean_results(),
        &f64s(&want["mean_results"]),
    );
    let rd = m.results_dict();
    let want_rd = want["results_dict"].as_object().unwrap();
    let want_keys: Vec<&str> = want_rd.keys().map(String::as_str).collect();
    let mut sorted_keys = RESULT_KEYS.to_vec();
    sorted_keys.sort(); // serde_json's map is ordered by key; the order itself is checked below
    assert_eq!(want_keys, sorted_keys);
    assert_eq!(rd.iter().map(|kv| kv.0).collect::<Vec<_>>(), RESULT_KEYS);
    for (k, v) in &rd {
        close(k, *v, want_rd[*k].as_f64().unwrap());
    }
    close("fitness", m.fitness(), want["fitness"].as_f64().unwrap());
    check_side("box", &m.boxes, &want["box"]);
    check_side("mask", &m.masks, &want["mask"]);
    close_all("maps", &m.maps(nc), &f64s(&want["maps"]));
    let mut got = m.mean_results().to_vec();
    got.push(m.fitness());
    got.extend(m.maps(nc));
    let mut exp = f64s(&want["mean_results"]);
    exp.push(want["fitness"].as_f64().unwrap());
    exp.extend(f64s(&want["maps"]));
    let worst = got
        .iter()
        .zip(&exp)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max);
    println!("results {got:?}; largest difference to 8.4.190 (means, fitness, maps): {worst:e}");

    // Console table (spec §7.3), values from the numbers above, formatted as Python's `%11.3g`.
    assert_eq!(
        SegMetrics::table_header(),
        "                 Class     Images  Instances      Box(P          R      mAP50  mAP50-95)     Mask(P          R      mAP50  mAP50-95)"
    );
    let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    assert_eq!(
        m.table_rows(&names, 6, true),
        [
            "                   all          6         12      0.834      0.763      0.781      0.468      0.708      0.661      0.635      0.311",
            "                     a          3          5      0.553        0.6      0.604      0.451      0.543        0.6      0.604      0.147",
            "                     b          3          4      0.949       0.75      0.745      0.322      0.931       0.75      0.745      0.385",
            "                     c          2          3          1      0.938      0.995      0.632       0.65      0.632      0.555        0.4",
        ]
    );
    assert_eq!(m.table_rows(&names, 6, false).len(), 1);
}

#[test]
fn mask_iou_matches_the_float_formula() {
    // 2×3 masks: g = {0,1,2}, p1 = {1,2,3}, p2 = {} → IoU 2/4 and 0.
    let g = [1u8, 1, 1, 0, 0, 0];
    let p = [0u8, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    let iou = mask_iou(&g, &p, 6);
    assert_eq!(iou, vec![vec![2.0f32 / (4.0 + 1e-7), 0.0]]);
    // Masks longer than one 64-bit word, with a partial last word.
    let n = 130;
    let a: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
    let b: Vec<u8> = (0..n).map(|i| (i % 2 == 0) as u8).collect();
    let (ia, ib, ii) = (44.0f32, 65.0f32, 22.0f32);
    assert_eq!(
        mask_iou(&a, &b, n),
        vec![vec![ii / ((ia + ib) - ii + 1e-7)]]
    );
    assert!(mask_iou(&[], &p, 6).is_empty());
    assert_eq!(mask_iou(&g, &[], 6), vec![Vec::<f32>::new()]);
}

#[test]
fn empty_images_and_runs_do_not_panic() {
    // No images at all.
    let m = SegMetrics::compute(&SegStats::default(), 3);
    assert_eq!(m.mean_results(), [0.0; 8]);
    assert_eq!(m.fitness(), 0.0);
    assert_eq!(m.maps(3), vec![0.0; 3]);
    let rows = m.table_rows(&["a".into(), "b".into()], 0, true);
    assert_eq!(rows.len(), 2, "all row + no-labels warning: {rows:?}");
    // Background image with predictions, image with ground truth but no predictions, empty masks.
    let mut s = SegStats::default();
    let pred = [([0.0f32, 0.0, 4.0, 4.0], 0.9f32, 1usize)];
    s.add_image(&pred, &[0; 16], &[], &[], 16);
    s.add_image(&[], &[], &[([0.0, 0.0, 4.0, 4.0], 1)], &[0; 16], 16);
    s.add_image(&pred, &[0; 16], &[([0.0, 0.0, 4.0, 4.0], 1)], &[0; 16], 16);
    assert_eq!(s.tp_m, vec![[false; 10]; 2], "empty masks never match");
    assert_eq!(s.boxes.tp, vec![[false; 10], [true; 10]]);
    let m = SegMetrics::compute(&s, 3);
    assert_eq!(m.nt_per_class, [0, 2, 0]);
    close("fitness", m.fitness(), m.boxes.map() + m.masks.map());
    assert_eq!(m.masks.map(), 0.0);
}
