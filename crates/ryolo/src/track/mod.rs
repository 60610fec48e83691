//! Multi-object tracking on per-frame detections: ByteTrack, BoT-SORT and TrackTrack (Ultralytics 8.4.190).
//!
//! Feed one frame at a time: [`Detection`] rows (boxes `xyxy` in original-image pixels, after NMS, in the
//! detector's row order) or rotated [`ObbDetection`] rows go in, [`TrackOutput`] rows (`track_id`,
//! Kalman-filtered box — `xywha` for OBB —, score, class and the `idx` of the matched detection) come out;
//! [`FrameResult::from_tracks`] then applies Ultralytics' track callback (hide/keep rules, clipping).

pub mod bench;
pub mod byte;
pub mod config;
pub mod gmc;
pub mod kalman;
pub mod matching;
pub mod obb;
pub mod pools;
pub mod reid;
pub mod strack;
pub mod tracktrack;

pub use config::TrackerConfig;
pub use obb::ObbDetection;
pub use tracktrack::Recovered;

use anyhow::Result;
use byte::{ByteParams, ByteTracker};
use config::TrackerType;
use gmc::Gmc;
use kalman::KalmanKind;
use strack::STrack;
use tracktrack::{TrackTrack, TtParams};

/// A tracker built from a [`TrackerConfig`]: one per video (or per stream slot).
pub enum Tracker {
    /// ByteTrack or BoT-SORT.
    Byte(ByteTracker),
    /// TrackTrack.
    TrackTrack(TrackTrack),
}

impl Tracker {
    /// The tracker `cfg` selects, with its own motion compensation as its `gmc_method` names.
    pub fn new(cfg: &TrackerConfig) -> Result<Self> {
        Self::with_gmc(cfg, Self::own_gmc(cfg))
    }

    /// A new motion-compensation instance for a tracker of `cfg` (none for ByteTrack, which ignores it).
    pub fn own_gmc(cfg: &TrackerConfig) -> Option<Box<dyn Gmc>> {
        match cfg.tracker_type {
            TrackerType::ByteTrack => None,
            _ => gmc::build(cfg.gmc_method),
        }
    }

    /// The tracker `cfg` selects, with `gmc` as its motion compensation (ignored by ByteTrack). With
    /// `with_reid` the appearance features come with each update (`feats`): the detector's own (`model:
    /// auto`) or a ReID model's embeddings of the crops (`model: <file>`, computed by the predict path's
    /// `Tracking`).
    pub fn with_gmc(cfg: &TrackerConfig, gmc: Option<Box<dyn Gmc>>) -> Result<Self> {
        let reid = cfg.with_reid && cfg.tracker_type != TrackerType::ByteTrack;
        if cfg.with_reid && !reid {
            eprintln!(
                "WARNING: tracker with_reid: True is ignored by bytetrack (it has no appearance cue, as in \
                 Ultralytics); use botsort or tracktrack for ReID"
            );
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
            TrackerType::BotSort => {
                let t = ByteTracker::botsort(p, gmc);
                Self::Byte(if reid {
                    t.with_reid(reid::ReidGate {
                        proximity_thresh: cfg.proximity_thresh,
                        appearance_thresh: cfg.appearance_thresh,
                    })
                } else {
                    t
                })
            }
            TrackerType::TrackTrack => Self::TrackTrack(TrackTrack::new(
                TtParams {
                    track_high_thresh: cfg.track_high_thresh,
                    track_low_thresh: cfg.track_low_thresh,
                    new_track_thresh: cfg.new_track_thresh,
                    track_buffer: cfg.track_buffer,
                    match_thresh: cfg.match_thresh,
                    lost_match_thr: cfg.lost_match_thr,
                    conf_weight: cfg.conf_weight,
                    angle_weight: cfg.angle_weight,
                    penalty_p: cfg.penalty_p,
                    penalty_q: cfg.penalty_q,
                    reduce_step: cfg.reduce_step,
                    tai_thr: cfg.tai_thr,
                    min_track_len: cfg.min_track_len,
                    with_reid: cfg.with_reid,
                    iou_weight: cfg.iou_weight,
                    reid_weight: cfg.reid_weight,
                },
                gmc,
            )),
        })
    }

    /// One frame: this frame's detections (and the frame, for motion compensation) in, tracks out.
    pub fn update(
        &mut self,
        dets: &[Detection],
        frame: Option<&image::RgbImage>,
    ) -> Vec<TrackOutput> {
        self.update_full(dets, frame, &[], None)
    }

    /// [`Tracker::update`] plus TrackTrack's recovered (loose-NMS) detections; others ignore them.
    pub fn update_with_recovered(
        &mut self,
        dets: &[Detection],
        frame: Option<&image::RgbImage>,
        recovered: &[Recovered],
    ) -> Vec<TrackOutput> {
        self.update_full(dets, frame, recovered, None)
    }

    /// Everything a frame can carry: detections, the frame (GMC), TrackTrack's recovered detections and
    /// per-detection appearance features (`feats[i]` for `dets[i]`, BoT-SORT / TrackTrack with `with_reid`).
    pub fn update_full(
        &mut self,
        dets: &[Detection],
        frame: Option<&image::RgbImage>,
        recovered: &[Recovered],
        feats: Option<&[Vec<f32>]>,
    ) -> Vec<TrackOutput> {
        match self {
            Self::Byte(t) => t.update_with_features(dets, frame, feats),
            Self::TrackTrack(t) => t.update(dets, frame, recovered, feats),
        }
    }

    /// One frame of rotated detections (OBB models): output rows carry `xywha`. `recovered` are TrackTrack's
    /// loose-NMS rotated boxes (others ignore them); `feats` as [`Tracker::update_full`].
    pub fn update_obb(
        &mut self,
        dets: &[ObbDetection],
        frame: Option<&image::RgbImage>,
        recovered: &[ObbDetection],
        feats: Option<&[Vec<f32>]>,
    ) -> Vec<TrackOutput> {
        match self {
            Self::Byte(t) => t.update_obb(dets, frame, feats),
            Self::TrackTrack(t) => t.update_obb(dets, frame, recovered, feats),
        }
    }

    /// The tracked and lost tracks (in list order) and the ids removed by the last update.
    pub fn state(&self) -> (Vec<&STrack>, Vec<&STrack>, &[u64]) {
        match self {
            Self::Byte(t) => {
                let (a, b) = t.tracks();
                (a, b, t.removed_this_frame())
            }
            Self::TrackTrack(t) => {
                let (a, b) = t.tracks();
                (a, b, t.removed_this_frame())
            }
        }
    }

    /// Whether a listed track awaits confirmation (the callback then empties an empty-output result).
    pub fn has_unconfirmed(&self) -> bool {
        match self {
            Self::Byte(t) => t.has_unconfirmed(),
            Self::TrackTrack(t) => t.has_unconfirmed(),
        }
    }

    /// Fresh state for a new video: ids restart at 1.
    pub fn reset(&mut self) {
        match self {
            Self::Byte(t) => t.reset(),
            Self::TrackTrack(t) => t.reset(),
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
    /// Kalman-filtered box corners (not clipped; OBB: the bounds of the rotated box `xywha`).
    pub xyxy: [f32; 4],
    /// OBB tracks: the Kalman-filtered centre and size with the track's angle `[cx, cy, w, h, θ]` (long-edge
    /// form, θ continuous across frames); None for axis-aligned tracks.
    pub xywha: Option<[f32; 5]>,
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
        let xywha = t.xywha(kind);
        Self {
            xyxy: match &xywha {
                Some(r) => crate::ops::obb::xywhr_to_xyxy(r),
                None => t.xyxy(kind),
            },
            xywha,
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
    /// Tracks: rows `[x1, y1, x2, y2]` clipped to the image (OBB rows are not clipped, as `Results.obb`),
    /// with id/score/class, and the detection row each came from (`result = result[idx]`; −1 picks the last
    /// row, as NumPy does).
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
                    if t.xywha.is_some() {
                        return *t;
                    }
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
