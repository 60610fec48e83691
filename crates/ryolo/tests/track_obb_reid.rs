//! OBB tracking (ByteTrack, BoT-SORT, TrackTrack) and BoT-SORT ReID against Ultralytics 8.4.190 runs made by
//! `scripts/make_track_obb_reid.py` (`tests/data/track_obb_reid.json`), frame by frame.

mod common;
mod track_util;

use ryolo::track::config::TrackerConfig;
use ryolo::track::gmc::{ReplayGmc, Warp};
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
        assert_eq!(
            g.idx,
            w[8].as_f64().unwrap() as i64,
            "{ctx}: idx of id {id}"
        );
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
        FrameResult::Empty => assert!(
            want.is_empty() && !is_track,
            "{ctx}: emptied result expected"
        ),
    }
}

/// Asserts the tracks' angles (the state records them for OBB runs).
fn check_angles(ctx: &str, tracked: &[&STrack], lost: &[&STrack], want: &Value) {
    for (name, got) in [("tracked", tracked), ("lost", lost)] {
        for (g, w) in got.iter().zip(want[name].as_array().unwrap()) {
            let a = g.angle.expect("OBB tracks have an angle");
            let wa = w["angle"].as_f64().unwrap();
            assert!(
                (a - wa).abs() <= 1e-6,
                "{ctx}: angle of id {} {a} vs {wa}",
                g.track_id
            );
            assert_eq!(state_name(g.state), w["state"].as_str().unwrap(), "{ctx}");
        }
    }
}

#[test]
fn obb_runs_match_ultralytics() {
    let fx = fixture();
    let (h, w) = (
        fx["image"][0].as_u64().unwrap() as u32,
        fx["image"][1].as_u64().unwrap() as u32,
    );
    let inputs = fx["obb"]["inputs"].as_array().unwrap();
    let all_feats = fx["obb"]["feats"].as_array().unwrap();
    let blank = image::RgbImage::new(1, 1);
    for (name, run) in fx["obb"]["runs"].as_object().unwrap() {
        if run.get("loose").is_some() {
            continue; // tracktrack_dets_del: its own test
        }
        // A run with recorded warps replays them as its motion compensation (the frame only has to exist).
        let warps: Option<Vec<Warp>> = run.get("warps").map(|ws| {
            ws.as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    std::array::from_fn(|i| std::array::from_fn(|j| w[i][j].as_f64().unwrap()))
                })
                .collect()
        });
        let frame = warps.is_some().then_some(&blank);
        let mut t = match warps {
            Some(w) => {
                let yaml = serde_yaml::to_string(&run["config"]).unwrap();
                let cfg = TrackerConfig::from_yaml_str(&yaml, "fixture config").unwrap();
                Tracker::with_gmc(&cfg, Some(Box::new(ReplayGmc::new(w)))).unwrap()
            }
            None => tracker_of(&run["config"]),
        };
        let reid = run["config"]["with_reid"].as_bool().unwrap_or(false);
        let (mut rows, mut worst) = (0, 0f32);
        for (k, fr) in run["frames"].as_array().unwrap().iter().enumerate() {
            let ctx = format!("{name} frame {}", k + 1);
            let d = obb_dets(&inputs[k]);
            let fe = feats(&all_feats[k]);
            let out = t.update_obb(&d, frame, &[], reid.then_some(&fe[..]));
            worst = worst.max(check_obb_output(&ctx, &out, &fr["tracker_output"]));
            rows += out.len();
            let res = FrameResult::from_tracks(&out, t.has_unconfirmed(), w, h);
            check_obb_result(&ctx, &res, fr, &d);
            if fr.get("state").is_some() {
                let (tr, lo, rm) = t.state();
                check_state(&ctx, &tr, &lo, rm, &fr["state"]);
                check_angles(&ctx, &tr, &lo, &fr["state"]);
            }
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
    let (h, w) = (
        fx["image"][0].as_u64().unwrap() as u32,
        fx["image"][1].as_u64().unwrap() as u32,
    );
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
                            assert!(
                                (g.xyxy[k] - f(&wr[k])).abs() <= BOX_TOL,
                                "{ctx}: {g:?} vs {wr:?}"
                            );
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
        let differs = run["frames"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .any(|(k, fr)| {
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

/// A 6-frame 320×320 video panning across a DOTA image (3 px per frame).
fn obb_clip(shared: &std::path::Path, out: &std::path::Path) {
    let st = std::process::Command::new(ryolo::data::video::ffmpeg_path())
        .args(["-v", "error", "-y", "-loop", "1", "-i"])
        .arg(shared.join("datasets/dota8/images/train/P1053__1024__0___90.jpg"))
        .args([
            "-vf",
            "crop=320:320:200+3*n:300",
            "-frames:v",
            "6",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Tracker settings under the seed-0 model's scores (all ≈ 8.3e-4), without score fusion.
const LOW: &str = "track_high_thresh: 0.0005\ntrack_low_thresh: 0.0001\nnew_track_thresh: 0.0005\nfuse_score: False\ngmc_method: none\n";

/// The seed-0 YOLO11n-obb fixture model (random weights: its boxes are arbitrary but deterministic, every
/// score ≈ 8.3e-4).
fn obb_model(shared: &std::path::Path) -> String {
    shared
        .join("fixtures/ultralytics/obb/yolo11n-obb_seed0.pt")
        .to_string_lossy()
        .to_string()
}

#[test]
fn yolo_obb_track_writes_rotated_rows_with_ids() {
    let Some(shared) = common::shared() else {
        return;
    };
    let dir = common::tmp("track-obb-cli");
    let src = dir.join("clip.mp4");
    obb_clip(&shared, &src);
    let yaml = dir.join("low.yaml");
    std::fs::write(
        &yaml,
        format!("tracker_type: bytetrack\ntrack_buffer: 30\nmatch_thresh: 0.8\n{LOW}"),
    )
    .unwrap();
    let argv: Vec<String> = [
        "obb".to_string(),
        "track".into(),
        format!("model={}", obb_model(&shared)),
        format!("source={}", src.display()),
        "imgsz=320".into(),
        "conf=0.0005".into(),
        format!("tracker={}", yaml.display()),
        "save_txt=True".into(),
        "save_conf=True".into(),
        format!("project={}", dir.display()),
        "name=run".into(),
        "exist_ok=True".into(),
        "device=cpu".into(),
        "verbose=False".into(),
    ]
    .to_vec();
    let cmd = ryolo::cfg::parse_args(&argv).unwrap();
    let args = ryolo::cfg::Args::new(&cmd.overrides);
    let o = ryolo::cfg::with_mode_defaults("track", args.task().unwrap(), &cmd.overrides);
    ryolo::engine::predict::track::run(&ryolo::cfg::Args::new(&o), Default::default()).unwrap();
    let run = dir.join("run");
    let video: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    assert!(!video.is_empty(), "no annotated video in {}", run.display());
    let mut ids_per_frame = Vec::new();
    for k in 1..=6 {
        let f = run.join(format!("labels/clip_{k}.txt"));
        let Ok(text) = std::fs::read_to_string(&f) else {
            ids_per_frame.push(Vec::new());
            continue;
        };
        let mut ids = Vec::new();
        for line in text.lines() {
            // `cls x1 y1 x2 y2 x3 y3 x4 y4 conf id`.
            let v: Vec<&str> = line.split(' ').collect();
            assert_eq!(v.len(), 11, "{}: {line}", f.display());
            let id: u64 = v[10]
                .parse()
                .unwrap_or_else(|_| panic!("{}: {line}", f.display()));
            for x in &v[1..9] {
                let x: f64 = x.parse().unwrap();
                assert!(x.is_finite(), "{line}");
            }
            ids.push(id);
        }
        ids_per_frame.push(ids);
    }
    let n_rows: usize = ids_per_frame.iter().map(Vec::len).sum();
    assert!(n_rows > 0, "no tracked rows written: {ids_per_frame:?}");
    // Ids are unique within a frame and a later frame keeps ids of the earlier ones.
    for ids in &ids_per_frame {
        let mut u = ids.clone();
        u.sort_unstable();
        u.dedup();
        assert_eq!(u.len(), ids.len(), "{ids_per_frame:?}");
    }
    let (a, b) = (&ids_per_frame[4], &ids_per_frame[5]);
    assert!(
        b.iter().any(|i| a.contains(i)),
        "no id carried from frame 5 to 6: {ids_per_frame:?}"
    );
    eprintln!("yolo obb track: {n_rows} rows over 6 frames, ids {ids_per_frame:?}");
}

#[test]
fn obb_track_library_path_keeps_rotated_boxes_and_ids() {
    let Some(shared) = common::shared() else {
        return;
    };
    let dir = common::tmp("track-obb-lib");
    let src = dir.join("clip.mp4");
    obb_clip(&shared, &src);
    let mut p = ryolo::engine::predict::Predictor::load(&obb_model(&shared), 320, tch::Device::Cpu)
        .unwrap();
    p.nms.conf = 0.0005;
    // BoT-SORT with the detector's own features; TrackTrack (loose rotated NMS) with a classify model as
    // ReID encoder on the crops.
    let cls = shared.join("weights/yolo11n-cls-mnist160/best.pt");
    let cls = cls.to_string_lossy().to_string();
    for (tracker, model) in [("botsort.yaml", "auto"), ("tracktrack.yaml", cls.as_str())] {
        let mut over: Vec<(String, String)> = LOW
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        over.push(("with_reid".into(), "True".into()));
        over.push(("model".into(), model.into()));
        let cfg = TrackerConfig::load(tracker)
            .unwrap()
            .with_overrides(&over)
            .unwrap();
        let mut t = ryolo::engine::predict::track::Tracking::new(cfg);
        assert_eq!(t.reid_feats(p.model().task()), model == "auto", "{tracker}");
        let frames: Vec<_> = p
            .track_video(src.to_str().unwrap(), 1, false, &mut t, false)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(frames.len(), 6, "{tracker}");
        let mut tracked = 0;
        for (k, (_, _, pred)) in frames.iter().enumerate() {
            let o = pred.obb.as_ref().expect("OBB results stay OBB");
            assert_eq!(o.boxes.len(), pred.detections.len(), "{tracker} frame {k}");
            assert!(
                o.loose.is_none(),
                "the loose boxes are consumed by the tracker"
            );
            if let Some(ids) = &pred.track_ids {
                tracked += 1;
                assert_eq!(ids.len(), o.boxes.len(), "{tracker} frame {k}");
                for (b, d) in o.boxes.iter().zip(&pred.detections) {
                    // Long-edge form from the tracker; detections hold the rotated box's bounds.
                    assert!(b.xywhr[2] >= b.xywhr[3], "{tracker}: {b:?}");
                    assert_eq!(d.xyxy, ryolo::ops::obb::xywhr_to_xyxy(&b.xywhr));
                }
            }
        }
        assert!(tracked >= 3, "{tracker}: only {tracked} frames with ids");
    }
}

#[test]
fn model_auto_features_match_ultralytics_results_feats() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = fixture();
    let nf = &fx["native_feats"];
    let model = shared.join(nf["model"].as_str().unwrap());
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(nf["source"].as_str().unwrap());
    let img = image::open(src).unwrap().to_rgb8();
    let imgsz = nf["imgsz"].as_u64().unwrap() as usize;
    let mut p =
        ryolo::engine::predict::Predictor::load(model.to_str().unwrap(), imgsz, tch::Device::Cpu)
            .unwrap();
    p.nms.conf = nf["conf"].as_f64().unwrap() as f32;
    assert!(
        p.predict(&img).unwrap().feats.is_none(),
        "plain predict takes no features"
    );
    p.reid_feats = true;
    let pred = p.predict(&img).unwrap();
    let boxes = nf["boxes"].as_array().unwrap();
    let want = nf["feats"].as_array().unwrap();
    assert_eq!(pred.detections.len(), boxes.len());
    let got = pred.feats.as_ref().expect("features with reid_feats");
    assert_eq!(got.len(), want.len());
    let (mut worst, mut box_worst) = (0f32, 0f32);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let b = &boxes[i];
        for k in 0..4 {
            box_worst = box_worst.max((pred.detections[i].xyxy[k] - f(&b[k])).abs());
        }
        let w: Vec<f32> = w.as_array().unwrap().iter().map(f).collect();
        assert_eq!(g.len(), w.len(), "feature size");
        for (a, b) in g.iter().zip(&w) {
            let d = (a - b).abs() / b.abs().max(1.0);
            worst = worst.max(d);
            assert!(d <= 1e-3, "row {i}: {a} vs {b}");
        }
    }
    assert!(box_worst <= 0.05, "boxes differ by {box_worst} px");
    eprintln!(
        "model auto features: {} rows x {} values, worst relative difference {worst:.2e} (boxes {box_worst:.2e} px)",
        got.len(),
        got[0].len()
    );
}

/// A result of a `w × h` image holding the fixture's `Results.obb` / `Results.boxes` rows (ids when 8 / 7
/// columns), as the track callback leaves it.
fn result_of(
    rows: &Value,
    obb: bool,
    (h, w): (usize, usize),
) -> ryolo::engine::predict::Prediction {
    use ryolo::ops::obb::{xywhr_to_xyxy, RotatedDetection};
    let rows = rows.as_array().unwrap();
    let tracked = rows
        .first()
        .is_some_and(|r| r.as_array().unwrap().len() == if obb { 8 } else { 7 });
    let (ci, ki) = match (obb, tracked) {
        (true, true) => (6, 7),
        (true, false) => (5, 6),
        (false, true) => (5, 6),
        (false, false) => (4, 5),
    };
    let mut ids = Vec::new();
    let mut rot = Vec::new();
    let mut dets = Vec::new();
    for r in rows {
        let (conf, cls) = (f(&r[ci]), r[ki].as_f64().unwrap() as usize);
        let xyxy = if obb {
            let xywhr = [f(&r[0]), f(&r[1]), f(&r[2]), f(&r[3]), f(&r[4])];
            rot.push(RotatedDetection { xywhr, conf, cls });
            xywhr_to_xyxy(&xywhr)
        } else {
            [f(&r[0]), f(&r[1]), f(&r[2]), f(&r[3])]
        };
        dets.push(ryolo::ops::Detection { xyxy, conf, cls });
        if tracked {
            ids.push(r[ci - 1].as_f64().unwrap() as u64);
        }
    }
    ryolo::engine::predict::Prediction {
        detections: dets,
        masks: None,
        probs: None,
        keypoints: None,
        obb: obb.then_some(ryolo::engine::predict::obb::Obbs {
            boxes: rot,
            orig: (h, w),
            loose: None,
        }),
        track_ids: tracked.then_some(ids),
        loose: None,
        feats: None,
        letterbox: ryolo::ops::LetterboxInfo {
            orig: (h, w),
            shape: (h, w),
            ratio: 1.0,
            pad: (0, 0),
        },
        speed: Default::default(),
    }
}

#[test]
fn tracked_save_txt_lines_equal_ultralytics() {
    let fx = fixture();
    let (h, w) = (
        fx["image"][0].as_u64().unwrap() as usize,
        fx["image"][1].as_u64().unwrap() as usize,
    );
    let (mut lines, mut same, mut last_digit) = (0, 0, 0);
    for (sec, obb) in [("obb", true), ("detect", false)] {
        for (name, run) in fx[sec]["runs"].as_object().unwrap() {
            for fr in run["frames"].as_array().unwrap() {
                let Some(want) = fr["txt"].as_array() else {
                    continue;
                };
                let pred = result_of(&fr["result"], obb, (h, w));
                let got = match (&pred.track_ids, &pred.obb) {
                    (Some(ids), _) => ryolo::engine::predict::track::rows_with_ids(
                        &pred,
                        ids,
                        (w as f64, h as f64),
                        true,
                    ),
                    (None, Some(o)) => ryolo::engine::predict::obb::txt_lines(o, true),
                    (None, None) => ryolo::ops::yolo_txt(
                        pred.detections.iter().map(|d| (d.xyxy, d.conf, d.cls)),
                        w as f64,
                        h as f64,
                        true,
                    ),
                };
                let got: Vec<&str> = got.lines().collect();
                let want: Vec<&str> = want.iter().map(|l| l.as_str().unwrap()).collect();
                let ctx = format!("{sec}/{name} frame {}", fr["frame"]);
                assert_eq!(got.len(), want.len(), "{ctx}");
                for (g, w) in got.iter().zip(&want) {
                    if g == w {
                        same += 1;
                        continue;
                    }
                    // torch's float32 cos/sin are not always correctly rounded (cos(0.71) is 1 ulp off), so a
                    // corner may differ in the last %g digit; class, conf and id must still be identical.
                    let (gv, wv): (Vec<&str>, Vec<&str>) =
                        (g.split(' ').collect(), w.split(' ').collect());
                    assert_eq!(gv.len(), wv.len(), "{ctx}: {g} vs {w}");
                    let n = gv.len();
                    assert_eq!(
                        (gv[0], &gv[n - 2..]),
                        (wv[0], &wv[n - 2..]),
                        "{ctx}: {g} vs {w}"
                    );
                    for (a, b) in gv[1..n - 2].iter().zip(&wv[1..n - 2]) {
                        let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
                        // One unit in the 6th significant digit (`%g`), plus float noise.
                        let unit = 10f64.powf(b.abs().max(1e-6).log10().floor() - 5.0);
                        assert!((a - b).abs() <= unit * 1.001, "{ctx}: {g} vs {w}");
                    }
                    last_digit += 1;
                }
                lines += want.len();
            }
        }
    }
    assert!(lines > 500, "{lines} lines compared");
    eprintln!(
        "save_txt: {lines} lines, {same} byte-equal to Ultralytics', {last_digit} differing in a corner's last digit"
    );
}

#[test]
fn reid_model_file_embeddings_match_ultralytics_reid() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = fixture();
    let r = &fx["reid_encoder"];
    let model = shared.join(r["model"].as_str().unwrap());
    let enc =
        ryolo::engine::predict::reid::ReidEncoder::load(model.to_str().unwrap(), "cpu").unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(r["source"].as_str().unwrap());
    let img = image::open(src).unwrap().to_rgb8();
    let xywh: Vec<[f64; 4]> = r["xywh"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| std::array::from_fn(|k| b[k].as_f64().unwrap()))
        .collect();
    let got = enc.encode(&img, &xywh).unwrap();
    let want = r["feats"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    let mut worst = 0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        match (g, w.as_array()) {
            (None, None) => {}
            (Some(g), Some(w)) => {
                assert_eq!(g.len(), w.len(), "crop {i}: embedding size");
                for (a, b) in g.iter().zip(w) {
                    let d = (a - f(b)).abs();
                    worst = worst.max(d);
                    assert!(d <= 1e-4, "crop {i}: {a} vs {b}");
                }
            }
            _ => panic!("crop {i}: {g:?} vs {w}"),
        }
    }
    eprintln!(
        "ReID model file: {} crops, worst embedding difference {worst:.2e}",
        got.len()
    );
}

#[test]
fn tracktrack_obb_continues_on_recovered_loose_nms_boxes() {
    let fx = fixture();
    let (h, w) = (
        fx["image"][0].as_u64().unwrap() as u32,
        fx["image"][1].as_u64().unwrap() as u32,
    );
    let inputs = fx["obb"]["inputs"].as_array().unwrap();
    let run = &fx["obb"]["runs"]["tracktrack_dets_del"];
    let mut t = tracker_of(&run["config"]);
    let (mut recovered_rows, mut used) = (0, 0);
    for (k, fr) in run["frames"].as_array().unwrap().iter().enumerate() {
        let ctx = format!("tracktrack_dets_del frame {}", k + 1);
        let tight = obb_dets(run["tight"].get((k + 1).to_string()).unwrap_or(&inputs[k]));
        let loose = obb_dets(&run["loose"][k]);
        let rec = ryolo::engine::predict::track::recovered_obb(&loose, &tight);
        let want: Vec<ObbDetection> = fr["dets_del"]
            .as_array()
            .map(|_| obb_dets(&fr["dets_del"]))
            .unwrap_or_default();
        assert_eq!(rec, want, "{ctx}: dets_del");
        recovered_rows += rec.len();
        let out = t.update_obb(&tight, None, &rec, None);
        check_obb_output(&ctx, &out, &fr["tracker_output"]);
        used += out.iter().filter(|o| o.idx < 0).count();
        let res = FrameResult::from_tracks(&out, t.has_unconfirmed(), w, h);
        check_obb_result(&ctx, &res, fr, &tight);
    }
    assert!(used >= 4, "{used} rows on recovered boxes");
    eprintln!("tracktrack OBB dets_del: {recovered_rows} recovered rows equal, {used} output rows on them");
}

#[test]
fn segment_and_pose_results_carry_model_auto_features() {
    let Some(shared) = common::shared() else {
        return;
    };
    let img = image::open(shared.join("datasets/samples/bus.jpg"))
        .unwrap()
        .to_rgb8();
    for m in ["segment/yolo11n-seg_seed0.pt", "pose/yolo11n-pose_seed0.pt"] {
        let path = shared.join("fixtures/ultralytics").join(m);
        let mut p =
            ryolo::engine::predict::Predictor::load(path.to_str().unwrap(), 320, tch::Device::Cpu)
                .unwrap();
        p.nms.conf = 1e-9; // random weights: every score is tiny
        p.reid_feats = true;
        let pred = p.predict(&img).unwrap();
        let feats = pred.feats.as_ref().expect("features");
        assert!(!pred.detections.is_empty(), "{m}: no detections to check");
        assert_eq!(feats.len(), pred.detections.len(), "{m}");
        // YOLO11n's smallest head input has 64 channels: one value per channel group.
        assert!(
            feats
                .iter()
                .all(|f| f.len() == 64 && f.iter().all(|v| v.is_finite())),
            "{m}"
        );
    }
}
