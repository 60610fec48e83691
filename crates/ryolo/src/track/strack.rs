//! One track (Ultralytics `STrack`/`BOTrack`): detection measurement, Kalman state and life cycle.

use std::collections::VecDeque;

use super::kalman::{Cov, KalmanKind, Mean};

/// Life-cycle state of a track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackState {
    /// Created from a detection, not yet tracked.
    New,
    /// Matched recently.
    Tracked,
    /// Not matched in the last frame(s), kept for re-identification.
    Lost,
    /// Dropped.
    Removed,
}

/// A track or a detection candidate (a candidate has no Kalman state and id 0).
#[derive(Clone, Debug)]
pub struct STrack {
    /// Measured box `(x1, y1, w, h)` of the detection (float32).
    pub tlwh: [f32; 4],
    /// Kalman mean and covariance, once activated.
    pub kf: Option<(Mean, Cov)>,
    /// Confidence of the last matched detection.
    pub score: f32,
    /// Class of the last matched detection.
    pub cls: f32,
    /// Row of the last matched detection in its frame's input (−1: a recovered detection).
    pub idx: i64,
    /// Track id (0 until activated).
    pub track_id: u64,
    /// Life-cycle state.
    pub state: TrackState,
    /// Whether the track is confirmed (shown).
    pub is_activated: bool,
    /// Last frame the track was matched.
    pub frame_id: u32,
    /// Frame the track was born.
    pub start_frame: u32,
    /// Consecutive matched frames since (re)activation.
    pub tracklet_len: u32,
    /// OBB tracks: the rotation (radians, float64) of the last matched detection in its half-turn form nearest
    /// the previous one; None for axis-aligned boxes.
    pub angle: Option<f64>,
    /// TrackTrack's extra state and the appearance features (ReID) of TrackTrack and BoT-SORT.
    pub tt: TtState,
}

/// A box in a TrackTrack history: float32 (a measured detection) or float64 (from the Kalman mean).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HistBox {
    /// Stored by `update` (the detection's box).
    F32([f32; 4]),
    /// Stored by `activate` / `re_activate` (the filtered box).
    F64([f64; 4]),
}

/// TrackTrack's per-track additions (score history, corner velocity, recent boxes) and the ReID features.
#[derive(Clone, Debug, Default)]
pub struct TtState {
    /// Score before the last update.
    pub prev_score: f32,
    /// Per-corner unit velocity `(vx, vy)` for (x1,y1), (x1,y2), (x2,y1), (x2,y2).
    pub velocity: [[f32; 2]; 4],
    /// The last 4 `(frame, box)` entries.
    pub history: VecDeque<(u32, HistBox)>,
    /// The latest L2-normalised appearance feature (ReID).
    pub curr_feat: Option<Vec<f32>>,
    /// The score-adaptive moving average of the features, normalised (ReID).
    pub smooth_feat: Option<Vec<f32>>,
}

impl STrack {
    /// A candidate from a float32 `xyxy` detection: `tlwh` derived through float32 `xywh` as Ultralytics.
    pub fn candidate(xyxy: [f32; 4], score: f32, cls: f32, idx: i64) -> Self {
        let xywh = xyxy_to_xywh(xyxy);
        Self::from_xywh(xywh, score, cls, idx)
    }

    /// A candidate from a float32 `xywh` box (`tlwh` computed in float64, rounded to float32).
    pub fn from_xywh(xywh: [f32; 4], score: f32, cls: f32, idx: i64) -> Self {
        let (cx, cy, w, h) = (
            f64::from(xywh[0]),
            f64::from(xywh[1]),
            f64::from(xywh[2]),
            f64::from(xywh[3]),
        );
        let tlwh = [
            (cx - w / 2.0) as f32,
            (cy - h / 2.0) as f32,
            xywh[2],
            xywh[3],
        ];
        Self {
            tlwh,
            kf: None,
            score,
            cls,
            idx,
            track_id: 0,
            state: TrackState::New,
            is_activated: false,
            frame_id: 0,
            start_frame: 0,
            tracklet_len: 0,
            angle: None,
            tt: TtState {
                prev_score: score,
                ..TtState::default()
            },
        }
    }

    /// A candidate from a float32 rotated box `[cx, cy, w, h, θ]` in long-edge form, as Ultralytics' `STrack`:
    /// when `w < h` the sides swap and θ gains π/2 (float64), then `tlwh` as [`STrack::from_xywh`].
    pub fn from_xywha(b: [f32; 5], score: f32, cls: f32, idx: i64) -> Self {
        let mut angle = f64::from(b[4]);
        let (w, h) = if b[2] < b[3] {
            angle += std::f64::consts::FRAC_PI_2;
            (b[3], b[2])
        } else {
            (b[2], b[3])
        };
        let mut t = Self::from_xywh([b[0], b[1], w, h], score, cls, idx);
        t.angle = Some(angle);
        t
    }

    /// The rotated box `[cx, cy, w, h, θ]` (float32 of the float64 state) of an OBB track or candidate: the
    /// Kalman mean's centre and size (the measured box for a candidate, in float32) with the angle.
    pub fn xywha(&self, kind: KalmanKind) -> Option<[f32; 5]> {
        let a = self.angle?;
        Some(match &self.kf {
            Some(_) => {
                let b = self.xyxy_f64(kind);
                let (w, h) = (b[2] - b[0], b[3] - b[1]);
                [b[0] + w / 2.0, b[1] + h / 2.0, w, h, a].map(|v| v as f32)
            }
            None => {
                let t = self.tlwh;
                [t[0] + t[2] / 2.0, t[1] + t[3] / 2.0, t[2], t[3], a as f32]
            }
        })
    }

    /// Takes the angle of matched detection `det` in the half-turn form (θ or θ ± kπ) nearest the track's.
    pub fn follow_angle(&mut self, det: &STrack) {
        if let (Some(old), Some(new)) = (self.angle, det.angle) {
            let pi = std::f64::consts::PI;
            self.angle = Some(new - pi * crate::util::round_half_even((new - old) / pi));
        }
    }

    /// The measurement vector for filter `kind`, computed in float32 from `tlwh`.
    pub fn measurement(&self, kind: KalmanKind) -> [f64; 4] {
        let t = self.tlwh;
        let cx = t[0] + t[2] / 2.0;
        let cy = t[1] + t[3] / 2.0;
        let third = match kind {
            KalmanKind::Xyah => t[2] / t[3],
            KalmanKind::Xywh => t[2],
        };
        [
            f64::from(cx),
            f64::from(cy),
            f64::from(third),
            f64::from(t[3]),
        ]
    }

    /// The box `xyxy` in float64 from the Kalman mean (the measured box for a candidate).
    pub fn xyxy_f64(&self, kind: KalmanKind) -> [f64; 4] {
        match &self.kf {
            Some((m, _)) => {
                let w = match kind {
                    KalmanKind::Xyah => m[2] * m[3],
                    KalmanKind::Xywh => m[2],
                };
                let x1 = m[0] - w / 2.0;
                let y1 = m[1] - m[3] / 2.0;
                [x1, y1, x1 + w, y1 + m[3]]
            }
            None => {
                let b = self.det_xyxy();
                [b[0].into(), b[1].into(), b[2].into(), b[3].into()]
            }
        }
    }

    /// The box `xyxy` cast to float32 (what the IoU costs see).
    pub fn xyxy(&self, kind: KalmanKind) -> [f32; 4] {
        self.xyxy_f64(kind).map(|v| v as f32)
    }

    /// The measured detection box `xyxy` in float32.
    pub fn det_xyxy(&self) -> [f32; 4] {
        let t = self.tlwh;
        [t[0], t[1], t[0] + t[2], t[1] + t[3]]
    }

    /// Starts a track with `id` at `frame` (shown at once only on frame 1).
    pub fn activate(&mut self, kind: KalmanKind, id: u64, frame: u32) {
        self.track_id = id;
        self.kf = Some(kind.initiate(self.measurement(kind)));
        self.tracklet_len = 0;
        self.state = TrackState::Tracked;
        self.is_activated = frame == 1;
        self.frame_id = frame;
        self.start_frame = frame;
    }

    /// Kalman correction with detection `det` (variance scale `r_scale`), taking its score, class and row.
    pub fn correct(&mut self, kind: KalmanKind, det: &STrack, frame: u32, r_scale: f64) {
        if let Some((m, c)) = self.kf.as_mut() {
            kind.update(m, c, det.measurement(kind), r_scale);
        }
        self.state = TrackState::Tracked;
        self.is_activated = true;
        self.frame_id = frame;
        self.score = det.score;
        self.cls = det.cls;
        self.follow_angle(det);
        self.idx = det.idx;
    }

    /// A matched detection continues the track.
    pub fn update(&mut self, kind: KalmanKind, det: &STrack, frame: u32) {
        self.tracklet_len += 1;
        self.correct(kind, det, frame, 1.0);
    }

    /// A lost track found again (same id).
    pub fn re_activate(&mut self, kind: KalmanKind, det: &STrack, frame: u32) {
        self.tracklet_len = 0;
        self.correct(kind, det, frame, 1.0);
    }

    /// Kalman predict; a track not in state Tracked has its size velocity zeroed first.
    pub fn predict(&mut self, kind: KalmanKind) {
        let tracked = self.state == TrackState::Tracked;
        if let Some((m, c)) = self.kf.as_mut() {
            if !tracked {
                m[7] = 0.0;
                if kind == KalmanKind::Xywh {
                    m[6] = 0.0;
                }
            }
            kind.predict(m, c);
        }
    }
}

/// `xyxy` → `xywh` in float32, as Ultralytics' `xyxy2xywh` on float32 arrays.
pub fn xyxy_to_xywh(b: [f32; 4]) -> [f32; 4] {
    [
        (b[0] + b[2]) / 2.0,
        (b[1] + b[3]) / 2.0,
        b[2] - b[0],
        b[3] - b[1],
    ]
}
