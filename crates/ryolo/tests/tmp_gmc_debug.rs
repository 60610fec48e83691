mod common;
use ryolo::track::gmc::corners::{good_features, CornerParams};
use ryolo::track::gmc::gray::Gray;
use ryolo::track::gmc::lk;

#[test]
fn dump_lk_frame() {
    let shared = common::shared().unwrap();
    let video = shared.join("datasets/samples/car-detection.mp4");
    let r = ryolo::data::video::VideoReader::open(video.to_str().unwrap(), false).unwrap();
    let all: Vec<image::RgbImage> = r.take(260).map(|f| f.unwrap()).collect();
    let fr = &all[160..];
    let k: usize = std::env::var("K").map(|v| v.parse().unwrap()).unwrap_or(46);
    let ml: usize = std::env::var("ML").map(|v| v.parse().unwrap()).unwrap_or(3);
    let p = Gray::from_rgb(&fr[k - 1]).half();
    let s = Gray::from_rgb(&fr[k]).half();
    let c = good_features(&p, CornerParams::default());
    let (next, st) = lk::track_levels(&p, &s, &c, ml);
    let out = serde_json::json!({"corners": c, "next": next, "status": st});
    std::fs::write("/tmp/lk_dump.json", out.to_string()).unwrap();
}

#[test]
fn dump_eig() {
    let shared = common::shared().unwrap();
    let video = shared.join("datasets/samples/car-detection.mp4");
    let r = ryolo::data::video::VideoReader::open(video.to_str().unwrap(), false).unwrap();
    let all: Vec<image::RgbImage> = r.take(260).map(|f| f.unwrap()).collect();
    let p = Gray::from_rgb(&all[160 + 45]).half();
    let e = ryolo::track::gmc::corners::min_eigen(&p);
    let bytes: Vec<u8> = e.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write("/tmp/eig.bin", bytes).unwrap();
}
