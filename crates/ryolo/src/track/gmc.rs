//! Global motion compensation: the warp source a tracker asks once per frame.

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
