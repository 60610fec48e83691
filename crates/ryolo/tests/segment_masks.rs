//! Segmentation mask geometry against the Ultralytics 8.4.190 fixtures
//! (`shared/fixtures/ultralytics/segment/`): polygon → training masks (fillPoly + INTER_LINEAR,
//! overlap and separate) and mask → polygon → `masks.xy` / `save_txt` lines, all bit for bit.

mod common;
use ryolo::ops::{contour, raster};
use std::path::PathBuf;
use tch::Tensor;

fn fixtures() -> Option<PathBuf> {
    Some(common::shared()?.join("fixtures/ultralytics/segment"))
}

fn json(path: PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An `.npy` file as its shape and flat values of type `T`.
fn npy<T: tch::kind::Element>(path: PathBuf) -> (Vec<usize>, Vec<T>) {
    let t = Tensor::read_npy(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shape = t.size().iter().map(|&d| d as usize).collect();
    let n = t.numel();
    let mut v = vec![T::ZERO; n];
    t.copy_data(&mut v, n);
    (shape, v)
}

#[test]
fn training_masks_and_row_order_match_ultralytics() {
    let Some(fx) = fixtures() else {
        return;
    };
    let meta = json(fx.join("loss_fixture.json"));
    let image_of: Vec<usize> = meta["segments"]["image_index"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let (s_shape, segs) = npy::<f32>(fx.join("loss_segments.npy"));
    assert_eq!(s_shape, [13, 1000, 2]);
    let polys: Vec<Vec<[f32; 2]>> = segs
        .chunks_exact(2000)
        .map(|c| c.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
        .collect();
    // Already resampled to 1000 points: resampling leaves them untouched.
    assert_eq!(raster::resample_for_training(&polys), polys);
    let (o_shape, overlap) = npy::<u8>(fx.join("loss_masks_overlap.npy"));
    let (n_shape, separate) = npy::<u8>(fx.join("loss_masks_nonoverlap.npy"));
    assert_eq!((o_shape, n_shape), (vec![4, 80, 80], vec![13, 80, 80]));
    let (_, t_ov) = npy::<f32>(fx.join("loss_targets_overlap.npy"));
    let (_, t_no) = npy::<f32>(fx.join("loss_targets_nonoverlap.npy"));
    let rows = |t: &[f32]| t.chunks_exact(6).map(<[f32]>::to_vec).collect::<Vec<_>>();
    let (t_ov, t_no) = (rows(&t_ov), rows(&t_no));
    let px = 80 * 80;
    let mut orders = Vec::new();
    let mut first_row = 0;
    for img in 0..4 {
        let idx: Vec<usize> = (0..polys.len()).filter(|&k| image_of[k] == img).collect();
        let mine: Vec<Vec<[f32; 2]>> = idx.iter().map(|&k| polys[k].clone()).collect();
        // overlap_mask=False: one full mask per polygon, label order.
        let sep = raster::masks_separate(&mine, 320, 320, 4);
        assert_eq!(
            sep,
            separate[idx[0] * px..(idx[idx.len() - 1] + 1) * px],
            "image {img}: separate masks"
        );
        // overlap_mask=True: one index map, rows re-ordered by descending area.
        let (map, order) = raster::masks_overlap(&mine, 320, 320, 4);
        let want: Vec<u32> = overlap[img * px..(img + 1) * px]
            .iter()
            .map(|&v| v as u32)
            .collect();
        assert_eq!(map, want, "image {img}: overlap map");
        for (rank, &k) in order.iter().enumerate() {
            assert_eq!(
                t_ov[first_row + rank],
                t_no[first_row + k],
                "image {img}: target row {rank}"
            );
        }
        first_row += idx.len();
        orders.push(order);
    }
    // Measured areas (80x80): image 0 [1888 718 806 428 42 30 63 52].
    assert_eq!(
        orders,
        vec![
            vec![0, 2, 1, 3, 6, 7, 4, 5],
            vec![0, 1],
            vec![0, 1],
            vec![0]
        ]
    );
    let ones: usize = separate.iter().map(|&v| v as usize).sum();
    assert_eq!(
        ones,
        1888 + 718 + 806 + 428 + 42 + 30 + 63 + 52 + 332 + 52 + 771 + 271 + 1503
    );
}

/// Polygon of each mask → `masks.xy` (pixels of the original image) and `save_txt` lines.
fn polygons_and_lines(
    masks: &[u8],
    mask_hw: (usize, usize),
    orig_hw: (usize, usize),
    rows: &[(usize, usize, f32)],
) -> (Vec<Vec<[f32; 2]>>, Vec<String>) {
    let n = mask_hw.0 * mask_hw.1;
    let mut xy = Vec::new();
    let mut lines = Vec::new();
    for &(j, cls, conf) in rows {
        let poly = contour::mask_to_polygon(&masks[j * n..(j + 1) * n], mask_hw.0, mask_hw.1);
        xy.push(contour::scale_coords(&poly, mask_hw, orig_hw, false));
        let xyn = contour::scale_coords(&poly, mask_hw, orig_hw, true);
        lines.extend(contour::segment_txt_line(cls, &xyn, Some(conf)));
    }
    (xy, lines)
}

#[test]
fn polygons_and_save_txt_lines_match_ultralytics() {
    let Some(fx) = fixtures() else {
        return;
    };
    let post = json(fx.join("post_fixture.json"));
    let (p_shape, pred) = npy::<f32>(fx.join("post_pred.npy"));
    assert_eq!(p_shape, [4, 38]);
    let (m_shape, input_res) = npy::<u8>(fx.join("post_masks_input_res.npy"));
    assert_eq!(m_shape, [4, 320, 256]);
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let mut checked_lines = 0;
    let mut checked_points = 0;
    for (tag, case) in post["cases"].as_object().unwrap() {
        let hw = case["orig_shape_hw"].as_array().unwrap();
        let orig = (
            hw[0].as_u64().unwrap() as usize,
            hw[1].as_u64().unwrap() as usize,
        );
        let row = |j: usize| (j, pred[j * 38 + 5] as usize, pred[j * 38 + 4]);

        // retina_masks=False: masks at the letterboxed input resolution, kept = non-empty.
        let rf = &case["retina_false"];
        let kept: Vec<bool> = rf["kept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_bool().unwrap())
            .collect();
        for (j, &k) in kept.iter().enumerate() {
            let any = input_res[j * 320 * 256..(j + 1) * 320 * 256]
                .iter()
                .any(|&v| v != 0);
            assert_eq!(any, k, "{tag}: kept flag {j}");
        }
        let rows: Vec<_> = (0..4).filter(|&j| kept[j]).map(row).collect();
        let (xy, lines) = polygons_and_lines(&input_res, (320, 256), orig, &rows);
        let want_xy: Vec<Vec<[f32; 2]>> = rf["segments_xy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s.as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        let p = p.as_array().unwrap();
                        [p[0].as_f64().unwrap() as f32, p[1].as_f64().unwrap() as f32]
                    })
                    .collect()
            })
            .collect();
        assert_eq!(xy.len(), want_xy.len(), "{tag}: polygon count");
        for (i, (g, w)) in xy.iter().zip(&want_xy).enumerate() {
            assert_eq!(g, w, "{tag}: masks.xy[{i}]");
            checked_points += w.len();
        }
        let want = strings(&rf["save_txt_lines"]);
        assert_eq!(lines, want, "{tag}: retina_masks=False save_txt");
        checked_lines += want.len();

        // retina_masks=True: masks already at the original resolution (identity scaling).
        let rt = &case["retina_true"];
        let (n_shape, native) = npy::<u8>(fx.join(rt["masks_file"].as_str().unwrap()));
        assert_eq!(n_shape, [4, orig.0, orig.1]);
        let rows: Vec<_> = (0..4).map(row).collect();
        let (_, lines) = polygons_and_lines(&native, orig, orig, &rows);
        let want = strings(&rt["save_txt_lines"]);
        assert_eq!(lines, want, "{tag}: retina_masks=True save_txt");
        checked_lines += want.len();
    }
    assert_eq!(checked_lines, 16);
    assert_eq!(checked_points, 2 * (56 + 104 + 182 + 80));
}
