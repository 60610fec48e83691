//! BoT-SORT appearance cues (Ultralytics 8.4.190 `BOTrack.update_features`, `embedding_distance` and the
//! gated minimum of `BOTSORT.get_dists`).

use super::matching::CostMatrix;
use super::strack::STrack;

/// BoT-SORT's feature smoothing weight on the previous average.
const ALPHA: f32 = 0.9;

/// The ReID settings of BoT-SORT (tracker YAML keys).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReidGate {
    /// `proximity_thresh`: IoU a pair needs before appearance may lower its cost.
    pub proximity_thresh: f64,
    /// `appearance_thresh`: cosine similarity a pair needs for its appearance cost to count.
    pub appearance_thresh: f64,
}

/// Blends feature `f` into `t` as BoT-SORT does: `curr = f/‖f‖`, `smooth = normalise(0.9·smooth + 0.1·curr)`
/// (the first feature starts the average); a zero-norm feature is ignored (float32 throughout).
pub fn smooth_bot(t: &mut STrack, f: &[f32]) {
    let norm = f.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm < 1e-12 {
        return;
    }
    let f: Vec<f32> = f.iter().map(|x| x / norm).collect();
    // NumPy: `alpha * smooth` rounds the Python float 0.9 to float32, `1 - alpha` is taken in float64 first.
    let rest = (1.0f64 - 0.9f64) as f32;
    t.tt.smooth_feat = Some(match t.tt.smooth_feat.take() {
        None => f.clone(),
        Some(s) => {
            let m: Vec<f32> = s
                .iter()
                .zip(&f)
                .map(|(a, b)| ALPHA * a + rest * b)
                .collect();
            let n = m.iter().map(|x| x * x).sum::<f32>().sqrt();
            m.iter().map(|x| x / n).collect()
        }
    });
    t.tt.curr_feat = Some(f);
}

/// Cosine distance `max(0, 1 − t·d / max(‖t‖‖d‖, eps))` of the tracks' smoothed features against the
/// detections' current ones; a side without a feature gets 2 (float32, `embedding_distance`).
pub fn embedding_distance(tracks: &[&STrack], dets: &[&STrack]) -> CostMatrix {
    let mut m = CostMatrix::filled(tracks.len(), dets.len(), 0.0);
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    for (i, t) in tracks.iter().enumerate() {
        for (j, d) in dets.iter().enumerate() {
            let v = match (t.tt.smooth_feat.as_ref(), d.tt.curr_feat.as_ref()) {
                (Some(a), Some(b)) => {
                    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                    let den = (norm(a) * norm(b)).max(f32::EPSILON);
                    (1.0 - dot / den).max(0.0)
                }
                _ => 2.0,
            };
            m.set(i, j, v);
        }
    }
    m
}

/// `BOTSORT.get_dists` with ReID: `iou_d` is the plain IoU distance (gating), `d` the (score-fused) cost.
/// Appearance `e = embedding_distance / 2` is set to 1 above `1 − appearance_thresh` and where the IoU
/// distance exceeds `1 − proximity_thresh`; the cost becomes `min(d, e)`.
pub fn fuse_appearance(
    d: CostMatrix,
    iou_d: &CostMatrix,
    tracks: &[&STrack],
    dets: &[&STrack],
    g: ReidGate,
) -> CostMatrix {
    if d.data.is_empty() {
        return d;
    }
    let e = embedding_distance(tracks, dets);
    let far = (1.0 - g.proximity_thresh) as f32;
    let unlike = (1.0 - g.appearance_thresh) as f32;
    let mut out = d;
    for k in 0..out.data.len() {
        let mut v = e.data[k] / 2.0;
        if v > unlike || iou_d.data[k] > far {
            v = 1.0;
        }
        out.data[k] = out.data[k].min(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_normalises_and_ignores_zero_features() {
        let mut t = STrack::candidate([0.0, 0.0, 10.0, 10.0], 0.9, 0.0, 0);
        smooth_bot(&mut t, &[3.0, 4.0]);
        assert_eq!(t.tt.curr_feat.as_deref(), Some(&[0.6f32, 0.8][..]));
        smooth_bot(&mut t, &[0.0, 0.0]);
        assert_eq!(t.tt.curr_feat.as_deref(), Some(&[0.6f32, 0.8][..]));
        smooth_bot(&mut t, &[1.0, 0.0]);
        let s = t.tt.smooth_feat.clone().unwrap();
        assert!((s[0] * s[0] + s[1] * s[1] - 1.0).abs() < 1e-6 && s[0] > 0.6);
    }

    #[test]
    fn missing_features_cost_the_maximum() {
        let mut a = STrack::candidate([0.0, 0.0, 10.0, 10.0], 0.9, 0.0, 0);
        let b = STrack::candidate([0.0, 0.0, 10.0, 10.0], 0.9, 0.0, 1);
        smooth_bot(&mut a, &[1.0, 0.0]);
        assert_eq!(embedding_distance(&[&a], &[&b]).get(0, 0), 2.0);
    }
}
