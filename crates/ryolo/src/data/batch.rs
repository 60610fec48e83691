//! Batching: ground-truth rows of a batch and the rect-batch shapes of validation and `rect=True`.

use super::instances::{Corners, Instances, Polygon};

/// Ground truth of a batch: one row per box. The per-box parts of the other tasks are empty unless
/// the samples carry them; then they have one entry per row.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Image index in the batch per box.
    pub batch_idx: Vec<i64>,
    /// Class id per box.
    pub cls: Vec<i64>,
    /// Normalised `cx, cy, w, h` per box.
    pub bboxes: Vec<[f32; 4]>,
    /// Normalised polygon per box (segment data).
    pub segments: Vec<Polygon>,
    /// Normalised `x, y, visibility` keypoints per box (pose data).
    pub keypoints: Vec<Vec<[f32; 3]>>,
    /// Normalised oriented-box corners per box (obb data).
    pub corners: Vec<Corners>,
    /// OBB loss targets per box: canonical `x/W, y/H, w/W, h/H, θ` (spec/obb.md §1), computed from
    /// the pixel corners before normalising (empty unless the batch builder fills it).
    pub rboxes: Vec<[f32; 5]>,
}

impl Targets {
    /// The rows of a batch from each image's normalised labels, in image order (parts missing on
    /// some images are padded, see [`Instances::extend`]).
    pub fn collate(images: Vec<Instances>) -> Self {
        let batch_idx = images
            .iter()
            .enumerate()
            .flat_map(|(k, inst)| std::iter::repeat_n(k as i64, inst.len()))
            .collect();
        let all = Instances::concat(images);
        Self {
            batch_idx,
            cls: all.cls.iter().map(|&c| c as i64).collect(),
            bboxes: all.boxes,
            segments: all.segments.unwrap_or_default(),
            keypoints: all.keypoints.unwrap_or_default(),
            corners: all.corners.unwrap_or_default(),
            rboxes: Vec::new(),
        }
    }
}

/// How segment training builds its mask targets (`overlap_mask`, `mask_ratio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskSpec {
    /// One index map per image (value k = the k-th instance, smaller objects on top).
    pub overlap: bool,
    /// Downsampling factor of the masks.
    pub ratio: usize,
}

/// One sample's mask targets at `1/ratio` of its `h x w` canvas (spec/segment.md §3 item 7): the
/// overlap index map (the instances are re-ordered to match it) or one binary mask per instance.
pub fn sample_masks(inst: &mut Instances, h: usize, w: usize, spec: MaskSpec) -> Vec<u32> {
    let polys = inst.segments.clone().unwrap_or_default();
    let r = spec.ratio.max(1);
    if spec.overlap {
        let (map, order) = crate::ops::raster::masks_overlap(&polys, h, w, r);
        if polys.len() == inst.len() {
            inst.permute(&order);
        }
        map
    } else {
        crate::ops::raster::masks_separate(&polys, h, w, r)
            .into_iter()
            .map(u32::from)
            .collect()
    }
}

/// The mask targets of a batch: overlap `(B, h, w)` index maps or `(N, h, w)` binary masks aligned
/// with the target rows.
#[derive(Debug, Clone, Default)]
pub struct BatchMasks {
    /// Values, row-major.
    pub data: Vec<u32>,
    /// Maps (overlap: images; else instances).
    pub n: usize,
    /// Mask height and width.
    pub hw: (usize, usize),
}

impl BatchMasks {
    /// Concatenates per-sample masks of size `hw`.
    pub fn collate(parts: Vec<Vec<u32>>, hw: (usize, usize)) -> Self {
        let data: Vec<u32> = parts.into_iter().flatten().collect();
        let n = data.len() / (hw.0 * hw.1).max(1);
        Self { data, n, hw }
    }

    /// As an int32 tensor `(n, h, w)` on `device`.
    pub fn tensor(&self, device: tch::Device) -> tch::Tensor {
        let v: Vec<i32> = self.data.iter().map(|&x| x as i32).collect();
        tch::Tensor::from_slice(&v)
            .view([self.n as i64, self.hw.0 as i64, self.hw.1 as i64])
            .to_device(device)
    }
}

/// Rect batches: image order sorted by aspect ratio and each batch's `(h, w)` canvas.
pub fn rect_batches(
    shapes: &[(u32, u32)],
    imgsz: usize,
    batch: usize,
    stride: usize,
    pad: f64,
) -> Vec<(Vec<usize>, (usize, usize))> {
    let mut order: Vec<usize> = (0..shapes.len()).collect();
    let ar = |i: usize| shapes[i].0 as f64 / shapes[i].1 as f64;
    order.sort_by(|&a, &b| ar(a).total_cmp(&ar(b)));
    order
        .chunks(batch.max(1))
        .map(|idx| {
            let (mn, mx) = idx.iter().fold((f64::MAX, f64::MIN), |(a, b), &i| {
                (a.min(ar(i)), b.max(ar(i)))
            });
            let s = if mx < 1.0 {
                [mx, 1.0]
            } else if mn > 1.0 {
                [1.0, 1.0 / mn]
            } else {
                [1.0, 1.0]
            };
            let dim = |v: f64| ((v * imgsz as f64 / stride as f64 + pad).ceil() as usize) * stride;
            (idx.to_vec(), (dim(s[0]), dim(s[1])))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rect_shapes_pad_half_a_stride() {
        // Square images at 640 use 672x672 canvases; 4:3 landscape 512x672 (spec/data.md §4.1).
        let b = rect_batches(&[(512, 512), (512, 512)], 640, 16, 32, 0.5);
        assert_eq!(b[0].1, (672, 672));
        let b = rect_batches(&[(480, 640)], 640, 16, 32, 0.5);
        assert_eq!(b[0].1, (512, 672));
    }

    #[test]
    fn collate_keeps_rows_and_parts_aligned() {
        let det = Instances::from_boxes(vec![1, 2], vec![[0.5, 0.5, 0.2, 0.2]; 2], true);
        let t = Targets::collate(vec![det.clone(), Instances::default(), det]);
        assert_eq!((t.batch_idx, t.cls), (vec![0, 0, 2, 2], vec![1, 2, 1, 2]));
        assert!(t.segments.is_empty() && t.keypoints.is_empty() && t.corners.is_empty());
        let pose = Instances {
            keypoints: Some(vec![vec![[0.1, 0.2, 2.0]; 3]]),
            ..Instances::from_boxes(vec![0], vec![[0.5, 0.5, 0.2, 0.2]], true)
        };
        let t = Targets::collate(vec![pose.clone(), pose]);
        assert_eq!(t.keypoints.len(), 2);
        assert_eq!(t.keypoints[1], vec![[0.1, 0.2, 2.0]; 3]);
    }
}
