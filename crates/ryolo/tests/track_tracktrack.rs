//! TrackTrack against Ultralytics 8.4.190's `track_tracktrack.json`, frame by frame.

mod common;
mod track_util;

use ryolo::track::config::TrackerConfig;
use ryolo::track::gmc::{Gmc, ReplayGmc, Warp};
use ryolo::track::tracktrack::{recovered_detections, AssocRecord, Recovered};
use ryolo::track::{FrameResult, Tracker};
use serde_json::Value;
use track_util::*;

/// The tracker a fixture run's `config` describes.
fn tracker_of(config: &Value, gmc: Option<Box<dyn Gmc>>) -> Tracker {
    let yaml = serde_yaml::to_string(config).unwrap();
    let cfg = TrackerConfig::from_yaml_str(&yaml, "fixture config").unwrap();
    Tracker::with_gmc(&cfg, gmc).unwrap()
}

/// The `dets_del` rows `[cx, cy, w, h, conf, cls]` of a frame (null → none).
fn recovered(v: &Value) -> Vec<Recovered> {
    v.as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| Recovered {
                    xywh: [f(&r[0]), f(&r[1]), f(&r[2]), f(&r[3])],
                    conf: f(&r[4]),
                    cls: f(&r[5]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts the association calls (stage, rows, costs within the fixture's 1e-4 rounding, matches).
fn check_assoc(ctx: &str, got: &[AssocRecord], want: &Value) -> usize {
    let want: Vec<&Value> = want
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["stage"] != "tai")
        .collect();
    assert_eq!(got.len(), want.len(), "{ctx}: association calls");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.stage, w["stage"].as_str().unwrap(), "{ctx}");
        let rows: Vec<u64> = w["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(g.rows, rows, "{ctx}: {} rows", g.stage);
        let wc = w["cost"].as_array().unwrap();
        assert_eq!(g.cost.rows, wc.len(), "{ctx}");
        for (i, r) in wc.iter().enumerate() {
            for (j, v) in r.as_array().unwrap().iter().enumerate() {
                let d = (f64::from(g.cost.get(i, j)) - v.as_f64().unwrap()).abs();
                assert!(
                    d <= 5.1e-5,
                    "{ctx}: {} cost[{i}][{j}] {} vs {v}",
                    g.stage,
                    g.cost.get(i, j)
                );
            }
        }
        let m: Vec<(u64, usize)> = w["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap() as usize))
            .collect();
        assert_eq!(g.matches, m, "{ctx}: {} matches", g.stage);
    }
    got.iter().map(|g| g.cost.data.len()).sum()
}

/// Runs one fixture run (with per-frame ReID features when given), comparing every frame; returns the
/// output row count.
fn replay(
    name: &str,
    mut t: Tracker,
    inputs: &[Value],
    feats: Option<&Vec<Value>>,
    frames: &[Value],
    wh: (u32, u32),
) -> usize {
    let img = image::RgbImage::new(1, 1);
    let (mut rows, mut wb, mut wm, mut costs) = (0, 0f32, 0f64, 0usize);
    for (k, (inp, fr)) in inputs.iter().zip(frames).enumerate() {
        let ctx = format!("{name} frame {}", k + 1);
        let d = dets(inp);
        let rec = recovered(fr.get("dets_del").unwrap_or(&Value::Null));
        let fe: Option<Vec<Vec<f32>>> = feats.map(|fs| {
            fs[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_array().unwrap().iter().map(f).collect())
                .collect()
        });
        let out = t.update_full(&d, Some(&img), &rec, fe.as_deref());
        if let (Tracker::TrackTrack(tt), Some(want)) = (&t, fr.get("assoc")) {
            if let Some(log) = tt.assoc_log.as_deref() {
                costs += check_assoc(&ctx, log, want);
            }
        }
        rows += out.len();
        wb = wb.max(check_output(&ctx, &out, &fr["tracker_output"]));
        let res = FrameResult::from_tracks(&out, t.has_unconfirmed(), wh.0, wh.1);
        check_result(&ctx, &res, fr, &d);
        let (tr, lo, removed) = t.state();
        wm = wm.max(check_state(&ctx, &tr, &lo, removed, &fr["state"]));
    }
    eprintln!(
        "{name}: {} frames, {rows} rows, worst box diff {wb:.2e} px, worst mean diff {wm:.2e}, {costs} association costs equal",
        frames.len()
    );
    rows
}

#[test]
fn tracktrack_runs_match_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let doc = load(&shared, "track_tracktrack.json");
    let wh = (
        doc["image_wh"][0].as_u64().unwrap() as u32,
        doc["image_wh"][1].as_u64().unwrap() as u32,
    );
    let mut done = 0;
    for (name, run) in doc["runs"].as_object().unwrap() {
        if name == "video_replay_default" {
            continue;
        }
        let feats = run.get("feats").map(|v| v.as_array().unwrap());
        let inputs = run
            .get("inputs")
            .unwrap_or(&doc["inputs"])
            .as_array()
            .unwrap();
        let frames = run["frames"].as_array().unwrap();
        let want: usize = frames
            .iter()
            .map(|f| f["tracker_output"].as_array().unwrap().len())
            .sum();
        // Blank frames: the fixture's sparseOptFlow found no corners, identity every frame.
        let gmc: Box<dyn Gmc> = Box::new(ReplayGmc::new(vec![]));
        let mut t = tracker_of(&run["config"], Some(gmc));
        if let Tracker::TrackTrack(tt) = &mut t {
            tt.assoc_log = Some(vec![]);
        }
        assert_eq!(replay(name, t, inputs, feats, frames, wh), want, "{name}");
        done += 1;
    }
    assert_eq!(done, 6);
}

#[test]
fn tracktrack_video_with_replayed_gmc_warps() {
    let Some(shared) = common::shared() else {
        return;
    };
    let vid = load(&shared, "track_video.json");
    let doc = load(&shared, "track_tracktrack.json");
    let run = &doc["runs"]["video_replay_default"];
    let warps: Vec<Warp> = vid["gmc_warps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let r = |i: usize| -> [f64; 3] { std::array::from_fn(|j| w[i][j].as_f64().unwrap()) };
            [r(0), r(1)]
        })
        .collect();
    let wh = (
        run["image_wh"][0].as_u64().unwrap() as u32,
        run["image_wh"][1].as_u64().unwrap() as u32,
    );
    let t = tracker_of(&run["config"], Some(Box::new(ReplayGmc::new(warps))));
    let frames = run["frames"].as_array().unwrap();
    assert_eq!(
        replay(
            "tracktrack video",
            t,
            vid["inputs"].as_array().unwrap(),
            None,
            frames,
            wh
        ),
        93
    );
}

#[test]
fn recovered_detections_match_compute_dets_del() {
    let Some(shared) = common::shared() else {
        return;
    };
    let doc = load(&shared, "track_tracktrack.json");
    let run = &doc["runs"]["tracktrack_dets_del"];
    let (mut frames_with, mut total) = (0, 0);
    for (k, (tight, fr)) in run["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(run["frames"].as_array().unwrap())
        .enumerate()
    {
        let loose = run["loose"].get((k + 1).to_string()).unwrap_or(tight);
        let got = recovered_detections(&dets(loose), &dets(tight));
        let want = recovered(&fr["dets_del"]);
        assert_eq!(got.len(), want.len(), "frame {}", k + 1);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.conf, g.cls), (w.conf, w.cls), "frame {}", k + 1);
            for i in 0..4 {
                assert!(
                    (g.xywh[i] - w.xywh[i]).abs() <= 1e-3,
                    "frame {}: {g:?} vs {w:?}",
                    k + 1
                );
            }
        }
        frames_with += usize::from(!want.is_empty());
        total += want.len();
    }
    eprintln!("dets_del: {total} recovered rows on {frames_with} frames, all equal");
    assert!(total > 0);
}

#[test]
fn quirks_relaxed_rebind_order_and_tai() {
    let Some(shared) = common::shared() else {
        return;
    };
    let doc = load(&shared, "track_tracktrack.json");
    let run = &doc["runs"]["quirks_relaxed_rebind"];
    let mut t = tracker_of(&run["config"], None);
    let mut out = vec![];
    for inp in run["inputs"].as_array().unwrap() {
        let o: Vec<u64> = t
            .update(&dets(inp), None)
            .iter()
            .map(|o| o.track_id)
            .collect();
        let listed: Vec<u64> = t.state().0.iter().map(|s| s.track_id).collect();
        out.push((o, listed));
    }
    assert_eq!(
        out[4],
        (vec![1], vec![3, 1]),
        "frame 5: lost id 1 re-bound by the relaxed pass, id 3 born first"
    );
    assert_eq!(
        out[6].0,
        vec![1, 3],
        "frame 7: id 3 confirmed on its third detection"
    );
}
