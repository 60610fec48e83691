//! Batching: ground-truth rows of a batch and the rect-batch shapes of validation and `rect=True`.

/// Ground truth of a batch: one row per box.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Image index in the batch per box.
    pub batch_idx: Vec<i64>,
    /// Class id per box.
    pub cls: Vec<i64>,
    /// Normalised `cx, cy, w, h` per box.
    pub bboxes: Vec<[f32; 4]>,
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
}
