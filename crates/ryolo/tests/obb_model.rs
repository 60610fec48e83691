//! OBB models against Ultralytics 8.4.190 (fixtures/ultralytics/obb): the seed-0 yolo11n-obb
//! checkpoint's forward (seed-0 and BN-calibrated, unfused and fused, square and rectangular input,
//! raw head maps) and the summary numbers of all ten `-obb` models (nc = 15 and nc = 80).

mod common;
use ryolo::nn::{DetectionModel, ModelSpec};
use ryolo::weights::{load_model, load_state};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Tensor};

/// Largest absolute difference relative to the largest reference magnitude.
fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a - b).abs().max().double_value(&[]);
    d / b.abs().max().double_value(&[]).max(1e-30)
}

/// The seed-0 checkpoint, with the calibrated BatchNorm buffers when `bncal`.
fn model(fx: &Path, bncal: bool) -> DetectionModel {
    let mut m = load_model(
        fx.join("yolo11n-obb_seed0.pt").to_str().unwrap(),
        None,
        Device::Cpu,
    )
    .unwrap()
    .model;
    if bncal {
        let bufs: HashMap<String, Tensor> = Tensor::read_npz(fx.join("bn_calibration.npz"))
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(bufs.len(), 174);
        let n = load_state(&mut m, &bufs, false).unwrap();
        assert_eq!(
            n,
            bufs.len(),
            "every calibrated buffer has a model variable"
        );
    }
    m
}

/// Compares `(1, 20, A)` outputs block by block (boxes in pixels, class probabilities, angle) to
/// 1e-5 relative plus the spread between Ultralytics' own fused and unfused outputs of that block
/// (`spread`: fused and unfused references of the same model): that spread measures how far a
/// float32 reordering moves this model's outputs (zero for seed0, 2e-5 on the BN-calibrated class
/// probabilities), and fusing or the CPU's own kernels (their summation order differs between
/// CPUs: 2.1e-5 on an AMD Zen 1) reorder.
fn check_output(y: &Tensor, want: &Tensor, spread: Option<(&Tensor, &Tensor)>, what: &str) {
    assert_eq!(y.size(), want.size(), "{what}");
    for (name, lo, n) in [("boxes", 0, 4), ("scores", 4, 15), ("angle", 19, 1)] {
        let block = |t: &Tensor| t.narrow(1, lo, n);
        let d = max_rel(&block(y), &block(want));
        let tol = 1e-5 + spread.map_or(0.0, |(f, u)| max_rel(&block(u), &block(f)));
        println!("{what}: {name} max rel diff {d:.3e} (tolerance {tol:.3e})");
        assert!(d <= tol, "{what}: {name} differ by {d}");
    }
}

#[test]
fn yolo11n_obb_checkpoint_loads_as_obb() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/obb");
    let m = model(&fx, false);
    assert_eq!(m.task(), ryolo::task::TaskKind::Obb);
    assert_eq!(m.stride, vec![8.0, 16.0, 32.0]);
    assert_eq!(m.nc(), 15);
    let ryolo::nn::Head::Obb(o) = &m.head else {
        panic!("not an OBB head: {:?}", m.head.task());
    };
    assert_eq!(o.ne, 1);
    assert_eq!(m.names.len(), 15);
    assert_eq!(m.names[0], "plane");
    assert_eq!(m.names[14], "swimming pool");
}

#[test]
fn yolo11n_obb_forward_matches_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/obb");
    let x = Tensor::read_npy(fx.join("input.npy")).unwrap();
    for (tag, bncal) in [("seed0", false), ("bncal", true)] {
        let mut m = model(&fx, bncal);
        if bncal {
            // Raw head maps (DFL logits, class logits, angle in radians).
            let raw = tch::no_grad(|| m.forward_raw(&x, false));
            let want: HashMap<String, Tensor> = Tensor::read_npz(fx.join("head_raw_bncal.npz"))
                .unwrap()
                .into_iter()
                .collect();
            let angle = raw.angle.as_ref().expect("an OBB head returns angles");
            // 1e-5 plus the rounding spread of the block's decoded output (Ultralytics' fused vs
            // unfused): the CPU's kernels sum in their own order (AMD Zen 1: 1.02e-5 on the angle).
            let (f, u) = (
                Tensor::read_npy(fx.join("output_bncal_fused.npy")).unwrap(),
                Tensor::read_npy(fx.join("output_bncal_unfused.npy")).unwrap(),
            );
            for (name, ours, lo, n) in [
                ("boxes", &raw.boxes, 0, 4),
                ("scores", &raw.scores, 4, 15),
                ("angle", angle, 19, 1),
            ] {
                assert_eq!(ours.size(), want[name].size(), "{name}");
                let d = max_rel(ours, &want[name]);
                let tol = 1e-5 + max_rel(&u.narrow(1, lo, n), &f.narrow(1, lo, n));
                println!("bncal raw {name}: max rel diff {d:.3e} (tolerance {tol:.3e})");
                assert!(d <= tol, "raw {name} differ by {d}");
            }
            let xr = Tensor::read_npy(fx.join("input_rect.npy")).unwrap();
            let want = Tensor::read_npy(fx.join("output_rect_bncal_unfused.npy")).unwrap();
            let y = tch::no_grad(|| m.predict(&xr));
            check_output(&y, &want, Some((&f, &u)), "bncal rect unfused");
        }
        let reference =
            |sfx: &str| Tensor::read_npy(fx.join(format!("output_{tag}_{sfx}.npy"))).unwrap();
        let (want_u, want_f) = (reference("unfused"), reference("fused"));
        // Every comparison allows the model's own rounding spread (zero for seed0).
        let spread = Some((&want_f, &want_u));
        let y = tch::no_grad(|| m.predict(&x));
        check_output(&y, &want_u, spread, &format!("{tag} unfused"));
        m.fuse();
        let y = tch::no_grad(|| m.predict(&x));
        check_output(&y, &want_f, spread, &format!("{tag} fused"));
    }
}

/// Parameters of the variables under `prefix` (BatchNorm running statistics excluded).
fn params_under(m: &DetectionModel, prefix: &str) -> i64 {
    m.vs.variables()
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .filter(|(k, _)| !k.ends_with("running_mean") && !k.ends_with("running_var"))
        .map(|(_, t)| t.numel() as i64)
        .sum()
}

#[test]
fn obb_param_counts_match_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let text =
        std::fs::read_to_string(shared.join("fixtures/ultralytics/obb/param_counts.json")).unwrap();
    let fx: serde_json::Value = serde_json::from_str(&text).unwrap();
    let int = |v: &serde_json::Value, k: &str| v[k].as_i64().unwrap();
    let mut checked = 0;
    for name in [
        "yolov8n-obb",
        "yolov8s-obb",
        "yolov8m-obb",
        "yolov8l-obb",
        "yolov8x-obb",
        "yolo11n-obb",
        "yolo11s-obb",
        "yolo11m-obb",
        "yolo11l-obb",
        "yolo11x-obb",
    ] {
        for nc in [15, 80] {
            let want = &fx[format!("{name} nc={nc}")];
            let spec = ModelSpec::from_name(&format!("{name}.yaml"), Some(nc)).unwrap();
            let head = spec.layers.len() - 1;
            let cost = spec.cost().unwrap();
            let mut m = DetectionModel::new(spec, Device::Cpu).unwrap();
            let total = params_under(&m, "model.");
            assert_eq!(total, int(want, "params"), "{name} nc={nc}: parameters");
            assert_eq!(cost.params, total as f64, "{name} nc={nc}: YAML estimate");
            let hp = format!("model.{head}.");
            assert_eq!(params_under(&m, &hp), int(want, "head_params"), "{name}");
            for branch in ["cv2", "cv3", "cv4"] {
                let got = params_under(&m, &format!("{hp}{branch}."));
                let w = int(want, &format!("{branch}_params"));
                assert_eq!(got, w, "{name} nc={nc}: {branch} parameters");
            }
            if nc != 15 {
                checked += 1;
                continue;
            }
            // The summary line (nc = 15, the fixture's measured values).
            let info = m.info();
            let gflops = want["gflops_640"].as_f64().unwrap();
            let line = format!(
                "{} summary: {} layers, {} parameters, {} gradients, {:.1} GFLOPs",
                ryolo::nn::yaml::display_name(name),
                int(want, "layers"),
                ryolo::nn::model::thousands(int(want, "params")),
                ryolo::nn::model::thousands(int(want, "gradients")),
                gflops
            );
            println!("{info}  ({:.4} GFLOPs)", info.gflops);
            assert_eq!(info.to_string(), line, "{name}");
            assert!(
                (info.gflops - gflops).abs() < 5e-4,
                "{name}: {}",
                info.gflops
            );
            assert!(
                (2.0 * cost.macs / 1e9 - info.gflops).abs() < 1e-6,
                "{name}: GFLOPs estimate"
            );
            m.fuse();
            let fi = m.info();
            println!("{fi}  ({:.4} GFLOPs)", fi.gflops);
            assert_eq!(fi.layers as i64, int(want, "fused_layers"), "{name} fused");
            assert_eq!(fi.params, int(want, "fused_params"), "{name} fused");
            let fg = want["fused_gflops_640"].as_f64().unwrap();
            assert!((fi.gflops - fg).abs() < 5e-4, "{name} fused: {}", fi.gflops);
            checked += 1;
        }
    }
    assert_eq!(checked, 20);
}

#[test]
fn yolo11n_obb_layer_table_head_row() {
    let spec = ModelSpec::from_name("yolo11n-obb.yaml", Some(15)).unwrap();
    let m = DetectionModel::new(spec, Device::Cpu).unwrap();
    let table = ryolo::nn::summary::layer_table(&m);
    let last = table.lines().last().unwrap();
    // As Ultralytics 8.4 prints it (spec/obb.md §3.4).
    assert_eq!(
        last.split_whitespace().collect::<Vec<_>>().join(" "),
        "23 [16, 19, 22] 1 505264 ultralytics.nn.modules.head.OBB [15, 1, 16, None, [64, 128, 256]]"
    );
}
