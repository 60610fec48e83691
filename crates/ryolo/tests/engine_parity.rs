//! The in-memory ONNX Runtime path of `.pt` models (`RYOLO_BACKEND`, `engine::ortpath`): for every
//! task (detect, segment with prototypes, classify probabilities, pose, obb) the in-memory export
//! run in ONNX Runtime gives our libtorch forward's outputs on the fixtures' square inputs, on rect
//! inputs and on a batch of 2 (one dynamic graph serves them all); and the engine choice is honoured
//! (`torch`, `onnxruntime`, `auto`, augment, unknown values named).

mod common;
use ryolo::engine::backend::Backend;
use ryolo::engine::ortpath::{scoped, select, Engine, Needs};
use ryolo::nn::DetectionModel;
use ryolo::weights::{load_model, load_state};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// Tolerance of every output of ORT against libtorch: max |difference| relative to the libtorch
/// output's largest magnitude (what the pose / obb / segment export tests check at 1e-5).
const REL: f64 = 1e-5;

/// The fixtures folder, or None (loudly) without ../shared.
fn fixtures() -> Option<PathBuf> {
    Some(common::shared()?.join("fixtures/ultralytics"))
}

/// A checkpoint on the CPU with the BN statistics of `bncal` (an `.npz`) when given.
fn model(pt: &Path, bncal: Option<&Path>) -> DetectionModel {
    let mut m = load_model(pt.to_str().unwrap(), None, Device::Cpu)
        .unwrap()
        .model;
    if let Some(f) = bncal {
        let bufs: HashMap<String, Tensor> = Tensor::read_npz(f).unwrap().into_iter().collect();
        load_state(&mut m, &bufs, false).unwrap();
    }
    m
}

/// libtorch's outputs: `output0` (and the prototypes of a segment model).
fn torch_outputs(m: &DetectionModel, x: &Tensor) -> Vec<Tensor> {
    let (y, p) = tch::no_grad(|| m.predict_with_protos(x));
    std::iter::once(y).chain(p).collect()
}

/// ONNX Runtime's outputs for `x` in graph order.
fn ort_outputs(b: &Backend, x: &Tensor) -> Vec<Tensor> {
    let Backend::Onnx(om) = b else {
        panic!("expected the in-memory ONNX Runtime backend")
    };
    let s: Vec<usize> = x.size().iter().map(|&d| d as usize).collect();
    let v = Vec::<f32>::try_from(x.flatten(0, -1)).unwrap();
    om.run_all(&v, [s[0], s[1], s[2], s[3]])
        .unwrap()
        .into_iter()
        .map(|(d, dims)| {
            let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            Tensor::from_slice(&d).view(dims.as_slice())
        })
        .collect()
}

/// Runs `inputs` through both engines and checks every output within [`REL`]; returns the largest
/// relative and absolute differences seen.
fn compare(task: &str, pt: &Path, bncal: Option<&Path>, inputs: &[Tensor]) -> (f64, f64) {
    let mut torch = model(pt, bncal);
    torch.fuse();
    let ort = select(model(pt, bncal), pt, Engine::OnnxRuntime, Needs::Nothing);
    let Some(ort) = common::ort_or_skip(ort) else {
        return (0.0, 0.0);
    };
    let (mut worst_rel, mut worst_abs) = (0f64, 0f64);
    for x in inputs {
        let want = torch_outputs(&torch, x);
        let got = ort_outputs(&ort, x);
        assert_eq!(got.len(), want.len(), "{task}: outputs");
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.size(), w.size(), "{task} {:?}: output{k} shape", x.size());
            let abs = (g - w).abs().max().double_value(&[]);
            let rel = abs / w.abs().max().double_value(&[]).max(1e-30);
            println!(
                "{task} input {:?}: output{k} {:?} ORT vs libtorch max abs {abs:.2e}, relative {rel:.2e}",
                x.size(),
                g.size()
            );
            assert!(
                rel <= REL,
                "{task} {:?}: output{k} relative {rel}",
                x.size()
            );
            worst_rel = worst_rel.max(rel);
            worst_abs = worst_abs.max(abs);
        }
    }
    (worst_rel, worst_abs)
}

/// The square input, a rect crop of it (`h` rows from the middle) and a batch of 2 (the input and
/// its mirror).
fn shapes(x: Tensor, h: i64) -> Vec<Tensor> {
    let full = x.size()[2];
    let rect = x.narrow(2, (full - h) / 2, h).contiguous();
    let two = Tensor::cat(&[&x, &x.flip([3])], 0);
    vec![x, rect, two]
}

#[test]
fn detect_ort_equals_libtorch_on_square_rect_and_batched_inputs() {
    let Some(fx) = fixtures() else { return };
    let x = Tensor::read_npy(fx.join("bt_input.npy")).unwrap();
    compare(
        "detect",
        &fx.join("bt_yolo11n_best.pt"),
        None,
        &shapes(x, 480),
    );
}

#[test]
fn segment_ort_equals_libtorch_with_prototypes() {
    let Some(fx) = fixtures() else { return };
    let fx = fx.join("segment");
    let x = Tensor::read_npy(fx.join("model_input.npy")).unwrap();
    compare(
        "segment",
        &fx.join("yolo11n-seg_seed0.pt"),
        None,
        &shapes(x, 192),
    );
}

#[test]
fn pose_and_obb_ort_equal_libtorch() {
    let Some(fx) = fixtures() else { return };
    for (task, pt) in [
        ("pose", "yolo11n-pose_seed0.pt"),
        ("obb", "yolo11n-obb_seed0.pt"),
    ] {
        let d = fx.join(task);
        let x = Tensor::read_npy(d.join("input.npy")).unwrap();
        let rect = Tensor::read_npy(d.join("input_rect.npy")).unwrap();
        // The square input, the fixture's rect letterbox of the same image, a batch of 2.
        let two = Tensor::cat(&[&x, &x.flip([3])], 0);
        let inputs = [x, rect, two];
        compare(
            task,
            &d.join(pt),
            Some(&d.join("bn_calibration.npz")),
            &inputs,
        );
    }
}

#[test]
fn classify_ort_equals_libtorch_probabilities() {
    let Some(fx) = fixtures() else { return };
    let d = fx.join("classify");
    let bus = Tensor::read_npy(d.join("cls_eval_bus_input.npy")).unwrap();
    let zidane = Tensor::read_npy(d.join("cls_eval_zidane_input.npy")).unwrap();
    let two = Tensor::cat(&[&bus, &zidane], 0);
    let rect = bus.narrow(2, 32, 160).contiguous();
    compare(
        "classify",
        &d.join("cls_yolo11n.pt"),
        None,
        &[bus, two, rect],
    );
}

#[test]
fn engine_values_are_parsed_and_unknown_ones_named() {
    for (v, e) in [
        ("", Engine::Auto),
        ("auto", Engine::Auto),
        ("torch", Engine::Torch),
        ("LibTorch", Engine::Torch),
        ("pytorch", Engine::Torch),
        ("onnxruntime", Engine::OnnxRuntime),
        ("ort", Engine::OnnxRuntime),
        ("onnx", Engine::OnnxRuntime),
    ] {
        assert_eq!(Engine::parse(v).unwrap(), e, "{v:?}");
        assert_eq!(Engine::parse(e.name()).unwrap(), e);
    }
    let e = Engine::parse("tensorrt").unwrap_err().to_string();
    assert!(
        e.contains("RYOLO_BACKEND=tensorrt") && e.contains("onnxruntime"),
        "{e}"
    );
    assert_eq!(
        scoped(Engine::Torch, Engine::from_env).unwrap(),
        Engine::Torch
    );
}

#[test]
fn load_for_honours_the_engine_and_augment() {
    let Some(fx) = fixtures() else { return };
    let bt = fx.join("bt_yolo11n_best.pt");
    let pose = fx.join("pose/yolo11n-pose_seed0.pt");
    let load = |e: Engine, model: &Path, extra: &str| {
        let a = common::args(&format!("predict model={} {extra}", model.display()));
        scoped(e, || Backend::load_for(&a, model.to_str().unwrap()))
            .unwrap()
            .0
    };
    let is_ort = |b: &Backend| matches!(b, Backend::Onnx(m) if m.exported.is_some());
    assert!(matches!(load(Engine::Torch, &bt, ""), Backend::Torch(_)));
    let Some(b) = common::ort_or_skip(scoped(Engine::OnnxRuntime, || {
        Backend::load_for(
            &common::args(&format!("predict model={}", bt.display())),
            bt.to_str().unwrap(),
        )
    })) else {
        return;
    };
    let b = b.0;
    assert!(is_ort(&b));
    let line = b.as_ref().describe();
    assert!(
        line.starts_with("YOLO11n summary (fused)")
            && line.contains("ONNX Runtime (in-memory export"),
        "{line}"
    );
    assert_eq!(b.as_ref().names(), ["negative", "positive"]);
    assert_eq!(b.as_ref().stride(), 32);
    assert!(b.as_ref().fixed_imgsz().is_none() && b.as_ref().fixed_batch().is_none());
    assert!(is_ort(&load(Engine::Auto, &bt, "")));
    // Test-time augmentation runs on libtorch (detect); pose has none, so it keeps ONNX Runtime.
    assert!(matches!(
        load(Engine::Auto, &bt, "augment=True"),
        Backend::Torch(_)
    ));
    assert!(matches!(
        load(Engine::OnnxRuntime, &bt, "augment=True"),
        Backend::Torch(_)
    ));
    let p = load(Engine::Auto, &pose, "augment=True");
    assert!(is_ort(&p));
    assert_eq!(p.as_ref().kpt_shape(), Some((17, 3)));
}
