//! DOTA tiling equals Ultralytics' split_dota (split_trainval + split_test) on the input stored in
//! tests/data/split_dota_fixture.json (made by make_split_dota_fixture.py): the same tile files,
//! sizes and label files byte for byte, and each tile shows its window of the source image.

mod common;

use ryolo::data::split_dota::{
    bbox_iof, read_rows, split_test, split_trainval, windows, SplitOptions,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A smooth source picture (JPEG keeps it within a few levels), different at every window.
fn pixel(x: u32, y: u32) -> [u8; 3] {
    [
        (x / 3 % 256) as u8,
        (y / 3 % 256) as u8,
        ((x + y) / 7 % 256) as u8,
    ]
}

fn files_under(root: &Path, ext: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == ext) {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn tiles_and_labels_equal_ultralytics_split_dota() {
    let fx: Value = serde_json::from_str(include_str!("data/split_dota_fixture.json")).unwrap();
    let d = common::tmp("split-dota");
    let (src, dst) = (d.join("src"), d.join("dst"));
    for inp in fx["inputs"].as_array().unwrap() {
        let split = inp["split"].as_str().unwrap();
        let stem = inp["stem"].as_str().unwrap();
        let (w, h) = (
            inp["w"].as_u64().unwrap() as u32,
            inp["h"].as_u64().unwrap() as u32,
        );
        let dir = src.join("images").join(split);
        std::fs::create_dir_all(&dir).unwrap();
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb(pixel(x, y)))
            .save(dir.join(format!("{stem}.png")))
            .unwrap();
        if let Some(label) = inp["label"].as_str() {
            let ld = src.join("labels").join(split);
            std::fs::create_dir_all(&ld).unwrap();
            std::fs::write(ld.join(format!("{stem}.txt")), label).unwrap();
        }
    }
    let opts = SplitOptions {
        crop_size: fx["crop_size"].as_u64().unwrap() as usize,
        gap: fx["gap"].as_u64().unwrap() as usize,
        rates: fx["rates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect(),
    };
    let [tr, va] = split_trainval(&src, &dst, &opts).unwrap();
    let te = split_test(&src, &dst, &opts).unwrap();

    // The same tiles, with the same sizes.
    let want: BTreeMap<String, (u32, u32)> = fx["images"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v[0].as_u64().unwrap() as u32, v[1].as_u64().unwrap() as u32),
            )
        })
        .collect();
    let got_names = files_under(&dst, "jpg");
    assert_eq!(got_names, want.keys().cloned().collect::<Vec<_>>());
    assert_eq!(tr.tiles + va.tiles + te.tiles, want.len());
    assert_eq!((tr.images, va.images, te.images), (5, 3, 2));
    let mut worst = 0f64;
    for (name, &(w, h)) in &want {
        let tile = image::open(dst.join(name)).unwrap().to_rgb8();
        assert_eq!(tile.dimensions(), (w, h), "{name}");
        // `{stem}__{size}__{x}___{y}.jpg`: the tile shows the source from (x, y).
        let stem = Path::new(name)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let (head, y0) = stem.rsplit_once("___").unwrap();
        let (_, x0) = head.rsplit_once("__").unwrap();
        let (x0, y0): (u32, u32) = (x0.parse().unwrap(), y0.parse().unwrap());
        let mut sum = 0f64;
        for (x, y, p) in tile.enumerate_pixels() {
            let s = pixel(x + x0, y + y0);
            sum += (0..3)
                .map(|k| (p[k] as f64 - s[k] as f64).abs())
                .sum::<f64>();
        }
        let mean = sum / (3 * w * h) as f64;
        worst = worst.max(mean);
        assert!(mean < 1.5, "{name}: mean |tile - source window| = {mean}");
    }
    eprintln!(
        "{} tiles; worst mean JPEG difference to the source window {worst:.3}",
        want.len()
    );

    // The same label files, byte for byte.
    let want_labels = fx["labels"].as_object().unwrap();
    let got_labels = files_under(&dst, "txt");
    assert_eq!(got_labels, want_labels.keys().cloned().collect::<Vec<_>>());
    let mut rows = 0;
    for (name, text) in want_labels {
        let got = std::fs::read_to_string(dst.join(name)).unwrap();
        assert_eq!(got, text.as_str().unwrap(), "{name}");
        rows += got.lines().count();
    }
    assert_eq!(tr.label_files + va.label_files, want_labels.len());
    assert_eq!(tr.objects + va.objects, rows);
    eprintln!("{} label files, {rows} rows equal", want_labels.len());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn split_test_needs_its_folder_and_bad_rows_stop_before_writing() {
    let d = common::tmp("split-dota-errors");
    let opts = SplitOptions {
        crop_size: 64,
        gap: 16,
        rates: vec![1.0],
    };
    let e = split_test(&d, &d.join("out"), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("images/test") && e.contains("please check your data root"),
        "{e}"
    );
    std::fs::create_dir_all(d.join("images/train")).unwrap();
    std::fs::create_dir_all(d.join("images/val")).unwrap();
    std::fs::create_dir_all(d.join("labels/train")).unwrap();
    image::RgbImage::new(80, 80)
        .save(d.join("images/train/a.png"))
        .unwrap();
    std::fs::write(
        d.join("labels/train/a.txt"),
        "0 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2 0.1 0.1\n",
    )
    .unwrap();
    let e = split_trainval(&d, &d.join("out"), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.txt:1: 11 values"), "{e}");
    assert!(files_under(&d.join("out"), "jpg").is_empty());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn windows_cover_with_the_last_start_moved_back() {
    // 700 wide, 256 windows with gap 64: starts 0, 192, 384, then 576 -> 444.
    let w = windows(700, 256, &[(256, 64)]);
    let xs: Vec<i64> = w.iter().map(|b| b[0]).collect();
    assert_eq!(xs, [0, 192, 384, 444]);
    // A small image: no window covers > 0.6, the best-covered one is kept.
    assert_eq!(
        windows(200, 150, &[(256, 64), (512, 128)]),
        [[0, 0, 256, 256]]
    );
}

#[test]
fn iof_of_a_half_inside_square_and_a_rotated_one() {
    let sq = [-10.0, 0.0, 10.0, 0.0, 10.0, 20.0, -10.0, 20.0];
    let diamond = [50.0, 40.0, 60.0, 50.0, 50.0, 60.0, 40.0, 50.0];
    let iof = bbox_iof(&[sq, diamond], &[[0, 0, 100, 100], [0, 0, 50, 100]]);
    assert_eq!(iof[0], [0.5, 0.5]);
    assert_eq!(iof[1], [1.0, 0.5]);
}

#[test]
fn bad_rows_and_pairs_are_named() {
    let d = std::env::temp_dir().join(format!("ryolo-split-rows-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let f = d.join("a.txt");
    std::fs::write(&f, "0 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2\n1 0.5 0.5 0.1 0.1\n").unwrap();
    let e = read_rows(&f).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "a.txt:2: 5 values; split_dota needs 'class x1 y1 x2 y2 x3 y3 x4 y4' rows (9 values)"
        ),
        "{e}"
    );
    let o = SplitOptions {
        crop_size: 100,
        gap: 100,
        rates: vec![1.0],
    };
    assert!(o
        .sizes()
        .unwrap_err()
        .to_string()
        .starts_with("invalid crop_size gap pair [100 100]"));
    let _ = std::fs::remove_dir_all(&d);
}
