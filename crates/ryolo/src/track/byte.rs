//! ByteTrack (`BYTETracker`, XYAH filter) and BoT-SORT without ReID (`BOTSORT`, XYWH filter + GMC).

use super::gmc::Gmc;
use super::kalman::{warp_xywh, KalmanKind};
use super::matching::{fuse_score, iou_distance, linear_assignment, CostMatrix};
use super::pools::{joint, FrameChanges, Pools};
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

/// ByteTrack, or BoT-SORT (ReID off) when built with [`ByteTracker::botsort`].
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
        }
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

    /// Cost of tracks `ids` against candidates `dets`: IoU distance, score-fused when configured.
    fn cost(&self, ids: &[u64], dets: &[&STrack], fuse: bool) -> CostMatrix {
        let boxes: Vec<[f32; 4]> = dets.iter().map(|d| d.det_xyxy()).collect();
        let d = iou_distance(&self.pools.boxes(ids, self.kind), &boxes);
        if fuse {
            let scores: Vec<f32> = dets.iter().map(|d| d.score).collect();
            fuse_score(d, &scores)
        } else {
            d
        }
    }

    /// Matched track `id` takes detection `det`: update when tracked, else re-activate.
    fn apply_match(&mut self, id: u64, det: &STrack, ch: &mut FrameChanges) {
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
        self.frame_id += 1;
        let p = self.params.clone();
        let (high_t, low_t) = (p.track_high_thresh as f32, p.track_low_thresh as f32);
        let mut high = Vec::new();
        let mut low = Vec::new();
        for (i, d) in dets.iter().enumerate() {
            let c = STrack::candidate(d.xyxy, d.conf, d.cls, i as i64);
            let wh = super::strack::xyxy_to_xywh(d.xyxy);
            if !(wh[2] > 0.0 && wh[3] > 0.0) {
                continue;
            }
            if d.conf >= high_t {
                high.push(c);
            } else if d.conf > low_t {
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
            let boxes: Vec<[f32; 4]> = high.iter().map(|d| d.det_xyxy()).collect();
            let w = g.apply(img, &boxes);
            for &id in pool.iter().chain(&unconfirmed) {
                if let Some((m, c)) = self.pools.get_mut(id).kf.as_mut() {
                    warp_xywh(m, c, &w);
                }
            }
        }
        let mut ch = FrameChanges::default();

        // First association: pool × high detections.
        let hr: Vec<&STrack> = high.iter().collect();
        let a = linear_assignment(&self.cost(&pool, &hr, p.fuse_score), p.match_thresh);
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
        let a2 = linear_assignment(&self.cost(&r, &lr, false), 0.5);
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
        let a3 = linear_assignment(&self.cost(&unconfirmed, &left, p.fuse_score), 0.7);
        for &(t, d) in &a3.matches {
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
