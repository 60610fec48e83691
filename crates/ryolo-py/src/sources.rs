//! Predict sources from Python: paths, folders, globs, URLs and videos (as the CLI expands them),
//! NumPy HWC uint8 BGR arrays (as OpenCV gives), PIL images (RGB) and lists of them.

use numpy::{PyReadonlyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use std::path::PathBuf;

/// One input of a predict call.
pub enum Input {
    /// An image file, loaded when its batch runs.
    File(PathBuf),
    /// An in-memory image (RGB) and the path Ultralytics gives it (`image0.jpg`).
    Image(image::RgbImage, String),
    /// A video file, webcam index or stream URL, read frame by frame.
    Video(String),
}

/// A NumPy array (`H x W x 3` BGR, `H x W x 4` BGRA, or `H x W` grey; uint8) as an RGB image.
fn from_numpy(a: &Bound<'_, PyAny>, bgr: bool) -> PyResult<image::RgbImage> {
    let shape = a
        .downcast::<numpy::PyUntypedArray>()
        .map(|u| u.shape().to_vec())
        .unwrap_or_default();
    let dtype_ok = a
        .getattr("dtype")
        .and_then(|d| d.str())
        .map(|s| s == "uint8")
        .unwrap_or(false);
    if !dtype_ok {
        return Err(PyValueError::new_err(format!(
            "source: a NumPy image must be uint8 (got dtype {})",
            a.getattr("dtype")?.str()?
        )));
    }
    match shape.len() {
        2 => {
            let arr: PyReadonlyArray2<u8> = a.extract()?;
            let v = arr.as_array();
            let (h, w) = (shape[0] as u32, shape[1] as u32);
            Ok(image::RgbImage::from_fn(w, h, |x, y| {
                let g = v[[y as usize, x as usize]];
                image::Rgb([g, g, g])
            }))
        }
        3 if shape[2] == 3 || shape[2] == 4 || shape[2] == 1 => {
            let arr: PyReadonlyArray3<u8> = a.extract()?;
            let v = arr.as_array();
            let (h, w, c) = (shape[0] as u32, shape[1] as u32, shape[2]);
            Ok(image::RgbImage::from_fn(w, h, |x, y| {
                let (y, x) = (y as usize, x as usize);
                if c == 1 {
                    let g = v[[y, x, 0]];
                    return image::Rgb([g, g, g]);
                }
                let (p0, p1, p2) = (v[[y, x, 0]], v[[y, x, 1]], v[[y, x, 2]]);
                if bgr {
                    image::Rgb([p2, p1, p0])
                } else {
                    image::Rgb([p0, p1, p2])
                }
            }))
        }
        _ => Err(PyValueError::new_err(format!(
            "source: a NumPy image must be HxWx3 (BGR), HxWx4 or HxW uint8, got shape {shape:?}"
        ))),
    }
}

/// Whether `o` is a PIL image.
fn is_pil(o: &Bound<'_, PyAny>) -> bool {
    o.get_type()
        .getattr("__module__")
        .and_then(|m| m.extract::<String>())
        .is_ok_and(|m| m.starts_with("PIL."))
        && o.hasattr("convert").unwrap_or(false)
}

/// Appends the inputs of one source object (`index`: its position, for `image{index}.jpg`).
fn push(o: &Bound<'_, PyAny>, out: &mut Vec<Input>) -> PyResult<()> {
    let py = o.py();
    if o.is_instance_of::<PyList>() || o.is_instance_of::<PyTuple>() {
        for x in o.try_iter()? {
            push(&x?, out)?;
        }
        return Ok(());
    }
    let index = out.len();
    if o.is_instance_of::<PyString>() || o.hasattr("__fspath__")? {
        let s: String = py.import("os")?.call_method1("fspath", (o,))?.extract()?;
        return crate::errors::run(|| expand(&s, out));
    }
    if o.is_instance_of::<numpy::PyUntypedArray>() {
        out.push(Input::Image(
            from_numpy(o, true)?,
            format!("image{index}.jpg"),
        ));
        return Ok(());
    }
    if is_pil(o) {
        let name = o
            .getattr("filename")
            .ok()
            .and_then(|f| f.extract::<String>().ok())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| format!("image{index}.jpg"));
        let rgb = o.call_method1("convert", ("RGB",))?;
        let arr = py.import("numpy")?.call_method1("asarray", (rgb,))?;
        out.push(Input::Image(from_numpy(&arr, false)?, name));
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "source of type {} is not supported: use a path, URL, NumPy HWC uint8 BGR array, PIL image or a list of them",
        o.get_type().name()?
    )))
}

/// A path, folder, glob, `.txt` list, video, webcam index or URL, as `yolo predict source=` takes it.
fn expand(s: &str, out: &mut Vec<Input>) -> anyhow::Result<()> {
    use ryolo::data::video::{is_stream, is_video};
    if is_stream(s) {
        out.push(Input::Video(s.to_string()));
        return Ok(());
    }
    for f in ryolo::engine::predict::expand_source(s)? {
        if is_video(&f) {
            out.push(Input::Video(f.to_string_lossy().into_owned()));
        } else {
            out.push(Input::File(f));
        }
    }
    Ok(())
}

/// The inputs of a `predict(source)` call (a list of mixed kinds is fine).
pub fn collect(source: &Bound<'_, PyAny>) -> PyResult<Vec<Input>> {
    let mut out = Vec::new();
    push(source, &mut out)?;
    if out.is_empty() {
        return Err(PyFileNotFoundError::new_err(format!(
            "source {} holds no images or videos",
            source.repr()?
        )));
    }
    Ok(out)
}

use pyo3::exceptions::PyFileNotFoundError;
