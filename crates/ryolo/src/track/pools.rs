//! Track pools keyed by id: the joint/sub list helpers and the end-of-frame merge shared by all trackers.

#![allow(clippy::needless_range_loop)] // index loops mirror the matrix formulas

use std::collections::{HashMap, HashSet};

use super::kalman::KalmanKind;
use super::obb::track_distance;
use super::strack::{STrack, TrackState};

/// `a` then the tracks of `b` whose id is not yet listed.
pub fn joint(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut seen: HashSet<u64> = a.iter().copied().collect();
    let mut out = a.to_vec();
    for &t in b {
        if seen.insert(t) {
            out.push(t);
        }
    }
    out
}

/// The tracks of `a` whose id is not in `b`.
pub fn sub(a: &[u64], b: &[u64]) -> Vec<u64> {
    let drop: HashSet<u64> = b.iter().copied().collect();
    a.iter().copied().filter(|t| !drop.contains(t)).collect()
}

/// The persistent state every tracker keeps between frames.
#[derive(Clone, Debug, Default)]
pub struct Pools {
    /// Every listed track by id.
    pub store: HashMap<u64, STrack>,
    /// `tracked_stracks` (ids, in order).
    pub tracked: Vec<u64>,
    /// `lost_stracks` (ids, in order).
    pub lost: Vec<u64>,
    /// `removed_stracks` (ids, the last 1000).
    pub removed: Vec<u64>,
    /// Ids removed in the last frame.
    pub removed_frame: Vec<u64>,
    /// The last id handed out.
    pub last_id: u64,
}

/// What happened to tracks during one frame, for [`Pools::merge`].
#[derive(Clone, Debug, Default)]
pub struct FrameChanges {
    /// Tracks updated from Tracked or newly activated.
    pub activated: Vec<u64>,
    /// Lost tracks found again.
    pub refind: Vec<u64>,
    /// Tracks that became lost.
    pub lost: Vec<u64>,
    /// Tracks that were removed.
    pub removed: Vec<u64>,
}

impl Pools {
    /// The track with `id` (every listed id is stored).
    pub fn get(&self, id: u64) -> &STrack {
        &self.store[&id]
    }

    /// The track with `id`, mutable.
    pub fn get_mut(&mut self, id: u64) -> &mut STrack {
        self.store
            .get_mut(&id)
            .expect("listed track ids are stored")
    }

    /// The next track id.
    pub fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Boxes (float32 `xyxy` of the Kalman mean) of the tracks `ids`.
    pub fn boxes(&self, ids: &[u64], kind: KalmanKind) -> Vec<[f32; 4]> {
        ids.iter().map(|&i| self.get(i).xyxy(kind)).collect()
    }

    /// Ultralytics' `merge_track_pools`: tracked ∪ activated ∪ refind, lost bookkeeping against the
    /// removed list of previous frames, IoU de-duplication, then the removed buffer.
    pub fn merge(&mut self, ch: FrameChanges, kind: KalmanKind) {
        let tracked: Vec<u64> = self
            .tracked
            .iter()
            .copied()
            .filter(|&t| self.get(t).state == TrackState::Tracked)
            .collect();
        let tracked = joint(&joint(&tracked, &ch.activated), &ch.refind);
        let mut lost = sub(&self.lost, &tracked);
        lost.extend(&ch.lost);
        let lost = sub(&lost, &self.removed);
        let (tracked, lost) = self.remove_duplicates(tracked, lost, kind);
        self.tracked = tracked;
        self.lost = lost;
        self.removed.extend(&ch.removed);
        if self.removed.len() > 1000 {
            self.removed.drain(..self.removed.len() - 1000);
        }
        self.removed_frame = ch.removed;
        let keep: HashSet<u64> = self.tracked.iter().chain(&self.lost).copied().collect();
        self.store.retain(|id, _| keep.contains(id));
    }

    /// Drops the younger of every (tracked, lost) pair with IoU (rotated: ProbIoU) distance below 0.15.
    fn remove_duplicates(
        &self,
        a: Vec<u64>,
        b: Vec<u64>,
        kind: KalmanKind,
    ) -> (Vec<u64>, Vec<u64>) {
        let ta: Vec<&STrack> = a.iter().map(|&i| self.get(i)).collect();
        let tb: Vec<&STrack> = b.iter().map(|&i| self.get(i)).collect();
        let d = track_distance(&ta, &tb, kind);
        let (mut dupa, mut dupb) = (HashSet::new(), HashSet::new());
        for p in 0..d.rows {
            for q in 0..d.cols {
                if d.get(p, q) < 0.15f32 {
                    let (tp, tq) = (self.get(a[p]), self.get(b[q]));
                    let age_p = i64::from(tp.frame_id) - i64::from(tp.start_frame);
                    let age_q = i64::from(tq.frame_id) - i64::from(tq.start_frame);
                    if age_p > age_q {
                        dupb.insert(q);
                    } else {
                        dupa.insert(p);
                    }
                }
            }
        }
        let a = a
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !dupa.contains(i))
            .map(|(_, t)| t);
        let b = b
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !dupb.contains(i))
            .map(|(_, t)| t);
        (a.collect(), b.collect())
    }

    /// Whether a listed tracked track is not yet confirmed (the callback then empties the result).
    pub fn has_unconfirmed(&self) -> bool {
        self.tracked.iter().any(|&t| !self.get(t).is_activated)
    }
}
