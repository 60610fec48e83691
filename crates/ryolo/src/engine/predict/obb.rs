//! OBB predict (spec/obb.md §9): rotated NMS, rotated boxes mapped to the original image
//! (Ultralytics' `Results.obb`), `save_txt` corner lines and the rotated-box drawing.

use crate::ops::obb::{
    nms_rotated, obb_txt_line, scale_rboxes, xywhr_to_corners, xywhr_to_xyxy, RotatedDetection,
};
use crate::ops::{Detection, LetterboxInfo, NmsConfig};

/// Rotated boxes of one image (Ultralytics' `Results.obb`), in original-image pixels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Obbs {
    /// `[cx, cy, w, h, θ]`, confidence and class per detection, by descending confidence.
    pub boxes: Vec<RotatedDetection>,
    /// Original image `(h, w)`.
    pub orig: (usize, usize),
    /// Track mode with TrackTrack: the rotated boxes of a second, loose NMS (`Predictor::loose_iou`).
    pub loose: Option<Vec<RotatedDetection>>,
}

impl Obbs {
    /// Number of boxes.
    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// The four corners of box `i` in pixels (`.xyxyxyxy`).
    pub fn corners(&self, i: usize) -> Option<[[f32; 2]; 4]> {
        self.boxes.get(i).map(|b| xywhr_to_corners(&b.xywhr))
    }

    /// The four corners of box `i` divided by the original `(w, h)` (`.xyxyxyxyn`).
    pub fn corners_n(&self, i: usize) -> Option<[[f32; 2]; 4]> {
        let (h0, w0) = (self.orig.0 as f32, self.orig.1 as f32);
        self.corners(i).map(|c| c.map(|p| [p[0] / w0, p[1] / h0]))
    }
}

/// Rotated NMS of one image's raw OBB output and the mapping to original pixels: axis-aligned
/// bounds of each rotated box (`.xyxy`, for consumers of plain boxes) and the rotated boxes.
pub fn assemble(
    pred: &[f32],
    nc: usize,
    anchors: usize,
    nms: &NmsConfig,
    info: &LetterboxInfo,
) -> anyhow::Result<(Vec<Detection>, Obbs)> {
    assemble_with_anchors(pred, nc, anchors, nms, info).map(|(d, o, _)| (d, o))
}

/// [`assemble`] plus the anchor each kept box came from (NMS `return_idxs`).
pub fn assemble_with_anchors(
    pred: &[f32],
    nc: usize,
    anchors: usize,
    nms: &NmsConfig,
    info: &LetterboxInfo,
) -> anyhow::Result<(Vec<Detection>, Obbs, Vec<usize>)> {
    let kept = nms_rotated(pred, nc, anchors, nms)?;
    let idx: Vec<usize> = kept.iter().map(|(_, a)| *a).collect();
    let mut rb: Vec<RotatedDetection> = kept.into_iter().map(|(d, _)| d).collect();
    scale_rboxes(&mut rb, info.shape, info.orig);
    let dets = rb
        .iter()
        .map(|r| Detection {
            xyxy: xywhr_to_xyxy(&r.xywhr),
            conf: r.conf,
            cls: r.cls,
        })
        .collect();
    Ok((
        dets,
        Obbs {
            boxes: rb,
            orig: info.orig,
            loose: None,
        },
        idx,
    ))
}

/// The `save_txt` lines of an OBB prediction (`cls x1 y1 … x4 y4 [conf]`), newline-terminated.
pub fn txt_lines(o: &Obbs, save_conf: bool) -> String {
    let mut s = String::new();
    for d in &o.boxes {
        s.push_str(&obb_txt_line(d, o.orig, save_conf));
        s.push('\n');
    }
    s
}

/// The drawable rotated boxes `(corners, class, label)`; `label(i, box)` gives box i's label.
pub fn drawable(
    o: &Obbs,
    label: impl Fn(usize, &RotatedDetection) -> Option<String>,
) -> Vec<crate::plot::obb::RotatedBox> {
    o.boxes
        .iter()
        .enumerate()
        .map(|(i, d)| (xywhr_to_corners(&d.xywhr), d.cls, label(i, d)))
        .collect()
}

/// The `save_txt` lines of a tracked OBB result: `cls x1 y1 … x4 y4 [conf] id` (Ultralytics puts the id last).
pub fn txt_lines_with_ids(o: &Obbs, ids: &[u64], save_conf: bool) -> String {
    let mut s = String::new();
    for (d, id) in o.boxes.iter().zip(ids) {
        s.push_str(&obb_txt_line(d, o.orig, save_conf));
        s.push_str(&format!(" {id}\n"));
    }
    s
}
