//! The per-level `cv4` branch the Segment, Pose and OBB heads add to Detect: Conv 3x3, Conv 3x3,
//! Conv2d 1x1 to `n` outputs on each of P3, P4, P5.

use super::modules::{Conv, Conv2d};
use tch::{nn, Tensor};

/// One `cv4` level: Conv 3x3, Conv 3x3, Conv2d 1x1.
pub type Level = (Conv, Conv, Conv2d);

/// Builds `cv4` under `p` (the head's path) for input channels `ch`: hidden width
/// `max(ch[0] / 4, n)`, `n` outputs per level.
pub(crate) fn new(p: &nn::Path, ch: &[i64], n: i64) -> Vec<Level> {
    let c4 = (ch[0] / 4).max(n);
    ch.iter()
        .enumerate()
        .map(|(i, &c)| {
            let q = p / "cv4" / i as i64;
            (
                Conv::new(&q / 0, c, c4, 3, 1, 1, true),
                Conv::new(&q / 1, c4, c4, 3, 1, 1, true),
                Conv2d::new(&q / 2, c4, n),
            )
        })
        .collect()
}

/// The raw `(B, n, A)` outputs of every level, flattened row-major and concatenated.
pub(crate) fn forward(cv4: &[Level], xs: &[&Tensor], t: bool, n: i64) -> Tensor {
    let maps: Vec<Tensor> = xs
        .iter()
        .zip(cv4)
        .map(|(x, (a, b, c))| {
            let y = c.forward(&b.forward(&a.forward(x, t), t));
            let (bs, _, h, w) = y.size4().expect("4-d cv4 map");
            y.view([bs, n, h * w])
        })
        .collect();
    Tensor::cat(&maps, 2)
}

/// The fusable convolutions of `cv4`.
pub(crate) fn convs_mut(cv4: &mut [Level]) -> Vec<&mut Conv> {
    cv4.iter_mut().flat_map(|(a, b, _)| [a, b]).collect()
}

/// Leaf modules of `cv4`.
pub(crate) fn leaves(cv4: &[Level]) -> usize {
    cv4.iter()
        .map(|(a, b, _)| a.leaves() + b.leaves() + 1)
        .sum()
}
