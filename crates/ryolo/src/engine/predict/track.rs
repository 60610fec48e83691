//! `yolo track` and the tracking library API (spec/track.md §1–2, §7; spec/track-tracktrack.md §2):
//! predict's per-frame path, then Ultralytics' track callback on every result — the tracker gets the
//! frame's NMS detections (original pixels, row order = `idx`) and the frame, the result becomes
//! `result[idx]` with the tracks' boxes, scores, classes and ids.

use super::mode;
use super::pose::Keypoints;
use super::{Masks, Prediction, Predictor};
use crate::cfg::Args;
use crate::data::video::VideoInfo;
use crate::task::TaskKind;
use crate::track::config::TrackerType;
use crate::track::tracktrack::recovered_detections;
use crate::track::{self as trk, FrameResult, Tracker, TrackerConfig};
use anyhow::{anyhow, bail, Context, Result};

/// NMS IoU of TrackTrack's loose second pass (its recovered "dets_del" detections).
pub const LOOSE_NMS_IOU: f32 = 0.95;

/// Default detector confidence of track mode (`model.track`: 0.1 unless given).
pub const TRACK_CONF: f64 = 0.1;

/// One stream slot: its tracker and the source path it saw last.
struct Slot {
    /// The slot's tracker.
    tracker: Tracker,
    /// Path of the last result (a new path resets the tracker unless `persist`).
    path: Option<String>,
}

/// The trackers of a track run (one per stream slot) with Ultralytics' `persist` semantics.
pub struct Tracking {
    /// The tracker configuration (`tracker=`).
    cfg: TrackerConfig,
    /// One tracker per stream slot.
    slots: Vec<Slot>,
    /// `persist` of the current call: keep trackers across calls and across source paths.
    persist: bool,
    /// The ReID encoder of `model: <file>` (loaded by the first [`Tracking::start`]).
    encoder: Option<super::reid::ReidEncoder>,
}

impl Tracking {
    /// Tracking with `cfg`; trackers are built by [`Tracking::start`].
    pub fn new(cfg: TrackerConfig) -> Self {
        Self {
            cfg,
            slots: Vec::new(),
            persist: false,
            encoder: None,
        }
    }

    /// Tracking with `tracker=` (a built-in name such as `tracktrack.yaml` or a YAML path).
    pub fn load(tracker: &str) -> Result<Self> {
        Ok(Self::new(TrackerConfig::load(tracker)?))
    }

    /// The tracker configuration.
    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// Whether a model of `task` can be tracked (detect, segment, pose, obb); the error says why not.
    pub fn check_task(task: TaskKind) -> Result<()> {
        match task {
            TaskKind::Detect | TaskKind::Segment | TaskKind::Pose | TaskKind::Obb => Ok(()),
            t => bail!("Task '{t}' doesn't support 'mode=track', valid tasks are detect, segment, pose, obb"),
        }
    }

    /// The loose NMS IoU the predictor must also run for this tracker and task: TrackTrack on detect
    /// and obb models (segment and pose results cannot carry recovered rows, as Ultralytics).
    pub fn loose_iou(&self, task: TaskKind) -> Option<f32> {
        (self.cfg.tracker_type == TrackerType::TrackTrack
            && matches!(task, TaskKind::Detect | TaskKind::Obb))
        .then_some(LOOSE_NMS_IOU)
    }

    /// Whether the predictor must take per-detection appearance features for this tracker and task:
    /// BoT-SORT / TrackTrack with `with_reid` and `model: auto` on detect, segment, pose and obb models.
    pub fn reid_feats(&self, task: TaskKind) -> bool {
        self.needs_detector_features() && task != TaskKind::Classify
    }

    /// Whether the detector must run on libtorch (not the CPU ONNX Runtime path) so that `model: auto`
    /// features can be taken from its head inputs.
    pub fn needs_detector_features(&self) -> bool {
        let c = &self.cfg;
        c.with_reid && c.model == "auto" && c.tracker_type != TrackerType::ByteTrack
    }

    /// A fresh tracker of the configuration, with its own GMC state.
    fn build(&self) -> Result<Tracker> {
        Tracker::new(&self.cfg)
    }

    /// Ultralytics' `on_predict_start`: at the start of every predict call, `slots` trackers (the
    /// number of streams; 1 for files). `persist`: existing trackers are kept (missing slots added);
    /// otherwise all are rebuilt.
    pub fn start(&mut self, slots: usize, persist: bool) -> Result<()> {
        let slots = slots.max(1);
        let c = &self.cfg;
        let file = c.with_reid && c.model != "auto" && c.tracker_type != TrackerType::ByteTrack;
        if file && self.encoder.is_none() {
            self.encoder = Some(super::reid::ReidEncoder::load(&c.model, "")?);
        }
        self.persist = persist;
        if persist && self.slots.len() >= slots {
            return Ok(());
        }
        if !persist {
            self.slots.clear();
        }
        for s in &mut self.slots {
            s.path = None;
        }
        while self.slots.len() < slots {
            let tracker = self.build()?;
            self.slots.push(Slot {
                tracker,
                path: None,
            });
        }
        Ok(())
    }

    /// The tracker of `slot`, if started.
    pub fn tracker(&self, slot: usize) -> Option<&Tracker> {
        self.slots.get(slot).map(|s| &s.tracker)
    }

    /// Ultralytics' `on_predict_postprocess_end` for one result: resets the slot's tracker when
    /// `path` changed (unless `persist`), updates it with `pred`'s detections (and TrackTrack's
    /// recovered ones from `pred.loose`) and the frame, then rewrites `pred` as [`FrameResult`] says:
    /// tracked rows with ids, the raw detections, or nothing.
    pub fn update(
        &mut self,
        slot: usize,
        path: &str,
        frame: &image::RgbImage,
        pred: &mut Prediction,
    ) -> Result<()> {
        if pred.probs.is_some() {
            bail!("track: only detect, segment, pose and obb results can be tracked");
        }
        let persist = self.persist;
        let s = self.slots.get_mut(slot).ok_or_else(|| {
            anyhow!("track: no tracker for stream slot {slot} (call start first)")
        })?;
        if !persist && s.path.as_deref() != Some(path) {
            s.tracker.reset();
            s.path = Some(path.to_string());
        }
        let mut feats = pred.feats.take();
        let reid = self.cfg.with_reid && self.cfg.tracker_type != TrackerType::ByteTrack;
        if let Some(enc) = &self.encoder {
            // `model: <file>`: every row's crop through the ReID model (rows without a crop get none).
            let xywh: Vec<[f64; 4]> = match &pred.obb {
                Some(o) => o
                    .boxes
                    .iter()
                    .map(|b| std::array::from_fn(|k| f64::from(b.xywhr[k])))
                    .collect(),
                None => pred
                    .detections
                    .iter()
                    .map(|d| trk::strack::xyxy_to_xywh(d.xyxy).map(f64::from))
                    .collect(),
            };
            let e = enc.encode(frame, &xywh)?;
            let dim = e.iter().flatten().map(Vec::len).next().unwrap_or(0);
            // A row without a crop: a zero feature, which the trackers ignore (zero norm) as Ultralytics' None.
            feats = Some(
                e.into_iter()
                    .map(|f| f.unwrap_or_else(|| vec![0.0; dim]))
                    .collect(),
            );
        } else if reid && self.cfg.model == "auto" && feats.is_none() {
            warn_no_feats();
        }
        if pred.obb.is_some() {
            return update_obb(&mut s.tracker, frame, pred, feats.as_deref());
        }
        let as_track = |d: &crate::ops::Detection| trk::Detection {
            xyxy: d.xyxy,
            conf: d.conf,
            cls: d.cls as f32,
        };
        let dets: Vec<trk::Detection> = pred.detections.iter().map(as_track).collect();
        let recovered = match pred.loose.take() {
            Some(l) => recovered_detections(&l.iter().map(as_track).collect::<Vec<_>>(), &dets),
            None => Vec::new(),
        };
        let out = s
            .tracker
            .update_full(&dets, Some(frame), &recovered, feats.as_deref());
        let (h, w) = pred.letterbox.orig;
        match FrameResult::from_tracks(&out, s.tracker.has_unconfirmed(), w as u32, h as u32) {
            FrameResult::Raw => {}
            FrameResult::Empty => select(pred, &[]),
            FrameResult::Tracks(t) => {
                let n = pred.detections.len();
                // NumPy's `result[idx]`: −1 (a recovered detection) picks the last row.
                let rows: Vec<&trk::TrackOutput> = if n == 0 {
                    Vec::new()
                } else {
                    t.iter().collect()
                };
                let idx: Vec<usize> = rows
                    .iter()
                    .map(|t| {
                        if t.idx < 0 {
                            n - 1
                        } else {
                            (t.idx as usize).min(n - 1)
                        }
                    })
                    .collect();
                select(pred, &idx);
                for (d, t) in pred.detections.iter_mut().zip(&rows) {
                    d.xyxy = t.xyxy;
                    d.conf = t.score;
                    d.cls = t.cls.max(0.0).round() as usize;
                }
                pred.track_ids = Some(rows.iter().map(|t| t.track_id).collect());
            }
        }
        Ok(())
    }
}

/// The track callback on an OBB result: rotated detections in, `result[idx]` with the tracks' `xywha`,
/// scores, classes and ids out (not clipped, as `Results.obb`).
fn update_obb(
    tracker: &mut Tracker,
    frame: &image::RgbImage,
    pred: &mut Prediction,
    feats: Option<&[Vec<f32>]>,
) -> Result<()> {
    let Some(o) = pred.obb.as_mut() else {
        return Ok(());
    };
    let as_track = |d: &crate::ops::obb::RotatedDetection| trk::ObbDetection {
        xywhr: d.xywhr,
        conf: d.conf,
        cls: d.cls as f32,
    };
    let dets: Vec<trk::ObbDetection> = o.boxes.iter().map(as_track).collect();
    let recovered = match o.loose.take() {
        Some(l) => recovered_obb(&l.iter().map(as_track).collect::<Vec<_>>(), &dets),
        None => Vec::new(),
    };
    let out = tracker.update_obb(&dets, Some(frame), &recovered, feats);
    let (h, w) = pred.letterbox.orig;
    match FrameResult::from_tracks(&out, tracker.has_unconfirmed(), w as u32, h as u32) {
        FrameResult::Raw => {}
        FrameResult::Empty => select(pred, &[]),
        FrameResult::Tracks(t) => {
            let n = dets.len();
            let rows: Vec<&trk::TrackOutput> = if n == 0 {
                Vec::new()
            } else {
                t.iter().collect()
            };
            // NumPy's `result[idx]`: −1 (a recovered detection) picks the last row.
            let idx: Vec<usize> = rows
                .iter()
                .map(|t| {
                    if t.idx < 0 {
                        n - 1
                    } else {
                        (t.idx as usize).min(n - 1)
                    }
                })
                .collect();
            select(pred, &idx);
            if let Some(o) = pred.obb.as_mut() {
                for ((b, d), t) in o
                    .boxes
                    .iter_mut()
                    .zip(pred.detections.iter_mut())
                    .zip(&rows)
                {
                    let r = t.xywha.unwrap_or(b.xywhr);
                    b.xywhr = r;
                    b.conf = t.score;
                    b.cls = t.cls.max(0.0).round() as usize;
                    d.xyxy = crate::ops::obb::xywhr_to_xyxy(&r);
                    d.conf = b.conf;
                    d.cls = b.cls;
                }
            }
            pred.track_ids = Some(rows.iter().map(|t| t.track_id).collect());
        }
    }
    Ok(())
}

/// ReID `model: auto` without features from the predictor (an ONNX model, test-time augmentation, or
/// results built by hand): said once, the tracker then uses motion only.
fn warn_no_feats() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "WARNING tracker with_reid: True, model: auto: no appearance features came with the detections \
             (they are taken from a libtorch model's head inputs, without augment); tracking \
             without appearance"
        );
    });
}

/// `compute_dets_del` for an OBB result: loose-NMS rotated boxes whose best IoU of axis-aligned bounds
/// (`OBB.xyxy`) with the tight boxes is below 0.97 (none when either set is empty).
pub fn recovered_obb(
    loose: &[trk::ObbDetection],
    tight: &[trk::ObbDetection],
) -> Vec<trk::ObbDetection> {
    let bounds = |d: &trk::ObbDetection| crate::ops::obb::xywhr_to_xyxy(&d.xywhr);
    let l: Vec<trk::Detection> = loose
        .iter()
        .map(|d| trk::Detection {
            xyxy: bounds(d),
            conf: d.conf,
            cls: d.cls,
        })
        .collect();
    let t: Vec<trk::Detection> = tight
        .iter()
        .map(|d| trk::Detection {
            xyxy: bounds(d),
            conf: d.conf,
            cls: d.cls,
        })
        .collect();
    if l.is_empty() || t.is_empty() {
        return Vec::new();
    }
    loose
        .iter()
        .zip(&l)
        .filter(|(_, a)| {
            t.iter()
                .map(|b| crate::track::matching::iou_f32(&a.xyxy, &b.xyxy))
                .fold(f32::MIN, f32::max)
                < 0.97f32
        })
        .map(|(d, _)| *d)
        .collect()
}

/// Keeps rows `idx` of a result (in that order), with their masks, keypoints and rotated boxes
/// (`result[idx]`).
pub fn select(pred: &mut Prediction, idx: &[usize]) {
    let dets = std::mem::take(&mut pred.detections);
    pred.detections = idx.iter().filter_map(|&i| dets.get(i).cloned()).collect();
    if let Some(m) = pred.masks.as_mut() {
        let data: Vec<u8> = idx
            .iter()
            .flat_map(|&i| m.mask(i).unwrap_or(&[]).iter().copied())
            .collect();
        m.data = data;
    }
    if let Some(k) = pred.keypoints.as_mut() {
        let data = std::mem::take(&mut k.data);
        k.data = idx.iter().filter_map(|&i| data.get(i).cloned()).collect();
    }
    if let Some(o) = pred.obb.as_mut() {
        let boxes = std::mem::take(&mut o.boxes);
        o.boxes = idx.iter().filter_map(|&i| boxes.get(i).copied()).collect();
    }
    pred.track_ids = None;
}

/// `save_txt` rows of a tracked result: each row as predict writes it, then the track id as the
/// last column (`cls cx cy w h [conf] id`; segment/pose rows put polygon/keypoints before it).
pub fn rows_with_ids(pred: &Prediction, ids: &[u64], wh: (f64, f64), save_conf: bool) -> String {
    if let Some(o) = &pred.obb {
        // OBB: `cls x1 y1 … x4 y4 [conf] id`.
        return super::obb::txt_lines_with_ids(o, ids, save_conf);
    }
    let mut text = String::new();
    for (i, (d, id)) in pred.detections.iter().zip(ids).enumerate() {
        let masks = pred.masks.as_ref().map(|m| Masks {
            data: m.mask(i).unwrap_or(&[]).to_vec(),
            shape: m.shape,
            orig: m.orig,
        });
        let kpts = pred.keypoints.as_ref().map(|k| Keypoints {
            data: k.data.get(i).cloned().into_iter().collect(),
            kpt_shape: k.kpt_shape,
            orig: k.orig,
        });
        let row = super::save::txt_rows(
            std::slice::from_ref(d),
            masks.as_ref(),
            kpts.as_ref(),
            None,
            wh,
            save_conf,
        );
        // A segment row whose polygon has fewer than 3 points is skipped, as predict does.
        if let Some(line) = row.lines().next() {
            text.push_str(&format!("{line} {id}\n"));
        }
    }
    text
}

impl Predictor {
    /// Tracks one frame (one Ultralytics `model.track(frame, persist=…)` call): predicts it and
    /// runs slot 0 of `t`. With `persist` the tracker carries over from the previous call; without
    /// it every call starts fresh (ids from 1).
    pub fn track(
        &mut self,
        img: &image::RgbImage,
        t: &mut Tracking,
        persist: bool,
    ) -> Result<Prediction> {
        Tracking::check_task(self.model().task())?;
        self.loose_iou = t.loose_iou(self.model().task());
        self.reid_feats = t.reid_feats(self.model().task());
        t.start(1, persist)?;
        let mut pred = self.predict(img)?;
        t.update(0, "image0", img, &mut pred)?;
        Ok(pred)
    }

    /// Tracks the frames of a video file, webcam or stream (one `model.track(source, stream=True,
    /// persist=…)` call): an iterator of `(frame number, frame, tracked prediction)`.
    pub fn track_video<'a>(
        &'a mut self,
        source: &str,
        vid_stride: usize,
        stream_buffer: bool,
        t: &'a mut Tracking,
        persist: bool,
    ) -> Result<TrackedVideo<'a>> {
        Tracking::check_task(self.model().task())?;
        self.loose_iou = t.loose_iou(self.model().task());
        self.reid_feats = t.reid_feats(self.model().task());
        t.start(1, persist)?;
        let p: &'a Predictor = self;
        Ok(TrackedVideo {
            frames: p.predict_video(source, vid_stride, stream_buffer)?,
            tracking: t,
            path: source.to_string(),
        })
    }
}

/// Tracked predictions over a video's frames (see [`Predictor::track_video`]).
pub struct TrackedVideo<'a> {
    /// The per-frame predictions.
    frames: super::VideoPredictions<'a>,
    /// The trackers.
    tracking: &'a mut Tracking,
    /// The source (the tracker resets when it changes, unless `persist`).
    path: String,
}

impl TrackedVideo<'_> {
    /// The video's size, rate and estimated frame count.
    pub fn info(&self) -> &VideoInfo {
        self.frames.info()
    }
}

impl Iterator for TrackedVideo<'_> {
    type Item = Result<(usize, image::RgbImage, Prediction)>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.frames.next()?;
        Some(r.and_then(|(k, frame, mut pred)| {
            self.tracking.update(0, &self.path, &frame, &mut pred)?;
            Ok((k, frame, pred))
        }))
    }
}

/// Track mode's own CLI words (not `default.yaml` keys; Ultralytics has `persist` only in Python).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackFlags {
    /// `persist`: keep one tracker across the source's files (and across library calls).
    pub persist: bool,
    /// `save_mot`: write MOTChallenge results `mot/<sequence>.txt` in the run folder.
    pub save_mot: bool,
}

/// Takes `persist` and `save_mot` (bare words or `=True|False`) out of CLI arguments.
pub fn take_track_flags(argv: &mut Vec<String>) -> Result<TrackFlags> {
    let mut flags = TrackFlags::default();
    let mut err = None;
    argv.retain(|a| {
        let a2 = a.trim_start_matches('-');
        let (key, val) = match a2.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (a2, None),
        };
        let slot = match key {
            "persist" => &mut flags.persist,
            "save_mot" => &mut flags.save_mot,
            _ => return true,
        };
        match val.map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") | Some("1") => *slot = true,
            Some("false") | Some("0") => *slot = false,
            Some(_) => err = Some(format!("{a}: use {key}=True or {key}=False")),
        }
        false
    });
    match err {
        Some(e) => Err(anyhow!(e)),
        None => Ok(flags),
    }
}

/// MOTChallenge results of a run: per sequence, rows `frame,id,left,top,width,height,conf,-1,-1,-1`.
#[derive(Debug, Default)]
pub struct MotLog {
    /// Sequence name → its rows, in frame order.
    rows: std::collections::BTreeMap<String, String>,
    /// Sequence name → frames seen (image sources number their files 1, 2, … per folder).
    frames: std::collections::HashMap<String, usize>,
}

impl MotLog {
    /// Records one frame of sequence `seq` (`frame`: 1-based; None: the next of the sequence):
    /// the tracked rows only (a result without ids has none).
    pub fn record(&mut self, seq: &str, frame: Option<usize>, pred: &Prediction) {
        let n = self.frames.entry(seq.to_string()).or_insert(0);
        *n = frame.unwrap_or(*n + 1);
        let k = *n;
        let text = self.rows.entry(seq.to_string()).or_default();
        if let Some(ids) = &pred.track_ids {
            for (d, id) in pred.detections.iter().zip(ids) {
                let [x1, y1, x2, y2] = d.xyxy;
                text.push_str(&format!(
                    "{k},{id},{:.2},{:.2},{:.2},{:.2},{:.4},-1,-1,-1\n",
                    x1,
                    y1,
                    x2 - x1,
                    y2 - y1,
                    d.conf
                ));
            }
        }
    }

    /// Writes `dir/mot/<seq>.txt` for every sequence seen; returns the folder (None: nothing seen).
    pub fn write(&self, dir: &std::path::Path) -> Result<Option<std::path::PathBuf>> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        let out = dir.join("mot");
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        for (seq, text) in &self.rows {
            let f = out.join(format!("{seq}.txt"));
            std::fs::write(&f, text).with_context(|| format!("writing {}", f.display()))?;
        }
        Ok(Some(out))
    }
}

/// A track run as the CLI drives it: the trackers, `persist` and the optional MOT log.
pub struct TrackRun<'t> {
    /// The trackers.
    pub tracking: &'t mut Tracking,
    /// Keep trackers across files.
    pub persist: bool,
    /// MOTChallenge results (`save_mot`).
    pub mot: Option<MotLog>,
}

impl TrackRun<'_> {
    /// Tracks one result of source file `path` (`video`: the video's stem and frame number; None:
    /// an image, whose sequence is its folder) and records it in the MOT log.
    pub fn frame(
        &mut self,
        path: &std::path::Path,
        video: Option<(&str, usize)>,
        img: &image::RgbImage,
        pred: &mut Prediction,
    ) -> Result<()> {
        self.tracking
            .update(0, &path.to_string_lossy(), img, pred)?;
        if let Some(m) = self.mot.as_mut() {
            match video {
                Some((stem, k)) => m.record(stem, Some(k), pred),
                None => {
                    // MOT layout `SEQ/img1/000001.jpg`: the sequence is SEQ; else the folder.
                    let dir = path.parent();
                    let seq = match dir.and_then(|d| d.file_name()) {
                        Some(n) if n == "img1" => dir.and_then(|d| d.parent()),
                        _ => dir,
                    };
                    let seq = seq
                        .and_then(|d| d.file_name())
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_else(|| "images".into());
                    m.record(&seq, None, pred);
                }
            }
        }
        Ok(())
    }

    /// Writes the MOT log (if any) under the run folder `dir`.
    pub fn finish_mot(&mut self, dir: &std::path::Path) -> Result<Option<std::path::PathBuf>> {
        match self.mot.take() {
            Some(m) => m.write(dir),
            None => Ok(None),
        }
    }
}

/// Runs `yolo track`: predict's sources and outputs (run folder `…/track`), detector `conf` 0.1
/// unless given, the `tracker=` YAML, one tracker per stream slot; `persist` keeps one tracker
/// across the files of the source (otherwise each new file resets it); `save_mot` writes
/// MOTChallenge results.
pub fn run(args: &Args, flags: TrackFlags) -> Result<()> {
    let mut a = args.clone();
    if a.f64("conf").is_none() {
        a.0.insert("conf".into(), serde_yaml::Value::from(TRACK_CONF));
    }
    let name = a
        .str("tracker")
        .unwrap_or_else(|| "tracktrack.yaml".to_string());
    let mut t = Tracking::load(&name)?;
    if flags.save_mot && !flags.persist {
        let source = a.str("source").unwrap_or_default();
        let images = !crate::data::video::is_stream(&source)
            && super::expand_source(&source)
                .map(|f| f.iter().any(|f| !crate::data::video::is_video(f)))
                .unwrap_or(false);
        if images {
            eprintln!(
                "WARNING save_mot=True on image files without persist: every image starts a fresh tracker \
                 (as Ultralytics); add persist to track across the images of a sequence"
            );
        }
    }
    mode::run_with(
        &a,
        Some(TrackRun {
            tracking: &mut t,
            persist: flags.persist,
            mot: flags.save_mot.then(MotLog::default),
        }),
    )
}
