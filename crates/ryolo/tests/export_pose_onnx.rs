//! ONNX export of a Pose model (spec/pose.md §8) run in ONNX Runtime: the BN-calibrated seed-0
//! yolo11n-pose fixture exported static (1x3x320x320) gives `output0 (1, 56, 2100)` (boxes, person
//! probability, 17 decoded keypoints `x y v`) equal to our libtorch fused forward and to
//! Ultralytics' fused output, with the interface and metadata of `onnx_interface.json` (incl.
//! `kpt_shape` and `kpt_names`), its opset, IR version and node-type counts; the pose predict path
//! runs the exported file end to end.

mod common;
use ryolo::engine::onnx::OnnxModel;
use ryolo::weights::{load_model, load_state};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// The fixture folder, or None (loudly) without ../shared.
fn pose_fixtures() -> Option<PathBuf> {
    Some(common::shared()?.join("fixtures/ultralytics/pose"))
}

/// The BN-calibrated seed-0 yolo11n-pose, fused, on the CPU.
fn bncal_fused(fx: &Path) -> ryolo::nn::DetectionModel {
    let mut m = load_model(
        fx.join("yolo11n-pose_seed0.pt").to_str().unwrap(),
        None,
        Device::Cpu,
    )
    .unwrap()
    .model;
    let bufs: HashMap<String, Tensor> = Tensor::read_npz(fx.join("bn_calibration.npz"))
        .unwrap()
        .into_iter()
        .collect();
    load_state(&mut m, &bufs, false).unwrap();
    m.fuse();
    m
}

/// Picks one block of rows out of an output.
type Block = Box<dyn Fn(&Tensor) -> Tensor>;

/// Largest absolute difference of a row block relative to the reference's largest magnitude.
fn rel(a: &Tensor, b: &Tensor, lo: i64, n: i64) -> f64 {
    let (a, b) = (a.narrow(1, lo, n), b.narrow(1, lo, n));
    (&a - &b).abs().max().double_value(&[]) / b.abs().max().double_value(&[]).max(1e-30)
}

#[test]
fn static_pose_export_matches_torch_and_ultralytics() {
    let Some(fx) = pose_fixtures() else { return };
    let m = bncal_fused(&fx);
    let dir = common::tmp("pose-onnx-static");
    let (f, p) = common::export_onnx(&m, &dir, "pose.onnx", (320, 320), 1, false);
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("onnx_interface.json")).unwrap())
            .unwrap();
    let g = p.graph.as_ref().unwrap();
    // Opset and IR version as Ultralytics' file.
    let opsets: Vec<(&str, i64)> = p
        .opset_import
        .iter()
        .map(|o| (o.domain.as_str(), o.version))
        .collect();
    assert_eq!(opsets, [("", want["opset"].as_i64().unwrap())], "opset");
    assert_eq!(
        p.ir_version,
        want["ir_version"].as_i64().unwrap(),
        "IR version"
    );
    // Node types: the network's own operators match Ultralytics' counts; our DFL expectation is
    // Mul + ReduceSum where theirs is a 1x1 Conv. Constant / Identity / Gather are artefacts of
    // torch's exporter (ours keeps constants as initializers), and the decode arithmetic (Div,
    // Reshape, Slice, Split, Sub, Transpose) is written differently for the same values, which
    // the output comparison below checks.
    let count = |op: &str| g.node.iter().filter(|n| n.op_type == op).count() as i64;
    let theirs = |op: &str| want["node_types"][op].as_i64().unwrap_or(0);
    let mut ours = std::collections::BTreeMap::new();
    for n in &g.node {
        *ours.entry(n.op_type.as_str()).or_insert(0) += 1;
    }
    println!(
        "node types: ours {ours:?}\n  Ultralytics {}",
        want["node_types"]
    );
    for op in [
        "Add", "Concat", "MaxPool", "Resize", "MatMul", "Softmax", "Sigmoid", "Shape",
    ] {
        assert_eq!(count(op), theirs(op), "{op} nodes");
    }
    assert_eq!(
        count("Conv"),
        theirs("Conv") - 1,
        "Conv nodes (theirs: + the DFL conv)"
    );
    assert_eq!(
        count("Mul"),
        theirs("Mul") + 1,
        "Mul nodes (ours: + the DFL expectation)"
    );
    assert_eq!(
        (count("ReduceSum"), theirs("ReduceSum")),
        (1, 0),
        "ReduceSum (our DFL)"
    );
    assert_eq!(count("BatchNormalization"), 0);
    assert_eq!(g.output.len(), 1);
    assert_eq!(g.output[0].name, "output0");
    for key in [
        "task",
        "head",
        "stride",
        "imgsz",
        "names",
        "batch",
        "kpt_shape",
        "kpt_names",
    ] {
        let ours = p
            .metadata_props
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.clone())
            .unwrap_or_else(|| panic!("no metadata {key}"));
        assert_eq!(
            ours,
            want["metadata"][key].as_str().unwrap(),
            "metadata {key}"
        );
    }

    let x = Tensor::read_npy(fx.join("input.npy")).unwrap();
    let torch = tch::no_grad(|| m.predict(&x));
    let ul = Tensor::read_npy(fx.join("output_bncal_fused.npy")).unwrap();
    let ul_unfused = Tensor::read_npy(fx.join("output_bncal_unfused.npy")).unwrap();
    let Some(om) = common::ort_or_skip(OnnxModel::load(&f, 2)) else {
        return;
    };
    assert_eq!(om.task, ryolo::task::TaskKind::Pose);
    assert_eq!(om.kpt_shape, Some((17, 3)));
    let v = Vec::<f32>::try_from(x.flatten(0, -1)).unwrap();
    let (y, d) = om.run(&v, [1, 3, 320, 320]).unwrap();
    assert_eq!(d, [1, 56, 2100]);
    let y = Tensor::from_slice(&y).view([1, 56, 2100]);
    // Keypoint x, y rows (pixels) and visibility rows (probabilities) of the 17 keypoints.
    let pick = |t: &Tensor, o: i64| {
        let idx: Vec<i64> = (0..17).map(|k| 5 + 3 * k + o).collect();
        t.index_select(1, &Tensor::from_slice(&idx))
    };
    // Every block relative to its largest magnitude at the README's 1e-5 (bncal outputs: boxes
    // and keypoints in pixels, probabilities and visibilities up to ~1). Against Ultralytics'
    // fused output the bound is the triangle of the two checked legs: ORT vs our libtorch (1e-5)
    // plus libtorch vs Ultralytics, bounded by the larger of 1e-5 and Ultralytics' own
    // fused-vs-unfused spread of that block (as the pose_model test does).
    let blocks: [(&str, Block); 4] = [
        ("boxes", Box::new(|t: &Tensor| t.narrow(1, 0, 4))),
        ("person", Box::new(|t: &Tensor| t.narrow(1, 4, 1))),
        (
            "keypoint xy",
            Box::new(move |t: &Tensor| Tensor::cat(&[pick(t, 0), pick(t, 1)], 1)),
        ),
        ("visibility", Box::new(move |t: &Tensor| pick(t, 2))),
    ];
    for (what, want) in [("libtorch", &torch), ("Ultralytics fused", &ul)] {
        for (name, block) in &blocks {
            let (a, b) = (block(&y), block(want));
            let d = rel(&a, &b, 0, a.size()[1]);
            let tol = if std::ptr::eq(want, &ul) {
                let (u, f) = (block(&ul_unfused), block(&ul));
                1e-5 + rel(&u, &f, 0, u.size()[1]).max(1e-5)
            } else {
                1e-5
            };
            println!("ORT vs {what}: {name} {d:.2e} relative (tolerance {tol:.1e})");
            assert!(d <= tol, "ORT vs {what}: {name} {d}");
        }
    }

    // The exported file through the pose predict path: keypoints in original pixels.
    let img = ryolo::image::RgbImage::from_fn(320, 240, |x, y| {
        ryolo::image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let pr =
        ryolo::engine::predict::Predictor::load(f.to_str().unwrap(), 320, Device::Cpu).unwrap();
    let pred = pr.predict(&img).unwrap();
    let k = pred
        .keypoints
        .as_ref()
        .expect("a pose prediction carries keypoints");
    assert_eq!(k.len(), pred.detections.len());
    assert_eq!(k.kpt_shape, (17, 3));
    for i in 0..k.len() {
        for p in k.xy(i) {
            assert!((0.0..=320.0).contains(&p[0]) && (0.0..=240.0).contains(&p[1]));
        }
    }
}
