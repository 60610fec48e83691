//! Shared helpers: where `../shared` is, and a loud skip when it is absent.
#![allow(dead_code)]

use std::path::PathBuf;

/// `<repo>/../shared`, or None (with a loud message) when it is absent (a user's clone).
pub fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if p.join("fixtures").exists() {
        Some(p.canonicalize().unwrap())
    } else {
        eprintln!("\n!!!!! SKIPPED: ../shared (fixtures and datasets) not found next to the repository !!!!!\n");
        None
    }
}

/// A fresh temporary folder for one test.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ryolo-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Arguments as the CLI would parse them.
pub fn args(s: &str) -> ryolo::cfg::Args {
    let c = ryolo::cfg::parse_args(&s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .unwrap();
    ryolo::cfg::Args::new(&c.overrides)
}

/// The Ultralytics-trained fixture model (`bt_yolo11n_best.pt`), fused, on the CPU.
pub fn bt_model(shared: &std::path::Path) -> ryolo::nn::DetectionModel {
    let f = shared.join("fixtures/ultralytics/bt_yolo11n_best.pt");
    let mut m = ryolo::weights::load_model(f.to_str().unwrap(), None, tch::Device::Cpu)
        .unwrap()
        .model;
    m.fuse();
    m
}

/// A 16-image synthetic dataset validated on its own training images (for overfit runs).
pub fn overfit_data(dir: &std::path::Path) -> PathBuf {
    overfit_data_with(dir, false)
}

/// The rows of a `results.csv` without the `time` column (equal across exact resumes).
pub fn rows_without_time(p: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != 1)
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// A synthetic dataset whose val split is its train split (for overfit tests): `polygons` writes
/// segment labels.
pub fn overfit_data_with(dir: &std::path::Path, polygons: bool) -> PathBuf {
    let yaml = ryolo::data::synth::generate_with(&dir.join("data"), 16, 96, 1, polygons).unwrap();
    std::fs::write(
        &yaml,
        std::fs::read_to_string(&yaml)
            .unwrap()
            .replace("val: images/val", "val: images/train"),
    )
    .unwrap();
    yaml
}

/// A learnable ImageFolder dataset under `root`: classes `blue`, `green`, `red` of noisy
/// 48x40 images dominated by that colour channel, `n_train` / `n_val` per class; returns `root`.
pub fn colour_folder(root: &std::path::Path, n_train: usize, n_val: usize) -> PathBuf {
    let mut state = 12345u64;
    let mut rnd = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    for (split, n) in [("train", n_train), ("val", n_val)] {
        for (k, name) in ["blue", "green", "red"].iter().enumerate() {
            let dir = root.join(split).join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let ch = [2, 1, 0][k];
            for i in 0..n {
                let img = ryolo::image::RgbImage::from_fn(48, 40, |_, _| {
                    let mut px = [0u8; 3];
                    for (c, v) in px.iter_mut().enumerate() {
                        let base = if c == ch { 170 } else { 40 };
                        *v = (base + rnd() % 60) as u8;
                    }
                    ryolo::image::Rgb(px)
                });
                img.save(dir.join(format!("{i:03}.png"))).unwrap();
            }
        }
    }
    root.to_path_buf()
}
