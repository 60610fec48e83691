//! OBB tracking (ByteTrack, BoT-SORT, TrackTrack) and BoT-SORT ReID against Ultralytics 8.4.190 runs made by
//! `scripts/make_track_obb_reid.py` (`tests/data/track_obb_reid.json`), frame by frame.

mod track_util;

use ryolo::track::config::TrackerConfig;
use ryolo::track::strack::STrack;
use ryolo::track::{FrameResult, ObbDetection, TrackOutput, Tracker};
use serde_json::Value;
use track_util::{check_output, check_state, dets, f, state_name, BOX_TOL};

/// The fixture file.
fn fixture() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/track_obb_reid.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// The tracker a run's `config` describes.
fn tracker_of(config: &Value) -> Tracker {
    let yaml = serde_yaml::to_string(config).unwrap();
    let cfg = TrackerConfig::from_yaml_str(&yaml, "fixture config").unwrap();
    Tracker::with_gmc(&cfg, None).unwrap()
}

/// One frame's rotated detections from rows `[cx, cy, w, h, θ, conf, cls]`.
fn obb_dets(frame: &Value) -> Vec<ObbDetection> {
    frame
        .as_array()
        .unwrap()
        .iter()
        .map(|r| ObbDetection {
            xywhr: [f(&r[0]), f(&r[1]), f(&r[2]), f(&r[3]), f(&r[4])],
            conf: f(&r[5]),
            cls: f(&r[6]),
        })
        .collect()
}

/// Per-row features of a frame.
fn feats(frame: &Value) -> Vec<Vec<f32>> {
    frame
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(f).collect())
        .collect()
}

/// Asserts OBB tracker rows `[cx, cy, w, h, θ, id, score, cls, idx]`; returns the worst box/angle error.
fn check_obb_output(ctx: &str, got: &[TrackOutput], want: &Value) -> f32 {
    let want = want.as_array().unwrap();
    let gid: Vec<u64> = got.iter().map(|t| t.track_id).collect();
    let wid: Vec<u64> = want.iter().map(|r| r[5].as_f64().unwrap() as u64).collect();
    assert_eq!(gid, wid, "{ctx}: track ids");
    let mut worst = 0f32;
    for (g, w) in got.iter().zip(want) {
        let id = g.track_id;
        assert_eq!(g.idx, w[8].as_f64().unwrap() as i64, "{ctx}: idx of id {id}");
        assert_eq!(g.cls, f(&w[7]), "{ctx}: cls of id {id}");
        assert_eq!(g.score, f(&w[6]), "{ctx}: score of id {id}");
        let b = g.xywha.expect("OBB rows carry xywha");
        for k in 0..5 {
            let d = (b[k] - f(&w[k])).abs();
            worst = worst.max(d);
            assert!(d <= BOX_TOL, "{ctx}: id {id} xywha {b:?} vs {w:?}");
        }
    }
    worst
}

/// Asserts the callback result against the fixture's `Results.obb` rows (8 columns with ids, else 7).
fn check_obb_result(ctx: &str, res: &FrameResult, frame: &Value, inputs: &[ObbDetection]) {
    let want = frame["result"].as_array().unwrap();
    let is_track = frame["result_is_track"].as_bool().unwrap();
    match res {
        FrameResult::Tracks(rows) => {
            assert!(is_track, "{ctx}: result should not carry ids");
            assert_eq!(rows.len(), want.len(), "{ctx}: result rows");
            for (g, w) in rows.iter().zip(want) {
                assert_eq!(w.as_array().unwrap().len(), 8, "{ctx}");
                assert_eq!(g.track_id, w[5].as_f64().unwrap() as u64, "{ctx}");
                assert_eq!((g.score, g.cls), (f(&w[6]), f(&w[7])), "{ctx}");
                let b = g.xywha.unwrap();
                for k in 0..5 {
                    assert!((b[k] - f(&w[k])).abs() <= BOX_TOL, "{ctx}: {b:?} vs {w:?}");
                }
            }
        }
        FrameResult::Raw => {
            assert!(!is_track, "{ctx}: raw result expected to have ids");
            assert_eq!(want.len(), inputs.len(), "{ctx}: raw rows");
            for (d, w) in inputs.iter().zip(want) {
                assert_eq!(w.as_array().unwrap().len(), 7, "{ctx}");
                let wb: Vec<f32> = (0..5).map(|k| f(&w[k])).collect();
                assert_eq!(d.xywhr.to_vec(), wb, "{ctx}");
            }
        }
        FrameResult::Empty => assert!(want.is_empty() && !is_track, "{ctx}: emptied result expected"),
    }
}

/// Asserts the tracks' angles (the state records them for OBB runs).
fn check_angles(ctx: &str, tracked: &[&STrack], lost: &[&STrack], want: &Value) {
    for (name, got) in [("tracked", tracked), ("lost", lost)] {
        for (g, w) in got.iter().zip(want[name].as_array().unwrap()) {
            let a = g.angle.expect("OBB tracks have an angle");
            let wa = w["angle"].as_f64().unwrap();
            assert!((a - wa).abs() <= 1e-6, "{ctx}: angle of id {} {a} vs {wa}", g.track_id);
            assert_eq!(state_name(g.state), w["state"].as_str().unwrap(), "{ctx}");
        }
    }
}

#[test]
fn obb_runs_match_ultralytics() {
    let fx = fixture();
    let (h, w) = (fx["image"][0].as_u64().unwrap() as u32, fx["image"][1].as_u64().unwrap() as u32);
    let inputs = fx["obb"]["inputs"].as_array().unwrap();
    let all_feats = fx["obb"]["feats"].as_array().unwrap();
    for (name, run) in fx["obb"]["runs"].as_object().unwrap() {
        let mut t = tracker_of(&run["config"]);
        let reid = run["config"]["with_reid"].as_bool().unwrap_or(false);
        let (mut rows, mut worst) = (0, 0f32);
        for (k, fr) in run["frames"].as_array().unwrap().iter().enumerate() {
            let ctx = format!("{name} frame {}", k + 1);
            let d = obb_dets(&inputs[k]);
            let fe = feats(&all_feats[k]);
            let out = t.update_obb(&d, None, &[], reid.then_some(&fe[..]));
            worst = worst.max(check_obb_output(&ctx, &out, &fr["tracker_output"]));
            rows += out.len();
            let res = FrameResult::from_tracks(&out, t.has_unconfirmed(), w, h);
            check_obb_result(&ctx, &res, fr, &d);
            let (tr, lo, rm) = t.state();
            check_state(&ctx, &tr, &lo, rm, &fr["state"]);
            check_angles(&ctx, &tr, &lo, &fr["state"]);
        }
        let want: usize = run["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|fr| fr["tracker_output"].as_array().unwrap().len())
            .sum();
        assert_eq!(rows, want, "{name}");
        eprintln!("obb/{name}: {rows} rows equal, worst box/angle difference {worst:.2e}");
    }
}

#[test]
fn botsort_reid_runs_match_ultralytics() {
    let fx = fixture();
    let (h, w) = (fx["image"][0].as_u64().unwrap() as u32, fx["image"][1].as_u64().unwrap() as u32);
    let inputs = fx["detect"]["inputs"].as_array().unwrap();
    let all_feats = fx["detect"]["feats"].as_array().unwrap();
    for (name, run) in fx["detect"]["runs"].as_object().unwrap() {
        let mut t = tracker_of(&run["config"]);
        let (mut rows, mut worst) = (0, 0f32);
        for (k, fr) in run["frames"].as_array().unwrap().iter().enumerate() {
            let ctx = format!("{name} frame {}", k + 1);
            let d = dets(&inputs[k]);
            let fe = feats(&all_feats[k]);
            let out = t.update_full(&d, None, &[], Some(&fe));
            worst = worst.max(check_output(&ctx, &out, &fr["tracker_output"]));
            rows += out.len();
            let res = FrameResult::from_tracks(&out, t.has_unconfirmed(), w, h);
            let want = fr["result"].as_array().unwrap();
            match &res {
                FrameResult::Tracks(r) => {
                    assert_eq!(r.len(), want.len(), "{ctx}");
                    for (g, wr) in r.iter().zip(want) {
                        for k in 0..4 {
                            assert!((g.xyxy[k] - f(&wr[k])).abs() <= BOX_TOL, "{ctx}: {g:?} vs {wr:?}");
                        }
                    }
                }
                FrameResult::Raw => assert_eq!(want.len(), d.len(), "{ctx}"),
                FrameResult::Empty => assert!(want.is_empty(), "{ctx}"),
            }
            let (tr, lo, rm) = t.state();
            check_state(&ctx, &tr, &lo, rm, &fr["state"]);
        }
        eprintln!("detect/{name}: {rows} rows equal, worst box difference {worst:.2e}");
    }
}

#[test]
fn reid_changes_the_outcome_of_the_fixture() {
    // The same detections without features must give different ids, or the ReID runs would prove nothing.
    let fx = fixture();
    let inputs = fx["detect"]["inputs"].as_array().unwrap();
    for (name, run) in fx["detect"]["runs"].as_object().unwrap() {
        let mut cfg = run["config"].clone();
        cfg["with_reid"] = Value::Bool(false);
        let mut t = tracker_of(&cfg);
        let differs = run["frames"].as_array().unwrap().iter().enumerate().any(|(k, fr)| {
            let out = t.update(&dets(&inputs[k]), None);
            let ids: Vec<u64> = out.iter().map(|o| o.track_id).collect();
            let want: Vec<u64> = fr["tracker_output"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[4].as_f64().unwrap() as u64)
                .collect();
            ids != want
        });
        assert!(differs, "{name}: ReID made no difference");
    }
}
