//! Track mode through the library: `Tracking` with `persist`, masks kept with their tracked rows,
//! and `Predictor::track` / `Predictor::track_video` agreeing frame for frame.

mod common;
use ryolo::engine::predict::track::Tracking;
use ryolo::engine::predict::{save_labels_and_crops, Masks, Prediction, Predictor, SaveOptions};
use ryolo::ops::{Detection, LetterboxInfo};
use ryolo::track::TrackerConfig;
use std::collections::HashMap;
use std::path::Path;

/// A detect result of a `w × h` image with these `(xyxy, conf, cls)` rows.
fn prediction(rows: &[([f32; 4], f32, usize)], w: usize, h: usize) -> Prediction {
    Prediction {
        detections: rows
            .iter()
            .map(|&(xyxy, conf, cls)| Detection { xyxy, conf, cls })
            .collect(),
        masks: None,
        probs: None,
        keypoints: None,
        obb: None,
        track_ids: None,
        loose: None,
        feats: None,
        letterbox: LetterboxInfo {
            orig: (h, w),
            shape: (h, w),
            ratio: 1.0,
            pad: (0, 0),
        },
        speed: Default::default(),
    }
}

/// Box → track id of a tracked result (boxes rounded to whole pixels).
fn ids_by_box(p: &Prediction) -> HashMap<[i32; 4], u64> {
    let ids = p.track_ids.as_ref().expect("a tracked result");
    p.detections
        .iter()
        .zip(ids)
        .map(|(d, &id)| (d.xyxy.map(|v| v.round() as i32), id))
        .collect()
}

const ROWS: [([f32; 4], f32, usize); 3] = [
    ([10.0, 10.0, 60.0, 90.0], 0.9, 0),
    ([200.0, 40.0, 260.0, 120.0], 0.85, 1),
    ([400.0, 300.0, 470.0, 380.0], 0.8, 0),
];

#[test]
fn persist_keeps_ids_and_a_fresh_start_renumbers() {
    let img = image::RgbImage::new(640, 480);
    let forward = || prediction(&ROWS, 640, 480);
    let reversed = || {
        let mut r = ROWS.to_vec();
        r.reverse();
        prediction(&r, 640, 480)
    };
    let mut t = Tracking::new(TrackerConfig::load("bytetrack.yaml").unwrap());
    t.start(1, false).unwrap();
    let mut a = forward();
    t.update(0, "v.mp4", &img, &mut a).unwrap();
    // Frame 1: every detection starts a visible track, ids in row order.
    assert_eq!(a.track_ids.as_deref(), Some(&[1, 2, 3][..]));
    let first = ids_by_box(&a);
    // The same detections in another row order, same call (persist or not): ids follow the boxes.
    let mut b = reversed();
    t.update(0, "v.mp4", &img, &mut b).unwrap();
    assert_eq!(ids_by_box(&b), first);
    // A new call with persist: the tracker carries on.
    t.start(1, true).unwrap();
    let mut c = reversed();
    t.update(0, "v.mp4", &img, &mut c).unwrap();
    assert_eq!(ids_by_box(&c), first);
    // A new call without persist: a fresh tracker numbers the reversed rows 1, 2, 3.
    t.start(1, false).unwrap();
    let mut d = reversed();
    t.update(0, "v.mp4", &img, &mut d).unwrap();
    assert_eq!(d.track_ids.as_deref(), Some(&[1, 2, 3][..]));
    assert_ne!(ids_by_box(&d), first);
    // Within a call without persist, a new source path resets the tracker; with persist it does not.
    let mut e = forward();
    t.update(0, "other.mp4", &img, &mut e).unwrap();
    assert_eq!(ids_by_box(&e), first);
    t.start(1, true).unwrap();
    let mut f = reversed();
    t.update(0, "third.mp4", &img, &mut f).unwrap();
    assert_eq!(ids_by_box(&f), first);
}

#[test]
fn tracked_segment_rows_keep_their_masks_and_labels_end_with_the_id() {
    let Some(shared) = common::shared() else {
        return;
    };
    let (w, h) = (640usize, 480usize);
    // Each detection's mask is its own box, at the original size (retina-style).
    let mut pred = prediction(&ROWS, w, h);
    let mut data = Vec::new();
    for (b, _, _) in ROWS {
        for y in 0..h {
            for x in 0..w {
                let inside = (x as f32) >= b[0]
                    && (x as f32) < b[2]
                    && (y as f32) >= b[1]
                    && (y as f32) < b[3];
                data.push(inside as u8);
            }
        }
    }
    pred.masks = Some(Masks {
        data,
        shape: (h, w),
        orig: (h, w),
    });
    // Only the middle row reaches the tracker's high threshold: the result is that row alone.
    for (d, c) in pred.detections.iter_mut().zip([0.2f32, 0.9, 0.2]) {
        d.conf = c;
    }
    let img = image::RgbImage::new(w as u32, h as u32);
    let mut t = Tracking::new(TrackerConfig::load("bytetrack.yaml").unwrap());
    t.start(1, false).unwrap();
    t.update(0, "seg.mp4", &img, &mut pred).unwrap();
    assert_eq!(pred.track_ids.as_deref(), Some(&[1][..]));
    assert_eq!(pred.detections.len(), 1);
    let m = pred.masks.as_ref().unwrap();
    assert_eq!(m.len(), 1);
    // The kept mask is row 1's: its pixels lie inside row 1's box.
    let mask = m.mask(0).unwrap();
    let on: Vec<(usize, usize)> = (0..h * w)
        .filter(|&i| mask[i] == 1)
        .map(|i| (i % w, i / w))
        .collect();
    assert!(
        !on.is_empty()
            && on
                .iter()
                .all(|&(x, y)| (200..260).contains(&x) && (40..120).contains(&y))
    );
    let p = Predictor::load(
        shared
            .join("fixtures/ultralytics/segment/yolo11n-seg_seed0.pt")
            .to_str()
            .unwrap(),
        160,
        tch::Device::Cpu,
    )
    .unwrap();
    let dir = common::tmp("track-seg-labels");
    let o = SaveOptions {
        dir: dir.clone(),
        save: false,
        save_txt: true,
        save_conf: true,
        save_crop: false,
        show_labels: true,
        show_conf: true,
        show_boxes: true,
        line_width: None,
    };
    save_labels_and_crops(&p, "seg_1", &img, &pred, &o).unwrap();
    let text = std::fs::read_to_string(dir.join("labels/seg_1.txt")).unwrap();
    let row: Vec<f64> = text
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    // `cls x1 y1 … xk yk conf id`: the polygon's points, then the conf, then the id.
    assert_eq!(row[0], 1.0);
    assert_eq!(*row.last().unwrap(), 1.0);
    assert!((row[row.len() - 2] - 0.9).abs() < 1e-6, "{text}");
    assert!(
        row.len() >= 3 + 6 && (row.len() - 3).is_multiple_of(2),
        "{text}"
    );
    for xy in row[1..row.len() - 2].chunks(2) {
        assert!(
            (200.0 / 640.0 - 1e-3..=260.0 / 640.0 + 1e-3).contains(&xy[0]),
            "{text}"
        );
        assert!(
            (40.0 / 480.0 - 1e-3..=120.0 / 480.0 + 1e-3).contains(&xy[1]),
            "{text}"
        );
    }
}

/// Frames 55–74 of the car video, re-encoded.
fn clip(shared: &Path, out: &Path) {
    let st = std::process::Command::new(ryolo::data::video::ffmpeg_path())
        .args(["-v", "error", "-y", "-i"])
        .arg(shared.join("datasets/samples/car-detection.mp4"))
        .args([
            "-vf",
            "trim=start_frame=55:end_frame=75,setpts=PTS-STARTPTS",
            "-an",
        ])
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn track_video_equals_per_frame_track_calls_with_persist() {
    let Some(shared) = common::shared() else {
        return;
    };
    let dir = common::tmp("track-lib-video");
    let src = dir.join("clip.mp4");
    clip(&shared, &src);
    let cfg = TrackerConfig::from_yaml_str(
        "tracker_type: bytetrack\ntrack_high_thresh: 0.2\ntrack_low_thresh: 0.05\nnew_track_thresh: 0.2\nfuse_score: False\n",
        "test",
    )
    .unwrap();
    let mut p = Predictor::load(
        shared
            .join("fixtures/ultralytics/bt_yolo11n_best.pt")
            .to_str()
            .unwrap(),
        320,
        tch::Device::Cpu,
    )
    .unwrap();
    p.nms.conf = 0.05;
    // The loose pass TrackTrack asks for: a second NMS at IoU 0.95 keeps every tight box and more.
    let first = ryolo::data::video::VideoReader::open(src.to_str().unwrap(), false)
        .unwrap()
        .nth(10)
        .unwrap()
        .unwrap();
    p.loose_iou = Some(0.95);
    let pr = p.predict(&first).unwrap();
    let loose = pr.loose.as_ref().unwrap();
    assert!(!pr.detections.is_empty() && loose.len() > pr.detections.len());
    assert!(pr.detections.iter().all(|d| loose.contains(d)));
    p.loose_iou = None;
    let mut t = Tracking::new(cfg.clone());
    let video: Vec<(image::RgbImage, Prediction)> = p
        .track_video(src.to_str().unwrap(), 1, false, &mut t, false)
        .unwrap()
        .map(|r| r.map(|(_, f, pred)| (f, pred)).unwrap())
        .collect();
    assert_eq!(video.len(), 20);
    let with_ids = video.iter().filter(|(_, v)| v.track_ids.is_some()).count();
    assert!(with_ids >= 8, "{with_ids} frames with ids");
    // The same frames one call each (Ultralytics' `model.track(frame, persist=True)` loop).
    let mut t2 = Tracking::new(cfg);
    for (k, (frame, v)) in video.iter().enumerate() {
        let one = p.track(frame, &mut t2, true).unwrap();
        assert_eq!(one.track_ids, v.track_ids, "frame {}", k + 1);
        assert_eq!(one.detections, v.detections, "frame {}", k + 1);
    }
}

#[test]
fn tracked_pose_rows_keep_their_keypoints() {
    let mut pred = prediction(&ROWS, 640, 480);
    // Keypoint k of detection i sits at the box's top-left corner plus k pixels.
    pred.keypoints = Some(ryolo::engine::predict::pose::Keypoints {
        data: ROWS
            .iter()
            .map(|(b, _, _)| {
                (0..3)
                    .flat_map(|k| [b[0] + k as f32, b[1] + k as f32, 1.0])
                    .collect()
            })
            .collect(),
        kpt_shape: (3, 3),
        orig: (480, 640),
    });
    let img = image::RgbImage::new(640, 480);
    let mut t = Tracking::new(TrackerConfig::load("bytetrack.yaml").unwrap());
    t.start(1, true).unwrap();
    t.update(0, "pose", &img, &mut pred.clone()).unwrap();
    // Second frame, rows reversed: the tracker's order (ids 1, 2, 3) reorders the keypoints too.
    let mut r = ROWS.to_vec();
    r.reverse();
    let mut second = prediction(&r, 640, 480);
    second.keypoints = pred.keypoints.clone().map(|mut k| {
        k.data.reverse();
        k
    });
    t.update(0, "pose", &img, &mut second).unwrap();
    assert_eq!(second.track_ids.as_deref(), Some(&[1, 2, 3][..]));
    let k = second.keypoints.as_ref().unwrap();
    assert_eq!(k.len(), 3);
    for (d, kp) in second.detections.iter().zip(&k.data) {
        // Each row's keypoints start at its own (filtered) box corner, within a pixel.
        assert!(
            (kp[0] - d.xyxy[0]).abs() < 1.0 && (kp[1] - d.xyxy[1]).abs() < 1.0,
            "{d:?} {kp:?}"
        );
    }
}

#[test]
fn tracktrack_continues_a_track_on_a_recovered_loose_nms_box() {
    let cfg = TrackerConfig::from_yaml_str(
        "tracker_type: tracktrack\ntrack_high_thresh: 0.6\ntrack_low_thresh: 0.25\ntrack_buffer: 30\nmin_track_len: 1\ngmc_method: none\n",
        "test",
    )
    .unwrap();
    let img = image::RgbImage::new(640, 480);
    let a = ([100.0, 100.0, 200.0, 300.0], 0.9, 0);
    let b = ([400.0, 100.0, 500.0, 300.0], 0.9, 0);
    // min_track_len 1: tracks are confirmed at birth, so frame 2 associates them with every bucket.
    let run = |with_loose: bool| {
        let mut t = Tracking::new(cfg.clone());
        t.start(1, false).unwrap();
        let mut first = prediction(&[a, b], 640, 480);
        t.update(0, "v", &img, &mut first).unwrap();
        assert_eq!(first.track_ids.as_deref(), Some(&[1, 2][..]));
        // Frame 2: the tight NMS kept only A; the loose (IoU 0.95) pass still has B.
        let mut second = prediction(&[a], 640, 480);
        if with_loose {
            second.loose = Some(prediction(&[a, b], 640, 480).detections);
        }
        t.update(0, "v", &img, &mut second).unwrap();
        second
    };
    let recovered = run(true);
    assert_eq!(recovered.track_ids.as_deref(), Some(&[1, 2][..]));
    // Track 2 lives on B's recovered box (its row is NumPy's `result[-1]`, the box the Kalman one).
    let bx = recovered.detections[1].xyxy;
    assert!(
        (bx[0] - 400.0).abs() < 1.0 && (bx[2] - 500.0).abs() < 1.0,
        "{bx:?}"
    );
    let plain = run(false);
    assert_eq!(plain.track_ids.as_deref(), Some(&[1][..]));
}
