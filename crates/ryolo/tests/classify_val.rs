//! `yolo val` of Ultralytics' trained yolo11n-cls on the fixture ImageFolder set: top-1, top-5,
//! fitness and the confusion matrix of the val and test splits equal Ultralytics' (cls_predict.json),
//! on libtorch and on ONNX Runtime (in-memory export; `ryolo::engine::ortpath::scoped`).

mod common;

#[test]
fn classify_val_matches_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/classify");
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("cls_predict.json")).unwrap())
            .unwrap();
    let d = common::tmp("cls_val");
    for engine in common::engines() {
        ryolo::engine::ortpath::scoped(engine, || check(&fx, &want, &d, engine.name()));
    }
}

/// `yolo val` of both splits against Ultralytics' metrics (`engine` names the run).
fn check(fx: &std::path::Path, want: &serde_json::Value, d: &std::path::Path, engine: &str) {
    for (split, key) in [("val", "val_val"), ("test", "val_test")] {
        let a = common::args(&format!(
            "task=classify model={} data={} split={split} batch=4 plots=False project={} name={split}_{engine}",
            fx.join("cls_yolo11n.pt").display(),
            fx.join("dataset").display(),
            d.display()
        ));
        let r = ryolo::engine::val::run(&a).unwrap();
        let c = r.cls.expect("classification metrics");
        let w = &want[key];
        assert_eq!(
            c.top1,
            w["top1"].as_f64().unwrap(),
            "[{engine}] {split} top1"
        );
        assert_eq!(
            c.top5,
            w["top5"].as_f64().unwrap(),
            "[{engine}] {split} top5"
        );
        assert_eq!(
            c.fitness(),
            w["fitness"].as_f64().unwrap(),
            "[{engine}] {split} fitness"
        );
        let cm: Vec<Vec<f64>> = w["confusion_matrix"]
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
        assert_eq!(c.confusion, cm, "[{engine}] {split} confusion matrix");
        println!("[{engine}] {split}: top1 {} top5 {}", c.top1, c.top5);
    }
}
