//! `yolo track` end to end: a short clip of the car video through the fixture detector, the
//! annotated video, id-bearing labels and JSON records, `persist` across files, refusals.

mod common;
use common::{shared, tmp, yolo};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Frames 55–79 of `car-detection.mp4` (where the car enters) re-encoded to `out`.
fn clip(shared: &Path, out: &Path) {
    let st = std::process::Command::new(ryolo::data::video::ffmpeg_path())
        .args(["-v", "error", "-y", "-i"])
        .arg(shared.join("datasets/samples/car-detection.mp4"))
        .args([
            "-vf",
            "trim=start_frame=55:end_frame=80,setpts=PTS-STARTPTS",
            "-an",
        ])
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg could not cut the clip");
}

/// A ByteTrack YAML loose enough for the (brain-tumour) fixture detector's scores on cars.
fn loose_tracker(dir: &Path) -> PathBuf {
    let f = dir.join("my.yaml");
    std::fs::write(
        &f,
        "tracker_type: bytetrack\ntrack_high_thresh: 0.2\ntrack_low_thresh: 0.05\n\
         new_track_thresh: 0.2\ntrack_buffer: 30\nmatch_thresh: 0.8\nfuse_score: False\n",
    )
    .unwrap();
    f
}

/// IoU of two `cx cy w h` boxes.
fn iou(a: &[f64], b: &[f64]) -> f64 {
    let (ax0, ay0, ax1, ay1) = (
        a[0] - a[2] / 2.0,
        a[1] - a[3] / 2.0,
        a[0] + a[2] / 2.0,
        a[1] + a[3] / 2.0,
    );
    let (bx0, by0, bx1, by1) = (
        b[0] - b[2] / 2.0,
        b[1] - b[3] / 2.0,
        b[0] + b[2] / 2.0,
        b[1] + b[3] / 2.0,
    );
    let w = (ax1.min(bx1) - ax0.max(bx0)).max(0.0);
    let h = (ay1.min(by1) - ay0.max(by0)).max(0.0);
    let i = w * h;
    i / (a[2] * a[3] + b[2] * b[3] - i)
}

#[test]
fn track_writes_an_annotated_video_and_id_labels_consistent_across_frames() {
    let Some(shared) = shared() else { return };
    let d = tmp("track-video");
    let src = d.join("clip.mp4");
    clip(&shared, &src);
    let tracker = loose_tracker(&d);
    let model = shared.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    let (ok, out) = yolo(
        &[
            "track",
            &format!("model={}", model.display()),
            &format!("source={}", src.display()),
            &format!("tracker={}", tracker.display()),
            "imgsz=320",
            "conf=0.05",
            "save_txt=True",
            "save_conf=True",
            "save_mot",
        ],
        &d,
    );
    assert!(ok, "{out}");
    assert!(out.contains("video 1/1 (frame 1/25)"), "{out}");
    assert!(
        !out.contains("is ignored"),
        "tracker= must be honoured:\n{out}"
    );
    let run = d.join("runs/detect/track");
    assert!(out.contains("Results saved to"), "{out}");
    let back = ryolo::data::video::VideoReader::open(run.join("clip.avi").to_str().unwrap(), false)
        .unwrap()
        .count();
    assert_eq!(back, 25);
    // frame -> rows `cls cx cy w h conf [id]`.
    let mut frames: BTreeMap<usize, Vec<Vec<f64>>> = BTreeMap::new();
    for e in std::fs::read_dir(run.join("labels")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        let k: usize = name
            .strip_prefix("clip_")
            .and_then(|s| s.strip_suffix(".txt"))
            .unwrap()
            .parse()
            .unwrap();
        let text = std::fs::read_to_string(run.join("labels").join(&name)).unwrap();
        let rows: Vec<Vec<f64>> = text
            .lines()
            .map(|l| l.split(' ').map(|v| v.parse().unwrap()).collect())
            .collect();
        // Tracked results have the id as a 7th column; untracked frames keep predict's 6.
        let width = rows[0].len();
        assert!(width == 6 || width == 7, "{name}: {text}");
        assert!(rows.iter().all(|r| r.len() == width), "{name}: {text}");
        frames.insert(k, rows);
    }
    let tracked: BTreeMap<usize, Vec<Vec<f64>>> = frames
        .into_iter()
        .filter(|(_, r)| r[0].len() == 7)
        .collect();
    assert!(tracked.len() >= 10, "{} tracked frames", tracked.len());
    let mut spans: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (k, rows) in &tracked {
        let mut ids: Vec<u64> = rows.iter().map(|r| r[6] as u64).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), rows.len(), "frame {k}: an id twice");
        for r in rows {
            assert_eq!(r[6].fract(), 0.0);
            spans.entry(r[6] as u64).or_default().push(*k);
            // The same id on the next frame is the same object: its box overlaps.
            if let Some(next) = tracked.get(&(k + 1)) {
                if let Some(n) = next.iter().find(|n| n[6] == r[6]) {
                    let o = iou(&r[1..5], &n[1..5]);
                    assert!(o > 0.5, "id {} frame {k}->{}: IoU {o}", r[6], k + 1);
                }
            }
        }
    }
    // save_mot: `frame,id,left,top,width,height,conf,-1,-1,-1`, the same tracks as the labels.
    let mot = std::fs::read_to_string(run.join("mot/clip.txt")).unwrap();
    let (w, h) = (768.0, 432.0);
    let mut mot_rows = 0;
    for line in mot.lines() {
        let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        assert_eq!(v.len(), 10, "{line}");
        assert_eq!(&v[7..], &[-1.0, -1.0, -1.0], "{line}");
        let rows = &tracked[&(v[0] as usize)];
        let r = rows
            .iter()
            .find(|r| r[6] == v[1])
            .unwrap_or_else(|| panic!("{line}"));
        let want = [
            (r[1] - r[3] / 2.0) * w,
            (r[2] - r[4] / 2.0) * h,
            r[3] * w,
            r[4] * h,
        ];
        for (a, b) in v[2..6].iter().zip(want) {
            assert!((a - b).abs() < 0.05, "{line} vs {r:?}");
        }
        assert!((v[6] - r[5]).abs() < 1e-3, "{line}");
        mot_rows += 1;
    }
    assert_eq!(mot_rows, tracked.values().map(Vec::len).sum::<usize>());
    assert!(spans.len() >= 2, "{spans:?}");
    // Ids are handed out from 1 and one object keeps its id over many frames.
    assert_eq!(spans.keys().next(), Some(&1));
    assert!(spans.values().any(|f| f.len() >= 10), "{spans:?}");
}

/// `format=json` records of a track run: frame number and the track ids of each record.
fn json_ids(out: &str) -> Vec<(String, usize, Vec<Option<u64>>)> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let ids = v["detections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["track_id"].as_u64())
                .collect();
            (
                v["image"].as_str().unwrap().to_string(),
                v["frame"].as_u64().unwrap() as usize,
                ids,
            )
        })
        .collect()
}

#[test]
fn persist_keeps_one_tracker_across_the_files_of_a_source() {
    let Some(shared) = shared() else { return };
    let d = tmp("track-persist");
    let videos = d.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    clip(&shared, &videos.join("a.mp4"));
    std::fs::copy(videos.join("a.mp4"), videos.join("b.mp4")).unwrap();
    let tracker = loose_tracker(&d);
    let model = shared.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    let base = [
        "track".to_string(),
        format!("model={}", model.display()),
        format!("source={}", videos.display()),
        format!("tracker={}", tracker.display()),
        "imgsz=320".into(),
        "conf=0.05".into(),
        "format=json".into(),
        "save=False".into(),
    ];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.iter().map(String::as_str).collect();
        a.extend(extra);
        let (ok, out) = yolo(&a, &d);
        assert!(ok, "{out}");
        json_ids(&out)
    };
    let fresh = run(&[]);
    let kept = run(&["persist"]);
    assert_eq!(fresh.len(), 50);
    assert_eq!(kept.len(), 50);
    let ids_of = |recs: &[(String, usize, Vec<Option<u64>>)], file: &str| -> Vec<u64> {
        recs.iter()
            .filter(|r| r.0.ends_with(file))
            .flat_map(|r| r.2.iter().flatten().copied())
            .collect()
    };
    // The first file is the same either way.
    assert_eq!(ids_of(&fresh, "a.mp4"), ids_of(&kept, "a.mp4"));
    let a_max = ids_of(&fresh, "a.mp4").into_iter().max().unwrap();
    // Without persist the second file starts a fresh tracker: the same ids as the first file.
    assert_eq!(ids_of(&fresh, "b.mp4"), ids_of(&fresh, "a.mp4"));
    // With persist the tracker carries on: new ids continue after the first file's.
    let b_kept = ids_of(&kept, "b.mp4");
    assert!(!b_kept.is_empty());
    assert!(b_kept.iter().all(|&i| i > a_max), "{b_kept:?} vs {a_max}");
}

#[test]
fn track_defaults_and_refusals() {
    let Some(shared) = shared() else { return };
    let d = tmp("track-refuse");
    let bus = shared.join("datasets/samples/bus.jpg");
    let model = shared.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    // Default tracker: tracktrack.yaml with its sparseOptFlow GMC, implemented: no GMC warning.
    let (ok, out) = yolo(
        &[
            "track",
            &format!("model={}", model.display()),
            &format!("source={}", bus.display()),
        ],
        &d,
    );
    assert!(ok, "{out}");
    assert!(!out.contains("gmc_method"), "{out}");
    assert!(d.join("runs/detect/track/bus.jpg").exists(), "{out}");
    let (ok, out) = yolo(
        &[
            "track",
            &format!("model={}", model.display()),
            &format!("source={}", bus.display()),
            "tracker=nosuch.yaml",
        ],
        &d,
    );
    assert!(!ok && out.contains("nosuch.yaml"), "{out}");
    let (ok, out) = yolo(
        &[
            "track",
            "model=yolo11n-cls.yaml",
            &format!("source={}", bus.display()),
        ],
        &d,
    );
    assert!(!ok && out.contains("doesn't support 'mode=track'"), "{out}");
    let (ok, out) = yolo(
        &[
            "track",
            "model=yolo11n-obb.yaml",
            &format!("source={}", bus.display()),
        ],
        &d,
    );
    // OBB models track (rotated boxes), in their own task folder.
    assert!(ok, "{out}");
    assert!(d.join("runs/obb/track/bus.jpg").exists(), "{out}");
    let (ok, out) = yolo(
        &[
            "track",
            &format!("model={}", model.display()),
            &format!("source={}", bus.display()),
            "persist=maybe",
        ],
        &d,
    );
    assert!(!ok && out.contains("persist=maybe"), "{out}");
}
