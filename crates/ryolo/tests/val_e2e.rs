//! End-to-end validation of the Ultralytics-trained YOLO11n on brain-tumor val (CPU):
//! mAP50-95 within 0.005 of Ultralytics' 0.3608, on libtorch and on ONNX Runtime (in-memory
//! export; rect batches of varying shapes through one dynamic graph).

mod common;
use ryolo::data::{list_images, load_data_yaml, scan};
use ryolo::engine::val::{validate, ValConfig};
use ryolo::weights::load_model;
use tch::Device;

#[test]
fn brain_tumor_val_matches_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let dc = load_data_yaml(&shared.join("datasets/brain-tumor/brain-tumor.yaml")).unwrap();
    let files = list_images(dc.split("val").unwrap()).unwrap();
    let s = scan("val", &files, dc.nc(), false);
    assert_eq!(s.entries.len(), 223);
    for engine in common::engines() {
        let m = load_model(
            shared
                .join("fixtures/ultralytics/bt_yolo11n_best.pt")
                .to_str()
                .unwrap(),
            None,
            Device::Cpu,
        )
        .unwrap()
        .model;
        let t = std::time::Instant::now();
        let b = common::on_engine(m, engine);
        let r = validate(
            &b,
            &s.entries,
            &ValConfig {
                batch: 32,
                ..Default::default()
            },
            |_, _| {},
        )
        .unwrap();
        let mm = &r.metrics;
        println!(
            "[{}] {:.1}s (inference {:.1} ms/image)",
            engine.name(),
            t.elapsed().as_secs_f64(),
            r.speed.inference
        );
        println!("[{}] mAP50-95 {:.5} mAP50 {:.5} mAP75 {:.5} P {:.5} R {:.5} (Ultralytics 0.36081 0.51292 0.42533 0.47179 0.80654)", engine.name(), mm.map(), mm.map50(), mm.map75(), mm.mp(), mm.mr());
        assert!(
            (mm.map() - 0.36081).abs() <= 0.005,
            "[{}] mAP50-95 {}",
            engine.name(),
            mm.map()
        );
        assert!(
            (mm.map50() - 0.51292).abs() <= 0.005,
            "[{}] mAP50 {}",
            engine.name(),
            mm.map50()
        );
    }
}
