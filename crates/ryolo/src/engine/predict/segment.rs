//! Segment predict (spec/segment.md §6): instance masks from prototypes and NMS-kept coefficients,
//! the empty-mask filter, polygons (`Masks.xy`), `save_txt` polygon lines and the mask overlay of
//! the annotated image, as Ultralytics 8.4 does them.

use crate::ops::contour::{mask_to_polygon, scale_coords, segment_txt_line};
use crate::ops::masks::{process_mask, process_mask_native, scale_masks};
use crate::ops::{scale_boxes, Detection, LetterboxInfo};
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// Mask transparency of the annotated image (Ultralytics' `Annotator.masks` default).
pub const MASK_ALPHA: f32 = 0.5;

/// Instance masks of one image (Ultralytics' `Results.masks`), one per detection, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Masks {
    /// `n x h x w` binary (0/1) masks, row-major.
    pub data: Vec<u8>,
    /// Mask grid `(h, w)`: the letterboxed input size, or the original size with `retina_masks`.
    pub shape: (usize, usize),
    /// Original image `(h, w)`.
    pub orig: (usize, usize),
}

impl Masks {
    /// Number of masks.
    pub fn len(&self) -> usize {
        self.data
            .len()
            .checked_div(self.shape.0 * self.shape.1)
            .unwrap_or(0)
    }

    /// Whether there are no masks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Mask `i` (`h x w`, row-major), if it exists.
    pub fn mask(&self, i: usize) -> Option<&[u8]> {
        let per = self.shape.0 * self.shape.1;
        self.data.get(i * per..(i + 1) * per)
    }

    /// The masks as a uint8 `(n, h, w)` CPU tensor.
    pub fn to_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.data).view([
            self.len() as i64,
            self.shape.0 as i64,
            self.shape.1 as i64,
        ])
    }

    /// Polygon of mask `i` in original-image pixels (`normalize`: divided by `(w0, h0)`): its
    /// external contour (several merged, Ultralytics' `masks2segments`) mapped back through the
    /// letterbox; empty when the mask is empty or absent.
    pub fn polygon(&self, i: usize, normalize: bool) -> Vec<[f32; 2]> {
        let Some(m) = self.mask(i) else {
            return Vec::new();
        };
        let poly = mask_to_polygon(m, self.shape.0, self.shape.1);
        scale_coords(&poly, self.shape, self.orig, normalize)
    }

    /// Ultralytics' `Masks.xy`: every polygon in original-image pixels.
    pub fn xy(&self) -> Vec<Vec<[f32; 2]>> {
        (0..self.len()).map(|i| self.polygon(i, false)).collect()
    }

    /// Ultralytics' `Masks.xyn`: every polygon normalised by the original `(w0, h0)`.
    pub fn xyn(&self) -> Vec<Vec<[f32; 2]>> {
        (0..self.len()).map(|i| self.polygon(i, true)).collect()
    }

    /// The masks on the original image, `n x h0 x w0` 0/1: `scale_masks(float mask) > 0.5` (what
    /// the annotated image blends; the masks themselves when they are retina masks).
    pub fn on_image(&self) -> Result<Vec<u8>> {
        if self.shape == self.orig || self.is_empty() {
            return Ok(self.data.clone());
        }
        let (h0, w0) = (self.orig.0 as i64, self.orig.1 as i64);
        let all = self.to_tensor();
        let mut out = Vec::with_capacity(self.len() * self.orig.0 * self.orig.1);
        // Per-channel bilinear resizing: chunks bound the float intermediates, same result.
        for part in all.split(16, 0) {
            let up = scale_masks(
                &part.unsqueeze(0).to_kind(Kind::Float),
                (h0, w0),
                None,
                true,
            );
            let b = up.gt(0.5).to_kind(Kind::Uint8).contiguous().view([-1]);
            out.extend(Vec::<u8>::try_from(&b)?);
        }
        Ok(out)
    }
}

/// From NMS-kept detections in letterboxed-input pixels, their mask coefficients (row-major
/// `(n, nm)`) and the image's prototypes `(nm, mh, mw)` to predict's result: boxes mapped to the
/// original image and masks by `process_mask(upsample=True)` at input size, or by
/// `process_mask_native` with the mapped boxes at the original size (`retina`); detections whose
/// mask is empty are dropped with their masks (Ultralytics' `SegmentationPredictor`).
pub fn assemble(
    dets: Vec<Detection>,
    coefs: &[f32],
    protos: &Tensor,
    info: &LetterboxInfo,
    retina: bool,
) -> Result<(Vec<Detection>, Masks)> {
    assemble_opt(dets, coefs, protos, info, retina, true)
}

/// [`assemble`], keeping the detections with an empty mask unless `drop_empty` (Ultralytics skips that
/// filter while ReID `model: auto` features are taken, so they stay aligned with the rows).
pub fn assemble_opt(
    mut dets: Vec<Detection>,
    coefs: &[f32],
    protos: &Tensor,
    info: &LetterboxInfo,
    retina: bool,
    drop_empty: bool,
) -> Result<(Vec<Detection>, Masks)> {
    let size = protos.size();
    let &[nm, _, _] = size.as_slice() else {
        bail!("prototypes of shape {size:?}, expected (nm, mask height, mask width)");
    };
    let n = dets.len();
    if coefs.len() != n * nm as usize {
        bail!(
            "{} mask coefficients for {n} detections of {nm} prototypes",
            coefs.len()
        );
    }
    let shape = if retina { info.orig } else { info.shape };
    let mut masks = Masks {
        data: Vec::new(),
        shape,
        orig: info.orig,
    };
    if n == 0 {
        return Ok((dets, masks));
    }
    let boxes = |d: &[Detection]| {
        let flat: Vec<f32> = d.iter().flat_map(|d| d.xyxy).collect();
        Tensor::from_slice(&flat).view([n as i64, 4])
    };
    let c = Tensor::from_slice(coefs).view([n as i64, nm]);
    let protos = protos.to_device(tch::Device::Cpu);
    let m = if retina {
        scale_boxes(&mut dets, info);
        let hw = (info.orig.0 as i64, info.orig.1 as i64);
        process_mask_native(&protos, &c, &boxes(&dets), hw)
    } else {
        let hw = (info.shape.0 as i64, info.shape.1 as i64);
        let m = process_mask(&protos, &c, &boxes(&dets), hw, true);
        scale_boxes(&mut dets, info);
        m
    };
    let keep = Vec::<bool>::try_from(&m.amax([1, 2].as_slice(), false).gt(0))?;
    let data = Vec::<u8>::try_from(&m.contiguous().view([-1]))?;
    let per = shape.0 * shape.1;
    let mut kept = Vec::with_capacity(n);
    for (i, d) in dets.into_iter().enumerate() {
        if !drop_empty || keep.get(i).copied().unwrap_or(false) {
            kept.push(d);
            masks.data.extend_from_slice(&data[i * per..(i + 1) * per]);
        }
    }
    Ok((kept, masks))
}

/// The `save_txt` text of a segment result: `cls x1 y1 … xk yk [conf]` per detection (normalised
/// polygon, `%g`), detections whose polygon has fewer than 3 points skipped (8.4).
pub fn txt_lines(dets: &[Detection], masks: &Masks, save_conf: bool) -> String {
    let mut text = String::new();
    for (i, d) in dets.iter().enumerate() {
        let poly = masks.polygon(i, true);
        if let Some(line) = segment_txt_line(d.cls, &poly, save_conf.then_some(d.conf)) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    text
}

/// Ultralytics' `Annotator.masks` on an RGB image: with `m_i ∈ {0, 1}` (`masks`: `n x h x w` at the
/// image's size) and `I = pixel / 255`, `out = I · Π(1 − α·m_i) + max_i(α · colour_i/255 · m_i)`,
/// × 255 truncated, all in float32 as PyTorch computes it (every pixel, masked or not).
pub fn blend_masks(img: &mut image::RgbImage, masks: &[u8], colors: &[image::Rgb<u8>], alpha: f32) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let per = w * h;
    if per == 0 || masks.len() < per * colors.len() {
        return;
    }
    let mut inv = vec![1f32; per];
    let mut mcs = vec![0f32; per * 3];
    for (k, c) in colors.iter().enumerate() {
        let col = c.0.map(|v| v as f32 / 255.0 * alpha);
        let keep = 1.0 - alpha;
        for (p, &m) in masks[k * per..(k + 1) * per].iter().enumerate() {
            if m != 0 {
                inv[p] *= keep;
                for ch in 0..3 {
                    mcs[p * 3 + ch] = mcs[p * 3 + ch].max(col[ch]);
                }
            }
        }
    }
    for (p, px) in img.pixels_mut().enumerate() {
        for ch in 0..3 {
            let i = px.0[ch] as f32 / 255.0;
            px.0[ch] = ((i * inv[p] + mcs[p * 3 + ch]) * 255.0) as u8;
        }
    }
}

/// Draws a segment result's masks on `img` (the original image) in class colours, as the annotated
/// image has them before its boxes.
pub fn draw_masks(img: &mut image::RgbImage, dets: &[Detection], masks: &Masks) -> Result<()> {
    if masks.is_empty() {
        return Ok(());
    }
    if (img.height() as usize, img.width() as usize) != masks.orig {
        bail!(
            "masks of a {}x{} image drawn on a {}x{} one",
            masks.orig.1,
            masks.orig.0,
            img.width(),
            img.height()
        );
    }
    let on = masks.on_image()?;
    let colors: Vec<image::Rgb<u8>> = dets
        .iter()
        .take(masks.len())
        .map(|d| crate::plot::class_color(d.cls))
        .collect();
    blend_masks(img, &on, &colors, MASK_ALPHA);
    Ok(())
}
