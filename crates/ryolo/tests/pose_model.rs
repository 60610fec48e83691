//! Pose models against Ultralytics 8.4.190 (fixtures/ultralytics/pose): the seed-0 yolo11n-pose
//! checkpoint (fp16 -> fp32) and its BN-calibrated variant (`bn_calibration.npz`), forward unfused
//! and fused on the square and the rectangular input, the head's raw maps, the checkpoint's keypoint
//! attributes, and the summary lines of all ten `-pose` models (nc = 1 and nc = 80).

mod common;
use ryolo::nn::{DetectionModel, ModelSpec};
use ryolo::task::TaskKind;
use ryolo::weights::load_model;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Max |a - b| relative to max |b|.
fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a - b).abs().max().double_value(&[]);
    d / b.abs().max().double_value(&[]).max(1e-30)
}

/// The fixture checkpoint; with `bncal` its BatchNorm buffers overwritten by `bn_calibration.npz`.
fn model(fx: &Path, bncal: bool) -> DetectionModel {
    let m = load_model(
        fx.join("yolo11n-pose_seed0.pt").to_str().unwrap(),
        None,
        Device::Cpu,
    )
    .unwrap()
    .model;
    if bncal {
        let z = Tensor::read_npz(fx.join("bn_calibration.npz")).unwrap();
        assert_eq!(z.len(), 174);
        let vars = m.vs.variables();
        tch::no_grad(|| {
            for (name, t) in &z {
                let mut v = vars
                    .get(name)
                    .unwrap_or_else(|| panic!("{name} is not a model buffer"))
                    .shallow_clone();
                assert_eq!(v.size(), t.size(), "{name}");
                v.copy_(t);
            }
        });
    }
    m
}

/// Channel range of an output block in `(1, 56, A)` (keypoint blocks: all 51 keypoint channels).
fn block_range(name: &str) -> (i64, i64) {
    match name {
        "boxes" => (0, 4),
        "score" => (4, 1),
        _ => (5, 51),
    }
}

/// Compares the output blocks (boxes, score, keypoint x/y, keypoint visibility) each on its own
/// scale, to `tol` relative plus the block's rounding spread in `spread` (Ultralytics' fused and
/// unfused outputs of the same model): the CPU's kernels sum in their own order (AMD Zen 1: 1.3e-5
/// on the BN-calibrated fused score, whose fixture spread is 6.1e-6).
fn check_output(
    tag: &str,
    y: &Tensor,
    want: &Tensor,
    tol: f64,
    spread: Option<(&Tensor, &Tensor)>,
) {
    assert_eq!(y.size(), want.size(), "{tag}");
    let a = y.size()[2];
    let kx = |t: &Tensor| t.narrow(1, 5, 51).view([1, 17, 3, a]);
    let blocks = [
        ("boxes", y.narrow(1, 0, 4), want.narrow(1, 0, 4)),
        ("score", y.narrow(1, 4, 1), want.narrow(1, 4, 1)),
        (
            "kpt_xy",
            kx(y).narrow(2, 0, 2).contiguous(),
            kx(want).narrow(2, 0, 2).contiguous(),
        ),
        (
            "kpt_vis",
            kx(y).narrow(2, 2, 1).contiguous(),
            kx(want).narrow(2, 2, 1).contiguous(),
        ),
    ];
    for (name, ours, theirs) in blocks {
        let d = max_rel(&ours, &theirs);
        let extra = spread.map_or(0.0, |(f, u)| {
            let (lo, n) = block_range(name);
            max_rel(&u.narrow(1, lo, n), &f.narrow(1, lo, n))
        });
        println!(
            "{tag}: {name} max rel diff {d:.3e} (tolerance {:.3e})",
            tol + extra
        );
        assert!(d <= tol + extra, "{tag}: {name} differ by {d}");
    }
}

#[test]
fn yolo11n_pose_checkpoint_reads_as_ultralytics_pose_model() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/pose");
    let f = fx.join("yolo11n-pose_seed0.pt");
    let ck = ryolo::weights::read_pt(&f).unwrap();
    assert_eq!(ck.pose.kpt_shape, Some((17, 3)));
    assert_eq!(ck.pose.kpt_oks_sigmas, None);
    let names = ck.pose.kpt_names.as_ref().expect("kpt_names");
    assert_eq!(names.len(), 1);
    assert_eq!(names[0].0, 0);
    assert_eq!(names[0].1.len(), 17);
    assert_eq!(names[0].1[0], "nose");
    assert_eq!(names[0].1[16], "right_ankle");
    // fp16 storage -> f32 tensors.
    assert_eq!(ck.tensors["model.23.cv4.0.2.weight"].kind(), Kind::Float);
    assert_eq!(
        ck.tensors["model.23.cv4.0.2.weight"].size(),
        vec![51, 51, 1, 1]
    );
    let loaded = load_model(f.to_str().unwrap(), None, Device::Cpu).unwrap();
    let m = &loaded.model;
    assert_eq!(m.task(), TaskKind::Pose);
    assert_eq!(m.names, vec!["person".to_string()]);
    assert_eq!(m.nc(), 1);
    assert_eq!(m.stride, vec![8.0, 16.0, 32.0]);
    assert_eq!(m.spec.kpt_shape(), Some((17, 3)));
    let p = m.head.pose().expect("a Pose head");
    assert_eq!(p.kpt_shape, (17, 3));
    assert_eq!(p.nk(), 51);
    assert_eq!(p.kpt_names.as_ref(), Some(names));
    assert_eq!(p.kpt_oks_sigmas, None);
    // COCO sigmas for [17, 3], as float32 values / 10.
    let s = p.sigmas();
    assert_eq!(s.len(), 17);
    assert_eq!(s[0], 0.26f32 / 10.0);
    assert_eq!(s[16], 0.89f32 / 10.0);
    // Every state-dict entry of the checkpoint (but the BatchNorm counters) is a model variable,
    // and vice versa.
    let vars = m.vs.variables();
    let stored: Vec<&String> = ck
        .tensors
        .keys()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .collect();
    assert_eq!(vars.len(), stored.len());
    for k in stored {
        assert!(vars.contains_key(k), "{k} missing from the model");
    }
}

#[test]
fn yolo11n_pose_forward_matches_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/pose");
    let x = Tensor::read_npy(fx.join("input.npy")).unwrap();
    let xr = Tensor::read_npy(fx.join("input_rect.npy")).unwrap();
    for tag in ["seed0", "bncal"] {
        let mut m = model(&fx, tag == "bncal");
        // Rectangular input (bncal, unfused): (1, 56, 1680).
        if tag == "bncal" {
            let want = Tensor::read_npy(fx.join("output_rect_bncal_unfused.npy")).unwrap();
            let y = tch::no_grad(|| m.predict(&xr));
            assert_eq!(y.size(), vec![1, 56, 1680]);
            let (f, u) = (
                Tensor::read_npy(fx.join("output_bncal_fused.npy")).unwrap(),
                Tensor::read_npy(fx.join("output_bncal_unfused.npy")).unwrap(),
            );
            check_output("rect bncal unfused", &y, &want, 1e-5, Some((&f, &u)));
            // The raw head maps before decoding.
            let raw = tch::no_grad(|| m.forward_raw(&x, false));
            let z = Tensor::read_npz(fx.join("head_raw_bncal.npz")).unwrap();
            for (name, want) in &z {
                let ours = match name.as_str() {
                    "boxes" => &raw.boxes,
                    "scores" => &raw.scores,
                    "kpts" => raw.kpts.as_ref().expect("Pose raw keypoints"),
                    other => panic!("unexpected array {other}"),
                };
                assert_eq!(ours.size(), want.size(), "{name}");
                let d = max_rel(ours, want);
                println!("bncal raw {name}: max rel diff {d:.3e}");
                assert!(d <= 1e-5, "raw {name} differs by {d}");
            }
            assert_eq!(raw.kpts.as_ref().unwrap().size(), vec![1, 51, 2100]);
        }
        for fused in [false, true] {
            if fused {
                m.fuse();
            }
            let sfx = if fused { "fused" } else { "unfused" };
            let want = Tensor::read_npy(fx.join(format!("output_{tag}_{sfx}.npy"))).unwrap();
            let y = tch::no_grad(|| m.predict(&x));
            assert_eq!(y.size(), vec![1, 56, 2100]);
            // BN-calibrated outputs: plus the fixture's own fused-vs-unfused rounding spread.
            let refs = (tag == "bncal").then(|| {
                (
                    Tensor::read_npy(fx.join("output_bncal_fused.npy")).unwrap(),
                    Tensor::read_npy(fx.join("output_bncal_unfused.npy")).unwrap(),
                )
            });
            let spread = refs.as_ref().map(|(f, u)| (f, u));
            check_output(&format!("{tag} {sfx}"), &y, &want, 1e-5, spread);
        }
    }
}

#[test]
fn pose_kpt_shape_from_yaml_and_data() {
    // The YAML's kpt_shape, then a dataset's (Ultralytics' data_kpt_shape) overriding it.
    let mut spec = ModelSpec::from_name("yolo11n-pose.yaml", Some(1)).unwrap();
    assert_eq!(spec.kpt_shape(), Some((17, 3)));
    spec.override_kpt_shape((4, 2)).unwrap();
    assert_eq!(spec.kpt_shape(), Some((4, 2)));
    assert!(spec.to_yaml_string().contains("kpt_shape:\n- 4\n- 2"));
    let m = DetectionModel::new(spec, Device::Cpu).unwrap();
    let p = m.head.pose().unwrap();
    assert_eq!((p.kpt_shape, p.nk()), ((4, 2), 8));
    assert_eq!(p.sigmas(), vec![0.25f32; 4]);
    let x = Tensor::zeros([2, 3, 64, 96], (Kind::Float, Device::Cpu));
    let raw = tch::no_grad(|| m.forward_raw(&x, false));
    let a = 8 * 12 + 4 * 6 + 2 * 3;
    assert_eq!(raw.kpts.as_ref().unwrap().size(), vec![2, 8, a]);
    assert_eq!(
        tch::no_grad(|| m.decode(&raw)).size(),
        vec![2, 4 + 1 + 8, a]
    );
    // A bad shape is refused.
    let mut spec = ModelSpec::from_name("yolov8n-pose.yaml", None).unwrap();
    assert_eq!(spec.nc, 1);
    assert!(spec.override_kpt_shape((17, 4)).is_err());
    // A YAML without the top-level key fails clearly.
    let y: serde_yaml::Value = serde_yaml::from_str(
        "nc: 1\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n  - [[0, 1, 2], 1, Pose, [nc, kpt_shape]]\n",
    )
    .unwrap();
    let e = ModelSpec::from_yaml(y, "x", None, None).unwrap_err();
    assert!(format!("{e:#}").contains("kpt_shape"), "{e:#}");
}

#[test]
fn pose_decode_matches_the_formula() {
    // x = (2 raw + col) s, y = (2 raw + row) s, v = sigmoid(raw) at every anchor of every level.
    let spec = ModelSpec::from_name("yolov8n-pose.yaml", None).unwrap();
    let m = DetectionModel::new(spec, Device::Cpu).unwrap();
    let x = Tensor::rand([1, 3, 64, 32], (Kind::Float, Device::Cpu));
    let raw = tch::no_grad(|| m.forward_raw(&x, false));
    let y = tch::no_grad(|| m.decode(&raw));
    let k = Vec::<f32>::try_from(raw.kpts.as_ref().unwrap().flatten(0, -1)).unwrap();
    let yv = Vec::<f32>::try_from(y.flatten(0, -1)).unwrap();
    let a_total = raw.shapes.iter().map(|(h, w)| h * w).sum::<i64>() as usize;
    let mut a = 0usize;
    for (&(h, w), &s) in raw.shapes.iter().zip(&m.stride) {
        for row in 0..h {
            for col in 0..w {
                for kp in 0..17 {
                    let rx = k[(3 * kp) * a_total + a];
                    let ry = k[(3 * kp + 1) * a_total + a];
                    let rv = k[(3 * kp + 2) * a_total + a];
                    let gx = yv[(5 + 3 * kp) * a_total + a];
                    let gy = yv[(5 + 3 * kp + 1) * a_total + a];
                    let gv = yv[(5 + 3 * kp + 2) * a_total + a];
                    let ex = (2.0 * rx + col as f32) * s as f32;
                    let ey = (2.0 * ry + row as f32) * s as f32;
                    assert!(
                        (gx - ex).abs() <= 1e-4 * ex.abs().max(1.0),
                        "x {gx} vs {ex}"
                    );
                    assert!(
                        (gy - ey).abs() <= 1e-4 * ey.abs().max(1.0),
                        "y {gy} vs {ey}"
                    );
                    assert!((gv - 1.0 / (1.0 + (-rv).exp())).abs() <= 1e-6);
                }
                a += 1;
            }
        }
    }
    assert_eq!(a, a_total);
}

#[test]
fn pose_param_counts_match_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let text = std::fs::read_to_string(shared.join("fixtures/ultralytics/pose/param_counts.json"))
        .unwrap();
    let fx: serde_json::Value = serde_json::from_str(&text).unwrap();
    let thousands = ryolo::nn::model::thousands;
    for name in [
        "yolov8n-pose",
        "yolov8s-pose",
        "yolov8m-pose",
        "yolov8l-pose",
        "yolov8x-pose",
        "yolo11n-pose",
        "yolo11s-pose",
        "yolo11m-pose",
        "yolo11l-pose",
        "yolo11x-pose",
    ] {
        for nc in [1, 80] {
            let w = &fx[format!("{name} nc={nc}")];
            let spec = ModelSpec::from_name(&format!("{name}.yaml"), Some(nc)).unwrap();
            let cost = spec.cost().unwrap();
            let head_layer = spec.layers.len() - 1;
            let mut m = DetectionModel::new(spec, Device::Cpu).unwrap();
            let info = m.info();
            println!("{name} nc={nc}: {info} ({:.6} GFLOPs)", info.gflops);
            assert_eq!(info.layers as i64, w["layers"].as_i64().unwrap(), "{name}");
            assert_eq!(info.params, w["params"].as_i64().unwrap(), "{name}");
            assert_eq!(info.grads, w["gradients"].as_i64().unwrap(), "{name}");
            assert_eq!(cost.params, info.params as f64, "{name}: YAML estimate");
            assert!(
                (2.0 * cost.macs / 1e9 - info.gflops).abs() < 1e-6,
                "{name}: GFLOPs estimate"
            );
            let sum = |prefix: &str| -> i64 {
                m.vs.variables()
                    .iter()
                    .filter(|(k, _)| {
                        k.starts_with(prefix)
                            && !k.ends_with("running_mean")
                            && !k.ends_with("running_var")
                    })
                    .map(|(_, t)| t.numel() as i64)
                    .sum()
            };
            let hp = format!("model.{head_layer}.");
            assert_eq!(sum(&hp), w["head_params"].as_i64().unwrap(), "{name} head");
            for part in ["cv2", "cv3", "cv4"] {
                assert_eq!(
                    sum(&format!("{hp}{part}.")),
                    w[format!("{part}_params")].as_i64().unwrap(),
                    "{name} nc={nc} {part}"
                );
            }
            let c4 = m.vs.variables()[&format!("{hp}cv4.0.0.conv.weight")].size()[0];
            assert_eq!(c4, w["c4"].as_i64().unwrap(), "{name} c4");
            let table = ryolo::nn::summary::layer_table(&m);
            let last = table.lines().last().unwrap();
            let ch = w["head_in_channels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            assert!(
                last.ends_with(&format!(
                    "ultralytics.nn.modules.head.Pose             [{nc}, [17, 3], 16, None, [{ch}]]"
                )),
                "{last}"
            );
            if nc == 1 {
                // Ultralytics' summary lines (GFLOPs printed with one decimal).
                let g = w["gflops_640"].as_f64().unwrap();
                assert!(
                    (info.gflops - g).abs() < 5e-4,
                    "{name}: {} vs {g}",
                    info.gflops
                );
                let disp = ryolo::nn::yaml::display_name(name);
                assert_eq!(
                    info.to_string(),
                    format!(
                        "{disp} summary: {} layers, {} parameters, {} gradients, {g:.1} GFLOPs",
                        w["layers"],
                        thousands(w["params"].as_i64().unwrap()),
                        thousands(w["gradients"].as_i64().unwrap())
                    )
                );
                m.fuse();
                let fi = m.info();
                let fg = w["fused_gflops_640"].as_f64().unwrap();
                assert!(
                    (fi.gflops - fg).abs() < 5e-4,
                    "{name} fused: {} vs {fg}",
                    fi.gflops
                );
                // (a YAML-built model keeps gradients on the heads' plain 1x1 convs after fusing). The
                // GFLOPs text is checked through the value above: the fixture keeps 3 decimals, and
                // yolov8l-pose's 168.5499904 prints as 168.5 in Ultralytics too.
                assert_eq!(
                    fi.to_string(),
                    format!(
                        "{disp} summary (fused): {} layers, {} parameters, {} gradients, {:.1} GFLOPs",
                        w["fused_layers"],
                        thousands(w["fused_params"].as_i64().unwrap()),
                        thousands(fi.grads),
                        fi.gflops,
                    )
                );
            }
        }
    }
}
