//! The pose and OBB label paths through augmentation (spec/pose.md §3, spec/obb.md §8) on known
//! transforms, the non-augmented pose batch of the loss fixture, and the synthetic pose / OBB sets.
//!
//! The batch check regenerates the fixture's synthetic stick figures with the fixtures' own
//! `make_pose_dataset` (NumPy + OpenCV, a few seconds) through `RYOLO_ULTRALYTICS_PYTHON` or the
//! repository's `.venv`, then builds the batch with ours.

mod common;
use common::tmp;
use ryolo::data::instances::{Instances, Mat3};
use ryolo::data::obb::rbox_targets;
use ryolo::data::{list_images, load_data_yaml, scan_with, LabelFormat};
use ryolo::ops::obb::xywhr_to_corners;
use serde_json::Value;
use tch::{Kind, Tensor};

const COCO_FLIP: [usize; 17] = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15];

/// Rotation by `a` radians about `(c, c)` (y down: positive turns +x towards +y).
fn rotation(a: f64, c: f64) -> Mat3 {
    let (co, si) = (a.cos(), a.sin());
    [
        [co, -si, c - co * c + si * c],
        [si, co, c - si * c - co * c],
        [0.0, 0.0, 1.0],
    ]
}

/// One pose instance in a 100 x 100 image: box (20, 20)-(60, 80), keypoints near its corners.
fn pose_instance() -> Instances {
    let mut inst = Instances::from_boxes(vec![0], vec![[20.0, 20.0, 60.0, 80.0]], false);
    inst.keypoints = Some(vec![vec![
        [30.0, 30.0, 2.0],
        [55.0, 75.0, 1.0],
        [5.0, 50.0, 2.0],
        [0.0, 0.0, 0.0],
    ]]);
    inst
}

#[test]
fn affine_turns_keypoints_exactly_and_hides_those_leaving_the_image() {
    // 90° about the centre: (x, y) -> (100 - y, x)
    let out = pose_instance().warp(&rotation(std::f64::consts::FRAC_PI_2, 50.0), 1.0, 100, 100);
    assert_eq!(out.len(), 1);
    let k = &out.keypoints.as_ref().unwrap()[0];
    let close = |a: [f32; 3], b: [f32; 3]| a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4);
    assert!(close(k[0], [70.0, 30.0, 2.0]), "{k:?}");
    assert!(close(k[1], [25.0, 55.0, 1.0]), "{k:?}");
    assert!(close(k[2], [50.0, 5.0, 2.0]), "{k:?}");
    // the unlabelled (0, 0) goes to (100, 0): inside, still flag 0
    assert!(close(k[3], [100.0, 0.0, 0.0]), "{k:?}");
    // the box is the extent of its own turned corners
    let b = out.boxes[0];
    assert!(
        (b[0] - 20.0).abs() < 1e-4 && (b[1] - 20.0).abs() < 1e-4,
        "{b:?}"
    );
    assert!(
        (b[2] - 80.0).abs() < 1e-4 && (b[3] - 60.0).abs() < 1e-4,
        "{b:?}"
    );

    // shifted 30 px left: the keypoint at x = 5 leaves the image, gets flag 0 and is clipped
    let shift: Mat3 = [[1.0, 0.0, -30.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let out = pose_instance().warp(&shift, 1.0, 100, 100);
    let k = &out.keypoints.as_ref().unwrap()[0];
    assert_eq!(k[2], [0.0, 50.0, 0.0]);
    assert_eq!(k[0], [0.0, 30.0, 2.0]); // x = 0 exactly stays labelled (strict test)
    assert_eq!(out.boxes[0], [0.0, 20.0, 30.0, 80.0]);

    // shifted out of the image: the box fails the candidate test and its keypoints go with it
    let away: Mat3 = [[1.0, 0.0, -59.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let out = pose_instance().warp(&away, 1.0, 100, 100);
    assert!(out.is_empty() && out.keypoints.as_ref().unwrap().is_empty());
}

#[test]
fn clipping_hides_keypoints_outside_the_mosaic_canvas_and_flips_reorder_them() {
    let mut inst = Instances::from_boxes(vec![0], vec![[-10.0, 5.0, 50.0, 40.0]], false);
    let mut kp = vec![[10.0, 10.0, 2.0]; 17];
    kp[3] = [-1.0, 10.0, 2.0];
    kp[4] = [20.0, 641.0, 1.0];
    inst.keypoints = Some(vec![kp]);
    inst.clip(640.0, 640.0);
    let k = &inst.keypoints.as_ref().unwrap()[0];
    assert_eq!(k[3], [0.0, 10.0, 0.0]);
    assert_eq!(k[4], [20.0, 640.0, 0.0]);
    assert_eq!(inst.boxes[0], [0.0, 5.0, 50.0, 40.0]);
    let before = k.clone();
    inst.flip_lr(640.0, Some(&COCO_FLIP));
    let k = &inst.keypoints.as_ref().unwrap()[0];
    for (i, &j) in COCO_FLIP.iter().enumerate() {
        assert_eq!(k[i], [640.0 - before[j][0], before[j][1], before[j][2]]);
    }
    assert_eq!(inst.boxes[0], [590.0, 5.0, 640.0, 40.0]);
}

/// One OBB instance in a 200 x 200 image from its `xywhr`.
fn obb_instance(b: [f32; 5]) -> Instances {
    let c = xywhr_to_corners(&b);
    let ext = c
        .iter()
        .fold([f32::MAX, f32::MAX, f32::MIN, f32::MIN], |e, p| {
            [
                e[0].min(p[0]),
                e[1].min(p[1]),
                e[2].max(p[0]),
                e[3].max(p[1]),
            ]
        });
    let mut inst = Instances::from_boxes(vec![3], vec![ext], false);
    inst.corners = Some(vec![c]);
    inst
}

#[test]
fn affine_turns_obb_corners_exactly_and_the_box_follows_them() {
    let inst = obb_instance([100.0, 100.0, 60.0, 20.0, 0.2]);
    let out = inst.warp(&rotation(0.3, 100.0), 1.0, 200, 200);
    assert_eq!(out.len(), 1);
    let r = rbox_targets(&out, 200, 200)[0];
    let want = [0.5, 0.5, 0.3, 0.1, 0.5];
    assert!(
        r.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5),
        "{r:?}"
    );
    // the axis-aligned box is the extent of the turned corners (rotation is exact for OBB)
    let c = out.corners.as_ref().unwrap()[0];
    let x1 = c.iter().map(|p| p[0]).fold(f32::MIN, f32::max);
    assert!(
        (out.boxes[0][2] - x1).abs() < 1e-4,
        "{:?} {c:?}",
        out.boxes[0]
    );
    // shrunk under 2 px, the box fails the candidate test
    let tiny: Mat3 = [[0.03, 0.0, 97.0], [0.0, 0.03, 97.0], [0.0, 0.0, 1.0]];
    assert!(inst.warp(&tiny, 1.0, 200, 200).is_empty());
}

#[test]
fn clipping_refits_a_cut_obb_in_its_own_orientation() {
    // a 60 x 20 box at 30° whose right end sticks out of the 200 x 200 image
    let inst = obb_instance([190.0, 100.0, 60.0, 20.0, std::f32::consts::FRAC_PI_6]);
    let mut c = inst.clone();
    c.clip(200.0, 200.0);
    let r = rbox_targets(&c, 1, 1)[0];
    assert!(
        (r[4] - std::f32::consts::FRAC_PI_6).abs() < 1e-4,
        "orientation kept: {r:?}"
    );
    assert!(
        (r[3] - 20.0).abs() < 1e-3 && r[2] < 60.0 && r[2] > 30.0,
        "{r:?}"
    );
    // the axis-aligned box is the extent of the visible part only
    assert_eq!(c.boxes[0][2], 200.0);
    // a box entirely outside is emptied and removed as zero-area
    let mut gone = obb_instance([260.0, 100.0, 40.0, 20.0, 0.0]);
    gone.clip(200.0, 200.0);
    gone.remove_zero_area();
    assert!(gone.is_empty());
}

#[test]
fn flips_mirror_obb_angles() {
    let mut inst = obb_instance([50.0, 60.0, 40.0, 10.0, 0.4]);
    inst.flip_lr(200.0, None);
    let r = rbox_targets(&inst, 1, 1)[0];
    let want = [150.0, 60.0, 40.0, 10.0, -0.4];
    assert!(
        r.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-4),
        "{r:?}"
    );
    inst.flip_ud(100.0, None);
    let r = rbox_targets(&inst, 1, 1)[0];
    let want = [150.0, 40.0, 40.0, 10.0, 0.4];
    assert!(
        r.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-4),
        "{r:?}"
    );
}

/// A JSON file.
fn json(p: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn non_augmented_pose_batch_matches_the_loss_fixture() {
    let Some(shared) = common::shared() else {
        return;
    };
    let Some(py) = common::fixture_python() else {
        return;
    };
    let fx = shared.join("fixtures/ultralytics/pose");
    let f = json(&fx.join("loss_fixture.json"));
    let root = tmp("pose-loss-batch");
    common::make_fixture_dataset(&py, &fx, "make_pose_dataset", &root);
    // Our JPEG decoder is not libjpeg's (values differ by up to 4): hand the loader the pixels
    // OpenCV decodes, as lossless PNGs, so the resize and letterbox are compared exactly.
    let code = format!(
        "import cv2, pathlib\nfor p in pathlib.Path({:?}).glob('*.jpg'):\n    cv2.imwrite(str(p.with_suffix('.png')), cv2.imread(str(p))); p.unlink()",
        root.join("images/train").to_str().unwrap()
    );
    let st = std::process::Command::new(&py)
        .args(["-c", &code])
        .status()
        .unwrap();
    assert!(st.success());
    let files = list_images(&[root.join("images/train")]).unwrap();
    let format = LabelFormat::Pose { nkpt: 17, ndim: 3 };
    let scan = scan_with("train", &files, 1, false, format);
    let entries: Vec<_> = f["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            scan.entries
                .iter()
                .find(|e| {
                    e.im_file.file_stem() == std::path::Path::new(n.as_str().unwrap()).file_stem()
                })
                .unwrap_or_else(|| panic!("{n} not in the scan"))
        })
        .collect();
    let b = ryolo::data::plain::plain_batch(&entries, 320).unwrap();
    let want = Tensor::read_npy(fx.join("loss_input_uint8.npy")).unwrap();
    let (n, h, w) = b.shape;
    let got = Tensor::from_slice(&b.pixels)
        .view([n as i64, h as i64, w as i64, 3])
        .permute([0, 3, 1, 2]);
    let d = (got.to_kind(Kind::Int) - want.to_kind(Kind::Int)).abs();
    let (max, differing) = (
        d.max().int64_value(&[]),
        d.gt(0).sum(Kind::Int64).int64_value(&[]),
    );
    let t = &b.targets;
    let f32s = |v: &Value| -> Vec<f32> {
        let mut out = Vec::new();
        let mut stack = vec![v];
        while let Some(x) = stack.pop() {
            match x {
                Value::Array(a) => stack.extend(a.iter().rev()),
                _ => out.push(x.as_f64().unwrap() as f32),
            }
        }
        out
    };
    let bi: Vec<i64> = f32s(&f["targets_batch_idx"])
        .iter()
        .map(|&v| v as i64)
        .collect();
    let cls: Vec<i64> = f32s(&f["targets_cls"]).iter().map(|&v| v as i64).collect();
    assert_eq!(t.batch_idx, bi);
    assert_eq!(t.cls, cls);
    let boxes: Vec<f32> = t.bboxes.iter().flatten().copied().collect();
    let kpts: Vec<f32> = t.keypoints.iter().flatten().flatten().copied().collect();
    let same = |a: &[f32], b: &[f32]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    };
    assert!(
        same(&boxes, &f32s(&f["targets_bboxes_cxcywh_norm"])),
        "boxes {boxes:?}"
    );
    assert!(
        same(&kpts, &f32s(&f["targets_keypoints_xyv_norm"])),
        "keypoints differ"
    );
    println!(
        "pose batch: {} targets, boxes and {} keypoint values bit-exact; pixels: {differing} values differ (max {max})",
        t.cls.len(),
        kpts.len()
    );
    assert_eq!(max, 0, "letterboxed pixels differ by up to {max}");
}

#[test]
fn synthetic_pose_and_obb_sets_pass_the_scan() {
    let root = tmp("synth-po");
    let pose = ryolo::data::synth_po::generate_pose(&root.join("pose"), 16, 160, 3).unwrap();
    let dc = load_data_yaml(&pose).unwrap();
    assert_eq!(dc.kpt_shape, Some([17, 3]));
    let format = dc.label_format("pose").unwrap();
    let mut objects = 0;
    for (split, sources) in &dc.splits {
        let files = list_images(sources).unwrap();
        let s = scan_with(split, &files, dc.nc(), false, format);
        assert_eq!(
            s.entries.len(),
            files.len(),
            "{split}: every image verified"
        );
        for e in &s.entries {
            let k = e.keypoints.as_ref().unwrap();
            assert_eq!(k.len(), e.cls.len());
            for (kp, b) in k.iter().zip(&e.boxes) {
                assert_eq!(kp.len(), 17);
                for p in kp.iter().filter(|p| p[2] > 0.0) {
                    // labelled keypoints lie inside their box
                    assert!((p[0] - b[0]).abs() <= b[2] / 2.0 + 1e-5, "{p:?} {b:?}");
                    assert!((p[1] - b[1]).abs() <= b[3] / 2.0 + 1e-5, "{p:?} {b:?}");
                }
            }
            objects += e.cls.len();
        }
    }
    assert!(objects >= 16, "{objects} figures");

    let obb = ryolo::data::synth_po::generate_obb(&root.join("obb"), 16, 160, 3).unwrap();
    let dc = load_data_yaml(&obb).unwrap();
    let format = dc.label_format("obb").unwrap();
    let files = list_images(&dc.splits[0].1).unwrap();
    let s = scan_with("train", &files, dc.nc(), false, format);
    assert_eq!(s.entries.len(), files.len());
    for e in &s.entries {
        let img = image::open(&e.im_file).unwrap().to_rgb8();
        for (c, &cls) in e.corners.as_ref().unwrap().iter().zip(&e.cls) {
            // the centre pixel has the class colour: red, green or blue dominates
            let cx = (c.iter().map(|p| p[0]).sum::<f32>() / 4.0 * 160.0) as u32;
            let cy = (c.iter().map(|p| p[1]).sum::<f32>() / 4.0 * 160.0) as u32;
            let px = img.get_pixel(cx, cy).0;
            let dominant = (0..3).max_by_key(|&i| px[i]).unwrap();
            assert_eq!(dominant, [0, 1, 2][cls as usize], "{px:?} for class {cls}");
        }
    }
}
