//! Our global motion compensation (sparseOptFlow, ecc) against OpenCV/Ultralytics: stage by stage on the
//! car video (reference numbers from scripts/gmc/reference.py), whole warps against the tracking fixture,
//! and BoT-SORT / TrackTrack driven by our warps instead of the recorded ones.

mod common;
mod track_util;

use ryolo::track::gmc::affine::{estimate_partial, CvRng, RansacParams};
use ryolo::track::gmc::corners::{good_features, CornerParams};
use ryolo::track::gmc::ecc::find_transform_euclidean;
use ryolo::track::gmc::gray::Gray;
use ryolo::track::gmc::{lk, Ecc, Gmc, SparseOptFlow, Warp};
use serde_json::Value;
use std::sync::OnceLock;

/// The committed reference numbers (OpenCV 5.1 through Ultralytics' GMC class).
fn reference() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gmc_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Frames 160–259 (0-based) of the car video as our ffmpeg reader decodes them (`None`: no shared data).
fn frames() -> Option<&'static Vec<image::RgbImage>> {
    static F: OnceLock<Option<Vec<image::RgbImage>>> = OnceLock::new();
    F.get_or_init(|| {
        let shared = common::shared()?;
        let video = shared.join("datasets/samples/car-detection.mp4");
        let r = ryolo::data::video::VideoReader::open(video.to_str()?, false).ok()?;
        let all: Vec<image::RgbImage> = r.take(260).map(|f| f.unwrap()).collect();
        assert_eq!(all.len(), 260, "car video shorter than 260 frames");
        Some(all[160..].to_vec())
    })
    .as_ref()
}

/// A JSON `[[x, y], …]` list as float32 points.
fn pts(v: &Value) -> Vec<[f32; 2]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| [p[0].as_f64().unwrap() as f32, p[1].as_f64().unwrap() as f32])
        .collect()
}

/// A JSON 2×3 matrix.
fn warp(v: &Value) -> Warp {
    let r = |i: usize| -> [f64; 3] { std::array::from_fn(|j| v[i][j].as_f64().unwrap()) };
    [r(0), r(1)]
}

/// The synthetic test image of scripts/gmc/reference.py (integer arithmetic only).
fn synthetic(w: usize, h: usize) -> Gray {
    let mut d = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut v = ((x * 7 + y * 3) % 64) as i32;
            if (x / 20 + y / 15) % 2 == 0 {
                v += 120;
            }
            let (dx, dy) = (x as i32 - 100, y as i32 - 60);
            if dx * dx + dy * dy < 400 {
                v = 230;
            }
            d[y * w + x] = v as u8;
        }
    }
    Gray::new(w, h, d).unwrap()
}

#[test]
fn gray_and_downscale_equal_opencv() {
    let Some(fr) = frames() else { return };
    let r = reference();
    for (i, st) in r["stages"].as_array().unwrap().iter().enumerate() {
        let g = Gray::from_rgb(&fr[i]);
        let s = g.half();
        let sum = |x: &Gray| x.data.iter().map(|&v| v as u64).sum::<u64>();
        assert_eq!(sum(&g), st["gray_sum"].as_u64().unwrap(), "frame {i}: gray sum");
        assert_eq!((s.w, s.h), (384, 216));
        assert_eq!(sum(&s), st["small_sum"].as_u64().unwrap(), "frame {i}: downscaled sum");
    }
    let blur = Gray::from_rgb(&fr[0]).gaussian3(1.5).half();
    let sum: u64 = blur.data.iter().map(|&v| v as u64).sum();
    assert_eq!(sum, r["ecc_blur_small_sum"].as_u64().unwrap(), "blurred+downscaled sum");
}

#[test]
fn corners_equal_opencv_on_video_frames() {
    let Some(fr) = frames() else { return };
    let r = reference();
    for (i, st) in r["stages"].as_array().unwrap().iter().enumerate() {
        let s = Gray::from_rgb(&fr[i]).half();
        let got = good_features(&s, CornerParams::default());
        let want = pts(&st["corners"]);
        eprintln!("frame {i}: {} corners (OpenCV {})", got.len(), want.len());
        assert_eq!(got, want, "frame {i}: corners");
    }
}

#[test]
fn synthetic_corners_equal_opencv() {
    let r = reference();
    let s = &r["synthetic"];
    let img = synthetic(160, 120);
    let got = good_features(&img, CornerParams::default());
    let want = pts(&s["corners"]);
    let same = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
    eprintln!("synthetic: {} corners (OpenCV {}), first {same} identical", got.len(), want.len());
    assert_eq!(got, want);
}

#[test]
fn lk_equals_opencv_on_video_frames() {
    let Some(fr) = frames() else { return };
    let r = reference();
    let st = r["stages"].as_array().unwrap();
    for i in 1..st.len() {
        let prev = Gray::from_rgb(&fr[i - 1]).half();
        let cur = Gray::from_rgb(&fr[i]).half();
        let p = pts(&st[i - 1]["corners"]);
        let (next, status) = lk::track(&prev, &cur, &p);
        let want = pts(&st[i]["lk_next"]);
        let wst: Vec<bool> = st[i]["lk_status"].as_array().unwrap().iter().map(|v| v.as_u64() == Some(1)).collect();
        assert_eq!(status, wst, "frame {i}: LK status");
        let mut worst = 0f32;
        let mut exact = 0;
        for k in 0..next.len() {
            if !status[k] {
                continue;
            }
            let d = (next[k][0] - want[k][0]).abs().max((next[k][1] - want[k][1]).abs());
            worst = worst.max(d);
            exact += (next[k] == want[k]) as usize;
        }
        eprintln!("frame {i}: LK {exact}/{} points bit-identical, worst |Δ| {worst:.3e} px", next.len());
        assert_eq!(exact, status.iter().filter(|&&s| s).count(), "frame {i}: LK points");
    }
}
