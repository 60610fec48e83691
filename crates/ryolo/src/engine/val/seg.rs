//! The segment parts of validation (spec/segment.md §7.1): ground-truth masks from the letterboxed
//! polygons, predicted masks from the prototypes, both on the prediction grid.

use crate::ops::masks::process_mask;
use crate::ops::raster::{masks_overlap, masks_separate, resample_for_training};
use tch::{Kind, Tensor};

/// How ground-truth masks are built (`overlap_mask`, `mask_ratio`) and where masks are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskOpts {
    /// One index map per image, smaller objects over larger ones (visible parts only).
    pub overlap: bool,
    /// Ground-truth downsampling factor.
    pub ratio: usize,
    /// Compare at the full input resolution (`save_json` / `save_txt`) instead of 1/4.
    pub native: bool,
}

impl Default for MaskOpts {
    fn default() -> Self {
        Self {
            overlap: true,
            ratio: 4,
            native: false,
        }
    }
}

/// Normalised polygons of one image in letterboxed pixels: resampled to 1000 points, then
/// `x * w * r + pad` in float32 (Ultralytics' denormalise, scale, add padding).
pub fn letterbox_polygons(
    polys: &[Vec<[f32; 2]>],
    (rw, rh): (f32, f32),
    r: f32,
    (padw, padh): (f32, f32),
) -> Vec<Vec<[f32; 2]>> {
    resample_for_training(polys)
        .into_iter()
        .map(|p| {
            p.into_iter()
                .map(|[x, y]| [x * rw * r + padw, y * rh * r + padh])
                .collect()
        })
        .collect()
}

/// Ground-truth masks of one image on the prediction grid `(gh, gw)`: binary `(n, gh*gw)` rows and
/// the label order they follow (overlap mode re-orders the rows by descending area).
pub fn gt_masks(
    polys: &[Vec<[f32; 2]>],
    (h, w): (usize, usize),
    (gh, gw): (usize, usize),
    o: MaskOpts,
) -> (Vec<u8>, Vec<usize>) {
    let r = o.ratio.max(1);
    let (mh, mw) = (h / r, w / r);
    let n = polys.len();
    let (masks, order) = if o.overlap {
        let (map, order) = masks_overlap(polys, h, w, r);
        let mut out = vec![0u8; n * mh * mw];
        for (i, row) in out.chunks_mut((mh * mw).max(1)).enumerate().take(n) {
            for (d, &v) in row.iter_mut().zip(&map) {
                *d = u8::from(v == i as u32 + 1);
            }
        }
        (out, order)
    } else {
        (masks_separate(polys, h, w, r), (0..n).collect())
    };
    if (mh, mw) == (gh, gw) || n == 0 {
        let mut m = masks;
        m.resize(n * gh * gw, 0);
        return (m, order);
    }
    // A different grid: bilinear resize, then > 0.5 (Ultralytics' validator).
    let t = Tensor::from_slice(&masks)
        .view([1, n as i64, mh as i64, mw as i64])
        .to_kind(Kind::Float)
        .upsample_bilinear2d([gh as i64, gw as i64], false, None, None)
        .gt(0.5)
        .to_kind(Kind::Uint8)
        .contiguous();
    (Vec::<u8>::try_from(t.view([-1])).unwrap_or_default(), order)
}

/// Predicted masks of one image, `(n, gh*gw)` bytes on the prediction grid: 1/4 of the input
/// (`process_mask`), or the input size when `native`.
pub fn pred_masks(
    protos: &Tensor,
    coefs: &[f32],
    boxes: &[[f32; 4]],
    (h, w): (usize, usize),
    native: bool,
) -> (Vec<u8>, (usize, usize)) {
    let (_, mh, mw) = protos.size3().unwrap_or((0, 0, 0));
    let n = boxes.len() as i64;
    let nm = if n > 0 { coefs.len() as i64 / n } else { 0 };
    let grid = if native {
        (h, w)
    } else {
        (mh as usize, mw as usize)
    };
    if n == 0 {
        return (Vec::new(), grid);
    }
    let c = Tensor::from_slice(coefs).view([n, nm]);
    let flat: Vec<f32> = boxes.iter().flatten().copied().collect();
    let b = Tensor::from_slice(&flat).view([n, 4]);
    let m = if native {
        crate::ops::masks::process_mask_native(protos, &c, &b, (h as i64, w as i64))
    } else {
        process_mask(protos, &c, &b, (h as i64, w as i64), false)
    };
    let m = m.to_kind(Kind::Uint8).contiguous().view([-1]);
    (Vec::<u8>::try_from(m).unwrap_or_default(), grid)
}

/// What `save_txt` / `save_json` keep of one predicted mask: its polygon normalised to the original
/// image (`save_txt`) and its COCO RLE in original pixels (`save_json`).
#[derive(Debug, Clone, Default)]
pub struct MaskOut {
    /// Normalised polygon (Ultralytics `masks.xyn`); empty when the mask has no contour.
    pub polygon: Vec<[f32; 2]>,
    /// `(h0, w0, counts)` compressed RLE of the mask mapped to the original image and truncated to
    /// bytes (only pixels whose interpolated value is exactly 1 survive, as Ultralytics' `.byte()`).
    pub rle: Option<(usize, usize, String)>,
}

/// The saved forms of one image's input-resolution masks `(n, h*w)`: polygons, and RLEs when `rle`;
/// `gain` `(x, y)` and `pad` `(x, y)` are the letterbox mapping to the original `(h0, w0)`. With
/// `native` (masks on the input grid: `save_json` / `save_txt`) both come from the masks mapped to
/// the original image and truncated to bytes, as Ultralytics' `scale_preds` (its `save_txt`
/// polygons are the contours of those masks); otherwise the polygons are mapped from the grid.
pub fn mask_outputs(
    masks: &[u8],
    (h, w): (usize, usize),
    (h0, w0): (usize, usize),
    gain: (f32, f32),
    pad: (f32, f32),
    rle: bool,
    native: bool,
) -> Vec<MaskOut> {
    let npix = h * w;
    if npix == 0 {
        return Vec::new();
    }
    let n = masks.len() / npix;
    if !native || n == 0 || h0 * w0 == 0 {
        return masks
            .chunks(npix)
            .map(|m| {
                let poly = crate::ops::contour::mask_to_polygon(m, h, w);
                MaskOut {
                    polygon: crate::ops::contour::scale_coords(&poly, (h, w), (h0, w0), true),
                    rle: None,
                }
            })
            .collect();
    }
    let t = Tensor::from_slice(masks)
        .view([1, n as i64, h as i64, w as i64])
        .to_kind(Kind::Float);
    let rp = ((gain.1 as f64, gain.0 as f64), (pad.0 as f64, pad.1 as f64));
    let up = crate::ops::masks::scale_masks(&t, (h0 as i64, w0 as i64), Some(rp), true)
        .squeeze_dim(0)
        .to_kind(Kind::Uint8)
        .contiguous();
    (0..n)
        .map(|i| {
            let m = Vec::<u8>::try_from(up.get(i as i64).view([-1])).unwrap_or_default();
            let poly = crate::ops::contour::mask_to_polygon(&m, h0, w0);
            MaskOut {
                polygon: crate::ops::contour::scale_coords(&poly, (h0, w0), (h0, w0), true),
                rle: rle.then(|| (h0, w0, crate::ops::rle::rle_encode(&m, h0, w0))),
            }
        })
        .collect()
}
