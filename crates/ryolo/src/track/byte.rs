//! ByteTrack (`BYTETracker`, XYAH filter) and BoT-SORT (`BOTSORT`, XYWH filter + GMC + optional ReID), on
//! axis-aligned or rotated (OBB) detections.

use super::gmc::Gmc;
use super::kalman::{warp_xywh, KalmanKind};
use super::matching::{fuse_score, linear_assignment, CostMatrix};
use super::obb::{gmc_box, track_distance, warp_obb, ObbDetection};
use super::pools::{joint, FrameChanges, Pools};
use super::reid::{fuse_appearance, smooth_bot, ReidGate};
use super::strack::{STrack, TrackState};
use super::{Detection, TrackOutput};

/// The ByteTrack / BoT-SORT settings that drive association (tracker YAML keys).
#[derive(Clone, Debug, PartialEq)]
pub struct ByteParams {
    /// `track_high_thresh`: first-association confidence.
    pub track_high_thresh: f64,
    /// `track_low_thresh`: lower bound of the second association.
    pub track_low_thresh: f64,
    /// `new_track_thresh`: confidence needed to start a track.
    pub new_track_thresh: f64,
    /// `track_buffer`: frames a lost track is kept.
    pub track_buffer: u32,
    /// `match_thresh`: cost limit of the first association.
    pub match_thresh: f64,
    /// `fuse_score`: multiply IoU by the detection score in the cost.
    pub fuse_score: bool,
}

impl Default for ByteParams {
    fn default() -> Self {
        Self {
            track_high_thresh: 0.25,
            track_low_thresh: 0.1,
            new_track_thresh: 0.25,
            track_buffer: 30,
            match_thresh: 0.8,
            fuse_score: true,
        }
    }
}

/// ByteTrack, or BoT-SORT when built with [`ByteTracker::botsort`] (ReID with [`ByteTracker::with_reid`]).
pub struct ByteTracker {
    /// Association settings.
    params: ByteParams,
    /// XYAH (ByteTrack) or XYWH (BoT-SORT).
    kind: KalmanKind,
    /// Camera-motion compensation (BoT-SORT only; None = `gmc_method: none`).
    gmc: Option<Box<dyn Gmc>>,
    /// Track lists and ids.
    pools: Pools,
    /// Frames seen since the last reset.
    frame_id: u32,
    /// BoT-SORT's appearance gate (None: ReID off).
    reid: Option<ReidGate>,
}

impl ByteTracker {
    /// ByteTrack with the XYAH filter.
    pub fn bytetrack(params: ByteParams) -> Self {
        Self {
            params,
            kind: KalmanKind::Xyah,
            gmc: None,
            pools: Pools::default(),
            frame_id: 0,
            reid: None,
        }
    }

    /// BoT-SORT (ReID off) with the XYWH filter and an optional motion compensation.
    pub fn botsort(params: ByteParams, gmc: Option<Box<dyn Gmc>>) -> Self {
        Self {
            params,
            kind: KalmanKind::Xywh,
            gmc,
            pools: Pools::default(),
            frame_id: 0,
            reid: None,
        }
    }

    /// Turns BoT-SORT's ReID on: appearance features (given per detection to the update) lower the
    /// first-association and unconfirmed costs within `gate`.
    pub fn with_reid(mut self, gate: ReidGate) -> Self {
        self.reid = Some(gate);
        self
    }

    /// Fresh state: lists cleared, ids restart at 1, GMC forgets its reference frame.
    pub fn reset(&mut self) {
        self.pools = Pools::default();
        self.frame_id = 0;
        if let Some(g) = self.gmc.as_mut() {
            g.reset();
        }
    }

    /// Whether a listed track awaits confirmation.
    pub fn has_unconfirmed(&self) -> bool {
        self.pools.has_unconfirmed()
    }

    /// Ids removed during the last update.
    pub fn removed_this_frame(&self) -> &[u64] {
        &self.pools.removed_frame
    }

    /// The tracked and lost tracks (in list order) after the last update.
    pub fn tracks(&self) -> (Vec<&STrack>, Vec<&STrack>) {
        let t = self
            .pools
            .tracked
            .iter()
            .map(|&i| self.pools.get(i))
            .collect();
        let l = self.pools.lost.iter().map(|&i| self.pools.get(i)).collect();
        (t, l)
    }

    /// Cost of tracks `ids` against candidates `dets`: IoU (ProbIoU for rotated boxes) distance, score-fused
    /// when configured, and with ReID (`appearance`) the gated minimum with the appearance distance.
    fn cost(&self, ids: &[u64], dets: &[&STrack], fuse: bool, appearance: bool) -> CostMatrix {
        let tracks: Vec<&STrack> = ids.iter().map(|&i| self.pools.get(i)).collect();
        let iou_d = track_distance(&tracks, dets, self.kind);
        let d = if fuse {
            let scores: Vec<f32> = dets.iter().map(|d| d.score).collect();
            fuse_score(iou_d.clone(), &scores)
        } else {
            iou_d.clone()
        };
        match self.reid {
            Some(g) if appearance => fuse_appearance(d, &iou_d, &tracks, dets, g),
            _ => d,
        }
    }

    /// Track `id` takes detection `det`'s appearance feature, if it has one (BoT-SORT ReID).
    fn take_feature(&mut self, id: u64, det: &STrack) {
        if let Some(f) = det.tt.curr_feat.as_ref() {
            smooth_bot(self.pools.get_mut(id), f);
        }
    }

    /// Matched track `id` takes detection `det`: update when tracked, else re-activate.
    fn apply_match(&mut self, id: u64, det: &STrack, ch: &mut FrameChanges) {
        self.take_feature(id, det);
        let (kind, frame) = (self.kind, self.frame_id);
        let t = self.pools.get_mut(id);
        if t.state == TrackState::Tracked {
            t.update(kind, det, frame);
            ch.activated.push(id);
        } else {
            t.re_activate(kind, det, frame);
            ch.refind.push(id);
        }
    }

    /// One frame: detections in, confirmed tracks out (`frame` is only used for GMC).
    pub fn update(
        &mut self,
        dets: &[Detection],
        frame: Option<&image::RgbImage>,
    ) -> Vec<TrackOutput> {
        self.update_with_features(dets, frame, None)
    }

    /// [`ByteTracker::update`] with per-detection appearance features (`feats[i]` for `dets[i]`; used by
    /// BoT-SORT with ReID).
    pub fn update_with_features(
        &mut self,
        dets: &[Detection],
        frame: Option<&image::RgbImage>,
        feats: Option<&[Vec<f32>]>,
    ) -> Vec<TrackOutput> {
        let cands = dets
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let wh = super::strack::xyxy_to_xywh(d.xyxy);
                let ok = wh[2] > 0.0 && wh[3] > 0.0;
                (STrack::candidate(d.xyxy, d.conf, d.cls, i as i64), ok)
            })
            .collect();
        self.step(cands, frame, feats)
    }

    /// One frame of rotated detections (output rows carry `xywha`); `feats` as
    /// [`ByteTracker::update_with_features`].
    pub fn update_obb(
        &mut self,
        dets: &[ObbDetection],
        frame: Option<&image::RgbImage>,
        feats: Option<&[Vec<f32>]>,
    ) -> Vec<TrackOutput> {
        let cands = dets
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let ok = d.xywhr[2] > 0.0 && d.xywhr[3] > 0.0;
                (STrack::from_xywha(d.xywhr, d.conf, d.cls, i as i64), ok)
            })
            .collect();
        self.step(cands, frame, feats)
    }

    /// The update on candidates (each with whether its box is non-degenerate).
    fn step(
        &mut self,
        cands: Vec<(STrack, bool)>,
        frame: Option<&image::RgbImage>,
        feats: Option<&[Vec<f32>]>,
    ) -> Vec<TrackOutput> {
        self.frame_id += 1;
        let p = self.params.clone();
        let (high_t, low_t) = (p.track_high_thresh as f32, p.track_low_thresh as f32);
        let feats = feats.filter(|f| self.reid.is_some() && !f.is_empty());
        let mut high = Vec::new();
        let mut low = Vec::new();
        for (mut c, ok) in cands {
            if !ok {
                continue;
            }
            if let Some(f) = feats.and_then(|fs| fs.get(c.idx as usize)) {
                smooth_bot(&mut c, f);
            }
            if c.score >= high_t {
                high.push(c);
            } else if c.score > low_t {
                low.push(c);
            }
        }
        let (unconfirmed, tracked): (Vec<u64>, Vec<u64>) = self
            .pools
            .tracked
            .iter()
            .partition(|&&t| !self.pools.get(t).is_activated);
        let pool = joint(&tracked, &self.pools.lost);
        for &id in &pool {
            self.pools.get_mut(id).predict(self.kind);
        }
        if let (Some(g), Some(img)) = (self.gmc.as_mut(), frame) {
            let boxes: Vec<[f32; 4]> = high.iter().map(|d| gmc_box(d, self.kind)).collect();
            let w = g.apply(img, &boxes);
            for &id in pool.iter().chain(&unconfirmed) {
                let t = self.pools.get_mut(id);
                match (t.kf.as_mut(), t.angle.as_mut()) {
                    (Some((m, c)), Some(a)) => warp_obb(m, c, a, &w),
                    (Some((m, c)), None) => warp_xywh(m, c, &w),
                    _ => {}
                }
            }
        }
        let mut ch = FrameChanges::default();

        // First association: pool × high detections.
        let hr: Vec<&STrack> = high.iter().collect();
        let a = linear_assignment(&self.cost(&pool, &hr, p.fuse_score, true), p.match_thresh);
        for &(t, d) in &a.matches {
            self.apply_match(pool[t], &high[d], &mut ch);
        }

        // Second association: still-tracked leftovers × low detections, IoU only.
        let r: Vec<u64> = a
            .unmatched_rows
            .iter()
            .map(|&t| pool[t])
            .filter(|&t| self.pools.get(t).state == TrackState::Tracked)
            .collect();
        let lr: Vec<&STrack> = low.iter().collect();
        let a2 = linear_assignment(&self.cost(&r, &lr, false, false), 0.5);
        for &(t, d) in &a2.matches {
            self.apply_match(r[t], &low[d], &mut ch);
        }
        for &t in &a2.unmatched_rows {
            let tr = self.pools.get_mut(r[t]);
            if tr.state != TrackState::Lost {
                tr.state = TrackState::Lost;
                ch.lost.push(r[t]);
            }
        }

        // Unconfirmed tracks × leftover high detections.
        let left: Vec<&STrack> = a.unmatched_cols.iter().map(|&i| &high[i]).collect();
        let a3 = linear_assignment(&self.cost(&unconfirmed, &left, p.fuse_score, true), 0.7);
        for &(t, d) in &a3.matches {
            self.take_feature(unconfirmed[t], left[d]);
            let (kind, frame) = (self.kind, self.frame_id);
            self.pools
                .get_mut(unconfirmed[t])
                .update(kind, left[d], frame);
            ch.activated.push(unconfirmed[t]);
        }
        for &t in &a3.unmatched_rows {
            self.pools.get_mut(unconfirmed[t]).state = TrackState::Removed;
            ch.removed.push(unconfirmed[t]);
        }

        // New tracks from the remaining high detections.
        for &i in &a3.unmatched_cols {
            let d = left[i];
            if d.score < p.new_track_thresh as f32 {
                continue;
            }
            let mut t = d.clone();
            let id = self.pools.next_id();
            t.activate(self.kind, id, self.frame_id);
            self.pools.store.insert(id, t);
            ch.activated.push(id);
        }

        // Lost tracks past the buffer.
        for &id in &self.pools.lost.clone() {
            let t = self.pools.get_mut(id);
            if i64::from(self.frame_id) - i64::from(t.frame_id) > i64::from(p.track_buffer) {
                t.state = TrackState::Removed;
                ch.removed.push(id);
            }
        }

        self.pools.merge(ch, self.kind);
        self.pools
            .tracked
            .iter()
            .map(|&i| self.pools.get(i))
            .filter(|t| t.is_activated)
            .map(|t| TrackOutput::from_track(t, self.kind))
            .collect()
    }
}
