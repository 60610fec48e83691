//! Pose predict (spec/pose.md §7): NMS carrying the keypoints, keypoints mapped to the original
//! image (Ultralytics' `Results.keypoints`), `save_txt` keypoint lines and the skeleton drawing.

use crate::ops::keypoints::{nms_pose, pose_txt_line, scale_pose, PoseDetection};
use crate::ops::{Detection, LetterboxInfo, NmsConfig};
use anyhow::Result;

/// Keypoints of one image (Ultralytics' `Results.keypoints`), one set per detection, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keypoints {
    /// Per detection, `K·D` values `x, y[, visibility]` in original-image pixels.
    pub data: Vec<Vec<f32>>,
    /// `(K, D)`: keypoints per instance and values per keypoint (2 or 3).
    pub kpt_shape: (usize, usize),
    /// Original image `(h, w)`.
    pub orig: (usize, usize),
}

impl Keypoints {
    /// Number of keypoint sets.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Keypoint `(x, y)` pixels of detection `i` (`.xy`).
    pub fn xy(&self, i: usize) -> Vec<[f32; 2]> {
        let d = self.kpt_shape.1.max(2);
        self.data.get(i).map_or(Vec::new(), |k| {
            k.chunks_exact(d).map(|p| [p[0], p[1]]).collect()
        })
    }

    /// Keypoint `(x, y)` of detection `i` divided by the original `(w, h)` (`.xyn`).
    pub fn xyn(&self, i: usize) -> Vec<[f32; 2]> {
        let (h0, w0) = (self.orig.0 as f32, self.orig.1 as f32);
        self.xy(i)
            .into_iter()
            .map(|p| [p[0] / w0, p[1] / h0])
            .collect()
    }

    /// Visibility probabilities of detection `i` (`.conf`; None for 2-value keypoints).
    pub fn conf(&self, i: usize) -> Option<Vec<f32>> {
        (self.kpt_shape.1 == 3).then(|| {
            self.data
                .get(i)
                .map_or(Vec::new(), |k| k.chunks_exact(3).map(|p| p[2]).collect())
        })
    }

    /// Detection `i`'s keypoints as `(x, y, v)` (v = 1 for 2-value keypoints), for drawing.
    pub fn xyv(&self, i: usize) -> Vec<[f32; 3]> {
        let d = self.kpt_shape.1.max(2);
        self.data.get(i).map_or(Vec::new(), |k| {
            k.chunks_exact(d)
                .map(|p| [p[0], p[1], p.get(2).copied().unwrap_or(1.0)])
                .collect()
        })
    }
}

/// NMS of one image's raw pose output and the mapping to original pixels: the detections (boxes
/// in original pixels) and their keypoints.
pub fn assemble(
    pred: &[f32],
    nc: usize,
    anchors: usize,
    kpt_shape: (usize, usize),
    nms: &NmsConfig,
    info: &LetterboxInfo,
) -> Result<(Vec<Detection>, Keypoints)> {
    assemble_with_anchors(pred, nc, anchors, kpt_shape, nms, info).map(|(d, k, _)| (d, k))
}

/// [`assemble`] plus the anchor each kept detection came from (NMS `return_idxs`).
pub fn assemble_with_anchors(
    pred: &[f32],
    nc: usize,
    anchors: usize,
    kpt_shape: (usize, usize),
    nms: &NmsConfig,
    info: &LetterboxInfo,
) -> Result<(Vec<Detection>, Keypoints, Vec<usize>)> {
    let kept = nms_pose(pred, nc, anchors, kpt_shape, nms)?;
    let idx: Vec<usize> = kept.iter().map(|(_, a)| *a).collect();
    let mut dets: Vec<PoseDetection> = kept.into_iter().map(|(d, _)| d).collect();
    scale_pose(&mut dets, kpt_shape.1, info.shape, info.orig);
    let boxes = dets.iter().map(|p| p.det).collect();
    let kpts = Keypoints {
        data: dets.into_iter().map(|p| p.kpts).collect(),
        kpt_shape,
        orig: info.orig,
    };
    Ok((boxes, kpts, idx))
}

/// The `save_txt` lines of a pose prediction (box + keypoints normalised, `conf` with
/// `save_conf`), newline-terminated; empty without detections.
pub fn txt_lines(dets: &[Detection], k: &Keypoints, save_conf: bool) -> String {
    let mut s = String::new();
    for (d, kp) in dets.iter().zip(&k.data) {
        let p = PoseDetection {
            det: *d,
            kpts: kp.clone(),
        };
        s.push_str(&pose_txt_line(&p, k.kpt_shape.1, k.orig, save_conf));
        s.push('\n');
    }
    s
}

/// How keypoints are drawn: `Results.plot`'s `kpt_radius` (None: the line width) and `kpt_line`
/// (the skeleton, 17 keypoints only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KptStyle {
    /// Circle radius in pixels; None takes the line width (Ultralytics' annotator default).
    pub radius: Option<u32>,
    /// Draw the COCO skeleton.
    pub line: bool,
}

impl Default for KptStyle {
    /// Ultralytics' `Results.plot` defaults: radius 5, skeleton on.
    fn default() -> Self {
        Self {
            radius: Some(5),
            line: true,
        }
    }
}

/// Draws every detection's keypoints and skeleton (last detection first, as Ultralytics): circles
/// of `style.radius`, limbs `ceil(lw / 2)` wide.
pub fn draw(canvas: &mut image::RgbImage, k: &Keypoints, lw: u32, style: KptStyle) {
    let radius = style.radius.unwrap_or(lw).min(i32::MAX as u32) as i32;
    for i in (0..k.len()).rev() {
        crate::plot::pose::draw_keypoints(canvas, &k.xyv(i), k.kpt_shape.1, radius, lw, style.line);
    }
}
