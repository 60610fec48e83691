//! Shared helpers of the tracker fixture tests: reading the JSON and comparing a run frame by frame.
#![allow(dead_code)]

use ryolo::track::strack::{STrack, TrackState};
use ryolo::track::{Detection, FrameResult, TrackOutput};
use serde_json::Value;

/// Box tolerance in pixels (fixture boxes are float32 roundings of float64 Kalman means).
pub const BOX_TOL: f32 = 1e-3;
/// Kalman mean tolerance (the fixture stores float64 means; TrackTrack's are rounded to 1e-4).
pub const MEAN_TOL: f64 = 1e-3;

/// Reads a fixture JSON file under `shared`.
pub fn load(shared: &std::path::Path, name: &str) -> Value {
    let p = shared.join("fixtures/ultralytics/track").join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// A float of the JSON as f32 (fixture floats are float32 values).
pub fn f(v: &Value) -> f32 {
    v.as_f64().unwrap() as f32
}

/// One frame's detections from the JSON rows `[x1, y1, x2, y2, conf, cls]`.
pub fn dets(frame: &Value) -> Vec<Detection> {
    frame
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Detection {
            xyxy: [f(&r[0]), f(&r[1]), f(&r[2]), f(&r[3])],
            conf: f(&r[4]),
            cls: f(&r[5]),
        })
        .collect()
}

/// The state name the fixture uses.
pub fn state_name(s: TrackState) -> &'static str {
    match s {
        TrackState::New => "new",
        TrackState::Tracked => "tracked",
        TrackState::Lost => "lost",
        TrackState::Removed => "removed",
    }
}

/// Asserts our tracker output equals the fixture's `tracker_output` rows (same order).
pub fn check_output(ctx: &str, got: &[TrackOutput], want: &Value) -> f32 {
    let want = want.as_array().unwrap();
    let gid: Vec<u64> = got.iter().map(|t| t.track_id).collect();
    let wid: Vec<u64> = want.iter().map(|r| r[4].as_f64().unwrap() as u64).collect();
    assert_eq!(gid, wid, "{ctx}: track ids");
    let mut worst = 0f32;
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            g.idx,
            w[7].as_f64().unwrap() as i64,
            "{ctx}: idx of id {}",
            g.track_id
        );
        assert_eq!(g.cls, f(&w[6]), "{ctx}: cls of id {}", g.track_id);
        assert_eq!(g.score, f(&w[5]), "{ctx}: score of id {}", g.track_id);
        for k in 0..4 {
            let d = (g.xyxy[k] - f(&w[k])).abs();
            worst = worst.max(d);
            assert!(
                d <= BOX_TOL,
                "{ctx}: id {} box {:?} vs {:?}",
                g.track_id,
                g.xyxy,
                w
            );
        }
    }
    worst
}

/// Asserts the callback result equals the fixture's `result_boxes` / `result_is_track`.
pub fn check_result(ctx: &str, res: &FrameResult, frame: &Value, inputs: &[Detection]) {
    let want = frame["result_boxes"].as_array().unwrap();
    let is_track = frame["result_is_track"].as_bool().unwrap();
    match res {
        FrameResult::Tracks(rows) => {
            assert!(is_track, "{ctx}: result should not carry ids");
            assert_eq!(rows.len(), want.len(), "{ctx}: result rows");
            for (g, w) in rows.iter().zip(want) {
                assert_eq!(g.track_id, w[4].as_f64().unwrap() as u64, "{ctx}");
                for k in 0..4 {
                    assert!(
                        (g.xyxy[k] - f(&w[k])).abs() <= BOX_TOL,
                        "{ctx}: clipped box {:?} vs {w:?}",
                        g.xyxy
                    );
                }
            }
        }
        FrameResult::Raw => {
            assert!(!is_track, "{ctx}: raw result expected to have ids");
            assert_eq!(want.len(), inputs.len(), "{ctx}: raw rows");
            for (d, w) in inputs.iter().zip(want) {
                assert_eq!(w.as_array().unwrap().len(), 6, "{ctx}");
                assert_eq!(d.xyxy, [f(&w[0]), f(&w[1]), f(&w[2]), f(&w[3])], "{ctx}");
            }
        }
        FrameResult::Empty => assert!(
            want.is_empty() && !is_track,
            "{ctx}: emptied result expected"
        ),
    }
}

/// Asserts the tracked/lost lists (ids, states, frames, means) and the removed ids of one frame.
pub fn check_state(
    ctx: &str,
    tracked: &[&STrack],
    lost: &[&STrack],
    removed: &[u64],
    want: &Value,
) -> f64 {
    let mut worst = 0f64;
    for (name, got) in [("tracked", tracked), ("lost", lost)] {
        let w = want[name].as_array().unwrap();
        let gid: Vec<u64> = got.iter().map(|t| t.track_id).collect();
        let wid: Vec<u64> = w.iter().map(|t| t["id"].as_u64().unwrap()).collect();
        assert_eq!(gid, wid, "{ctx}: {name} ids");
        for (g, t) in got.iter().zip(w) {
            assert_eq!(
                state_name(g.state),
                t["state"].as_str().unwrap(),
                "{ctx}: state of {}",
                g.track_id
            );
            assert_eq!(
                g.is_activated,
                t["activated"].as_bool().unwrap(),
                "{ctx}: activated {}",
                g.track_id
            );
            assert_eq!(
                u64::from(g.start_frame),
                t["start"].as_u64().unwrap(),
                "{ctx}: start {}",
                g.track_id
            );
            assert_eq!(
                u64::from(g.frame_id),
                t["last"].as_u64().unwrap(),
                "{ctx}: last {}",
                g.track_id
            );
            if let Some(len) = t.get("len") {
                assert_eq!(
                    u64::from(g.tracklet_len),
                    len.as_u64().unwrap(),
                    "{ctx}: len {}",
                    g.track_id
                );
            }
            if let Some(v) = t.get("velocity") {
                let gv: Vec<f32> = g.tt.velocity.iter().flatten().copied().collect();
                for (k, w) in v.as_array().unwrap().iter().enumerate() {
                    let d = (f64::from(gv[k]) - w.as_f64().unwrap()).abs();
                    assert!(
                        d <= 5.1e-5,
                        "{ctx}: id {} velocity {gv:?} vs {v}",
                        g.track_id
                    );
                }
            }
            if let Some(ps) = t.get("prev_score") {
                assert_eq!(
                    g.tt.prev_score,
                    f(ps),
                    "{ctx}: prev_score of {}",
                    g.track_id
                );
                assert_eq!(g.score, f(&t["score"]), "{ctx}: score of {}", g.track_id);
                assert_eq!(
                    g.idx as f64,
                    t["idx"].as_f64().unwrap(),
                    "{ctx}: idx of {}",
                    g.track_id
                );
            }
            if let Some(m) = t.get("mean") {
                let (gm, _) = g.kf.as_ref().unwrap();
                for (k, v) in m.as_array().unwrap().iter().enumerate() {
                    let d = (gm[k] - v.as_f64().unwrap()).abs();
                    worst = worst.max(d);
                    assert!(d <= MEAN_TOL, "{ctx}: id {} mean {gm:?} vs {m}", g.track_id);
                }
            }
        }
    }
    let wr: Vec<u64> = want["removed_this_frame"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(removed, &wr[..], "{ctx}: removed_this_frame");
    worst
}
