//! Multi-object tracking on per-frame detections: ByteTrack, BoT-SORT and TrackTrack (Ultralytics 8.4.190).
//!
//! Feed one frame at a time: [`Detection`] rows (boxes `xyxy` in original-image pixels, after NMS, in the
//! detector's row order) go in, [`TrackOutput`] rows (`track_id`, Kalman-filtered box, score, class and the
//! `idx` of the matched detection) come out; [`FrameResult::from_tracks`] then applies Ultralytics' track
//! callback (hide/keep rules, clipping to the image).

pub mod byte;
pub mod config;
pub mod gmc;
pub mod kalman;
pub mod matching;
pub mod pools;
pub mod strack;

use anyhow::{bail, Result};
use byte::{ByteParams, ByteTracker};
use config::{GmcMethod, TrackerConfig, TrackerType};
use gmc::Gmc;
use kalman::KalmanKind;
use strack::STrack;

/// A tracker built from a [`TrackerConfig`]: one per video (or per stream slot).
pub enum Tracker {
    /// ByteTrack or BoT-SORT.
    Byte(ByteTracker),
}

impl Tracker {
    /// The tracker `cfg` selects, with the motion compensation its `gmc_method` names.
    pub fn new(cfg: &TrackerConfig) -> Result<Self> {
        let gmc: Option<Box<dyn Gmc>> = match cfg.gmc_method {
            GmcMethod::None => None,
            m => {
                eprintln!(
                    "WARNING: tracker gmc_method {m:?} is not implemented yet; tracking without camera-motion \
                     compensation (use gmc_method: none to silence this)"
                );
                None
            }
        };
        Self::with_gmc(cfg, gmc)
    }

    /// The tracker `cfg` selects, with `gmc` as its motion compensation (ignored by ByteTrack).
    pub fn with_gmc(cfg: &TrackerConfig, gmc: Option<Box<dyn Gmc>>) -> Result<Self> {
        if cfg.with_reid {
            bail!("tracker with_reid: True is not implemented (set with_reid: False)");
        }
        let p = ByteParams {
            track_high_thresh: cfg.track_high_thresh,
            track_low_thresh: cfg.track_low_thresh,
            new_track_thresh: cfg.new_track_thresh,
            track_buffer: cfg.track_buffer,
            match_thresh: cfg.match_thresh,
            fuse_score: cfg.fuse_score,
        };
        Ok(match cfg.tracker_type {
            TrackerType::ByteTrack => Self::Byte(ByteTracker::bytetrack(p)),
            TrackerType::BotSort => Self::Byte(ByteTracker::botsort(p, gmc)),
            TrackerType::TrackTrack => bail!("tracker_type tracktrack is not implemented yet"),
        })
    }

    /// One frame: this frame's detections (and the frame, for motion compensation) in, tracks out.
    pub fn update(
        &mut self,
        dets: &[Detection],
        frame: Option<&image::RgbImage>,
    ) -> Vec<TrackOutput> {
        match self {
            Self::Byte(t) => t.update(dets, frame),
        }
    }

    /// Whether a listed track awaits confirmation (the callback then empties an empty-output result).
    pub fn has_unconfirmed(&self) -> bool {
        match self {
            Self::Byte(t) => t.has_unconfirmed(),
        }
    }

    /// Fresh state for a new video: ids restart at 1.
    pub fn reset(&mut self) {
        match self {
            Self::Byte(t) => t.reset(),
        }
    }
}

/// One detection of the current frame (a row `[x1, y1, x2, y2, conf, cls]` of the NMS output).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// Box corners in original-image pixels.
    pub xyxy: [f32; 4],
    /// Confidence.
    pub conf: f32,
    /// Class index.
    pub cls: f32,
}

/// One tracked object of the current frame (a row of Ultralytics' `tracker.update()` output).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrackOutput {
    /// Kalman-filtered box corners (not clipped).
    pub xyxy: [f32; 4],
    /// Track id (1, 2, … per tracker).
    pub track_id: u64,
    /// Confidence of the detection matched this frame.
    pub score: f32,
    /// Class of the detection matched this frame.
    pub cls: f32,
    /// Row of the matched detection in this frame's input (−1: a TrackTrack recovered detection).
    pub idx: i64,
}

impl TrackOutput {
    /// The output row of track `t`.
    pub fn from_track(t: &STrack, kind: KalmanKind) -> Self {
        Self {
            xyxy: t.xyxy(kind),
            track_id: t.track_id,
            score: t.score,
            cls: t.cls,
            idx: t.idx,
        }
    }
}

/// What the track callback makes of one frame's result (Ultralytics `on_predict_postprocess_end`).
#[derive(Clone, Debug, PartialEq)]
pub enum FrameResult {
    /// Tracks: rows `[x1, y1, x2, y2]` clipped to the image, with id/score/class, and the detection row
    /// each came from (`result = result[idx]`; −1 picks the last row, as NumPy does).
    Tracks(Vec<TrackOutput>),
    /// No track output and no unconfirmed track: the raw detections stay, without ids.
    Raw,
    /// No track output while a track awaits confirmation: the result is emptied.
    Empty,
}

impl FrameResult {
    /// The callback's decision for tracker output `tracks` on a `w × h` image.
    pub fn from_tracks(tracks: &[TrackOutput], has_unconfirmed: bool, w: u32, h: u32) -> Self {
        if tracks.is_empty() {
            return if has_unconfirmed {
                Self::Empty
            } else {
                Self::Raw
            };
        }
        let (w, h) = (w as f32, h as f32);
        Self::Tracks(
            tracks
                .iter()
                .map(|t| {
                    let b = t.xyxy;
                    TrackOutput {
                        xyxy: [
                            b[0].clamp(0.0, w),
                            b[1].clamp(0.0, h),
                            b[2].clamp(0.0, w),
                            b[3].clamp(0.0, h),
                        ],
                        ..*t
                    }
                })
                .collect(),
        )
    }
}
