//! The task fields of a result as Ultralytics names them: `Boxes`, `Masks`, `Keypoints`, `Probs`
//! and `OBB`, each giving NumPy float32 arrays of Ultralytics' shapes.

use numpy::ndarray::{Array, Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3};
use pyo3::prelude::*;
use ryolo::engine::predict::obb::Obbs;
use ryolo::engine::predict::pose::Keypoints as RKeypoints;
use ryolo::engine::predict::{Masks as RMasks, Probs as RProbs};
use ryolo::ops::Detection;

/// `(n, k)` float32 array from rows.
pub fn rows<'py, const K: usize>(py: Python<'py>, v: &[[f32; K]]) -> Bound<'py, PyArray2<f32>> {
    let flat: Vec<f32> = v.iter().flatten().copied().collect();
    Array2::from_shape_vec((v.len(), K), flat)
        .expect("rows of K values")
        .into_pyarray(py)
}

/// `(n,)` float32 array.
fn col<'py>(py: Python<'py>, v: Vec<f32>) -> Bound<'py, PyArray1<f32>> {
    Array1::from_vec(v).into_pyarray(py)
}

/// Detection boxes (Ultralytics' `Results.boxes`): `data` rows `x1, y1, x2, y2, [id,] conf, cls`.
#[pyclass(module = "ryolo", name = "Boxes", frozen)]
pub struct Boxes {
    dets: Vec<Detection>,
    ids: Option<Vec<u64>>,
    /// Original image `(h, w)`.
    #[pyo3(get)]
    orig_shape: (usize, usize),
}

impl Boxes {
    /// Boxes of a prediction.
    pub fn new(dets: Vec<Detection>, ids: Option<Vec<u64>>, orig_shape: (usize, usize)) -> Self {
        Self {
            dets,
            ids,
            orig_shape,
        }
    }

    fn xywh_rows(&self) -> Vec<[f32; 4]> {
        self.dets.iter().map(|d| d.xywh()).collect()
    }

    fn norm(&self, v: Vec<[f32; 4]>) -> Vec<[f32; 4]> {
        let (h, w) = (self.orig_shape.0 as f32, self.orig_shape.1 as f32);
        v.into_iter()
            .map(|b| [b[0] / w, b[1] / h, b[2] / w, b[3] / h])
            .collect()
    }
}

#[pymethods]
impl Boxes {
    /// `(n, 6)` (`(n, 7)` with track ids) float32: `x1, y1, x2, y2, [id,] conf, cls`.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        match &self.ids {
            Some(ids) => {
                let r: Vec<[f32; 7]> = self
                    .dets
                    .iter()
                    .zip(ids)
                    .map(|(d, id)| {
                        let [a, b, c, e] = d.xyxy;
                        [a, b, c, e, *id as f32, d.conf, d.cls as f32]
                    })
                    .collect();
                rows(py, &r)
            }
            None => {
                let r: Vec<[f32; 6]> = self
                    .dets
                    .iter()
                    .map(|d| {
                        let [a, b, c, e] = d.xyxy;
                        [a, b, c, e, d.conf, d.cls as f32]
                    })
                    .collect();
                rows(py, &r)
            }
        }
    }
    /// `(n, 4)` float32 corners in pixels.
    #[getter]
    fn xyxy<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        let r: Vec<[f32; 4]> = self.dets.iter().map(|d| d.xyxy).collect();
        rows(py, &r)
    }
    /// `(n, 4)` float32 centre and size in pixels.
    #[getter]
    fn xywh<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        rows(py, &self.xywh_rows())
    }
    /// `(n, 4)` float32 corners divided by the image size.
    #[getter]
    fn xyxyn<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        let r: Vec<[f32; 4]> = self.dets.iter().map(|d| d.xyxy).collect();
        rows(py, &self.norm(r))
    }
    /// `(n, 4)` float32 centre and size divided by the image size.
    #[getter]
    fn xywhn<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        rows(py, &self.norm(self.xywh_rows()))
    }
    /// `(n,)` float32 confidences.
    #[getter]
    fn conf<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        col(py, self.dets.iter().map(|d| d.conf).collect())
    }
    /// `(n,)` float32 class ids.
    #[getter]
    fn cls<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        col(py, self.dets.iter().map(|d| d.cls as f32).collect())
    }
    /// `(n,)` float32 track ids (None unless tracking).
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f32>>> {
        self.ids
            .as_ref()
            .map(|ids| col(py, ids.iter().map(|&i| i as f32).collect()))
    }
    /// Whether the boxes carry track ids.
    #[getter]
    fn is_track(&self) -> bool {
        self.ids.is_some()
    }
    /// `data`'s shape.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        (self.dets.len(), if self.ids.is_some() { 7 } else { 6 })
    }
    fn __len__(&self) -> usize {
        self.dets.len()
    }
    /// Itself (the arrays are already on the host, NumPy).
    fn cpu(slf: Py<Self>) -> Py<Self> {
        slf
    }
    /// Itself (the arrays are already NumPy).
    fn numpy(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __repr__(&self) -> String {
        format!("ryolo.Boxes({} boxes)", self.dets.len())
    }
}

/// Instance masks (Ultralytics' `Results.masks`).
#[pyclass(module = "ryolo", name = "Masks", frozen)]
pub struct Masks {
    m: RMasks,
    /// Original image `(h, w)`.
    #[pyo3(get)]
    orig_shape: (usize, usize),
}

impl Masks {
    /// Masks of a prediction.
    pub fn new(m: RMasks) -> Self {
        let orig_shape = m.orig;
        Self { m, orig_shape }
    }
}

fn polygons<'py>(py: Python<'py>, polys: Vec<Vec<[f32; 2]>>) -> Vec<Bound<'py, PyArray2<f32>>> {
    polys.iter().map(|p| rows(py, p)).collect()
}

#[pymethods]
impl Masks {
    /// `(n, h, w)` float32 0/1 masks on the inference grid (the original size with `retina_masks`).
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<f32>> {
        let (h, w) = self.m.shape;
        let v: Vec<f32> = self.m.data.iter().map(|&b| b as f32).collect();
        Array3::from_shape_vec((self.m.len(), h, w), v)
            .expect("n masks of h x w")
            .into_pyarray(py)
    }
    /// One `(k, 2)` float32 polygon per mask, in original-image pixels.
    #[getter]
    fn xy<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyArray2<f32>>> {
        polygons(py, self.m.xy())
    }
    /// One `(k, 2)` float32 polygon per mask, divided by the image size.
    #[getter]
    fn xyn<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyArray2<f32>>> {
        polygons(py, self.m.xyn())
    }
    /// `data`'s shape.
    #[getter]
    fn shape(&self) -> (usize, usize, usize) {
        (self.m.len(), self.m.shape.0, self.m.shape.1)
    }
    fn __len__(&self) -> usize {
        self.m.len()
    }
    fn cpu(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn numpy(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __repr__(&self) -> String {
        format!("ryolo.Masks({} masks)", self.m.len())
    }
}

/// Pose keypoints (Ultralytics' `Results.keypoints`).
#[pyclass(module = "ryolo", name = "Keypoints", frozen)]
pub struct Keypoints {
    k: RKeypoints,
    /// Original image `(h, w)`.
    #[pyo3(get)]
    orig_shape: (usize, usize),
}

impl Keypoints {
    /// Keypoints of a prediction.
    pub fn new(k: RKeypoints) -> Self {
        let orig_shape = k.orig;
        Self { k, orig_shape }
    }

    fn cube<'py>(&self, py: Python<'py>, d: usize, v: Vec<f32>) -> Bound<'py, PyArray3<f32>> {
        Array3::from_shape_vec((self.k.len(), self.k.kpt_shape.0, d), v)
            .expect("n x K x d keypoints")
            .into_pyarray(py)
    }
}

#[pymethods]
impl Keypoints {
    /// `(n, K, 3)` (or `(n, K, 2)`) float32: `x, y[, visibility]` in pixels.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<f32>> {
        let d = self.k.kpt_shape.1;
        self.cube(py, d, self.k.data.iter().flatten().copied().collect())
    }
    /// `(n, K, 2)` float32 pixels.
    #[getter]
    fn xy<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<f32>> {
        let v = (0..self.k.len())
            .flat_map(|i| self.k.xy(i))
            .flatten()
            .collect();
        self.cube(py, 2, v)
    }
    /// `(n, K, 2)` float32, divided by the image size.
    #[getter]
    fn xyn<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<f32>> {
        let v = (0..self.k.len())
            .flat_map(|i| self.k.xyn(i))
            .flatten()
            .collect();
        self.cube(py, 2, v)
    }
    /// `(n, K)` float32 visibility scores (None for 2-value keypoints).
    #[getter]
    fn conf<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray2<f32>>> {
        if self.k.kpt_shape.1 != 3 {
            return None;
        }
        let v: Vec<f32> = (0..self.k.len())
            .flat_map(|i| self.k.conf(i).unwrap_or_default())
            .collect();
        Some(
            Array2::from_shape_vec((self.k.len(), self.k.kpt_shape.0), v)
                .expect("n x K")
                .into_pyarray(py),
        )
    }
    /// Whether the keypoints carry visibility scores.
    #[getter]
    fn has_visible(&self) -> bool {
        self.k.kpt_shape.1 == 3
    }
    /// `data`'s shape.
    #[getter]
    fn shape(&self) -> (usize, usize, usize) {
        (self.k.len(), self.k.kpt_shape.0, self.k.kpt_shape.1)
    }
    fn __len__(&self) -> usize {
        self.k.len()
    }
    fn cpu(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn numpy(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __repr__(&self) -> String {
        format!("ryolo.Keypoints({} instances)", self.k.len())
    }
}

/// Classification probabilities (Ultralytics' `Results.probs`).
#[pyclass(module = "ryolo", name = "Probs", frozen)]
pub struct Probs {
    p: RProbs,
}

impl Probs {
    /// Probabilities of a prediction.
    pub fn new(p: RProbs) -> Self {
        Self { p }
    }
}

#[pymethods]
impl Probs {
    /// `(nc,)` float32 class probabilities.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        col(py, self.p.data.clone())
    }
    /// The most likely class id.
    #[getter]
    fn top1(&self) -> usize {
        self.p.top1()
    }
    /// The five most likely class ids, most likely first.
    #[getter]
    fn top5(&self) -> Vec<usize> {
        self.p.top5()
    }
    /// The probability of `top1`.
    #[getter]
    fn top1conf(&self) -> f32 {
        self.p.top1conf()
    }
    /// `(5,)` float32 probabilities of `top5`.
    #[getter]
    fn top5conf<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        col(py, self.p.top5conf())
    }
    /// `data`'s shape.
    #[getter]
    fn shape(&self) -> (usize,) {
        (self.p.data.len(),)
    }
    fn __len__(&self) -> usize {
        self.p.data.len()
    }
    fn cpu(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn numpy(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __repr__(&self) -> String {
        format!(
            "ryolo.Probs(top1={} {:.3})",
            self.p.top1(),
            self.p.top1conf()
        )
    }
}

/// Oriented boxes (Ultralytics' `Results.obb`): `data` rows `cx, cy, w, h, r, [id,] conf, cls`.
#[pyclass(module = "ryolo", name = "OBB", frozen)]
pub struct Obb {
    o: Obbs,
    ids: Option<Vec<u64>>,
    /// Original image `(h, w)`.
    #[pyo3(get)]
    orig_shape: (usize, usize),
}

impl Obb {
    /// Oriented boxes of a prediction.
    pub fn new(o: Obbs, ids: Option<Vec<u64>>) -> Self {
        let orig_shape = o.orig;
        Self { o, ids, orig_shape }
    }

    fn corners(&self, norm: bool) -> Vec<f32> {
        (0..self.o.len())
            .flat_map(|i| {
                if norm {
                    self.o.corners_n(i)
                } else {
                    self.o.corners(i)
                }
                .unwrap_or_default()
            })
            .flatten()
            .collect()
    }
}

#[pymethods]
impl Obb {
    /// `(n, 7)` (`(n, 8)` with track ids) float32: `cx, cy, w, h, r, [id,] conf, cls`.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        let k = if self.ids.is_some() { 8 } else { 7 };
        let mut v = Vec::with_capacity(self.o.len() * k);
        for (i, b) in self.o.boxes.iter().enumerate() {
            v.extend(b.xywhr);
            if let Some(ids) = &self.ids {
                v.push(ids.get(i).copied().unwrap_or(0) as f32);
            }
            v.extend([b.conf, b.cls as f32]);
        }
        Array2::from_shape_vec((self.o.len(), k), v)
            .expect("n x k")
            .into_pyarray(py)
    }
    /// `(n, 5)` float32 `cx, cy, w, h, rotation` (radians).
    #[getter]
    fn xywhr<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        let r: Vec<[f32; 5]> = self.o.boxes.iter().map(|b| b.xywhr).collect();
        rows(py, &r)
    }
    /// `(n, 4, 2)` float32 corner points in pixels.
    #[getter]
    fn xyxyxyxy<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<f32>> {
        Array::from_shape_vec((self.o.len(), 4, 2), self.corners(false))
            .expect("n x 4 x 2")
            .into_pyarray(py)
    }
    /// `(n, 4, 2)` float32 corner points divided by the image size.
    #[getter]
    fn xyxyxyxyn<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<f32>> {
        Array::from_shape_vec((self.o.len(), 4, 2), self.corners(true))
            .expect("n x 4 x 2")
            .into_pyarray(py)
    }
    /// `(n, 4)` float32 axis-aligned bounds of the rotated boxes.
    #[getter]
    fn xyxy<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        let c = self.corners(false);
        let r: Vec<[f32; 4]> = c
            .chunks_exact(8)
            .map(|p| {
                let xs = [p[0], p[2], p[4], p[6]];
                let ys = [p[1], p[3], p[5], p[7]];
                let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
                let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
                [min(xs), min(ys), max(xs), max(ys)]
            })
            .collect();
        rows(py, &r)
    }
    /// `(n,)` float32 confidences.
    #[getter]
    fn conf<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        col(py, self.o.boxes.iter().map(|b| b.conf).collect())
    }
    /// `(n,)` float32 class ids.
    #[getter]
    fn cls<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        col(py, self.o.boxes.iter().map(|b| b.cls as f32).collect())
    }
    /// `(n,)` float32 track ids (None unless tracking).
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f32>>> {
        self.ids
            .as_ref()
            .map(|ids| col(py, ids.iter().map(|&i| i as f32).collect()))
    }
    /// Whether the boxes carry track ids.
    #[getter]
    fn is_track(&self) -> bool {
        self.ids.is_some()
    }
    /// `data`'s shape.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        (self.o.len(), if self.ids.is_some() { 8 } else { 7 })
    }
    fn __len__(&self) -> usize {
        self.o.len()
    }
    fn cpu(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn numpy(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __repr__(&self) -> String {
        format!("ryolo.OBB({} boxes)", self.o.len())
    }
}
