//! ByteTrack and BoT-SORT (ReID off) against Ultralytics 8.4.190's fixtures, frame by frame.

mod common;
mod track_util;

use ryolo::track::byte::ByteTracker;
use ryolo::track::config::TrackerConfig;
use ryolo::track::gmc::{Gmc, ReplayGmc, Warp};
use ryolo::track::{FrameResult, Tracker};
use serde_json::Value;
use track_util::*;

/// The tracker a fixture run's `config` describes (its keys parsed as a tracker YAML).
fn tracker_of(config: &Value, gmc: Option<Box<dyn Gmc>>) -> ByteTracker {
    let yaml = serde_yaml::to_string(config).unwrap();
    let cfg = TrackerConfig::from_yaml_str(&yaml, "fixture config").unwrap();
    match Tracker::with_gmc(&cfg, gmc).unwrap() {
        Tracker::Byte(t) => t,
        #[allow(unreachable_patterns)]
        _ => panic!("not a ByteTrack/BoT-SORT config"),
    }
}

/// Runs one fixture run and compares every frame; returns (rows, worst box error, worst mean error).
fn replay(
    name: &str,
    mut t: ByteTracker,
    inputs: &[Value],
    frames: &[Value],
    wh: (u32, u32),
) -> (usize, f32, f64) {
    let img = image::RgbImage::new(1, 1);
    let (mut rows, mut wb, mut wm) = (0, 0f32, 0f64);
    for (k, (inp, fr)) in inputs.iter().zip(frames).enumerate() {
        let ctx = format!("{name} frame {}", k + 1);
        let d = dets(inp);
        let out = t.update(&d, Some(&img));
        rows += out.len();
        wb = wb.max(check_output(&ctx, &out, &fr["tracker_output"]));
        let res = FrameResult::from_tracks(&out, t.has_unconfirmed(), wh.0, wh.1);
        check_result(&ctx, &res, fr, &d);
        let (tr, lo) = t.tracks();
        wm = wm.max(check_state(
            &ctx,
            &tr,
            &lo,
            t.removed_this_frame(),
            &fr["state"],
        ));
    }
    eprintln!(
        "{name}: {} frames, {rows} rows, worst box diff {wb:.2e} px, worst mean diff {wm:.2e}",
        frames.len()
    );
    (rows, wb, wm)
}

#[test]
fn synthetic_runs_match_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let doc = load(&shared, "track_synthetic.json");
    let wh = (
        doc["image_wh"][0].as_u64().unwrap() as u32,
        doc["image_wh"][1].as_u64().unwrap() as u32,
    );
    let runs = doc["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 4);
    for (name, run) in runs {
        let inputs = run
            .get("inputs")
            .unwrap_or(&doc["inputs"])
            .as_array()
            .unwrap();
        let frames = run["frames"].as_array().unwrap();
        assert_eq!(inputs.len(), frames.len());
        let want_rows: usize = frames
            .iter()
            .map(|f| f["tracker_output"].as_array().unwrap().len())
            .sum();
        let (rows, _, _) = replay(name, tracker_of(&run["config"], None), inputs, frames, wh);
        assert_eq!(rows, want_rows, "{name}");
    }
}

#[test]
fn quirks_run_edge_cases() {
    let Some(shared) = common::shared() else {
        return;
    };
    let doc = load(&shared, "track_synthetic.json");
    let run = &doc["runs"]["quirks_bytetrack_buffer2"];
    let mut t = tracker_of(&run["config"], None);
    let img = image::RgbImage::new(1, 1);
    let mut out = vec![];
    let mut results = vec![];
    let mut removed = vec![];
    for inp in run["inputs"].as_array().unwrap() {
        let o = t.update(&dets(inp), Some(&img));
        results.push(FrameResult::from_tracks(&o, t.has_unconfirmed(), 1280, 720));
        removed.push(t.removed_this_frame().to_vec());
        out.push(o);
    }
    let ids = |f: usize| out[f - 1].iter().map(|o| o.track_id).collect::<Vec<_>>();
    assert_eq!(ids(1), [1], "first-frame track output at once");
    assert!(
        removed[3].contains(&1) && t_lost_state_frame4(&run["frames"][3]),
        "expired at frame 4"
    );
    assert_eq!(ids(5), [1], "expired track revived with its id");
    assert_eq!(out[5][0].score, 0.15, "low detection alone keeps the track");
    assert_eq!(results[7], FrameResult::Raw, "frame 8: raw detections kept");
    assert_eq!(
        results[8],
        FrameResult::Empty,
        "frame 9: emptied for an unconfirmed track"
    );
    assert_eq!(ids(10), [2]);
    assert_eq!(
        out[9][0].idx, 1,
        "zero-size box ignored, idx into the full list"
    );
}

/// The fixture's frame-4 lost list holds the expired track in state removed.
fn t_lost_state_frame4(fr: &Value) -> bool {
    fr["state"]["lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .eq(["removed"])
}

#[test]
fn expired_tracks_reported_on_two_consecutive_frames() {
    let Some(shared) = common::shared() else {
        return;
    };
    let doc = load(&shared, "track_synthetic.json");
    let run = &doc["runs"]["bytetrack_default"];
    let mut t = tracker_of(&run["config"], None);
    let mut seen: std::collections::HashMap<u64, Vec<usize>> = Default::default();
    for (k, inp) in doc["inputs"].as_array().unwrap().iter().enumerate() {
        t.update(&dets(inp), None);
        for &id in t.removed_this_frame() {
            seen.entry(id).or_default().push(k + 1);
        }
    }
    assert_eq!(
        seen[&5],
        [80, 81],
        "D last matched at 49: removed at 80 and again at 81"
    );
}

#[test]
fn video_botsort_with_replayed_gmc_warps() {
    let Some(shared) = common::shared() else {
        return;
    };
    let doc = load(&shared, "track_video.json");
    let warps: Vec<Warp> = doc["gmc_warps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let r = |i: usize| -> [f64; 3] { std::array::from_fn(|j| w[i][j].as_f64().unwrap()) };
            [r(0), r(1)]
        })
        .collect();
    assert_eq!(warps.len(), 100);
    let wh = (
        doc["image_wh"][0].as_u64().unwrap() as u32,
        doc["image_wh"][1].as_u64().unwrap() as u32,
    );
    let t = tracker_of(&doc["config"], Some(Box::new(ReplayGmc::new(warps))));
    let frames = doc["frames"].as_array().unwrap();
    let (rows, _, _) = replay(
        "video botsort",
        t,
        doc["inputs"].as_array().unwrap(),
        frames,
        wh,
    );
    assert_eq!(rows, 97);
}

#[test]
fn reset_restarts_ids_like_a_fresh_tracker() {
    let Some(shared) = common::shared() else {
        return;
    };
    let doc = load(&shared, "track_synthetic.json");
    let inputs: Vec<_> = doc["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .take(30)
        .map(dets)
        .collect();
    for name in ["bytetrack.yaml", "botsort.yaml", "tracktrack.yaml"] {
        let cfg = TrackerConfig::load(name)
            .unwrap()
            .with_overrides(&[("gmc_method".into(), "none".into())])
            .unwrap();
        let mut t = Tracker::new(&cfg).unwrap();
        let first: Vec<_> = inputs.iter().map(|d| t.update(d, None)).collect();
        t.reset();
        let again: Vec<_> = inputs.iter().map(|d| t.update(d, None)).collect();
        assert_eq!(first, again, "{name}");
        assert!(
            first[0].iter().any(|o| o.track_id == 1),
            "{name}: ids start at 1"
        );
    }
}

#[test]
fn reid_trackers_build_and_a_missing_reid_model_file_is_named() {
    for name in ["botsort.yaml", "tracktrack.yaml"] {
        let cfg = TrackerConfig::load(name)
            .unwrap()
            .with_overrides(&[("with_reid".into(), "True".into())]);
        assert!(
            Tracker::new(&cfg.unwrap()).is_ok(),
            "{name}: ReID with model: auto"
        );
        let cfg = TrackerConfig::load(name)
            .unwrap()
            .with_overrides(&[
                ("with_reid".into(), "True".into()),
                ("model".into(), "no-such-osnet.pt".into()),
            ])
            .unwrap();
        let mut t = ryolo::engine::predict::track::Tracking::new(cfg);
        let e = t.start(1, false).expect_err("a missing ReID model file");
        assert!(format!("{e:#}").contains("no-such-osnet.pt"), "{e:#}");
    }
}
