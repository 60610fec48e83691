//! `Results`: one predicted image as Ultralytics gives it — the task fields, `plot()`, `save()`,
//! `save_txt()`, `summary()` / `to_json()`, `speed`, `names`, `orig_shape`, `path`.

use crate::fields::{Boxes, Keypoints, Masks, Obb, Probs};
use crate::runner::{with_p, SharedPredictor};
use numpy::ndarray::Array3;
use numpy::{IntoPyArray, PyArray3};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use ryolo::engine::predict::pose::KptStyle;
use ryolo::engine::predict::{annotate_styled, txt_rows, Prediction, SaveOptions};
use std::path::PathBuf;

/// The result of one image or video frame.
#[pyclass(module = "ryolo", name = "Results", frozen)]
pub struct Results {
    p: SharedPredictor,
    img: image::RgbImage,
    pred: Prediction,
    /// The source path (`image0.jpg` for in-memory images).
    #[pyo3(get)]
    path: String,
    /// The run folder when the call saved something (None otherwise).
    #[pyo3(get)]
    save_dir: Option<String>,
}

impl Results {
    /// A result of `p` on `img`.
    pub fn new(
        p: SharedPredictor,
        img: image::RgbImage,
        pred: Prediction,
        path: String,
        save_dir: Option<String>,
    ) -> Self {
        Self {
            p,
            img,
            pred,
            path,
            save_dir,
        }
    }

    fn orig(&self) -> (usize, usize) {
        (self.img.height() as usize, self.img.width() as usize)
    }

    /// The annotated image (RGB).
    fn annotated(&self, o: &SaveOptions, kpt: KptStyle) -> image::RgbImage {
        with_p(&self.p, |p| {
            annotate_styled(p, &self.img, &self.pred, o, kpt)
        })
    }

    /// Ultralytics' `summary()` rows as JSON values.
    fn summary_json(&self, normalize: bool, decimals: i32) -> serde_json::Value {
        let r = |v: f32| -> serde_json::Value {
            let k = 10f64.powi(decimals);
            serde_json::json!(((v as f64) * k).round() / k)
        };
        let names = with_p(&self.p, |p| p.model().names().to_vec());
        let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
        if let Some(p) = &self.pred.probs {
            return p
                .top5()
                .into_iter()
                .map(|c| serde_json::json!({"name": name(c), "class": c, "confidence": r(p.data[c])}))
                .collect();
        }
        let (h, w) = if normalize {
            let (h, w) = self.orig();
            (h as f32, w as f32)
        } else {
            (1.0, 1.0)
        };
        let polys = self.pred.masks.as_ref().map(|m| m.xy());
        let mut out = Vec::new();
        let n = self
            .pred
            .obb
            .as_ref()
            .map_or(self.pred.detections.len(), |o| o.len());
        for i in 0..n {
            let (pts, conf, cls): (Vec<[f32; 2]>, f32, usize) = match &self.pred.obb {
                Some(o) => {
                    let b = &o.boxes[i];
                    (o.corners(i).unwrap_or_default().to_vec(), b.conf, b.cls)
                }
                None => {
                    let d = &self.pred.detections[i];
                    let [a, b, c, e] = d.xyxy;
                    (vec![[a, b], [c, e]], d.conf, d.cls)
                }
            };
            let mut bx = serde_json::Map::new();
            for (j, p) in pts.iter().enumerate() {
                bx.insert(format!("x{}", j + 1), r(p[0] / w));
                bx.insert(format!("y{}", j + 1), r(p[1] / h));
            }
            let mut row = serde_json::json!({"name": name(cls), "class": cls, "confidence": r(conf), "box": bx});
            if let Some(id) = self.pred.track_ids.as_ref().and_then(|t| t.get(i)) {
                row["track_id"] = serde_json::json!(id);
            }
            if let Some(poly) = polys.as_ref().and_then(|p| p.get(i)) {
                row["segments"] = serde_json::json!({
                    "x": poly.iter().map(|p| r(p[0] / w)).collect::<Vec<_>>(),
                    "y": poly.iter().map(|p| r(p[1] / h)).collect::<Vec<_>>(),
                });
            }
            if let Some(k) = &self.pred.keypoints {
                let xy = k.xy(i);
                row["keypoints"] = serde_json::json!({
                    "x": xy.iter().map(|p| r(p[0] / w)).collect::<Vec<_>>(),
                    "y": xy.iter().map(|p| r(p[1] / h)).collect::<Vec<_>>(),
                });
                if let Some(c) = k.conf(i) {
                    row["keypoints"]["visible"] =
                        serde_json::json!(c.iter().map(|v| r(*v)).collect::<Vec<_>>());
                }
            }
            out.push(row);
        }
        serde_json::Value::Array(out)
    }
}

/// HxWx3 uint8 BGR array of an RGB image (what Ultralytics' `plot()` and `orig_img` give).
pub fn to_bgr<'py>(py: Python<'py>, img: &image::RgbImage) -> Bound<'py, PyArray3<u8>> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut v = img.as_raw().clone();
    for px in v.chunks_exact_mut(3) {
        px.swap(0, 2);
    }
    Array3::from_shape_vec((h, w, 3), v)
        .expect("h x w x 3")
        .into_pyarray(py)
}

#[pymethods]
impl Results {
    /// Detection boxes (None for classify models; the axis-aligned bounds... None for OBB models,
    /// as Ultralytics).
    #[getter]
    fn boxes(&self) -> Option<Boxes> {
        if self.pred.probs.is_some() || self.pred.obb.is_some() {
            return None;
        }
        Some(Boxes::new(
            self.pred.detections.clone(),
            self.pred.track_ids.clone(),
            self.orig(),
        ))
    }
    /// Instance masks (segment models).
    #[getter]
    fn masks(&self) -> Option<Masks> {
        self.pred.masks.clone().map(Masks::new)
    }
    /// Keypoints (pose models).
    #[getter]
    fn keypoints(&self) -> Option<Keypoints> {
        self.pred.keypoints.clone().map(Keypoints::new)
    }
    /// Class probabilities (classify models).
    #[getter]
    fn probs(&self) -> Option<Probs> {
        self.pred.probs.clone().map(Probs::new)
    }
    /// Oriented boxes (OBB models).
    #[getter]
    fn obb(&self) -> Option<Obb> {
        self.pred
            .obb
            .clone()
            .map(|o| Obb::new(o, self.pred.track_ids.clone()))
    }
    /// `{class id: name}`.
    #[getter]
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (i, n) in with_p(&self.p, |p| p.model().names().to_vec())
            .iter()
            .enumerate()
        {
            d.set_item(i, n)?;
        }
        Ok(d)
    }
    /// Original image `(h, w)`.
    #[getter]
    fn orig_shape(&self) -> (usize, usize) {
        self.orig()
    }
    /// The original image, HxWx3 uint8 BGR.
    #[getter]
    fn orig_img<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<u8>> {
        to_bgr(py, &self.img)
    }
    /// Milliseconds per image: `preprocess`, `inference`, `postprocess`.
    #[getter]
    fn speed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let s = self.pred.speed;
        d.set_item("preprocess", s.preprocess)?;
        d.set_item("inference", s.inference)?;
        d.set_item("postprocess", s.postprocess)?;
        Ok(d)
    }

    /// The annotated image, HxWx3 uint8 BGR (as Ultralytics). `conf`, `labels`, `boxes`,
    /// `line_width`, `kpt_radius` (None: the line width), `kpt_line` as Ultralytics; `save=True`
    /// also writes it to `filename`.
    #[pyo3(signature = (conf=true, line_width=None, labels=true, boxes=true, save=false, filename=None, kpt_radius=Some(5), kpt_line=true, **kwargs))]
    #[allow(clippy::too_many_arguments)]
    fn plot<'py>(
        &self,
        py: Python<'py>,
        conf: bool,
        line_width: Option<f64>,
        labels: bool,
        boxes: bool,
        save: bool,
        filename: Option<PathBuf>,
        kpt_radius: Option<i64>,
        kpt_line: bool,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyArray3<u8>>> {
        warn_unused("plot", kwargs);
        let kpt = kpt_style(kpt_radius, kpt_line)?;
        let img = self.render(py, conf, line_width, labels, boxes, kpt)?;
        if save {
            self.write(&img, filename)?;
        }
        Ok(to_bgr(py, &img))
    }

    /// Writes the annotated image to `filename` (default `results_<name>`); returns the path.
    /// Takes `plot()`'s `conf`, `line_width`, `labels`, `boxes`, `kpt_radius`, `kpt_line`.
    #[pyo3(signature = (filename=None, conf=true, line_width=None, labels=true, boxes=true, kpt_radius=Some(5), kpt_line=true, **kwargs))]
    #[allow(clippy::too_many_arguments)]
    fn save(
        &self,
        py: Python<'_>,
        filename: Option<PathBuf>,
        conf: bool,
        line_width: Option<f64>,
        labels: bool,
        boxes: bool,
        kpt_radius: Option<i64>,
        kpt_line: bool,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        warn_unused("save", kwargs);
        let kpt = kpt_style(kpt_radius, kpt_line)?;
        let img = self.render(py, conf, line_width, labels, boxes, kpt)?;
        self.write(&img, filename)
    }

    /// Appends the label rows (the CLI's `save_txt` format) to `txt_file`; returns its path.
    #[pyo3(signature = (txt_file, save_conf=false))]
    fn save_txt(&self, txt_file: PathBuf, save_conf: bool) -> PyResult<String> {
        crate::errors::run(|| {
            let (h, w) = self.orig();
            let wh = (w as f64, h as f64);
            let text = if let Some(p) = &self.pred.probs {
                p.txt()
            } else {
                match &self.pred.track_ids {
                    Some(ids) => {
                        ryolo::engine::predict::track::rows_with_ids(&self.pred, ids, wh, save_conf)
                    }
                    None => txt_rows(
                        &self.pred.detections,
                        self.pred.masks.as_ref(),
                        self.pred.keypoints.as_ref(),
                        self.pred.obb.as_ref(),
                        wh,
                        save_conf,
                    ),
                }
            };
            if !text.is_empty() {
                if let Some(d) = txt_file.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(d)?;
                }
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&txt_file)
                    .map_err(|e| anyhow::anyhow!("writing {}: {e}", txt_file.display()))?;
                f.write_all(text.as_bytes())?;
            }
            Ok(txt_file.to_string_lossy().into_owned())
        })
    }

    /// One dict per detection (top-5 classes for classify), as Ultralytics' `summary()`.
    #[pyo3(signature = (normalize=false, decimals=5))]
    fn summary<'py>(
        &self,
        py: Python<'py>,
        normalize: bool,
        decimals: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let s = self.summary_json(normalize, decimals).to_string();
        py.import("json")?.call_method1("loads", (s,))
    }

    /// `summary()` as a JSON array (Ultralytics' `to_json()`).
    #[pyo3(signature = (normalize=false, decimals=5))]
    fn to_json(&self, normalize: bool, decimals: i32) -> String {
        self.summary_json(normalize, decimals).to_string()
    }

    /// The CLI's per-image summary: `2 persons, 1 bus, ` (classify: top-5 with probabilities).
    fn verbose(&self) -> String {
        if self.pred.probs.is_none() && self.pred.detections.is_empty() && self.pred.obb.is_none() {
            return "(no detections), ".into();
        }
        with_p(&self.p, |p| p.verbose(&self.pred))
    }

    /// Itself (everything is already NumPy on the host).
    fn cpu(slf: Py<Self>) -> Py<Self> {
        slf
    }
    /// Itself.
    fn numpy(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __len__(&self) -> usize {
        match (&self.pred.probs, &self.pred.obb) {
            (Some(p), _) => p.data.len(),
            (_, Some(o)) => o.len(),
            _ => self.pred.detections.len(),
        }
    }

    fn __repr__(&self) -> String {
        let (h, w) = self.orig();
        format!(
            "ryolo.Results(path={:?}, orig_shape=({h}, {w}), {})",
            self.path,
            with_p(&self.p, |p| p.verbose(&self.pred)).trim_end_matches(", ")
        )
    }
}

impl Results {
    /// `results_<file name>` (Ultralytics' default for `save()`).
    fn default_name(&self) -> PathBuf {
        let name = std::path::Path::new(&self.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image0.jpg".into());
        PathBuf::from(format!("results_{name}"))
    }

    /// The annotated image with `plot()`'s options (drawn with the GIL released).
    fn render(
        &self,
        py: Python<'_>,
        conf: bool,
        line_width: Option<f64>,
        labels: bool,
        boxes: bool,
        kpt: KptStyle,
    ) -> PyResult<image::RgbImage> {
        let o = SaveOptions {
            dir: PathBuf::new(),
            save: false,
            save_txt: false,
            save_conf: false,
            save_crop: false,
            show_labels: labels,
            show_conf: conf,
            show_boxes: boxes,
            line_width: line_width.map(|v| v.max(1.0) as u32),
        };
        py.allow_threads(|| crate::errors::guard(|| Ok(self.annotated(&o, kpt))))
            .map_err(crate::errors::to_py)
    }

    /// Saves an annotated image to `filename` (default `results_<name>`); returns the path.
    fn write(&self, img: &image::RgbImage, filename: Option<PathBuf>) -> PyResult<String> {
        let f = filename.unwrap_or_else(|| self.default_name());
        crate::errors::run(|| {
            if let Some(d) = f.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(d)?;
            }
            ryolo::util::fsio::save_rgb(img, &f)
        })?;
        Ok(f.to_string_lossy().into_owned())
    }
}

/// `kpt_radius` / `kpt_line` of `plot`/`save` as a drawing style; a negative radius is an error
/// (OpenCV rejects it too).
fn kpt_style(kpt_radius: Option<i64>, kpt_line: bool) -> PyResult<KptStyle> {
    let radius = match kpt_radius {
        Some(r) if !(0..=i32::MAX as i64).contains(&r) => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "kpt_radius={r}: must be a non-negative number of pixels (or None for the line width)"
            )))
        }
        r => r.map(|r| r as u32),
    };
    Ok(KptStyle {
        radius,
        line: kpt_line,
    })
}

/// Names the keywords of `plot`/`save` that ryolo does not draw with.
fn warn_unused(method: &str, kwargs: Option<&Bound<'_, PyDict>>) {
    let keys: Vec<String> = kwargs
        .map(|kw| kw.keys().iter().map(|k| k.to_string()).collect())
        .unwrap_or_default();
    if !keys.is_empty() {
        eprintln!(
            "WARNING Results.{method}(): {} not supported by ryolo; ignored",
            keys.join(", ")
        );
    }
}
