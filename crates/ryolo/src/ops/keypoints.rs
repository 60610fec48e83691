//! Pose post-processing (spec/pose.md §6-7): NMS carrying the keypoint rows, mapping boxes and
//! keypoints back to the original image (keypoints clipped, visibility untouched) and the pose
//! `save_txt` line. Plain Rust, no libtorch.

use super::contour::scale_coords;
use super::{nms_with_anchors, scale_boxes, Detection, LetterboxInfo, NmsConfig};
use crate::util::fmt_g;
use anyhow::{ensure, Result};

/// A pose detection: box, confidence and class, plus its `K·D` keypoint values (`x, y[, v]` per
/// keypoint, keypoint-major, as the head emits them).
#[derive(Debug, Clone, PartialEq)]
pub struct PoseDetection {
    /// Box (`xyxy`), confidence and class.
    pub det: Detection,
    /// `K·D` keypoint values.
    pub kpts: Vec<f32>,
}

impl PoseDetection {
    /// The keypoints' `(x, y)` pairs, given `D` values per keypoint.
    pub fn xy(&self, d: usize) -> Vec<[f32; 2]> {
        self.kpts
            .chunks_exact(d.max(2))
            .map(|k| [k[0], k[1]])
            .collect()
    }
}

/// NMS of one image's raw pose output, row-major `(4 + nc + K·D, A)`, keeping each detection's
/// keypoint values (multi-label duplicates copy them). Returns the detections (descending
/// confidence) with their anchor index; the keypoints stay in letterboxed-input pixels.
pub fn nms_pose(
    pred: &[f32],
    nc: usize,
    anchors: usize,
    kpt_shape: (usize, usize),
    cfg: &NmsConfig,
) -> Result<Vec<(PoseDetection, usize)>> {
    let nk = kpt_shape.0 * kpt_shape.1;
    ensure!(
        kpt_shape.1 == 2 || kpt_shape.1 == 3,
        "kpt_shape {kpt_shape:?}: keypoints need 2 or 3 values"
    );
    ensure!(
        pred.len() == (4 + nc + nk) * anchors,
        "pose output has {} values, expected (4 + {nc} + {nk}) x {anchors}",
        pred.len()
    );
    Ok(nms_with_anchors(pred, nc, anchors, cfg)
        .into_iter()
        .map(|(det, a)| {
            let kpts = (0..nk).map(|j| pred[(4 + nc + j) * anchors + a]).collect();
            (PoseDetection { det, kpts }, a)
        })
        .collect())
}

/// Maps pose detections from letterboxed-input pixels (`input_hw`) to the original image
/// (`orig_hw`): boxes with [`scale_boxes`], keypoint x, y with [`scale_coords`] (clipped to the
/// image), visibility unchanged (8.4 rounded-letterbox rule, float32).
pub fn scale_pose(
    dets: &mut [PoseDetection],
    d: usize,
    input_hw: (usize, usize),
    orig_hw: (usize, usize),
) {
    let info = LetterboxInfo {
        orig: orig_hw,
        shape: input_hw,
        ratio: 0.0, // scale_boxes derives gain and padding from the two shapes
        pad: (0, 0),
    };
    let d = d.max(2);
    for p in dets {
        scale_boxes(std::slice::from_mut(&mut p.det), &info);
        let xy = scale_coords(&p.xy(d), input_hw, orig_hw, false);
        for (k, q) in p.kpts.chunks_exact_mut(d).zip(xy) {
            k[0] = q[0];
            k[1] = q[1];
        }
    }
}

/// One pose `save_txt` line: `cls cx cy w h` (box normalised by the original `(h, w)`), then per
/// keypoint `x y` normalised (and `v` when D = 3), then `conf` with `with_conf`; float32 values,
/// Python `%g` numbers.
pub fn pose_txt_line(
    p: &PoseDetection,
    d: usize,
    orig_hw: (usize, usize),
    with_conf: bool,
) -> String {
    let (h0, w0) = (orig_hw.0 as f32, orig_hw.1 as f32);
    let mut vals: Vec<f32> = p.det.xywhn(w0, h0).to_vec();
    for k in p.kpts.chunks_exact(d.max(2)) {
        vals.push(k[0] / w0);
        vals.push(k[1] / h0);
        vals.extend(k.get(2));
    }
    if with_conf {
        vals.push(p.det.conf);
    }
    let mut s = p.det.cls.to_string();
    for v in vals {
        s.push(' ');
        s.push_str(&fmt_g(v as f64, 6));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_output_size_is_an_error() {
        let cfg = NmsConfig::default();
        assert!(nms_pose(&[0.0; 10], 1, 2, (17, 3), &cfg).is_err());
        assert!(nms_pose(&[0.0; 9], 1, 1, (2, 4), &cfg).is_err());
        assert!(nms_pose(&[], 1, 0, (17, 3), &cfg).unwrap().is_empty());
    }

    #[test]
    fn keypoints_are_clipped_and_visibility_kept() {
        // 100x100 original, letterboxed to 100x100: identity apart from the clip.
        let mut p = [PoseDetection {
            det: Detection {
                xyxy: [10.0, 10.0, 50.0, 50.0],
                conf: 0.5,
                cls: 0,
            },
            kpts: vec![-5.0, 20.0, 0.7, 120.0, 30.0, 0.2],
        }];
        scale_pose(&mut p, 3, (100, 100), (100, 100));
        assert_eq!(p[0].kpts, vec![0.0, 20.0, 0.7, 100.0, 30.0, 0.2]);
        assert_eq!(
            pose_txt_line(&p[0], 3, (100, 100), true),
            "0 0.3 0.3 0.4 0.4 0 0.2 0.7 1 0.3 0.2 0.5"
        );
    }
}
