//! Segmentation mask post-processing parity: `process_mask` (both modes), `process_mask_native`
//! (f = 1 and f = 4), `scale_boxes` and the predictor's empty-mask filter must reproduce Ultralytics
//! 8.4.190's outputs on the synthetic fixture (`fixtures/ultralytics/segment/post_*`) bit for bit.

mod common;
use ryolo::ops::masks::{
    crop_mask, native_upsample_factor, process_mask, process_mask_native, scale_masks,
};
use ryolo::ops::{scale_boxes, Detection, LetterboxInfo};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

fn dir(shared: &Path) -> PathBuf {
    shared.join("fixtures/ultralytics/segment")
}

fn npy(d: &Path, name: &str) -> Tensor {
    Tensor::read_npy(d.join(name)).unwrap()
}

fn fixture(d: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(d.join("post_fixture.json")).unwrap()).unwrap()
}

/// Prototypes `(32, 80, 64)`, coefficients `(4, 32)` and boxes `(4, 4)` (narrowed views of the
/// `(4, 38)` NMS rows, as Ultralytics slices them).
fn inputs(d: &Path) -> (Tensor, Tensor, Tensor) {
    let pred = npy(d, "post_pred.npy");
    (
        npy(d, "post_proto.npy"),
        pred.narrow(1, 6, 32),
        pred.narrow(1, 0, 4),
    )
}

/// Number of pixels where two uint8 mask stacks differ (shapes must agree).
fn mismatches(got: &Tensor, want: &Tensor) -> i64 {
    assert_eq!(got.size(), want.size());
    assert_eq!(got.kind(), Kind::Uint8);
    got.ne_tensor(want).sum(Kind::Int64).int64_value(&[])
}

fn sums(m: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(m.sum_dim_intlist([1, 2].as_slice(), false, Kind::Int64)).unwrap()
}

fn i64s(v: &serde_json::Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

#[test]
fn process_mask_proto_and_input_resolution() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = dir(&shared);
    let fx = fixture(&d);
    let (proto, coef, boxes) = inputs(&d);
    let small = process_mask(&proto, &coef, &boxes, (320, 256), false);
    let want = npy(&d, "post_masks_proto_res.npy");
    assert_eq!(small.size(), [4, 80, 64]);
    assert_eq!(mismatches(&small, &want), 0, "upsample=false pixels differ");
    assert_eq!(
        sums(&small),
        i64s(&fx["process_mask_upsample_false"]["sums"])
    );
    let up = process_mask(&proto, &coef, &boxes, (320, 256), true);
    let want = npy(&d, "post_masks_input_res.npy");
    assert_eq!(up.size(), [4, 320, 256]);
    assert_eq!(mismatches(&up, &want), 0, "upsample=true pixels differ");
    assert_eq!(sums(&up), i64s(&fx["process_mask_upsample_true"]["sums"]));
}

#[test]
fn native_masks_scaled_boxes_and_kept_flags() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = dir(&shared);
    let fx = fixture(&d);
    let (proto, coef, boxes) = inputs(&d);
    let input_masks = process_mask(&proto, &coef, &boxes, (320, 256), true);
    let raw: Vec<f32> = Vec::try_from(boxes.contiguous().view([-1])).unwrap();
    for (tag, case) in fx["cases"].as_object().unwrap() {
        let hw = i64s(&case["orig_shape_hw"]);
        let (h0, w0) = (hw[0], hw[1]);
        // Boxes mapped back to the original image (predict's scale_boxes), exact f32 values.
        let info = LetterboxInfo {
            orig: (h0 as usize, w0 as usize),
            shape: (320, 256),
            ratio: 0.0, // scale_boxes derives the gain from the shapes
            pad: (0, 0),
        };
        let mut dets: Vec<Detection> = raw
            .chunks(4)
            .map(|b| Detection {
                xyxy: [b[0], b[1], b[2], b[3]],
                conf: 1.0,
                cls: 0,
            })
            .collect();
        scale_boxes(&mut dets, &info);
        let want: Vec<[f32; 4]> = case["scaled_boxes_xyxy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| std::array::from_fn(|i| b[i].as_f64().unwrap() as f32))
            .collect();
        let got: Vec<[f32; 4]> = dets.iter().map(|d| d.xyxy).collect();
        assert_eq!(got, want, "{tag}: scaled boxes");
        // Predictor (retina_masks=False): detections with an empty input-resolution mask are dropped.
        let kept: Vec<bool> =
            Vec::<bool>::try_from(input_masks.amax([1, 2].as_slice(), false).gt(0)).unwrap();
        let want_kept: Vec<bool> = case["retina_false"]["kept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        assert_eq!(kept, want_kept, "{tag}: kept flags");
        // Retina masks at the original size from the scaled boxes.
        let f = native_upsample_factor((80, 64), (h0, w0));
        assert_eq!(
            f,
            case["native_upsample_factor_f"].as_i64().unwrap(),
            "{tag}: f"
        );
        let flat: Vec<f32> = got.iter().flatten().copied().collect();
        let sboxes = Tensor::from_slice(&flat).view([-1, 4]);
        let native = process_mask_native(&proto, &coef, &sboxes, (h0, w0));
        let rt = &case["retina_true"];
        let want = npy(&d, rt["masks_file"].as_str().unwrap());
        let bad = mismatches(&native, &want);
        println!("{tag}: f = {f}, native mask pixels differing: {bad}");
        assert_eq!(bad, 0, "{tag}: native masks differ");
        assert_eq!(sums(&native), i64s(&rt["mask_sums"]), "{tag}: mask sums");
    }
}

#[test]
fn empty_inputs_give_empty_outputs() {
    let proto = Tensor::randn([32, 8, 6], (Kind::Float, tch::Device::Cpu));
    let coef = Tensor::zeros([0, 32], (Kind::Float, tch::Device::Cpu));
    let boxes = Tensor::zeros([0, 4], (Kind::Float, tch::Device::Cpu));
    assert_eq!(
        process_mask(&proto, &coef, &boxes, (32, 24), false).size(),
        [0, 8, 6]
    );
    assert_eq!(
        process_mask(&proto, &coef, &boxes, (32, 24), true).size(),
        [0, 32, 24]
    );
    let n = process_mask_native(&proto, &coef, &boxes, (50, 40));
    assert_eq!((n.size(), n.kind()), (vec![0, 50, 40], Kind::Uint8));
    let m = Tensor::zeros([0, 8, 6], (Kind::Uint8, tch::Device::Cpu));
    assert_eq!(crop_mask(&m, &boxes).size(), [0, 8, 6]);
    let m = Tensor::zeros([1, 0, 32, 24], (Kind::Float, tch::Device::Cpu));
    assert_eq!(scale_masks(&m, (50, 40), None, true).size(), [1, 0, 50, 40]);
    let m = Tensor::zeros([0, 3, 32, 24], (Kind::Float, tch::Device::Cpu));
    assert_eq!(scale_masks(&m, (50, 40), None, true).size(), [0, 3, 50, 40]);
    // A detection whose mask is all background stays all zero.
    let coef = Tensor::zeros([1, 32], (Kind::Float, tch::Device::Cpu));
    let boxes = Tensor::from_slice(&[0.0f32, 0.0, 24.0, 32.0]).view([1, 4]);
    let up = process_mask(&proto, &coef, &boxes, (32, 24), true);
    assert_eq!(up.sum(Kind::Int64).int64_value(&[]), 0);
}

#[test]
fn crop_keeps_columns_from_x1_up_to_but_excluding_x2() {
    let m = Tensor::ones([1, 4, 6], (Kind::Uint8, tch::Device::Cpu));
    let b = Tensor::from_slice(&[1.0f32, 0.5, 3.0, 2.5]).view([1, 4]);
    let c = crop_mask(&m, &b);
    let rows: Vec<u8> = Vec::try_from(c.view([-1])).unwrap();
    #[rustfmt::skip]
    let want = [
        0, 0, 0, 0, 0, 0,
        0, 1, 1, 0, 0, 0,
        0, 1, 1, 0, 0, 0,
        0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(rows, want);
}

#[test]
fn scale_masks_with_explicit_ratio_pad_equals_the_derived_one() {
    // 500×375 letterboxed to 320×256: gain 0.64, 8 px padding left and right.
    let m = Tensor::randn([2, 3, 320, 256], (Kind::Float, tch::Device::Cpu));
    let derived = scale_masks(&m, (500, 375), None, true);
    let given = scale_masks(&m, (500, 375), Some(((0.64, 0.64), (8.0, 0.0))), true);
    assert_eq!(derived.size(), [2, 3, 500, 375]);
    assert!(derived.equal(&given));
    // The content crop is columns 8..248: the padding never reaches the output.
    let padded = m.copy();
    let _ = padded.narrow(3, 0, 8).fill_(1e6);
    let _ = padded.narrow(3, 248, 8).fill_(1e6);
    assert!(scale_masks(&padded, (500, 375), None, true).equal(&derived));
    // Same size: returned unchanged.
    assert!(scale_masks(&m, (320, 256), None, true).equal(&m));
}
