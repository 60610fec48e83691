//! TrackTrack (`TRACKTRACK`, the Ultralytics 8.4 default): one penalised main association with an

#![allow(clippy::needless_range_loop)] // index loops mirror the matrix formulas
//! iterative mutual-nearest matcher, probation tracks and track-aware initialisation (ReID off).

use std::f64::consts::PI;

use super::gmc::Gmc;
use super::kalman::{warp_xywh, KalmanKind};
use super::matching::{iou_f32, CostMatrix};
use super::obb::{warp_obb, ObbDetection};
use super::pools::{joint, FrameChanges, Pools};
use super::strack::{HistBox, STrack, TrackState};
use super::{Detection, TrackOutput};

/// The filter TrackTrack uses.
const KIND: KalmanKind = KalmanKind::Xywh;
/// Frames of history behind the corner velocity and the angle cost.
const DELTA_T: u32 = 3;
/// Corner x / y columns of an `xyxy` box: (x1,y1), (x1,y2), (x2,y1), (x2,y2).
const CORNERS: [(usize, usize); 4] = [(0, 1), (0, 3), (2, 1), (2, 3)];

/// TrackTrack settings (tracker YAML keys; ReID weights unused while ReID is off).
#[derive(Clone, Debug, PartialEq)]
pub struct TtParams {
    /// `track_high_thresh`.
    pub track_high_thresh: f64,
    /// `track_low_thresh`.
    pub track_low_thresh: f64,
    /// `new_track_thresh` (strict `>`).
    pub new_track_thresh: f64,
    /// `track_buffer`.
    pub track_buffer: u32,
    /// `match_thresh`: starting threshold of the iterative association.
    pub match_thresh: f64,
    /// `lost_match_thr`: relaxed re-binding threshold (≤ 0 disables it).
    pub lost_match_thr: f64,
    /// `conf_weight`.
    pub conf_weight: f64,
    /// `angle_weight`.
    pub angle_weight: f64,
    /// `penalty_p` (low detections).
    pub penalty_p: f64,
    /// `penalty_q` (recovered detections).
    pub penalty_q: f64,
    /// `reduce_step`.
    pub reduce_step: f64,
    /// `tai_thr`.
    pub tai_thr: f64,
    /// `min_track_len`.
    pub min_track_len: i64,
    /// `with_reid`: appearance features blended into the cost.
    pub with_reid: bool,
    /// `iou_weight` (ReID only).
    pub iou_weight: f64,
    /// `reid_weight` (ReID only).
    pub reid_weight: f64,
}

impl Default for TtParams {
    fn default() -> Self {
        Self {
            track_high_thresh: 0.6,
            track_low_thresh: 0.25,
            new_track_thresh: 0.7,
            track_buffer: 30,
            match_thresh: 0.7,
            lost_match_thr: 0.0,
            conf_weight: 0.1,
            angle_weight: 0.05,
            penalty_p: 0.2,
            penalty_q: 0.4,
            reduce_step: 0.05,
            tai_thr: 0.55,
            min_track_len: 3,
            with_reid: false,
            iou_weight: 0.5,
            reid_weight: 0.5,
        }
    }
}

/// A detection a loose NMS kept and the tight one dropped (`dets_del`), as `xywh`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recovered {
    /// Centre, width and height in original-image pixels.
    pub xywh: [f32; 4],
    /// Confidence.
    pub conf: f32,
    /// Class index.
    pub cls: f32,
}

/// `compute_dets_del` for one image: loose-NMS boxes whose best class-agnostic IoU with the tight boxes
/// is below 0.97 (none when either set is empty).
pub fn recovered_detections(loose: &[Detection], tight: &[Detection]) -> Vec<Recovered> {
    if loose.is_empty() || tight.is_empty() {
        return vec![];
    }
    loose
        .iter()
        .filter(|l| {
            tight
                .iter()
                .map(|t| iou_f32(&l.xyxy, &t.xyxy))
                .fold(f32::MIN, f32::max)
                < 0.97f32
        })
        .map(|l| Recovered {
            xywh: super::strack::xyxy_to_xywh(l.xyxy),
            conf: l.conf,
            cls: l.cls,
        })
        .collect()
}

/// The TrackTrack tracker.
pub struct TrackTrack {
    /// Settings.
    p: TtParams,
    /// Camera-motion compensation (None = off).
    gmc: Option<Box<dyn Gmc>>,
    /// Track lists and ids.
    pools: Pools,
    /// Frames seen since the last reset.
    frame_id: u32,
    /// When set, every association of the last update (for diagnostics and parity tests).
    pub assoc_log: Option<Vec<AssocRecord>>,
}

/// One association call of an update: which stage, its rows (track ids), final costs and matches.
#[derive(Clone, Debug)]
pub struct AssocRecord {
    /// `main`, `unconfirmed` or `lost_relaxed`.
    pub stage: &'static str,
    /// Track ids of the rows.
    pub rows: Vec<u64>,
    /// The cost matrix the matcher saw (penalties included).
    pub cost: CostMatrix,
    /// Matches as `(track id, column)`.
    pub matches: Vec<(u64, usize)>,
}

impl TrackTrack {
    /// A tracker with settings `p` and optional motion compensation.
    pub fn new(p: TtParams, gmc: Option<Box<dyn Gmc>>) -> Self {
        Self {
            p,
            gmc,
            pools: Pools::default(),
            frame_id: 0,
            assoc_log: None,
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

    /// Whether a listed track is not activated (the callback then empties an empty-output result).
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

    /// The box of `t`'s history `dt` frames before `frame`, else its newest entry, else its current box.
    fn history_box(t: &STrack, frame: u32, dt: u32) -> HistBox {
        let target = i64::from(frame) - i64::from(dt);
        if let Some((_, b)) = t.tt.history.iter().find(|(f, _)| i64::from(*f) == target) {
            return *b;
        }
        match t.tt.history.back() {
            Some((_, b)) => *b,
            None => HistBox::F64(t.xyxy_f64(KIND)),
        }
    }

    /// Cost of tracks `ids` against candidates `dets` (HMIoU + confidence + angle; IoU ≤ 0.1 → 1).
    fn cost(&self, ids: &[u64], dets: &[&STrack]) -> CostMatrix {
        let (n, m) = (ids.len(), dets.len());
        if n == 0 || m == 0 {
            return CostMatrix::filled(n, m, 1.0);
        }
        let tb: Vec<[f32; 4]> = self.pools.boxes(ids, KIND);
        let db: Vec<[f32; 4]> = dets.iter().map(|d| d.det_xyxy()).collect();
        let cw = self.p.conf_weight as f32;
        let mut c = CostMatrix::filled(n, m, 0.0);
        let mut iou = CostMatrix::filled(n, m, 0.0);
        for i in 0..n {
            let t = self.pools.get(ids[i]);
            let proj = t.score + (t.score - t.tt.prev_score);
            for j in 0..m {
                let (a, b) = (&tb[i], &db[j]);
                let v = iou_f32(a, b);
                iou.set(i, j, v);
                let over = a[3].min(b[3]) - a[1].max(b[1]);
                let union = a[3].max(b[3]) - a[1].min(b[1]);
                let hiou = (over / (union + 1e-9f32)).clamp(0.0, 1.0);
                let mut hm = 1.0 - hiou * v;
                if self.p.with_reid {
                    let tf = t.tt.smooth_feat.as_ref().or(t.tt.curr_feat.as_ref());
                    if let (Some(a), Some(b)) = (tf, dets[j].tt.curr_feat.as_ref()) {
                        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                        let cos = (1.0 - dot).clamp(0.0, 1.0);
                        hm = self.p.iou_weight as f32 * hm + self.p.reid_weight as f32 * cos;
                    }
                }
                let conf = (proj - dets[j].score).abs();
                c.set(i, j, hm + cw * conf);
            }
        }
        // Angle term on the IoU-supported pairs; float64 unless every history box involved is float32.
        let pairs: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| (0..m).map(move |j| (i, j)))
            .filter(|&(i, j)| iou.get(i, j) > 0.10f32)
            .collect();
        let b0: Vec<HistBox> = pairs
            .iter()
            .map(|&(i, _)| Self::history_box(self.pools.get(ids[i]), self.frame_id, DELTA_T))
            .collect();
        let all_f32 = b0.iter().all(|b| matches!(b, HistBox::F32(_)));
        for (&(i, j), b) in pairs.iter().zip(&b0) {
            let t = self.pools.get(ids[i]);
            let (d, s) = (&db[j], dets[j].score);
            let v = if all_f32 {
                let HistBox::F32(b) = b else { unreachable!() };
                let ang = angle_f32(d, b, &t.tt.velocity, s);
                c.get(i, j) + self.p.angle_weight as f32 * ang
            } else {
                let b = match b {
                    HistBox::F32(b) => b.map(f64::from),
                    HistBox::F64(b) => *b,
                };
                let ang = angle_f64(d, &b, &t.tt.velocity, s);
                (f64::from(c.get(i, j)) + self.p.angle_weight * ang) as f32
            };
            c.set(i, j, v);
        }
        for i in 0..n {
            for j in 0..m {
                let v = if iou.get(i, j) > 0.10f32 {
                    c.get(i, j)
                } else {
                    1.0
                };
                c.set(i, j, v.clamp(0.0, 1.0));
            }
        }
        c
    }

    /// A matched track continues with `det` (confidence-scaled Kalman update, velocity, promotion).
    fn update_track(&mut self, id: u64, det: &STrack) {
        let frame = self.frame_id;
        let min_len = self.p.min_track_len;
        let t = self.pools.get_mut(id);
        t.frame_id = frame;
        t.tracklet_len += 1;
        t.tt.prev_score = t.score;
        if let Some((m, c)) = t.kf.as_mut() {
            KIND.update(
                m,
                c,
                det.measurement(KIND),
                (1.0 - f64::from(det.score)).max(0.05),
            );
        }
        let cur = det.det_xyxy();
        push_history(t, frame, HistBox::F32(cur));
        let mut vel = [[0f32; 2]; 4];
        for dt in 1..=DELTA_T {
            match Self::history_box(t, frame, dt) {
                HistBox::F32(b) => {
                    for (k, &(xi, yi)) in CORNERS.iter().enumerate() {
                        let (dx, dy) = (cur[xi] - b[xi], cur[yi] - b[yi]);
                        let norm = (dx * dx + dy * dy).sqrt() + 1e-5f32;
                        vel[k][0] += dx / norm / dt as f32;
                        vel[k][1] += dy / norm / dt as f32;
                    }
                }
                HistBox::F64(b) => {
                    for (k, &(xi, yi)) in CORNERS.iter().enumerate() {
                        let (dx, dy) = (f64::from(cur[xi]) - b[xi], f64::from(cur[yi]) - b[yi]);
                        let norm = (dx * dx + dy * dy).sqrt() + 1e-5;
                        vel[k][0] = (f64::from(vel[k][0]) + dx / norm / f64::from(dt)) as f32;
                        vel[k][1] = (f64::from(vel[k][1]) + dy / norm / f64::from(dt)) as f32;
                    }
                }
            }
        }
        t.tt.velocity = vel.map(|v| v.map(|x| x / DELTA_T as f32));
        t.score = det.score;
        if let Some(f) = det.tt.curr_feat.as_ref() {
            update_features(t, f);
        }
        if t.state == TrackState::Tracked || i64::from(t.tracklet_len) + 1 >= min_len {
            t.state = TrackState::Tracked;
            t.is_activated = true;
        }
        t.cls = det.cls;
        t.idx = det.idx;
        t.follow_angle(det);
    }

    /// A lost track found again with `det` (same id, velocity kept).
    fn re_activate(&mut self, id: u64, det: &STrack) {
        let frame = self.frame_id;
        let t = self.pools.get_mut(id);
        t.tt.prev_score = t.score;
        if let Some((m, c)) = t.kf.as_mut() {
            KIND.update(
                m,
                c,
                det.measurement(KIND),
                (1.0 - f64::from(det.score)).max(0.05),
            );
        }
        let b = t.xyxy_f64(KIND);
        push_history(t, frame, HistBox::F64(b));
        t.score = det.score;
        if let Some(f) = det.tt.curr_feat.as_ref() {
            update_features(t, f);
        }
        t.tracklet_len = 0;
        t.state = TrackState::Tracked;
        t.is_activated = true;
        t.frame_id = frame;
        t.cls = det.cls;
        t.idx = det.idx;
        t.follow_angle(det);
    }

    /// Track-aware initialisation: which `dets` may start a track next to the `active` tracks.
    fn tai(&self, active: &[u64], dets: &[&STrack]) -> Vec<bool> {
        let thr = self.p.new_track_thresh as f32;
        let tai = self.p.tai_thr as f32;
        let mut allow: Vec<bool> = dets.iter().map(|d| d.score > thr).collect();
        if active.len() + dets.len() < 2 {
            return allow;
        }
        let tb = self.pools.boxes(active, KIND);
        let db: Vec<[f32; 4]> = dets.iter().map(|d| d.det_xyxy()).collect();
        if !tb.is_empty() {
            for (i, d) in db.iter().enumerate() {
                let best = tb.iter().map(|t| iou_f32(d, t)).fold(f32::MIN, f32::max);
                allow[i] &= best <= tai;
            }
        }
        // Descending score; equal scores: the later index first (reversed stable ascending sort).
        let mut order: Vec<usize> = (0..dets.len()).collect();
        order.sort_by(|&a, &b| dets[a].score.total_cmp(&dets[b].score));
        order.reverse();
        for &i in &order {
            if !allow[i] {
                continue;
            }
            for j in 0..dets.len() {
                if j != i && iou_f32(&db[i], &db[j]) > tai {
                    allow[j] = false;
                }
            }
        }
        allow
    }

    /// One frame: detections, optional frame (GMC), recovered detections and per-row appearance
    /// features (`feats[i]` for `dets[i]`, used with `with_reid`) in, visible tracks out.
    pub fn update(
        &mut self,
        dets: &[Detection],
        frame: Option<&image::RgbImage>,
        recovered: &[Recovered],
        feats: Option<&[Vec<f32>]>,
    ) -> Vec<TrackOutput> {
        let cands = dets
            .iter()
            .enumerate()
            .map(|(i, d)| STrack::candidate(d.xyxy, d.conf, d.cls, i as i64))
            .collect();
        let del = recovered
            .iter()
            .map(|r| STrack::from_xywh(r.xywh, r.conf, r.cls, -1))
            .collect();
        self.step(cands, del, frame, feats)
    }

    /// [`TrackTrack::update`] on rotated detections; `recovered` are the loose-NMS rotated boxes (`dets_del`
    /// as `xywhr`). Costs and track-aware initialisation see the axis-aligned box of the unrotated (long-edge)
    /// size; output rows carry `xywha`.
    pub fn update_obb(
        &mut self,
        dets: &[ObbDetection],
        frame: Option<&image::RgbImage>,
        recovered: &[ObbDetection],
        feats: Option<&[Vec<f32>]>,
    ) -> Vec<TrackOutput> {
        let cands = dets
            .iter()
            .enumerate()
            .map(|(i, d)| STrack::from_xywha(d.xywhr, d.conf, d.cls, i as i64))
            .collect();
        let del = recovered
            .iter()
            .map(|r| STrack::from_xywha(r.xywhr, r.conf, r.cls, -1))
            .collect();
        self.step(cands, del, frame, feats)
    }

    /// The update on candidates (`idx` = input row) and recovered candidates (`idx` −1).
    fn step(
        &mut self,
        cands: Vec<STrack>,
        recovered: Vec<STrack>,
        frame: Option<&image::RgbImage>,
        feats: Option<&[Vec<f32>]>,
    ) -> Vec<TrackOutput> {
        self.frame_id += 1;
        if let Some(l) = self.assoc_log.as_mut() {
            l.clear();
        }
        let p = self.p.clone();
        let (high_t, low_t) = (p.track_high_thresh as f32, p.track_low_thresh as f32);
        let mut high = Vec::new();
        let mut low = Vec::new();
        for c in cands {
            if c.score >= high_t {
                high.push(c);
            } else if c.score > low_t {
                low.push(c);
            }
        }
        if let Some(fs) = feats.filter(|f| p.with_reid && !f.is_empty()) {
            for c in &mut high {
                if let Some(f) = fs.get(c.idx as usize) {
                    update_features(c, f);
                }
            }
        }
        let del: Vec<STrack> = recovered.into_iter().filter(|r| r.score > high_t).collect();
        let before = self.pools.tracked.clone();
        let (tracked, unconfirmed): (Vec<u64>, Vec<u64>) = before
            .iter()
            .partition(|&&t| self.pools.get(t).state == TrackState::Tracked);
        let pool = joint(&tracked, &self.pools.lost);
        if let (Some(g), Some(img)) = (self.gmc.as_mut(), frame) {
            let boxes: Vec<[f32; 4]> = high.iter().map(|d| d.det_xyxy()).collect();
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
        for &id in pool.iter().chain(&unconfirmed) {
            self.pools.get_mut(id).predict(KIND);
        }
        let mut ch = FrameChanges::default();

        // Main association: pool × (high + low + recovered) with penalties.
        let all: Vec<&STrack> = high.iter().chain(&low).chain(&del).collect();
        let (nh, nl) = (high.len(), low.len());
        let mut c = self.cost(&pool, &all);
        let (pp, pq) = (p.penalty_p as f32, p.penalty_q as f32);
        for i in 0..c.rows {
            for j in nh..c.cols {
                let add = if j < nh + nl { pp } else { pq };
                c.set(i, j, (c.get(i, j) + add).clamp(0.0, 1.0));
            }
        }
        let (m, u_rows, u_cols) = iterative(&c, p.match_thresh, p.reduce_step);
        self.log("main", &pool, &c, &m);
        for &(ti, di) in &m {
            let id = pool[ti];
            if self.pools.get(id).state == TrackState::Tracked {
                self.update_track(id, all[di]);
                ch.activated.push(id);
            } else {
                self.re_activate(id, all[di]);
                ch.refind.push(id);
            }
        }
        for &ti in &u_rows {
            let t = self.pools.get_mut(pool[ti]);
            if t.state != TrackState::Lost {
                t.state = TrackState::Lost;
                ch.lost.push(pool[ti]);
            }
        }

        // Unconfirmed tracks × leftover high detections.
        let mut leftover: Vec<&STrack> = u_cols
            .iter()
            .filter(|&&j| j < nh)
            .map(|&j| all[j])
            .collect();
        if !unconfirmed.is_empty() && !leftover.is_empty() {
            let c = self.cost(&unconfirmed, &leftover);
            let (m, ur, uc) = iterative(&c, p.match_thresh, p.reduce_step);
            self.log("unconfirmed", &unconfirmed, &c, &m);
            for &(ti, di) in &m {
                self.update_track(unconfirmed[ti], leftover[di]);
                ch.activated.push(unconfirmed[ti]);
            }
            for &ti in &ur {
                self.pools.get_mut(unconfirmed[ti]).state = TrackState::Removed;
                ch.removed.push(unconfirmed[ti]);
            }
            leftover = uc.iter().map(|&j| leftover[j]).collect();
        } else {
            for &id in &unconfirmed {
                self.pools.get_mut(id).state = TrackState::Removed;
                ch.removed.push(id);
            }
        }

        // Relaxed re-binding of tracks lost before this frame.
        if p.lost_match_thr > 0.0 && !leftover.is_empty() {
            let rows: Vec<u64> = pool
                .iter()
                .copied()
                .filter(|&id| {
                    self.pools.get(id).state == TrackState::Lost && !ch.lost.contains(&id)
                })
                .collect();
            if !rows.is_empty() {
                let c = self.cost(&rows, &leftover);
                let (m, _, uc) = iterative(&c, p.lost_match_thr, p.reduce_step);
                self.log("lost_relaxed", &rows, &c, &m);
                for &(ti, di) in &m {
                    self.re_activate(rows[ti], leftover[di]);
                    ch.refind.push(rows[ti]);
                }
                leftover = uc.iter().map(|&j| leftover[j]).collect();
            }
        }

        // Track-aware initialisation against the tracks updated this frame.
        let mut active: Vec<u64> = before
            .iter()
            .copied()
            .filter(|&id| self.pools.get(id).state == TrackState::Tracked)
            .collect();
        active.extend(&ch.activated);
        let allow = self.tai(&active, &leftover);
        let starts: Vec<STrack> = leftover
            .iter()
            .zip(&allow)
            .filter(|(_, &ok)| ok)
            .map(|(d, _)| (*d).clone())
            .collect();
        for mut t in starts {
            let id = self.pools.next_id();
            self.activate(&mut t, id);
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

        self.pools.merge(ch, KIND);
        let f = self.frame_id;
        self.pools
            .tracked
            .iter()
            .map(|&i| self.pools.get(i))
            .filter(|t| t.is_activated && t.frame_id == f)
            .map(|t| TrackOutput::from_track(t, KIND))
            .collect()
    }

    /// Records one association when logging is on.
    fn log(&mut self, stage: &'static str, rows: &[u64], cost: &CostMatrix, m: &[(usize, usize)]) {
        if let Some(l) = self.assoc_log.as_mut() {
            let matches = m.iter().map(|&(i, j)| (rows[i], j)).collect();
            l.push(AssocRecord {
                stage,
                rows: rows.to_vec(),
                cost: cost.clone(),
                matches,
            });
        }
    }

    /// Starts candidate `t` as track `id` (on probation unless `min_track_len ≤ 1`).
    fn activate(&self, t: &mut STrack, id: u64) {
        let frame = self.frame_id;
        t.track_id = id;
        t.kf = Some(KIND.initiate(t.measurement(KIND)));
        let b = t.xyxy_f64(KIND);
        push_history(t, frame, HistBox::F64(b));
        t.tracklet_len = 0;
        t.state = if self.p.min_track_len <= 1 {
            TrackState::Tracked
        } else {
            TrackState::New
        };
        t.is_activated = frame == 1 || t.state == TrackState::Tracked;
        t.frame_id = frame;
        t.start_frame = frame;
    }
}

/// Blends feature `f` into `t`'s appearance (zero norm: ignored): `β = 0.95 + 0.05·(1 − score)`.
fn update_features(t: &mut STrack, f: &[f32]) {
    let norm = f.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm < 1e-12 {
        return;
    }
    let f: Vec<f32> = f.iter().map(|x| x / norm).collect();
    let beta = 0.95f32 + 0.05f32 * (1.0 - t.score);
    t.tt.smooth_feat = Some(match t.tt.smooth_feat.take() {
        None => f.clone(),
        Some(s) => {
            let m: Vec<f32> = s
                .iter()
                .zip(&f)
                .map(|(a, b)| beta * a + (1.0 - beta) * b)
                .collect();
            let n = m.iter().map(|x| x * x).sum::<f32>().sqrt();
            m.iter().map(|x| x / n).collect()
        }
    });
    t.tt.curr_feat = Some(f);
}

/// Appends a history entry, keeping the last `DELTA_T + 1`.
fn push_history(t: &mut STrack, frame: u32, b: HistBox) {
    t.tt.history.push_back((frame, b));
    while t.tt.history.len() > DELTA_T as usize + 1 {
        t.tt.history.pop_front();
    }
}

/// Corner-angle distance in float32 (every history box float32).
fn angle_f32(d: &[f32; 4], b0: &[f32; 4], v: &[[f32; 2]; 4], score: f32) -> f32 {
    let mut sum = 0f32;
    for (k, &(xi, yi)) in CORNERS.iter().enumerate() {
        let (dx, dy) = (d[xi] - b0[xi], d[yi] - b0[yi]);
        let norm = (dx * dx + dy * dy).sqrt() + 1e-5f32;
        let dot = v[k][0] * (dx / norm) + v[k][1] * (dy / norm);
        sum += dot.clamp(-1.0, 1.0).acos().abs();
    }
    sum / 4.0 / std::f32::consts::PI * score
}

/// Corner-angle distance in float64.
fn angle_f64(d: &[f32; 4], b0: &[f64; 4], v: &[[f32; 2]; 4], score: f32) -> f64 {
    let mut sum = 0f64;
    for (k, &(xi, yi)) in CORNERS.iter().enumerate() {
        let (dx, dy) = (f64::from(d[xi]) - b0[xi], f64::from(d[yi]) - b0[yi]);
        let norm = (dx * dx + dy * dy).sqrt() + 1e-5;
        let dot = f64::from(v[k][0]) * (dx / norm) + f64::from(v[k][1]) * (dy / norm);
        sum += dot.clamp(-1.0, 1.0).acos().abs();
    }
    sum / 4.0 / PI * f64::from(score)
}

/// Greedy mutual-nearest matching with a threshold lowered by `step` after every productive round:
/// matches in recording order, unmatched rows and columns ascending.
pub fn iterative(
    c: &CostMatrix,
    thr: f64,
    step: f64,
) -> (Vec<(usize, usize)>, Vec<usize>, Vec<usize>) {
    let mut c = c.clone();
    let mut thr = thr;
    let mut out = Vec::new();
    while c.rows > 0 && c.cols > 0 {
        let argmin_row = |c: &CostMatrix, i: usize| {
            (0..c.cols).fold(0, |b, j| if c.get(i, j) < c.get(i, b) { j } else { b })
        };
        let argmin_col = |c: &CostMatrix, j: usize| {
            (0..c.rows).fold(0, |b, i| if c.get(i, j) < c.get(b, j) { i } else { b })
        };
        let t32 = thr as f32;
        let new: Vec<(usize, usize)> = (0..c.rows)
            .filter_map(|i| {
                let j = argmin_row(&c, i);
                (argmin_col(&c, j) == i && c.get(i, j) < t32).then_some((i, j))
            })
            .collect();
        if new.is_empty() {
            break;
        }
        for &(i, j) in &new {
            for k in 0..c.cols {
                c.set(i, k, f32::INFINITY);
            }
            for k in 0..c.rows {
                c.set(k, j, f32::INFINITY);
            }
        }
        out.extend(new);
        thr -= step;
    }
    let ur = (0..c.rows)
        .filter(|i| !out.iter().any(|m| m.0 == *i))
        .collect();
    let uc = (0..c.cols)
        .filter(|j| !out.iter().any(|m| m.1 == *j))
        .collect();
    (out, ur, uc)
}
