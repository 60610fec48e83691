//! The training loader: batches are identical whatever the number of workers (deterministic for a
//! seed), and the label cache is reused until a file changes.

use ryolo::data::augment::AugConfig;
use ryolo::data::loader::{epoch_batches, TrainDataset};
use ryolo::data::{list_images, load_data_yaml, scan};
use std::sync::Arc;

fn batches(ds: &Arc<TrainDataset>, workers: usize, epoch: usize) -> Vec<(Vec<u8>, Vec<[f32; 4]>)> {
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .unwrap(),
    );
    epoch_batches(ds.clone(), pool, epoch, 4, true, 2)
        .iter()
        .map(|b| (b.pixels, b.targets.bboxes))
        .collect()
}

#[test]
fn same_batches_for_any_worker_count() {
    let d = std::env::temp_dir().join(format!("ryolo-loader-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let yaml = ryolo::data::synth::generate(&d, 12, 64, 5).unwrap();
    let dc = load_data_yaml(&yaml).unwrap();
    let files = list_images(dc.split("train").unwrap()).unwrap();
    let s = scan("train", &files, dc.nc(), false);
    let ds = Arc::new(TrainDataset::new(
        s.entries,
        64,
        AugConfig::default(),
        7,
        false,
    ));
    let a = batches(&ds, 1, 0);
    let b = batches(&ds, 3, 0);
    assert_eq!(a.len(), 3);
    assert!(a == b, "batches differ between 1 and 3 workers");
    let c = batches(&ds, 2, 1);
    assert!(a != c, "another epoch draws other augmentations");
}

#[test]
fn mixup_and_cutmix_stay_deterministic() {
    let d = std::env::temp_dir().join(format!("ryolo-loader-mix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let yaml = ryolo::data::synth::generate(&d, 12, 64, 9).unwrap();
    let dc = load_data_yaml(&yaml).unwrap();
    let files = list_images(dc.split("train").unwrap()).unwrap();
    let s = scan("train", &files, dc.nc(), false);
    let aug = AugConfig {
        mixup: 0.5,
        cutmix: 1.0,
        ..AugConfig::default()
    };
    let ds = Arc::new(TrainDataset::new(s.entries.clone(), 64, aug, 7, false));
    let a = batches(&ds, 1, 0);
    assert!(
        a == batches(&ds, 2, 0),
        "batches differ between 1 and 2 workers"
    );
    let plain = Arc::new(TrainDataset::new(
        s.entries,
        64,
        AugConfig::default(),
        7,
        false,
    ));
    let boxes = |v: &[(Vec<u8>, Vec<[f32; 4]>)]| v.iter().map(|b| b.1.len()).sum::<usize>();
    // CutMix (and MixUp) add the second image's boxes.
    assert!(boxes(&a) > boxes(&batches(&plain, 1, 0)));
}

#[test]
fn label_cache_is_reused_until_a_label_changes() {
    let d = std::env::temp_dir().join(format!("ryolo-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let yaml = ryolo::data::synth::generate(&d, 8, 64, 6).unwrap();
    let dc = load_data_yaml(&yaml).unwrap();
    let files = list_images(dc.split("train").unwrap()).unwrap();
    let cache = d.join("labels/train.ryolo.cache");
    let first = scan("train", &files, dc.nc(), false);
    assert!(cache.exists(), "cache written beside the labels");
    // Poison the cache's contents; an unchanged dataset must be read from it (so the poison shows).
    let text = std::fs::read_to_string(&cache)
        .unwrap()
        .replacen("\"found\":8", "\"found\":99", 1);
    std::fs::write(&cache, text).unwrap();
    assert_eq!(
        scan("train", &files, dc.nc(), false).found,
        99,
        "second scan reads the cache"
    );
    // Touching a label file invalidates it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let lbl = d.join("labels/train/train_00000.txt");
    let t = std::fs::read_to_string(&lbl).unwrap();
    std::fs::write(&lbl, format!("{t}\n")).unwrap();
    let third = scan("train", &files, dc.nc(), false);
    assert_eq!(third.found, first.found);
}

#[test]
fn disk_cache_keeps_the_decoded_pixels_and_respects_read_only_folders() {
    use ryolo::data::loader::{disk_cache_path, load_resized, load_via_disk_cache};
    use std::os::unix::fs::PermissionsExt;
    let d = std::env::temp_dir().join(format!("ryolo-disk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let yaml = ryolo::data::synth::generate(&d, 6, 64, 3).unwrap();
    let dc = load_data_yaml(&yaml).unwrap();
    let files = list_images(dc.split("train").unwrap()).unwrap();
    let s = scan("train", &files, dc.nc(), false);
    let plain = TrainDataset::new(s.entries.clone(), 64, AugConfig::default(), 7, false);
    let (cached, bytes) =
        TrainDataset::new(s.entries.clone(), 64, AugConfig::default(), 7, false).with_disk_cache();
    assert!(bytes > 0);
    for (i, f) in files.iter().enumerate() {
        let npy = disk_cache_path(f);
        assert_eq!(
            npy,
            f.with_extension("ryolo.npy"),
            "beside a writable image"
        );
        assert!(npy.exists());
        assert_eq!(cached.decode(i).data, plain.decode(i).data);
        assert_eq!(cached.decode(i).data, load_resized(f, 64).unwrap().data);
    }
    // A read-only folder is never written: the copy goes to the user cache dir.
    let ro = d.join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    let im = ro.join("a.png");
    std::fs::copy(&files[0], &im).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let img = load_via_disk_cache(&im).unwrap();
    let npy = disk_cache_path(&im);
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!npy.starts_with(&ro), "{}", npy.display());
    assert!(npy.exists());
    assert_eq!(img, ryolo::engine::predict::load_dynamic(&im).unwrap());
    assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 1);
    let _ = std::fs::remove_file(npy);
}

#[test]
fn grey_images_take_a_one_channel_path_with_the_same_bytes() {
    let d = std::env::temp_dir().join(format!("ryolo-loader-grey-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let yaml = ryolo::data::synth::generate(&d, 12, 64, 4).unwrap();
    let dc = load_data_yaml(&yaml).unwrap();
    let files = list_images(dc.split("train").unwrap()).unwrap();
    // Re-save every training image as an 8-bit grey file.
    for f in &files {
        let g = image::open(f).unwrap().to_luma8();
        g.save_with_format(f, image::ImageFormat::Png).unwrap();
    }
    let s = scan("train", &files, dc.nc(), false);
    for (aug, ram) in [
        (AugConfig::default(), false),
        (AugConfig::default(), true),
        (
            AugConfig {
                flipud: 0.5,
                mixup: 0.3,
                ..AugConfig::default()
            },
            false,
        ),
    ] {
        let fast = Arc::new(TrainDataset::new(
            s.entries.clone(),
            64,
            aug.clone(),
            3,
            ram,
        ));
        let slow =
            Arc::new(TrainDataset::new(s.entries.clone(), 64, aug, 3, ram).with_grey_path(false));
        for epoch in 0..2 {
            assert!(
                batches(&fast, 2, epoch) == batches(&slow, 2, epoch),
                "epoch {epoch}"
            );
        }
        let recent = ryolo::data::loader::Recent::default();
        let grey = (0..fast.len())
            .filter(|&i| fast.builds_grey(i, 0, true, &recent))
            .count();
        assert!(grey > 0, "the one-channel path was not taken");
    }
}

/// Scanned entries of a fresh `n`-image synthetic set of 64-pixel images.
fn synth_entries(tag: &str, n: usize, seed: u64) -> Vec<ryolo::data::LabelEntry> {
    let d = std::env::temp_dir().join(format!("ryolo-loader-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let yaml = ryolo::data::synth::generate(&d, n, 64, seed).unwrap();
    let dc = load_data_yaml(&yaml).unwrap();
    let files = list_images(dc.split("train").unwrap()).unwrap();
    scan("train", &files, dc.nc(), false).entries
}

#[test]
fn bgr_one_swaps_red_and_blue() {
    let entries = synth_entries("bgr", 8, 4);
    let with = |bgr: f64| {
        let aug = AugConfig {
            bgr,
            ..AugConfig::none()
        };
        let ds = Arc::new(TrainDataset::new(entries.clone(), 64, aug, 7, false));
        batches(&ds, 1, 0)
    };
    let (rgb, bgr) = (with(0.0), with(1.0));
    assert_eq!(rgb.len(), bgr.len());
    let mut coloured = 0;
    for ((a, ba), (b, bb)) in rgb.iter().zip(&bgr) {
        assert_eq!(ba, bb, "labels do not change");
        for (p, q) in a.chunks_exact(3).zip(b.chunks_exact(3)) {
            assert_eq!([p[2], p[1], p[0]], [q[0], q[1], q[2]]);
            coloured += usize::from(p[0] != p[2]);
        }
    }
    assert!(coloured > 0, "the synthetic images have colour");
}

#[test]
fn batches_over_a_thousand_images_are_loaded() {
    let d = std::env::temp_dir().join(format!("ryolo-loader-big-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let yaml = ryolo::data::synth::generate(&d, 12, 64, 6).unwrap();
    let dc = load_data_yaml(&yaml).unwrap();
    let files = list_images(dc.split("train").unwrap()).unwrap();
    let s = scan("train", &files, dc.nc(), false);
    let ds = Arc::new(TrainDataset::new(
        s.entries,
        64,
        AugConfig::default(),
        7,
        false,
    ));
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap(),
    );
    let got: Vec<_> = epoch_batches(ds, pool, 0, 1024, true, 2).iter().collect();
    assert_eq!(got.len(), 1, "one batch holds the whole epoch");
    assert_eq!(got[0].shape.0, 12);
}
