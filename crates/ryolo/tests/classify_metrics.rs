//! Classification metrics against Ultralytics 8.4.190's `ClassifyMetrics` / `ConfusionMatrix`
//! (cls_metrics.json): top-k lists, top1, top5, fitness and the confusion matrix, exactly.

mod common;
use ryolo::metrics::classify::{topk, ClsMetrics, ClsStats};

#[test]
fn metrics_match_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared.join("fixtures/ultralytics/classify/cls_metrics.json"))
            .unwrap(),
    )
    .unwrap();
    for (key, nc) in [("nc10", 10usize), ("nc3", 3)] {
        let case = &fx[key];
        let mut s = ClsStats::default();
        for ((logits, label), want) in case["logits"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["labels"].as_array().unwrap())
            .zip(case["topk_pred"].as_array().unwrap())
        {
            let l: Vec<f32> = logits
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let want: Vec<usize> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(topk(&l, 5), want, "{key}");
            s.add(&l, label.as_u64().unwrap() as usize);
        }
        let m = ClsMetrics::compute(&s, nc);
        let f = |k: &str| case[k].as_f64().unwrap();
        assert_eq!(m.top1, f("top1"), "{key} top1");
        assert_eq!(m.top5, f("top5"), "{key} top5");
        assert_eq!(m.fitness(), f("fitness"), "{key} fitness");
        let cm: Vec<Vec<f64>> = case["confusion_matrix"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(m.confusion, cm, "{key} confusion matrix");
        println!("{key}: {}", m.table_row());
    }
    let empty = ClsMetrics::compute(&ClsStats::default(), 3);
    assert_eq!((empty.top1, empty.top5), (0.0, 0.0));
}
