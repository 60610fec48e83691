//! A resumed `last` whose optimizer buffers or pending gradients do not fit the model (wrong
//! shape, unknown parameter or buffer) is refused with a message naming the file and the key,
//! instead of a panic inside the optimizer (issue #17, "Corrupt resume state").

mod common;
use ryolo::engine::train::{train, Callbacks};
use ryolo::weights::{read_checkpoint, save_tensors};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use tch::Tensor;

/// A 16x thinner yolov8n YAML (quick to train).
fn tiny_yaml(d: &Path) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let text = std::fs::read_to_string(root.join("yolov8.yaml"))
        .unwrap()
        .replace("n: [0.33, 0.25, 1024]", "n: [0.33, 0.0625, 1024]");
    let f = d.join("yolov8n.yaml");
    std::fs::write(&f, text).unwrap();
    f
}

/// An edit of a checkpoint's named tensors.
type Edit = Box<dyn FnOnce(&mut Vec<(String, Tensor)>)>;

/// Rewrites `last` into `out` after `edit` changed its tensors.
fn corrupt(last: &Path, out: &Path, edit: impl FnOnce(&mut Vec<(String, Tensor)>)) {
    let (meta, tensors) = read_checkpoint(last).unwrap();
    let mut v: Vec<(String, Tensor)> = tensors.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    edit(&mut v);
    save_tensors(&v, &meta, out).unwrap();
}

#[test]
fn corrupt_optimizer_and_gradient_state_is_refused() {
    let d = common::tmp("resume-state");
    let data = ryolo::data::synth::generate(&d.join("data"), 8, 64, 1).unwrap();
    let model = tiny_yaml(&d);
    let run = format!(
        "model={} data={} epochs=3 imgsz=32 batch=4 nbs=8 workers=0 plots=False project={} \
         name=run optimizer=AdamW",
        model.display(),
        data.display(),
        d.display()
    );
    let mut cb = Callbacks::default();
    let stop = cb.stop.clone();
    cb.on_fit_epoch_end.push(Box::new(move |r| {
        if r.epoch == 1 {
            stop.store(true, Ordering::SeqCst);
        }
    }));
    train(&common::args(&run), &mut cb).unwrap();
    let last = d.join("run/weights/last.safetensors");
    let (_, tensors) = read_checkpoint(&last).unwrap();
    let optim = tensors
        .keys()
        .filter(|k| k.starts_with("train.optim."))
        .min()
        .cloned()
        .expect("last holds optimizer buffers");
    let param = optim
        .trim_start_matches("train.optim.")
        .rsplit_once('.')
        .unwrap()
        .0
        .to_string();
    let cases: Vec<(&str, String, Edit)> = vec![
        (
            "optimizer buffer of the wrong shape",
            optim.clone(),
            Box::new({
                let k = optim.clone();
                move |v| {
                    for (n, t) in v.iter_mut() {
                        if *n == k {
                            *t = Tensor::zeros([3, 5], (tch::Kind::Float, tch::Device::Cpu));
                        }
                    }
                }
            }),
        ),
        (
            "gradient of the wrong shape",
            format!("train.grad.{param}"),
            Box::new({
                let k = format!("train.grad.{param}");
                move |v| {
                    v.retain(|(n, _)| *n != k);
                    v.push((k, Tensor::zeros([7], (tch::Kind::Float, tch::Device::Cpu))));
                }
            }),
        ),
        (
            "buffer of no parameter",
            "train.optim.model.99.nothing.exp_avg".into(),
            Box::new(|v| {
                v.push((
                    "train.optim.model.99.nothing.exp_avg".into(),
                    Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu)),
                ))
            }),
        ),
        (
            "unknown buffer kind",
            format!("train.optim.{param}.velocity"),
            Box::new({
                let k = format!("train.optim.{param}.velocity");
                move |v| v.push((k, Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu))))
            }),
        ),
    ];
    for (i, (what, key, edit)) in cases.into_iter().enumerate() {
        let bad = d.join(format!("bad{i}/weights/last.safetensors"));
        corrupt(&last, &bad, edit);
        let r = catch_unwind(AssertUnwindSafe(|| {
            train(
                &common::args(&format!("resume=True model={}", bad.display())),
                &mut Callbacks::default(),
            )
        }));
        let msg = match r {
            Ok(Err(e)) => format!("{e:#}"),
            Ok(Ok(_)) => panic!("{what}: the corrupt resume state trained"),
            Err(_) => panic!("{what}: a panic"),
        };
        assert!(
            msg.contains(&bad.display().to_string()) && msg.contains(&key),
            "{what}: {msg}"
        );
    }
    // The untouched checkpoint still resumes.
    train(
        &common::args(&format!("resume=True model={}", last.display())),
        &mut Callbacks::default(),
    )
    .unwrap();
}
