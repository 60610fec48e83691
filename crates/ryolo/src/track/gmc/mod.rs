//! Global motion compensation: the warp source a tracker asks once per frame (Ultralytics' GMC methods).

pub mod affine;
pub mod corners;
pub mod ecc;
pub mod fast;
pub mod features;
pub mod gray;
pub mod lk;
pub mod orb;
pub mod orb_pattern;
pub mod sift;
pub mod sift_pyramid;
pub mod sparse;

pub use ecc::Ecc;
pub use features::{FeatureGmc, FeatureKind};
pub use sparse::SparseOptFlow;

use super::config::GmcMethod;

/// A 2×3 affine warp mapping the previous frame to the current one.
pub type Warp = [[f64; 3]; 2];

/// The identity warp.
pub const IDENTITY: Warp = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];

/// Something that estimates the camera motion between consecutive frames.
pub trait Gmc: Send {
    /// The warp for this frame; `dets` are the high-confidence detection boxes (`xyxy`, pixels).
    /// Failures must return [`IDENTITY`], as Ultralytics does on any exception.
    fn apply(&mut self, frame: &image::RgbImage, dets: &[[f32; 4]]) -> Warp;
    /// Forgets the previous frame (the tracker was reset).
    fn reset(&mut self);
}

/// Replays recorded warps in order (identity once they run out): for tests against fixtures.
#[derive(Clone, Debug)]
pub struct ReplayGmc {
    /// The recorded warps, one per frame.
    warps: Vec<Warp>,
    /// The next warp to hand out.
    next: usize,
}

impl ReplayGmc {
    /// Replays `warps` from the first.
    pub fn new(warps: Vec<Warp>) -> Self {
        Self { warps, next: 0 }
    }
}

impl Gmc for ReplayGmc {
    fn apply(&mut self, _frame: &image::RgbImage, _dets: &[[f32; 4]]) -> Warp {
        let w = self.warps.get(self.next).copied().unwrap_or(IDENTITY);
        self.next += 1;
        w
    }

    fn reset(&mut self) {
        self.next = 0;
    }
}

/// The motion compensation `method` names (`None` for `none`).
pub fn build(method: GmcMethod) -> Option<Box<dyn Gmc>> {
    match method {
        GmcMethod::None => None,
        GmcMethod::SparseOptFlow => Some(Box::new(SparseOptFlow::new())),
        GmcMethod::Ecc => Some(Box::new(Ecc::new())),
        GmcMethod::Orb => Some(Box::new(FeatureGmc::new(FeatureKind::Orb))),
        GmcMethod::Sift => Some(Box::new(FeatureGmc::new(FeatureKind::Sift))),
    }
}
