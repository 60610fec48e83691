//! `yolo predict`: every source kind (images in batches, videos, webcams and streams frame by
//! frame), one console line and optional JSON record per image or frame, and what was asked saved.

use super::track::{TrackRun, Tracking};
use super::{annotate, expand_source, load_image, save_labels_and_crops, save_prediction};
use super::{Prediction, Predictor, SaveOptions, Speed};
use crate::cfg::{self, Args};
use crate::data::video::{is_live, is_stream, is_video, VideoWriter};
use crate::engine::backend::Backend;
use crate::ops::NmsConfig;
use crate::task::TaskKind;
use anyhow::{anyhow, Result};
use std::path::{Path, PathBuf};

/// How the run reports: human lines (stdout, or stderr under `format=json`) and JSON records.
struct Reporter<'p> {
    p: &'p Predictor,
    json: bool,
    total: Speed,
    count: usize,
    last_shape: (usize, usize),
}

impl Reporter<'_> {
    /// A human line: stdout, or stderr when stdout carries JSON.
    fn say(&self, line: &str) {
        if self.json {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    }

    /// One image or frame: timing totals, the JSON record and the console line.
    fn image(
        &mut self,
        what: &str,
        f: &Path,
        frame: Option<usize>,
        img: &image::RgbImage,
        pred: &Prediction,
    ) {
        self.total.add(pred.speed);
        self.count += 1;
        self.last_shape = pred.letterbox.shape;
        if self.json {
            println!("{}", self.record(f, frame, img, pred));
        }
        self.say(&self.p.line(what, pred));
    }

    /// The `format=json` record of one image or frame.
    fn record(
        &self,
        f: &Path,
        frame: Option<usize>,
        img: &image::RgbImage,
        pred: &Prediction,
    ) -> serde_json::Value {
        let (w, h) = (img.width() as f32, img.height() as f32);
        // Segment: each detection's polygon in original-image pixels (`Masks.xy`).
        let polys = pred.masks.as_ref().map(|m| m.xy());
        let dets: Vec<serde_json::Value> = pred
            .detections
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut v = serde_json::json!({"cls": d.cls, "name": self.p.name(d.cls), "conf": d.conf, "xyxy": d.xyxy, "xywh": d.xywh(), "xywhn": d.xywhn(w, h)});
                if let Some(p) = &polys {
                    v["segment"] = serde_json::json!(p.get(i));
                }
                if let Some(id) = pred.track_ids.as_ref().and_then(|t| t.get(i)) {
                    v["track_id"] = serde_json::json!(id);
                }
                v
            })
            .collect();
        let s = pred.speed;
        let mut rec = serde_json::json!({"image": f.display().to_string(), "width": img.width(), "height": img.height(), "detections": dets, "speed_ms": {"preprocess": s.preprocess, "inference": s.inference, "postprocess": s.postprocess}});
        if let Some(p) = &pred.probs {
            // Classify: the top-5 classes, descending, instead of detections.
            let top5: Vec<serde_json::Value> = p
                .top5_items()
                .into_iter()
                .map(
                    |(cls, name, conf)| serde_json::json!({"cls": cls, "name": name, "conf": conf}),
                )
                .collect();
            if let Some(o) = rec.as_object_mut() {
                o.remove("detections");
            }
            rec["top5"] = serde_json::json!(top5);
        }
        if let Some(n) = frame {
            rec["frame"] = serde_json::json!(n);
        }
        rec
    }
}

/// The predictor of a run: model, NMS settings, fp16 and test-time augmentation as asked; and the
/// arguments with the checkpoint's imgsz adopted and the model's task set.
pub fn predictor(args: &Args, model: &str) -> Result<(Predictor, Args)> {
    let (backend, mut a) = Backend::load_for(args, model)?;
    // The run folder follows the model's task (runs/segment/predict for a segment model).
    let task = backend.as_ref().task();
    a.0.insert("task".into(), serde_yaml::Value::from(task.to_string()));
    let nms = NmsConfig {
        conf: a.f64("conf").unwrap_or(cfg::mode_defaults::PREDICT_CONF) as f32,
        iou: a.num("iou")? as f32,
        max_det: a.int("max_det")?.max(1) as usize,
        multi_label: false,
        agnostic: a.bool("agnostic_nms"),
        classes: a.classes()?,
    };
    let mut p = Predictor::with_backend(backend, a.imgsz()?, nms);
    p.nchw = !a.on("channels_last");
    if matches!(a.get("quantize").as_i64(), Some(16)) {
        if p.model().device().is_cuda() {
            p.half = true;
        } else {
            eprintln!("WARNING half precision needs CUDA; predicting in fp32");
        }
    }
    let segment = task == TaskKind::Segment;
    if task == TaskKind::Classify {
        warn_classify_ignored(&a);
    }
    if a.bool("augment") {
        if matches!(&p.model, Backend::Onnx(m) if m.exported.is_none()) {
            eprintln!("WARNING augment=True needs a .pt/.safetensors model; ignored for ONNX");
        } else {
            // A segment model warns at its first batch and predicts without TTA.
            p.augment = true;
        }
    }
    if a.bool("retina_masks") {
        if segment {
            p.retina_masks = true;
        } else if task != TaskKind::Classify {
            eprintln!("WARNING retina_masks=True applies to segment models; ignored for this detection model");
        }
    }
    Ok((p, a))
}

/// Detection arguments that a classify model ignores (as Ultralytics, where they are silently
/// irrelevant); named in one warning when set to a non-default value.
const CLASSIFY_IGNORED: &[&str] = &[
    "conf",
    "iou",
    "classes",
    "agnostic_nms",
    "max_det",
    "retina_masks",
    "show_boxes",
    "show_labels",
    "show_conf",
    "line_width",
    "save_conf",
];

/// Warns once about the [`CLASSIFY_IGNORED`] arguments set, and about `save_crop`.
fn warn_classify_ignored(a: &Args) {
    let d = cfg::defaults();
    let set: Vec<&str> = CLASSIFY_IGNORED
        .iter()
        .copied()
        .filter(|k| d.get(*k).is_some_and(|v| v != a.get(k)))
        .collect();
    if !set.is_empty() {
        eprintln!(
            "WARNING {}: not used by classify models; ignored",
            set.join(", ")
        );
    }
    if a.bool("save_crop") {
        eprintln!("WARNING save_crop=True does not apply to classify models (no boxes); no crops are saved");
    }
}

/// What predict (or track, `mode`) saves, from the arguments.
pub fn save_options(a: &Args, mode: &str) -> SaveOptions {
    SaveOptions {
        dir: cfg::save_dir(a, mode),
        save: a.on("save"),
        save_txt: a.bool("save_txt"),
        save_conf: a.bool("save_conf"),
        save_crop: a.bool("save_crop"),
        show_labels: a.on("show_labels"),
        show_conf: a.on("show_conf"),
        show_boxes: a.on("show_boxes"),
        line_width: a.i64("line_width").map(|v| v.max(1) as u32),
    }
}

/// Runs `yolo predict` with merged arguments (predict's own default batch is 1).
pub fn run(args: &Args) -> Result<()> {
    run_with(args, None)
}

/// Predict, or track mode when `track` holds the trackers: every result goes through
/// [`TrackRun::frame`] before it is reported and saved.
pub(super) fn run_with(args: &Args, mut track: Option<TrackRun>) -> Result<()> {
    let mode = if track.is_some() { "track" } else { "predict" };
    let model = args
        .str("model")
        .ok_or_else(|| anyhow!("{mode} needs model=<.pt, .safetensors, .yaml or .onnx>"))?;
    let source = args.str("source").ok_or_else(|| {
        anyhow!("{mode} needs source=<image, video, folder, glob, .txt list, webcam index or URL>")
    })?;
    let (mut p, a) = match track.as_ref() {
        // ReID `model: auto` reads the detector's head inputs: keep it on libtorch.
        Some(t) if t.tracking.needs_detector_features() => {
            crate::engine::ortpath::scoped(crate::engine::ortpath::Engine::Torch, || {
                predictor(args, &model)
            })?
        }
        _ => predictor(args, &model)?,
    };
    if let Some(t) = track.as_mut() {
        let task = p.model().task();
        Tracking::check_task(task)?;
        p.loose_iou = t.tracking.loose_iou(task);
        p.reid_feats = t.tracking.reid_feats(task);
        // One tracker per stream slot: a source holds one stream here.
        t.tracking.start(1, t.persist)?;
    }
    let p = p;
    let mut rep = Reporter {
        p: &p,
        json: a.str("format").as_deref() == Some("json"),
        total: Speed::default(),
        count: 0,
        last_shape: (0, 0),
    };
    rep.say(&p.model().describe());
    let streaming = is_stream(&source);
    let files = if streaming {
        vec![PathBuf::from(&source)]
    } else {
        expand_source(&source)?
    };
    let opts = save_options(&a, mode);
    if opts.save || opts.save_txt || opts.save_crop {
        // Made before any image is run (as Ultralytics does): an output folder that cannot be
        // created fails at once, naming it, even when no image ends up with a detection.
        crate::util::fsio::create_dir_all(&opts.dir)?;
    }
    let batch = a.int("batch")?.max(1) as usize;
    let n = files.len();
    let mut pending: Vec<(usize, &PathBuf, image::RgbImage)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if streaming || is_video(f) {
            flush(&p, &mut pending, n, &opts, &mut rep, &mut track)?;
            video(&p, &a, f, (i, n), streaming, &opts, &mut rep, &mut track)?;
            continue;
        }
        match load_image(f) {
            Ok(img) => pending.push((i, f, img)),
            Err(e) => eprintln!("WARNING skipping {}: {e:#}", f.display()),
        }
        if pending.len() >= batch {
            flush(&p, &mut pending, n, &opts, &mut rep, &mut track)?;
        }
    }
    flush(&p, &mut pending, n, &opts, &mut rep, &mut track)?;
    let k = rep.count.max(1) as f64;
    rep.say(&format!(
        "Speed: {:.1}ms preprocess, {:.1}ms inference, {:.1}ms postprocess per image at shape ({}, 3, {}, {})",
        rep.total.preprocess / k,
        rep.total.inference / k,
        rep.total.postprocess / k,
        batch.min(n.max(1)),
        rep.last_shape.0,
        rep.last_shape.1
    ));
    if let Some(t) = track.as_mut() {
        if let Some(f) = t.finish_mot(&opts.dir)? {
            rep.say(&format!("MOTChallenge results saved to {}", f.display()));
        }
    }
    if opts.save || opts.save_txt {
        rep.say(&format!("Results saved to {}", opts.dir.display()));
    }
    Ok(())
}

/// The trackers of a track run (None: predict).
type Track<'t> = Option<TrackRun<'t>>;

/// Predicts the waiting images in one batch, then tracks (track mode), reports and saves each.
fn flush(
    p: &Predictor,
    pending: &mut Vec<(usize, &PathBuf, image::RgbImage)>,
    n: usize,
    opts: &SaveOptions,
    rep: &mut Reporter,
    track: &mut Track,
) -> Result<()> {
    let imgs: Vec<image::RgbImage> = pending.iter().map(|x| x.2.clone()).collect();
    let preds = p.predict_batch(&imgs)?;
    for ((i, f, img), mut pred) in pending.drain(..).zip(preds) {
        if let Some(t) = track.as_mut() {
            t.frame(f, None, &img, &mut pred)?;
        }
        rep.image(
            &format!("image {}/{n} {}", i + 1, f.display()),
            f,
            None,
            &img,
            &pred,
        );
        save_prediction(p, f, &img, &pred, opts)?;
    }
    Ok(())
}

/// A video file, webcam or stream, frame by frame through [`Predictor::predict_video`]: lines,
/// the annotated `<stem>.avi`, `save_frames` and per-frame labels / crops.
#[allow(clippy::too_many_arguments)]
fn video(
    p: &Predictor,
    a: &Args,
    f: &Path,
    (i, n): (usize, usize),
    streaming: bool,
    opts: &SaveOptions,
    rep: &mut Reporter,
    track: &mut Track,
) -> Result<()> {
    let src = f.to_string_lossy().to_string();
    let vid_stride = a.int("vid_stride")?.max(1) as usize;
    let save_frames = a.bool("save_frames");
    let mut frames = p.predict_video(&src, vid_stride, a.bool("stream_buffer"))?;
    let info = frames.info().clone();
    let stem = if streaming {
        src.rsplit(['/', ':'])
            .find(|s| !s.is_empty())
            .unwrap_or("stream")
            .to_string()
    } else {
        f.file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "video".into())
    };
    let fps = if is_live(&src) {
        30.0
    } else {
        info.fps / vid_stride as f64
    };
    let mut writer = None;
    if opts.save {
        crate::util::fsio::create_dir_all(&opts.dir)?;
        writer = Some(VideoWriter::create(
            &opts.dir.join(format!("{stem}.avi")),
            info.width,
            info.height,
            fps,
        )?);
    }
    for r in frames.by_ref() {
        let (k, frame, mut pred) = r?;
        if let Some(t) = track.as_mut() {
            t.frame(Path::new(&src), Some((&stem, k)), &frame, &mut pred)?;
        }
        let what = if info.frames == 0 {
            format!("{k}: {src}")
        } else {
            format!(
                "video {}/{n} (frame {k}/{}) {}",
                i + 1,
                info.frames,
                f.display()
            )
        };
        rep.image(&what, f, Some(k), &frame, &pred);
        if writer.is_some() || save_frames {
            let canvas = annotate(p, &frame, &pred, opts);
            if let Some(w) = writer.as_mut() {
                w.write(&canvas)?;
            }
            if save_frames {
                let d = opts.dir.join(format!("{stem}_frames"));
                crate::util::fsio::create_dir_all(&d)?;
                crate::util::fsio::save_rgb(&canvas, d.join(format!("{k}.jpg")))?;
            }
        }
        save_labels_and_crops(p, &format!("{stem}_{k}"), &frame, &pred, opts)?;
    }
    if let Some(w) = writer {
        w.finish()?;
    }
    Ok(())
}
