//! What predict writes: annotated images, `labels/<stem>.txt`, `crops/<class>/<stem>.jpg`.

use super::{Prediction, Predictor};
use anyhow::Result;
use std::path::Path;

/// Output options of a predict run.
#[derive(Debug, Clone)]
pub struct SaveOptions {
    /// Run folder.
    pub dir: std::path::PathBuf,
    /// Save annotated images.
    pub save: bool,
    /// Write `labels/<stem>.txt`.
    pub save_txt: bool,
    /// Add confidences to the label rows.
    pub save_conf: bool,
    /// Save each detection's crop under `crops/<class>/<stem>.jpg`.
    pub save_crop: bool,
    /// Draw class names.
    pub show_labels: bool,
    /// Draw confidences.
    pub show_conf: bool,
    /// Draw boxes at all.
    pub show_boxes: bool,
    /// Box line width (None: from the image size).
    pub line_width: Option<u32>,
}

/// Draws a prediction's masks (segment models, always) and boxes (with the label style of `o`)
/// on a copy of the image; classify predictions get their top-5 lines instead.
pub fn annotate(
    p: &Predictor,
    img: &image::RgbImage,
    pred: &Prediction,
    o: &SaveOptions,
) -> image::RgbImage {
    annotate_styled(p, img, pred, o, super::pose::KptStyle::default())
}

/// [`annotate`] with keypoints drawn in `kpt` style (`Results.plot`'s `kpt_radius`, `kpt_line`).
pub fn annotate_styled(
    p: &Predictor,
    img: &image::RgbImage,
    pred: &Prediction,
    o: &SaveOptions,
    kpt: super::pose::KptStyle,
) -> image::RgbImage {
    let mut canvas = img.clone();
    if let Some(probs) = &pred.probs {
        // Classify: the top-5 lines, whatever the box options.
        super::classify::draw_probs(&mut canvas, probs);
        return canvas;
    }
    if let Some(masks) = &pred.masks {
        if let Err(e) = super::segment::draw_masks(&mut canvas, &pred.detections, masks) {
            eprintln!("WARNING masks not drawn: {e:#}");
        }
    }
    let label = |cls: usize, conf: f32| {
        let cname = p
            .model()
            .names()
            .get(cls)
            .cloned()
            .unwrap_or_else(|| cls.to_string());
        match (o.show_labels, o.show_conf) {
            (true, true) => Some(format!("{cname} {conf:.2}")),
            (true, false) => Some(cname),
            (false, true) => Some(format!("{conf:.2}")),
            (false, false) => None,
        }
    };
    match (&pred.obb, o.show_boxes) {
        (Some(ob), true) => {
            // Track mode: `id:7 plane 0.82` when names are shown, as for axis-aligned boxes.
            let ids = pred.track_ids.as_ref().filter(|_| o.show_labels);
            let boxes = super::obb::drawable(ob, |i, d| {
                let l = label(d.cls, d.conf);
                match ids.and_then(|v| v.get(i)) {
                    Some(id) => l.map(|l| format!("id:{id} {l}")),
                    None => l,
                }
            });
            crate::plot::obb::draw_rotated_boxes(&mut canvas, &boxes, o.line_width);
        }
        (None, true) => {
            // Track mode: `id:7 car 0.82` when names are shown.
            let ids = pred.track_ids.as_ref().filter(|_| o.show_labels);
            let boxes: Vec<([f32; 4], usize, Option<String>)> = pred
                .detections
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let l = label(d.cls, d.conf);
                    let l = match ids.and_then(|v| v.get(i)) {
                        Some(id) => l.map(|l| format!("id:{id} {l}")),
                        None => l,
                    };
                    (d.xyxy, d.cls, l)
                })
                .collect();
            crate::plot::draw_boxes(&mut canvas, &boxes, o.line_width);
        }
        _ => {}
    }
    if let Some(k) = &pred.keypoints {
        // Keypoints after all boxes; limbs ceil(lw / 2) wide, as Ultralytics' annotator.
        let lw = o.line_width.unwrap_or_else(|| {
            ((((canvas.width() + canvas.height()) as f32) / 2.0 * 0.003).round() as u32).max(2)
        });
        super::pose::draw(&mut canvas, k, lw, kpt);
    }
    canvas
}

/// Saves the annotated image and/or label file of one prediction.
pub fn save_prediction(
    p: &Predictor,
    path: &Path,
    img: &image::RgbImage,
    pred: &Prediction,
    o: &SaveOptions,
) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "image.jpg".into());
    let stem = path
        .file_stem()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "image".into());
    if o.save {
        crate::util::fsio::create_dir_all(&o.dir)?;
        let out = o.dir.join(&name);
        crate::util::fsio::save_rgb(&annotate(p, img, pred, o), &out)?;
    }
    save_labels_and_crops(p, &stem, img, pred, o)
}

/// Writes `labels/<stem>.txt` (save_txt) and `crops/<class>/<stem>.jpg` (save_crop).
pub fn save_labels_and_crops(
    p: &Predictor,
    stem: &str,
    img: &image::RgbImage,
    pred: &Prediction,
    o: &SaveOptions,
) -> Result<()> {
    if let Some(probs) = &pred.probs {
        // Classify: no crops; the top-5 `"{prob:.2f} {name}"` lines (save_conf has no effect).
        if o.save_txt {
            let dir = o.dir.join("labels");
            crate::util::fsio::create_dir_all(&dir)?;
            crate::util::fsio::write(dir.join(format!("{stem}.txt")), probs.txt())?;
        }
        return Ok(());
    }
    if o.save_crop && pred.obb.is_some() {
        // As Ultralytics 8.4 (`Results.save_crop`): no crops of rotated boxes.
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| eprintln!("WARNING save_crop=True: OBB models do not support save_crop (as Ultralytics); no crops written"));
    } else if o.save_crop {
        // Ultralytics' save_one_box: the box grown by 2% plus 10 px, clipped to the image.
        let (iw, ih) = (img.width() as f32, img.height() as f32);
        for d in &pred.detections {
            let [cx, cy, w, h] = d.xywh();
            let (w, h) = (w * 1.02 + 10.0, h * 1.02 + 10.0);
            let x0 = (cx - w / 2.0).clamp(0.0, iw) as u32;
            let y0 = (cy - h / 2.0).clamp(0.0, ih) as u32;
            let x1 = (cx + w / 2.0).clamp(0.0, iw) as u32;
            let y1 = (cy + h / 2.0).clamp(0.0, ih) as u32;
            if x1 <= x0 || y1 <= y0 {
                continue;
            }
            let crop = image::imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image();
            let cdir = o.dir.join("crops").join(p.name(d.cls));
            crate::util::fsio::create_dir_all(&cdir)?;
            let mut out = cdir.join(format!("{stem}.jpg"));
            let mut n = 2;
            while out.exists() {
                out = cdir.join(format!("{stem}{n}.jpg"));
                n += 1;
            }
            crate::util::fsio::save_rgb(&crop, &out)?;
        }
    }
    if o.save_txt {
        let (h0, w0) = (img.height() as f64, img.width() as f64);
        let text = match &pred.track_ids {
            // Track mode: the track id as the last column of every row.
            Some(ids) => super::track::rows_with_ids(pred, ids, (w0, h0), o.save_conf),
            None => txt_rows(
                &pred.detections,
                pred.masks.as_ref(),
                pred.keypoints.as_ref(),
                pred.obb.as_ref(),
                (w0, h0),
                o.save_conf,
            ),
        };
        // As Ultralytics: no file for an image without detections.
        if !text.is_empty() {
            let dir = o.dir.join("labels");
            crate::util::fsio::create_dir_all(&dir)?;
            crate::util::fsio::write(dir.join(format!("{stem}.txt")), text)?;
        }
    }
    Ok(())
}

/// The `save_txt` rows of a result's parts (segment polygons, pose keypoints, OBB corners or boxes).
pub fn txt_rows(
    dets: &[crate::ops::Detection],
    masks: Option<&super::Masks>,
    kpts: Option<&super::pose::Keypoints>,
    obb: Option<&super::obb::Obbs>,
    (w0, h0): (f64, f64),
    save_conf: bool,
) -> String {
    match (masks, kpts, obb) {
        // Segment: one polygon line per detection.
        (Some(m), _, _) => super::segment::txt_lines(dets, m, save_conf),
        // Pose: box and keypoints.
        (_, Some(k), _) => super::pose::txt_lines(dets, k, save_conf),
        // OBB: the four corners.
        (_, _, Some(ob)) => super::obb::txt_lines(ob, save_conf),
        _ => {
            let rows = dets.iter().map(|d| (d.xyxy, d.conf, d.cls));
            crate::ops::yolo_txt(rows, w0, h0, save_conf)
        }
    }
}
