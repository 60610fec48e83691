//! Segment predict: the glue from NMS rows + prototypes to results (boxes, kept detections, masks,
//! polygons, `save_txt` lines) against Ultralytics 8.4.190's `post_*` fixture, the mask overlay of
//! the annotated image against `Annotator.masks`, and `yolo segment predict` end to end.

mod common;
use ryolo::engine::predict::segment::{assemble, blend_masks, draw_masks, txt_lines, MASK_ALPHA};
use ryolo::engine::predict::{Masks, Predictor};
use ryolo::ops::{Detection, LetterboxInfo};
use std::path::{Path, PathBuf};
use tch::Tensor;

fn seg_dir(shared: &Path) -> PathBuf {
    shared.join("fixtures/ultralytics/segment")
}

fn npy_u8(path: PathBuf) -> (Vec<i64>, Vec<u8>) {
    let t = Tensor::read_npy(path).unwrap();
    (t.size(), Vec::<u8>::try_from(t.view([-1])).unwrap())
}

/// The letterbox of an `(h0, w0)` image into the fixture's 320×256 input (as `letterbox` reports it).
fn info(orig: (usize, usize)) -> LetterboxInfo {
    let (h0, w0) = (orig.0 as f64, orig.1 as f64);
    let r = (320.0 / h0).min(256.0 / w0);
    let (nh, nw) = ((h0 * r).round() as usize, (w0 * r).round() as usize);
    LetterboxInfo {
        orig,
        shape: (320, 256),
        ratio: r,
        pad: ((256 - nw) / 2, (320 - nh) / 2),
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn fixture_rows_and_prototypes_give_ultralytics_results_and_lines() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = seg_dir(&shared);
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("post_fixture.json")).unwrap())
            .unwrap();
    let protos = Tensor::read_npy(d.join("post_proto.npy")).unwrap();
    let pred = Tensor::read_npy(d.join("post_pred.npy")).unwrap();
    let rows: Vec<f32> = Vec::try_from(pred.view([-1])).unwrap();
    // NMS output as HostOutput::detections_with_masks returns it: detections + row-major coefs.
    let dets: Vec<Detection> = rows
        .chunks(38)
        .map(|r| Detection {
            xyxy: [r[0], r[1], r[2], r[3]],
            conf: r[4],
            cls: r[5] as usize,
        })
        .collect();
    let coefs: Vec<f32> = rows.chunks(38).flat_map(|r| r[6..].to_vec()).collect();
    let (_, input_res) = npy_u8(d.join("post_masks_input_res.npy"));
    let mut lines_checked = 0;
    for (tag, case) in fx["cases"].as_object().unwrap() {
        let hw = case["orig_shape_hw"].as_array().unwrap();
        let orig = (
            hw[0].as_u64().unwrap() as usize,
            hw[1].as_u64().unwrap() as usize,
        );
        let want_boxes: Vec<[f32; 4]> = case["scaled_boxes_xyxy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| std::array::from_fn(|i| b[i].as_f64().unwrap() as f32))
            .collect();
        for retina in [false, true] {
            let (got, masks) =
                assemble(dets.clone(), &coefs, &protos, &info(orig), retina).unwrap();
            let side = if retina {
                "retina_true"
            } else {
                "retina_false"
            };
            let c = &case[side];
            // Kept detections (all four survive in this fixture; the flags say so).
            let kept: Vec<usize> = match c["kept"].as_array() {
                Some(k) => (0..4).filter(|&j| k[j].as_bool().unwrap()).collect(),
                None => (0..4).collect(),
            };
            assert_eq!(got.len(), kept.len(), "{tag} {side}: kept count");
            assert_eq!(masks.len(), kept.len(), "{tag} {side}: mask count");
            for (g, &j) in got.iter().zip(&kept) {
                assert_eq!(g.xyxy, want_boxes[j], "{tag} {side}: box {j}");
                assert_eq!((g.conf, g.cls), (dets[j].conf, dets[j].cls));
            }
            // Mask bitmaps: input resolution, or the original size for retina masks.
            let want: Vec<u8> = if retina {
                let file = c["masks_file"].as_str().unwrap();
                let (shape, data) = npy_u8(d.join(file));
                assert_eq!(shape, [4, orig.0 as i64, orig.1 as i64]);
                data
            } else {
                input_res.clone()
            };
            let per = masks.shape.0 * masks.shape.1;
            let want_shape = if retina { orig } else { (320, 256) };
            assert_eq!((masks.shape, masks.orig), (want_shape, orig));
            for (i, &j) in kept.iter().enumerate() {
                assert!(
                    masks.mask(i).unwrap() == &want[j * per..(j + 1) * per],
                    "{tag} {side}: mask {j} differs"
                );
            }
            // Polygons in original pixels (`Masks.xy`; the fixture has them for retina=False).
            if let Some(xy) = c["segments_xy"].as_array() {
                let want_xy: Vec<Vec<[f32; 2]>> = xy
                    .iter()
                    .map(|s| {
                        s.as_array()
                            .unwrap()
                            .iter()
                            .map(|p| [p[0].as_f64().unwrap() as f32, p[1].as_f64().unwrap() as f32])
                            .collect()
                    })
                    .collect();
                assert_eq!(masks.xy(), want_xy, "{tag} {side}: masks.xy");
            }
            // save_txt (save_conf=True) lines, exact.
            let text = txt_lines(&got, &masks, true);
            let got_lines: Vec<String> = text.lines().map(str::to_string).collect();
            assert_eq!(got_lines, strings(&c["save_txt_lines"]), "{tag} {side}");
            lines_checked += got_lines.len();
            // Without save_conf the lines lose their last value.
            let plain = txt_lines(&got, &masks, false);
            for (a, b) in plain.lines().zip(&got_lines) {
                assert_eq!(Some(a), b.rsplit_once(' ').map(|x| x.0));
            }
        }
    }
    assert_eq!(lines_checked, 16);
}

#[test]
fn empty_masks_drop_their_detections_and_bad_inputs_are_errors() {
    // Prototypes all −1 except channel 0 = +1: coefficient (1, 0, …) gives a full mask,
    // (−1, 0, …) an empty one.
    let protos = Tensor::cat(
        &[
            Tensor::ones([1, 8, 8], (tch::Kind::Float, tch::Device::Cpu)),
            -Tensor::ones([31, 8, 8], (tch::Kind::Float, tch::Device::Cpu)),
        ],
        0,
    );
    let det = |x: f32, conf: f32| Detection {
        xyxy: [x, 4.0, x + 8.0, 20.0],
        conf,
        cls: 3,
    };
    let mut coefs = vec![0f32; 3 * 32];
    coefs[0] = 1.0;
    coefs[32] = -1.0;
    coefs[64] = 1.0;
    let lb = LetterboxInfo {
        orig: (32, 32),
        shape: (32, 32),
        ratio: 1.0,
        pad: (0, 0),
    };
    let dets = vec![det(0.0, 0.9), det(8.0, 0.8), det(16.0, 0.7)];
    for retina in [false, true] {
        let (kept, masks) = assemble(dets.clone(), &coefs, &protos, &lb, retina).unwrap();
        let confs: Vec<f32> = kept.iter().map(|d| d.conf).collect();
        assert_eq!(confs, [0.9, 0.7], "retina={retina}");
        assert_eq!(masks.len(), 2);
        // The box is the mask: 8 columns × 16 rows.
        let on: usize = masks.mask(1).unwrap().iter().map(|&v| v as usize).sum();
        assert_eq!(on, 128);
        assert_eq!(
            txt_lines(&kept, &masks, false).lines().next().unwrap(),
            "3 0 0.125 0 0.59375 0.21875 0.59375 0.21875 0.125"
        );
    }
    let (none, masks) = assemble(Vec::new(), &[], &protos, &lb, false).unwrap();
    assert!(none.is_empty() && masks.is_empty() && masks.xy().is_empty());
    assert!(assemble(dets.clone(), &coefs[..40], &protos, &lb, false).is_err());
    assert!(assemble(dets, &coefs, &protos.view([32, 64]), &lb, false).is_err());
}

/// Deterministic RGB test image `(x·37 + y·11 + c·71) mod 256`.
fn pattern(h: u32, w: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb(std::array::from_fn(|c| {
            ((x * 37 + y * 11 + c as u32 * 71) % 256) as u8
        }))
    })
}

/// Three overlapping synthetic `(h, w)` masks.
fn stripes(n: usize, h: usize, w: usize) -> Vec<u8> {
    let mut m = vec![0u8; n * h * w];
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                let a = (x + 2 * y + 3 * i) % 5 < 2;
                let b = x >= i + 2 && y > i && x + i < w && y + 1 < h;
                m[(i * h + y) * w + x] = (a || b) as u8;
            }
        }
    }
    m
}

// Reference pixels (RGB, row-major) printed by Ultralytics 8.4.190: the same image and masks (BGR
// copy) through `Annotator(im, line_width=2).masks(torch.from_numpy(masks), colors=[colors(c, True)
// for c in (0, 5, 19)])` (alpha 0.5), converted back to RGB.
#[rustfmt::skip]
const REF_SAME_SIZE: [u8; 144] = [81, 145, 163, 20, 75, 217, 164, 128, 218, 183, 146, 237, 155, 237, 22, 127, 127, 145, 113, 39, 181, 129, 92, 183, 133, 96, 187, 151, 115, 205, 102, 166, 184, 111, 175, 129, 81, 136, 150, 176, 58, 148, 185, 67, 157, 84, 148, 166, 92, 174, 87, 95, 160, 177, 50, 104, 246, 160, 106, 132, 170, 115, 141, 153, 130, 139, 158, 134, 143, 14, 69, 211, 18, 73, 215, 162, 126, 216, 154, 100, 189, 145, 154, 131, 150, 159, 135, 154, 131, 140, 191, 73, 162, 136, 82, 172, 149, 113, 203, 121, 203, 117, 110, 174, 128, 166, 112, 137, 151, 128, 137, 156, 133, 141, 128, 137, 146, 92, 157, 174, 94, 159, 176, 48, 102, 244, 192, 155, 118, 210, 174, 136, 182, 136, 50, 141, 141, 159, 12, 67, 209, 156, 120, 210];

// The first 4 rows (16 px wide) of the same with 8×8 masks on a 10×16 image (`scale_masks` then
// `> 0.5`: crop rows 1..6, bilinear to 10×16).
#[rustfmt::skip]
const REF_SCALED_ROWS_0_3: [u8; 192] = [127, 91, 181, 146, 109, 200, 164, 128, 218, 183, 146, 237, 118, 182, 136, 127, 127, 145, 136, 136, 154, 81, 146, 163, 22, 76, 218, 40, 95, 237, 156, 101, 127, 165, 111, 136, 174, 56, 146, 183, 65, 155, 82, 146, 164, 91, 156, 173, 133, 96, 187, 151, 115, 205, 170, 133, 224, 188, 152, 114, 120, 185, 138, 130, 130, 148, 139, 139, 157, 84, 148, 166, 27, 82, 224, 46, 100, 242, 158, 104, 130, 168, 113, 139, 177, 59, 148, 186, 68, 158, 85, 149, 167, 94, 158, 176, 92, 174, 87, 110, 192, 106, 105, 169, 187, 114, 178, 132, 87, 141, 155, 105, 32, 174, 188, 70, 160, 133, 79, 169, 143, 88, 178, 152, 98, 187, 144, 153, 130, 149, 158, 134, 153, 130, 139, 158, 135, 144, 16, 70, 212, 34, 89, 231, 97, 179, 93, 116, 198, 111, 107, 172, 189, 117, 181, 135, 92, 147, 161, 111, 37, 179, 191, 73, 162, 136, 82, 172, 145, 91, 181, 155, 100, 190, 145, 154, 131, 150, 159, 136, 155, 132, 140, 127, 136, 145, 21, 76, 218, 40, 94, 236];

#[test]
fn mask_overlay_matches_ultralytics_annotator() {
    let classes = [0usize, 5, 19];
    let colors: Vec<image::Rgb<u8>> = classes
        .iter()
        .map(|&c| ryolo::plot::class_color(c))
        .collect();
    // Masks at the image's size: the formula alone.
    let mut img = pattern(6, 8);
    blend_masks(&mut img, &stripes(3, 6, 8), &colors, MASK_ALPHA);
    assert_eq!(img.as_raw().as_slice(), REF_SAME_SIZE.as_slice());
    // By hand, pixel (0, 0) = RGB (0, 71, 142) under masks 0 and 2 (colours 042AFF, A2FF0B):
    // I·0.25 + max(0.5·c/255), ×255 truncated → R: 162/510 → 81, G: 71/1020 + 0.5 → 145,
    // B: 142/1020 + 0.5 → 163.
    assert_eq!(&img.as_raw()[..3], &[81, 145, 163]);
    // Input-resolution masks (8×8 letterbox of a 10×16 image) through `draw_masks`.
    let dets: Vec<Detection> = classes
        .iter()
        .map(|&cls| Detection {
            xyxy: [0.0, 0.0, 1.0, 1.0],
            conf: 0.5,
            cls,
        })
        .collect();
    let masks = Masks {
        data: stripes(3, 8, 8),
        shape: (8, 8),
        orig: (10, 16),
    };
    let mut img = pattern(10, 16);
    draw_masks(&mut img, &dets, &masks).unwrap();
    assert_eq!(&img.as_raw()[..192], REF_SCALED_ROWS_0_3.as_slice());
    // Wrong canvas size: refused, nothing drawn.
    let mut small = pattern(5, 5);
    assert!(draw_masks(&mut small, &dets, &masks).is_err());
    assert_eq!(small, pattern(5, 5));
}

/// The seed-0 checkpoint (which finds nothing: its random masks are all empty) with three biases
/// changed and saved as safetensors: class 0's score bias +2 (every anchor ≈ 0.88), the last
/// prototype BN bias +3 (prototypes ≈ +2.9) and every coefficient bias +1, so masks fill their boxes.
fn masked_model(shared: &Path, dir: &Path) -> PathBuf {
    let f = seg_dir(shared).join("yolo11n-seg_seed0.pt");
    let m = ryolo::weights::load_model(f.to_str().unwrap(), None, tch::Device::Cpu)
        .unwrap()
        .model;
    let mut changed = 0;
    tch::no_grad(|| {
        for (name, mut t) in m.vs.variables() {
            if name.ends_with("proto.cv3.bn.bias") {
                let _ = t.fill_(3.0);
                changed += 1;
            } else if (0..3).any(|i| name.ends_with(&format!("cv4.{i}.2.bias"))) {
                let _ = t.fill_(1.0);
                changed += 1;
            } else if (0..3).any(|i| name.ends_with(&format!("cv3.{i}.2.bias"))) {
                let _ = t.get(0).fill_(2.0);
                changed += 1;
            }
        }
    });
    assert_eq!(changed, 7, "proto, 3 coefficient and 3 class biases");
    let out = dir.join("seg_masked.safetensors");
    ryolo::weights::save_checkpoint(&m, "yolo11n-seg", Default::default(), &out).unwrap();
    out
}

fn bus(shared: &Path) -> PathBuf {
    shared.join("datasets/samples/bus.jpg")
}

fn run_predict(line: &str) {
    // As the CLI's predict branch: batch 1 unless given.
    ryolo::engine::predict::run(&common::args(&format!("{line} batch=1"))).unwrap();
}

#[test]
fn cli_segment_predict_saves_images_and_polygon_labels() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = common::tmp("segpredict-cli");
    let seed0 = seg_dir(&shared).join("yolo11n-seg_seed0.pt");
    // The untrained checkpoint: every detection's mask is empty, so nothing is kept and no label
    // file is written (Ultralytics 8.4.190 gives 0 results for bus.jpg at any conf, imgsz 320/640,
    // retina on/off); the annotated image is still saved.
    run_predict(&format!(
        "segment predict model={} source={} conf=0.0001 save_txt=True project={} name=seed0",
        seed0.display(),
        bus(&shared).display(),
        d.display()
    ));
    assert!(d.join("seed0/bus.jpg").exists());
    assert!(!d.join("seed0/labels/bus.txt").exists());
    // A copy with biases set so masks are non-empty: polygon lines, one per kept detection.
    let model = masked_model(&shared, &d);
    for (name, retina) in [("masked", false), ("retina", true)] {
        run_predict(&format!(
            "segment predict model={} source={} imgsz=320 conf=0.0001 save_txt=True save_conf=True retina_masks={retina} project={} name={name}",
            model.display(),
            bus(&shared).display(),
            d.display()
        ));
        let img = image::open(d.join(format!("{name}/bus.jpg"))).unwrap();
        assert_eq!((img.width(), img.height()), (810, 1080));
        let text = std::fs::read_to_string(d.join(format!("{name}/labels/bus.txt"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(!lines.is_empty(), "{name}: no lines");
        for l in &lines {
            let v: Vec<f64> = l.split(' ').map(|x| x.parse().unwrap()).collect();
            assert_eq!(v[0], 0.0, "{name}: class 0 only");
            // cls, ≥ 3 points, conf.
            assert!(v.len() >= 8 && v.len().is_multiple_of(2), "{name}: {l}");
            assert!(
                v[1..].iter().all(|x| (0.0..=1.0).contains(x)),
                "{name}: {l}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn library_predictions_carry_masks_and_polygons() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = common::tmp("segpredict-lib");
    let model = masked_model(&shared, &d);
    let mut p = Predictor::load(model.to_str().unwrap(), 320, tch::Device::Cpu).unwrap();
    let img = ryolo::engine::predict::load_image(&bus(&shared)).unwrap();
    let pred = p.predict(&img).unwrap();
    let masks = pred.masks.as_ref().expect("a segment model gives masks");
    let n = pred.detections.len();
    assert!(n > 0);
    assert_eq!(masks.len(), n);
    assert_eq!((masks.shape, masks.orig), ((320, 256), (1080, 810)));
    assert_eq!(masks.to_tensor().size(), [n as i64, 320, 256]);
    let xy = masks.xy();
    assert_eq!(xy.len(), n);
    for (i, (poly, det)) in xy.iter().zip(&pred.detections).enumerate() {
        assert!(
            masks.mask(i).unwrap().iter().any(|&v| v != 0),
            "mask {i} empty"
        );
        assert!(poly.len() >= 3);
        // Masks fill their boxes here, so polygons lie within a pixel or so of the box.
        let [x1, y1, x2, y2] = det.xyxy;
        for q in poly {
            assert!(q[0] >= x1 - 6.0 && q[0] <= x2 + 6.0 && q[1] >= y1 - 6.0 && q[1] <= y2 + 6.0);
        }
    }
    // The annotated image has the masks even without boxes.
    let o = ryolo::engine::predict::SaveOptions {
        dir: d.clone(),
        save: true,
        save_txt: false,
        save_conf: false,
        save_crop: false,
        show_labels: false,
        show_conf: false,
        show_boxes: false,
        line_width: None,
    };
    let canvas = ryolo::engine::predict::annotate(&p, &img, &pred, &o);
    let [x1, y1, _, _] = pred.detections[0].xyxy;
    let (x, y) = (x1 as u32 + 2, y1 as u32 + 2);
    assert_ne!(canvas.get_pixel(x, y), img.get_pixel(x, y));
    // Retina masks: the same detections, masks at the original size.
    p.retina_masks = true;
    let retina = p.predict(&img).unwrap();
    let rm = retina.masks.as_ref().unwrap();
    assert_eq!((rm.shape, rm.len()), ((1080, 810), n));
    let boxes = |q: &ryolo::engine::predict::Prediction| -> Vec<[f32; 4]> {
        q.detections.iter().map(|d| d.xyxy).collect()
    };
    assert_eq!(boxes(&retina), boxes(&pred));
    // augment=True on a segment model: a warning, and the plain prediction.
    p.retina_masks = false;
    p.augment = true;
    let aug = p.predict(&img).unwrap();
    assert_eq!(boxes(&aug), boxes(&pred));
    assert_eq!(aug.masks, pred.masks);
    let _ = std::fs::remove_dir_all(&d);
}
