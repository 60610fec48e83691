//! Classification data: split resolution, the Pillow-exact eval transform against the
//! Ultralytics fixtures, the fixed loss batch, training augmentation determinism and bad inputs.

mod common;

use ryolo::data::classify::{
    check_cls_dataset, eval_image, eval_transform, pil_resize, shortest_edge_size, ClsAugConfig,
    ClsDataset, ClsOptions, Fraction,
};
use std::path::{Path, PathBuf};

fn cls_fixtures(shared: &Path) -> PathBuf {
    shared.join("fixtures/ultralytics/classify")
}

/// A `.npy` fixture as flat f32 values and its shape.
fn npy_f32(p: &Path) -> (Vec<f32>, Vec<i64>) {
    let t = tch::Tensor::read_npy(p).unwrap().to_kind(tch::Kind::Float);
    let shape = t.size();
    (Vec::<f32>::try_from(t.flatten(0, -1)).unwrap(), shape)
}

/// A `.npy` fixture of bytes and its shape.
fn npy_u8(p: &Path) -> (Vec<u8>, Vec<i64>) {
    let t = tch::Tensor::read_npy(p).unwrap();
    assert_eq!(t.kind(), tch::Kind::Uint8);
    let shape = t.size();
    (Vec::<u8>::try_from(t.flatten(0, -1)).unwrap(), shape)
}

/// Largest absolute difference of two byte buffers and how many bytes differ.
fn byte_diff(a: &[u8], b: &[u8]) -> (u8, usize) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold((0, 0), |(m, n), (x, y)| {
        let d = x.abs_diff(*y);
        (m.max(d), n + usize::from(d > 0))
    })
}

/// Largest absolute difference of two float buffers, in 1/255 steps.
fn steps_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() * 255.0)
        .fold(0.0, f32::max)
}

#[test]
fn pillow_bilinear_resize_is_bit_exact_on_a_synthetic_image() {
    // tests/data/cls_pil_resize.bin: Pillow 13 `Image.resize((w, h), BILINEAR)` of the 61x47 RGB
    // pattern below, for each size in turn (written once by a scratch script).
    let (w, h) = (61usize, 47usize);
    let mut px = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                px[(y * w + x) * 3 + c] =
                    ((x * x * 7 + y * 13 + c * 101 + x * y * 3 + (x ^ y) * 5) % 256) as u8;
            }
        }
    }
    let img = image::RgbImage::from_raw(w as u32, h as u32, px).unwrap();
    let expected =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cls_pil_resize.bin"))
            .unwrap();
    let mut at = 0;
    for (ow, oh) in [(23, 17), (80, 64), (61, 20), (30, 47), (7, 5), (3, 150)] {
        let n = ow * oh * 3;
        let got = pil_resize(&img, ow, oh);
        assert_eq!(
            got.as_raw().as_slice(),
            &expected[at..at + n],
            "{w}x{h} -> {ow}x{oh} differs from Pillow"
        );
        at += n;
    }
    assert_eq!(at, expected.len());
}

#[test]
fn fixture_dataset_splits_names_and_counts() {
    let Some(shared) = common::shared() else {
        return;
    };
    let root = cls_fixtures(&shared).join("dataset");
    let d = check_cls_dataset(&root, "val").unwrap();
    assert_eq!(d.names, ["bowl", "chair", "person"]);
    assert_eq!(d.nc(), 3);
    assert_eq!(d.val.as_deref(), Some(root.join("val").as_path()));
    assert_eq!(d.test.as_deref(), Some(root.join("test").as_path()));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    for (split, per_class) in [("train", 8), ("val", 4), ("test", 2)] {
        let ds = ClsDataset::new(
            d.split(split).unwrap(),
            &d.names,
            ClsOptions::default(),
            split,
        )
        .unwrap();
        assert_eq!((ds.found, ds.corrupt), (3 * per_class, 0), "{split}");
        for k in 0..3 {
            let n = ds.samples.iter().filter(|s| s.cls == k).count();
            assert_eq!(n, per_class, "{split} class {k}");
        }
        // ImageFolder order: class by class, file names sorted.
        assert!(ds.samples.windows(2).all(|p| p[0].cls <= p[1].cls));
    }
}

#[test]
fn mnist160_val_falls_back_to_test() {
    let Some(shared) = common::shared() else {
        return;
    };
    let root = shared.join("datasets/mnist160");
    let d = check_cls_dataset(&root, "val").unwrap();
    let digits: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    assert_eq!(d.names, digits);
    assert_eq!(d.val.as_deref(), Some(root.join("test").as_path()));
    assert!(d.warnings.iter().any(|w| w.contains("split=val")));
    let train = ClsDataset::new(&d.train, &d.names, ClsOptions::default(), "train").unwrap();
    let val = ClsDataset::new(
        d.split("val").unwrap(),
        &d.names,
        ClsOptions::default(),
        "val",
    )
    .unwrap();
    assert_eq!((train.len(), val.len()), (80, 80));
    for k in 0..10 {
        assert_eq!(train.samples.iter().filter(|s| s.cls == k).count(), 8);
    }
    // Grey 28x28 PNGs become 3 equal channels; the eval transform upsamples them.
    let (x, _) = val.get(0, 0, false).unwrap();
    let n = 224 * 224;
    assert_eq!(x.len(), 3 * n);
    assert_eq!(&x[..n], &x[n..2 * n]);
    // Without a split request, val stays empty (no val/ folder) and test is test/.
    let d = check_cls_dataset(&root, "").unwrap();
    assert!(d.val.is_none());
    assert!(d.split("val").unwrap_err().to_string().contains("mnist160"));
    // fraction keeps evenly spread samples of the training split.
    let opts = ClsOptions {
        fraction: Fraction::Ratio(0.25),
        ..Default::default()
    };
    let part = ClsDataset::new(&d.train, &d.names, opts, "train").unwrap();
    assert_eq!(part.len(), 20);
    let classes: std::collections::BTreeSet<i64> = part.samples.iter().map(|s| s.cls).collect();
    assert_eq!(classes.len(), 10);
}

#[test]
fn imagenet10_wnid_names_and_duplicate_files() {
    let Some(shared) = common::shared() else {
        return;
    };
    let root = shared.join("datasets/imagenet10");
    let d = check_cls_dataset(&root, "val").unwrap();
    assert_eq!(d.nc(), 10);
    assert_eq!(d.names[0], "n01440764");
    let train = ClsDataset::new(&d.train, &d.names, ClsOptions::default(), "train").unwrap();
    // 12 files: 3 byte-identical copies in the first class (names with spaces).
    assert_eq!(train.len(), 12);
    assert_eq!(train.samples.iter().filter(|s| s.cls == 0).count(), 3);
}

#[test]
fn eval_transform_matches_ultralytics_fixtures() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = cls_fixtures(&shared);
    for (name, hw) in [("bus", (298, 224)), ("zidane", (224, 398))] {
        let img =
            ryolo::data::image::load_image(&shared.join(format!("datasets/samples/{name}.jpg")))
                .unwrap();
        let (h, w) = (img.height() as usize, img.width() as usize);
        assert_eq!(shortest_edge_size((h, w), 224), hw);
        // The resize alone (uint8 HWC) against Pillow's.
        let resized = pil_resize(&img, hw.1, hw.0);
        let (want, shape) = npy_u8(&fx.join(format!("cls_eval_{name}_resized_u8.npy")));
        assert_eq!(shape, [hw.0 as i64, hw.1 as i64, 3]);
        let (max, n) = byte_diff(resized.as_raw(), &want);
        eprintln!(
            "{name}: resized vs Pillow: max diff {max}/255, {n} of {} bytes differ",
            want.len()
        );
        assert!(max <= 3, "{name}: resized image differs by {max}/255");
        // The whole eval transform.
        let x = eval_transform(&img, 224);
        let (want, shape) = npy_f32(&fx.join(format!("cls_eval_{name}_input.npy")));
        assert_eq!(shape, [1, 3, 224, 224]);
        let d = steps_diff(&x, &want);
        eprintln!("{name}: eval input max diff {d:.3} steps of 1/255");
        assert!(d <= 3.0 + 1e-3, "{name}: eval input differs by {d} steps");
        // The crop of the full resize equals the windowed computation.
        let crop = eval_image(&img, 224);
        let (top, left) = if name == "bus" { (37, 0) } else { (0, 87) };
        for y in 0..224 {
            let a = &crop.as_raw()[y * 224 * 3..(y + 1) * 224 * 3];
            let o = ((y + top) * hw.1 + left) * 3;
            assert_eq!(a, &resized.as_raw()[o..o + 224 * 3]);
        }
    }
}

#[test]
fn eval_transform_is_bit_exact_on_pillow_decoded_pixels() {
    // tests/data/cls_loss_chair_pil_decoded.png: the pixels OpenCV/Pillow (libjpeg-turbo) decode
    // from dataset/train/chair/000000000110_0.jpg (100x80), stored losslessly once by a scratch
    // script. The image crate's JPEG decoder differs from libjpeg by a few 1/255 steps, so the
    // resampler is checked bit-exactly on libjpeg's pixels and end to end within 3 steps.
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = cls_fixtures(&shared);
    let png =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cls_loss_chair_pil_decoded.png");
    let pil = ryolo::data::image::load_image(&png).unwrap();
    let (want, _) = npy_f32(&fx.join("cls_loss_input.npy"));
    let per = 3 * 64 * 64;
    let x = eval_transform(&pil, 64);
    assert!(
        x == want[per..2 * per],
        "chair: differs from Pillow by {} steps",
        steps_diff(&x, &want[per..2 * per])
    );
    let ours =
        ryolo::data::image::load_image(&fx.join("dataset/train/chair/000000000110_0.jpg")).unwrap();
    let (max, n) = byte_diff(ours.as_raw(), pil.as_raw());
    eprintln!(
        "chair: image-crate JPEG decode vs libjpeg: max diff {max}/255, {n} of {} bytes differ",
        pil.as_raw().len()
    );
}

#[test]
fn loss_batch_matches_fixture() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = cls_fixtures(&shared);
    let d = check_cls_dataset(&fx.join("dataset"), "val").unwrap();
    let opts = ClsOptions {
        imgsz: 64,
        ..Default::default()
    };
    let ds = ClsDataset::new(&d.train, &d.names, opts, "train").unwrap();
    let idx = [0usize, 8, 16, 1];
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("cls_loss.json")).unwrap()).unwrap();
    for (k, &i) in idx.iter().enumerate() {
        let rel = ds.samples[i].file.strip_prefix(fx.join("dataset")).unwrap();
        assert_eq!(rel.to_str().unwrap(), meta["files"][k].as_str().unwrap());
        assert_eq!(ds.samples[i].cls, meta["cls"][k].as_i64().unwrap());
    }
    let (x, y) = ds.batch(&idx, 0, false).unwrap();
    assert_eq!(y, [0, 1, 2, 0]);
    let (want, shape) = npy_f32(&fx.join("cls_loss_input.npy"));
    assert_eq!(shape, [4, 3, 64, 64]);
    let d = steps_diff(&x, &want);
    let exact = x.iter().zip(&want).filter(|(a, b)| a == b).count();
    eprintln!(
        "loss batch: max diff {d:.3} steps of 1/255, {exact} of {} values exact",
        want.len()
    );
    assert!(d <= 3.0 + 1e-3, "loss batch differs by {d} steps");
}

#[test]
fn training_augmentation_is_deterministic_per_seed_and_epoch() {
    let Some(shared) = common::shared() else {
        return;
    };
    let root = cls_fixtures(&shared).join("dataset");
    let d = check_cls_dataset(&root, "val").unwrap();
    let make = |seed: u64, aug: ClsAugConfig| {
        let opts = ClsOptions {
            imgsz: 64,
            seed,
            aug,
            ..Default::default()
        };
        ClsDataset::new(&d.train, &d.names, opts, "train").unwrap()
    };
    let ds = make(0, ClsAugConfig::default());
    let idx: Vec<usize> = (0..ds.len()).collect();
    let (a, ya) = ds.batch(&idx, 3, true).unwrap();
    let (b, yb) = ds.batch(&idx, 3, true).unwrap();
    assert_eq!(a.len(), idx.len() * 3 * 64 * 64);
    assert_eq!(ya, yb);
    assert!(a == b, "same seed and epoch must give the same batch");
    assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
    let (c, _) = ds.batch(&idx, 4, true).unwrap();
    assert!(a != c, "another epoch must give another batch");
    let (e, _) = make(1, ClsAugConfig::default())
        .batch(&idx, 3, true)
        .unwrap();
    assert!(a != e, "another seed must give another batch");
    // Order of the indices does not change a sample's augmentation.
    let (one, _) = ds.batch(&[5], 3, true).unwrap();
    let per = 3 * 64 * 64;
    assert_eq!(&one[..], &a[5 * per..6 * per]);
    // The eval path ignores the epoch.
    assert!(ds.batch(&idx, 0, false).unwrap().0 == ds.batch(&idx, 9, false).unwrap().0);
    // ColorJitter path (no auto-augment), and no augmentation at all equals a plain resized crop.
    let jitter = ClsAugConfig {
        auto_augment: ryolo::data::classify::AutoAugment::Off,
        ..Default::default()
    };
    let (j1, _) = make(0, jitter.clone()).batch(&idx, 0, true).unwrap();
    let (j2, _) = make(0, jitter).batch(&idx, 0, true).unwrap();
    assert!(j1 == j2);
    // Erasing: with p = 1 some zero rectangles appear in every image.
    let erase = ClsAugConfig {
        erasing: 1.0,
        auto_augment: ryolo::data::classify::AutoAugment::Off,
        hsv_h: 0.0,
        hsv_s: 0.0,
        hsv_v: 0.0,
        ..Default::default()
    };
    let (x, _) = make(0, erase).batch(&idx, 0, true).unwrap();
    for img in x.chunks_exact(per) {
        let zeros = img.iter().filter(|v| **v == 0.0).count();
        assert!(zeros >= 3 * (64 * 64 / 50), "erasing left {zeros} zeros");
    }
    // AugMix and AutoAugment run without a warning, the same for the same seed, and change the
    // images (relative to no auto-augment with the colour jitter off).
    let plain = ClsAugConfig {
        auto_augment: ryolo::data::classify::AutoAugment::Off,
        hsv_h: 0.0,
        hsv_s: 0.0,
        hsv_v: 0.0,
        ..Default::default()
    };
    let (p, _) = make(0, plain).batch(&idx, 0, true).unwrap();
    for policy in [
        ryolo::data::classify::AutoAugment::AugMix,
        ryolo::data::classify::AutoAugment::AutoAugment,
    ] {
        let cfg = ClsAugConfig {
            auto_augment: policy,
            ..Default::default()
        };
        let ds = make(0, cfg.clone());
        assert!(ds.warnings.is_empty(), "{policy:?}: {:?}", ds.warnings);
        let (a, _) = ds.batch(&idx, 0, true).unwrap();
        let (b, _) = make(0, cfg).batch(&idx, 0, true).unwrap();
        assert!(a == b, "{policy:?} is not deterministic");
        assert!(a != p, "{policy:?} changed nothing");
    }
}

/// Writes a tiny valid JPEG of `w x h`.
fn write_jpeg(p: &Path, w: u32, h: u32, v: u8) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(w, h, image::Rgb([v, 255 - v, v / 2]))
        .save(p)
        .unwrap();
}

#[test]
fn bad_inputs_give_errors_and_warnings_naming_the_path() {
    let dir = common::tmp("cls-bad");
    // Not a folder / a yaml.
    let yaml = dir.join("data.yaml");
    std::fs::write(&yaml, "train: x\n").unwrap();
    let e = check_cls_dataset(&yaml, "").unwrap_err().to_string();
    assert!(
        e.contains("must be a directory") && e.contains("data.yaml"),
        "{e}"
    );
    // No train folder.
    let root = dir.join("ds");
    std::fs::create_dir_all(root.join("val/a")).unwrap();
    let e = check_cls_dataset(&root, "").unwrap_err().to_string();
    assert!(e.contains(&root.join("train").display().to_string()), "{e}");
    // Train folder without images.
    std::fs::create_dir_all(root.join("train/a")).unwrap();
    let e = format!("{:#}", check_cls_dataset(&root, "").unwrap_err());
    assert!(e.contains("no training images"), "{e}");
    // A corrupt image, a tiny image and an empty class folder.
    write_jpeg(&root.join("train/a/1.jpg"), 32, 24, 10);
    write_jpeg(&root.join("train/a/sub/2.jpg"), 32, 24, 20);
    write_jpeg(&root.join("train/c/3.jpg"), 32, 24, 30);
    write_jpeg(&root.join("train/c/tiny.jpg"), 8, 8, 30);
    std::fs::write(
        root.join("train/c/broken.jpg"),
        b"\xFF\xD8 this is not a jpeg",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("train/b")).unwrap(); // empty class
    write_jpeg(&root.join("val/a/4.jpg"), 32, 24, 40);
    let d = check_cls_dataset(&root, "test").unwrap();
    assert_eq!(d.names, ["a", "b", "c"]);
    // split=test without test/ uses val/.
    assert_eq!(d.test.as_deref(), Some(root.join("val").as_path()));
    let empty = root.join("train/b").display().to_string();
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains(&empty) && w.contains("empty")),
        "{:?}",
        d.warnings
    );
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("requires 3 classes, not 2")),
        "{:?}",
        d.warnings
    );
    let ds = ClsDataset::new(&d.train, &d.names, ClsOptions::default(), "train").unwrap();
    assert_eq!((ds.found, ds.corrupt), (3, 2));
    for bad in ["broken.jpg", "tiny.jpg"] {
        let p = root.join("train/c").join(bad).display().to_string();
        assert!(
            ds.warnings
                .iter()
                .any(|w| w.contains(&p) && w.contains("corrupt")),
            "{bad}: {:?}",
            ds.warnings
        );
    }
    // Nested folders belong to their class; classes keep the model's indices.
    let cls: Vec<(String, i64)> = ds
        .samples
        .iter()
        .map(|s| (s.file.file_name().unwrap().to_string_lossy().into(), s.cls))
        .collect();
    assert_eq!(
        cls,
        [
            ("1.jpg".into(), 0),
            ("2.jpg".into(), 0),
            ("3.jpg".into(), 2)
        ]
    );
    // A val split whose folders the model lacks: skipped with a warning.
    write_jpeg(&root.join("val/zzz/5.jpg"), 32, 24, 50);
    let v = ClsDataset::new(
        d.split("val").unwrap(),
        &d.names,
        ClsOptions::default(),
        "val",
    )
    .unwrap();
    assert_eq!(v.len(), 1);
    assert!(v
        .warnings
        .iter()
        .any(|w| w.contains("Skipping 1 samples") && w.contains("zzz")));
    // A file that disappears after the scan: a warning and a blank image, no panic.
    std::fs::remove_file(root.join("train/a/1.jpg")).unwrap();
    let (x, y) = ds.batch(&[0, 2], 0, true).unwrap();
    assert_eq!((x.len(), y), (2 * 3 * 224 * 224, vec![0, 2]));
    // Out-of-range indices are an error.
    assert!(ds.batch(&[99], 0, false).is_err());
    // An unknown auto_augment policy is an error.
    assert!(ryolo::data::classify::AutoAugment::parse(Some("bogus")).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
