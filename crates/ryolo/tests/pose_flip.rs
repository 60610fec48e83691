//! Pose training flips (spec/pose.md §2-3, issue 19): the trainer's dataset flips keypoint images
//! and reorders keypoints through data.yaml's `flip_idx` exactly as Ultralytics 8.4.190's pipeline
//! (`tests/data/pose_flip_ref.json`, from `scripts/pose_flip_ref.py`), and without `flip_idx` both
//! flips are off with Ultralytics' warning.

mod common;
use common::{args, rows_without_time, shared, tmp};
use ryolo::data::augment::AugConfig;
use ryolo::data::loader::{flip_idx_warning, Recent, TrainDataset};
use ryolo::data::{list_images, load_data_yaml, scan_with, LabelEntry};
use ryolo::engine::train::{train, train_dataset, Callbacks, TrainConfig};
use serde_json::Value;
use std::path::Path;

/// Every augmentation off except `fliplr` (as the generator script's run).
const ONLY_FLIPS: &str = "mosaic=0 flipud=0 hsv_h=0 hsv_s=0 hsv_v=0 translate=0 scale=0 degrees=0 shear=0 perspective=0 mixup=0 cutmix=0 copy_paste=0";

fn reference() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pose_flip_ref.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// coco8-pose's train split through a data.yaml of our own (absolute path, `flip_idx` when asked).
fn coco8_pose(d: &Path, flip_idx: bool) -> Option<(ryolo::data::DataConfig, Vec<LabelEntry>)> {
    let root = shared()?.join("datasets/coco8-pose");
    let yaml = d.join(format!("coco8-pose-{flip_idx}.yaml"));
    let flip = if flip_idx {
        "flip_idx: [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]\n"
    } else {
        ""
    };
    std::fs::write(
        &yaml,
        format!(
            "path: {}\ntrain: images/train\nval: images/val\nkpt_shape: [17, 3]\n{flip}names:\n  0: person\n",
            root.display()
        ),
    )
    .unwrap();
    let dc = load_data_yaml(&yaml).unwrap();
    let files = list_images(dc.split("train").unwrap()).unwrap();
    let s = scan_with("train", &files, 1, false, dc.label_format("pose").unwrap());
    assert_eq!(s.entries.len(), 4);
    Some((dc, s.entries))
}

/// The trainer's dataset for these arguments (through `TrainConfig` and `train_dataset`).
fn trainer_dataset(
    dc: &ryolo::data::DataConfig,
    entries: &[LabelEntry],
    fliplr: f64,
) -> TrainDataset {
    let a = args(&format!(
        "task=pose imgsz=160 seed=0 {ONLY_FLIPS} fliplr={fliplr}"
    ));
    let cfg = TrainConfig::from_args(&a, false).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    train_dataset(&pool, entries.to_vec(), &cfg, dc.flip_idx.clone()).unwrap()
}

/// Per image name: normalised keypoints and normalised cx cy w h boxes of the augmented sample.
type Sampled = Vec<(String, Vec<Vec<[f32; 3]>>, Vec<[f32; 4]>)>;

fn sampled(ds: &TrainDataset) -> Sampled {
    (0..ds.len())
        .map(|i| {
            let s = ds.get(i, 0, true, &Recent::default());
            let (w, h) = (s.img.w as f32, s.img.h as f32);
            assert_eq!((w, h), (160.0, 160.0));
            let kpts = s.instances.keypoints.clone().unwrap();
            let kpts = kpts
                .iter()
                .map(|k| k.iter().map(|p| [p[0] / w, p[1] / h, p[2]]).collect())
                .collect();
            let boxes = ryolo::data::augment::to_normalized(&s.instances.boxes, s.img.w, s.img.h);
            let name = ds.entries[i].im_file.file_name().unwrap();
            (name.to_string_lossy().into_owned(), kpts, boxes)
        })
        .collect()
}

/// Largest difference between ours and Ultralytics' sample of every image.
fn max_diff(ours: &Sampled, theirs: &Value) -> f32 {
    let mut worst = 0f32;
    for (name, kpts, boxes) in ours {
        let r = &theirs[name];
        let rk = r["keypoints"].as_array().expect(name);
        let rb = r["bboxes"].as_array().expect(name);
        assert_eq!((kpts.len(), boxes.len()), (rk.len(), rb.len()), "{name}");
        for (k, rk) in kpts.iter().zip(rk) {
            for (p, rp) in k.iter().zip(rk.as_array().unwrap()) {
                for (v, rv) in p.iter().zip(rp.as_array().unwrap()) {
                    worst = worst.max((v - rv.as_f64().unwrap() as f32).abs());
                }
            }
        }
        for (b, rb) in boxes.iter().zip(rb) {
            for (v, rv) in b.iter().zip(rb.as_array().unwrap()) {
                worst = worst.max((v - rv.as_f64().unwrap() as f32).abs());
            }
        }
    }
    worst
}

#[test]
fn trainer_dataset_flips_keypoints_through_flip_idx_as_ultralytics() {
    let d = tmp("pose_flip_ds");
    let Some((dc, entries)) = coco8_pose(&d, true) else {
        return;
    };
    let r = reference();
    let flip: Vec<usize> = dc.flip_idx.clone().unwrap();
    let plain = sampled(&trainer_dataset(&dc, &entries, 0.0));
    let flipped = sampled(&trainer_dataset(&dc, &entries, 1.0));
    let (d0, d1) = (
        max_diff(&plain, &r["fliplr_0"]),
        max_diff(&flipped, &r["fliplr_1"]),
    );
    println!("max |ours - Ultralytics|: fliplr=0 {d0:.2e}, fliplr=1 {d1:.2e}");
    // Only float rounding of the same affine map separates the two (coordinates in [0, 1]).
    assert!(d0 < 1e-5 && d1 < 1e-5, "fliplr=0 {d0}, fliplr=1 {d1}");
    // Ours against ours: flipped keypoint k is the mirrored unflipped keypoint flip_idx[k].
    let mut moved = 0;
    for ((n, kf, _), (_, kp, _)) in flipped.iter().zip(&plain) {
        for (f, p) in kf.iter().zip(kp) {
            for (k, q) in f.iter().enumerate() {
                let w = p[flip[k]];
                assert!(
                    (q[0] - (1.0 - w[0])).abs() < 1e-5,
                    "{n} kpt {k}: {q:?} {w:?}"
                );
                assert!(q[1] == w[1] && q[2] == w[2], "{n} kpt {k}: {q:?} {w:?}");
                moved += (w[2] > 0.0 && flip[k] != k) as usize;
            }
        }
    }
    assert!(moved > 10, "only {moved} labelled keypoints changed place");
}

#[test]
fn missing_flip_idx_turns_flips_off_with_ultralytics_warning() {
    let r = reference();
    let theirs = r["no_flip_idx"]["warnings"][0].as_str().unwrap();
    let on = AugConfig {
        fliplr: 0.5,
        ..AugConfig::none()
    };
    let ours = flip_idx_warning(true, None, &on).expect("a warning");
    // Ultralytics' logger adds "WARNING ⚠️ "; ours prints "WARNING " + the same sentence.
    assert!(
        theirs.ends_with(ours) && theirs.starts_with("WARNING"),
        "{ours:?} vs {theirs:?}"
    );
    assert_eq!(flip_idx_warning(true, Some(&[]), &on), Some(ours));
    let ud = AugConfig {
        flipud: 0.1,
        ..AugConfig::none()
    };
    assert!(flip_idx_warning(true, None, &ud).is_some());
    assert!(flip_idx_warning(true, None, &AugConfig::none()).is_none());
    assert!(flip_idx_warning(false, None, &on).is_none(), "no keypoints");
    assert!(flip_idx_warning(true, Some(&[0]), &on).is_none());
    for dir in ["vertical", "horizontal"] {
        assert_eq!(r["no_flip_idx"]["flip_p"][dir].as_f64(), Some(0.0));
    }
    // The trainer's dataset without flip_idx: fliplr=1 gives the unflipped samples.
    let d = tmp("pose_flip_none");
    let Some((dc, entries)) = coco8_pose(&d, false) else {
        return;
    };
    assert!(dc.flip_idx.is_none());
    let s = sampled(&trainer_dataset(&dc, &entries, 1.0));
    let diff = max_diff(&s, &r["fliplr_0"]);
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn pose_training_runs_differ_with_fliplr_only_when_flip_idx_is_given() {
    let d = tmp("pose_flip_train");
    let yaml = ryolo::data::synth_po::generate_pose(&d.join("data"), 4, 64, 1).unwrap();
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(text.contains("flip_idx"));
    let bare = yaml.with_file_name("no_flip_idx.yaml");
    let stripped: String = text
        .lines()
        .filter(|l| !l.starts_with("flip_idx"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&bare, stripped).unwrap();
    let rows = |data: &Path, fliplr: f64, name: &str| {
        let a = args(&format!(
            "model=yolo11n-pose.yaml data={} epochs=1 imgsz=64 batch=4 nbs=4 seed=0 workers=1 project={} name={name} val=False plots=False {ONLY_FLIPS} fliplr={fliplr}",
            data.display(),
            d.display()
        ));
        train(&a, &mut Callbacks::default()).unwrap();
        rows_without_time(&d.join(name).join("results.csv"))
    };
    let (a0, a1) = (rows(&yaml, 0.0, "a0"), rows(&yaml, 1.0, "a1"));
    assert_eq!(a0.len(), 2);
    assert_ne!(a0[1], a1[1], "fliplr=1 trains on flipped images");
    let (b0, b1) = (rows(&bare, 0.0, "b0"), rows(&bare, 1.0, "b1"));
    assert_eq!(b0, b1, "without flip_idx fliplr is off");
    assert_eq!(a0, b0, "fliplr=0 does not depend on flip_idx");
}
