//! Copy-paste augmentation (spec/segment.md §3 item 3): the flip mode against Ultralytics 8.4's
//! `CopyPaste` on a hand-built sample, the candidate choice, the no-op cases (p = 0, box-only
//! labels, after close_mosaic) through the loader, and short segment training runs in both modes.

mod common;
use common::{args, tmp};
use ryolo::data::augment::{
    copy_paste_flip, copy_paste_from, copy_paste_selection, AugConfig, CopyPasteMode, Sample,
};
use ryolo::data::instances::Instances;
use ryolo::data::loader::{epoch_batches, TrainDataset};
use ryolo::data::{list_images, load_data_yaml, scan_with, LabelEntry, LabelFormat};
use ryolo::engine::train::{train, Callbacks};
use ryolo::ops::Rgb;
use std::sync::Arc;

const W: usize = 40;
const H: usize = 30;

/// The hand-built image: channel `c` of pixel `(x, y)` is `(7x + 13y + 50c) mod 256`.
fn image() -> Rgb {
    let mut data = Vec::with_capacity(W * H * 3);
    for y in 0..H {
        for x in 0..W {
            for c in 0..3 {
                data.push(((x * 7 + y * 13 + c * 50) % 256) as u8);
            }
        }
    }
    Rgb { w: W, h: H, data }
}

/// Four quadrilaterals (pixels): one in the middle whose mirror covers itself, three whose mirrors
/// overlap nothing or little.
const POLYS: [[[f32; 2]; 4]; 4] = [
    [[15.3, 5.7], [24.9, 6.2], [22.4, 14.8], [17.0, 13.1]],
    [[2.6, 16.2], [11.8, 17.9], [10.4, 27.5], [3.1, 25.9]],
    [[30.2, 1.4], [38.7, 3.3], [36.5, 10.9], [31.0, 9.0]],
    [[6.2, 9.1], [12.9, 9.4], [11.8, 15.6], [7.0, 14.2]],
];

fn sample() -> Sample {
    let segs: Vec<Vec<[f32; 2]>> = POLYS.iter().map(|p| p.to_vec()).collect();
    let boxes = segs
        .iter()
        .map(|p| {
            let f = |k: usize, min: bool| {
                p.iter()
                    .map(|q| q[k])
                    .fold(if min { f32::MAX } else { f32::MIN }, |a, b| {
                        if min {
                            a.min(b)
                        } else {
                            a.max(b)
                        }
                    })
            };
            [f(0, true), f(1, true), f(0, false), f(1, false)]
        })
        .collect();
    let mut inst = Instances::from_boxes(vec![0, 1, 2, 3], boxes, false);
    inst.segments = Some(segs);
    Sample {
        img: image(),
        instances: inst,
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Expected results from Ultralytics 8.4.190 (`ultralytics.data.augment.CopyPaste(p, mode="flip")`,
/// `get_params` + `apply_image` + `apply_instances` on the same image (`img[y, x, c]` as above,
/// uint8) and `Instances(boxes xyxy, segments (4, 4, 2) float32, normalized=False)`, cls 0..3), run
/// once with the venv's Python: the paste mask `im_new` ('#' = 1), the FNV-1a 64 of the output
/// image bytes, the output classes and the last output polygon.
struct Expected {
    p: f64,
    mask: [&'static str; H],
    fnv: u64,
    changed: usize,
    cls: &'static [u32],
    last: [[f32; 2]; 4],
}

const MASK_P05: [&str; H] = [
    "........................................",
    "........................................",
    "........................................",
    "........................................",
    "........................................",
    "........................................",
    "........................................",
    "........................................",
    "........................................",
    "...........................#######......",
    "...........................#######......",
    "...........................#######......",
    "...........................#######......",
    "............................######......",
    "............................######......",
    "............................###.........",
    ".................................#####..",
    "............................##########..",
    "............................##########..",
    "............................##########..",
    "............................##########..",
    "............................#########...",
    "............................#########...",
    ".............................########...",
    ".............................########...",
    ".............................########...",
    ".............................######.....",
    ".............................##.........",
    "........................................",
    "........................................",
];

const MASK_P1: [&str; H] = [
    "........................................",
    "........##..............................",
    "....######..............................",
    ".#########..............................",
    ".#########..............................",
    "..########..............................",
    "..########..............................",
    "..########..............................",
    "..########..............................",
    "...#######.................#######......",
    "...####....................#######......",
    "...........................#######......",
    "...........................#######......",
    "............................######......",
    "............................######......",
    "............................###.........",
    ".................................#####..",
    "............................##########..",
    "............................##########..",
    "............................##########..",
    "............................##########..",
    "............................#########...",
    "............................#########...",
    ".............................########...",
    ".............................########...",
    ".............................########...",
    ".............................######.....",
    ".............................##.........",
    "........................................",
    "........................................",
];

#[test]
fn flip_mode_matches_ultralytics_pixels_and_labels() {
    let cases = [
        Expected {
            p: 1.0,
            mask: MASK_P1,
            fnv: 0x944432271000baf6,
            changed: 207,
            cls: &[0, 1, 2, 3, 1, 3, 2],
            last: [[9.799999, 1.4], [1.2999992, 3.3], [3.5, 10.9], [9.0, 9.0]],
        },
        Expected {
            p: 0.5,
            mask: MASK_P05,
            fnv: 0xc46514042ceae2e9,
            changed: 138,
            cls: &[0, 1, 2, 3, 1, 3],
            last: [[33.8, 9.1], [27.1, 9.4], [28.2, 15.6], [33.0, 14.2]],
        },
    ];
    let orig = image();
    for e in cases {
        let mut s = sample();
        copy_paste_flip(&mut s, e.p);
        // Pixels: the mirrored image inside the mask, the original elsewhere.
        for (y, row) in e.mask.iter().enumerate() {
            for (x, m) in row.bytes().enumerate() {
                let src = if m == b'#' { W - 1 - x } else { x };
                let (i, j) = ((y * W + x) * 3, (y * W + src) * 3);
                assert_eq!(
                    s.img.data[i..i + 3],
                    orig.data[j..j + 3],
                    "p {} pixel ({x}, {y})",
                    e.p
                );
            }
        }
        let changed = s
            .img
            .data
            .chunks_exact(3)
            .zip(orig.data.chunks_exact(3))
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, e.changed);
        assert_eq!(fnv(&s.img.data), e.fnv, "p {}", e.p);
        assert_eq!(s.instances.cls, e.cls);
        // Appended: the mirrored boxes (x -> 40 - x in float32) in selection order.
        let n = e.cls.len();
        for (k, &j) in [1usize, 3, 2].iter().take(n - 4).enumerate() {
            let b = sample().instances.boxes[j];
            assert_eq!(
                s.instances.boxes[4 + k],
                [W as f32 - b[2], b[1], W as f32 - b[0], b[3]]
            );
        }
        let segs = s.instances.segments.as_ref().unwrap();
        assert_eq!(segs.len(), n);
        for (g, w) in segs[n - 1].iter().zip(e.last) {
            assert!(
                (g[0] - w[0]).abs() < 1e-5 && (g[1] - w[1]).abs() < 1e-5,
                "{g:?} {w:?}"
            );
        }
    }
}

#[test]
fn candidates_are_under_30_percent_ioa_lowest_first_rounded_half_to_even() {
    // IoA with the one existing box [0, 0, 10, 10]: 0.2, 0.5, 0, 0.29, 0.3, 0.1, 0 (Ultralytics'
    // bbox_ioa in float32; 0.3 is not < 0.30). Expected lists from the same NumPy expression.
    let dst = [[0.0, 0.0, 10.0, 10.0]];
    let src = [
        [0.0, 0.0, 10.0, 2.0],
        [0.0, 0.0, 10.0, 5.0],
        [20.0, 20.0, 30.0, 30.0],
        [0.0, 0.0, 10.0, 2.9],
        [0.0, 0.0, 10.0, 3.0],
        [0.0, 0.0, 10.0, 1.0],
        [40.0, 40.0, 50.0, 50.0],
    ];
    let cases: [(f64, &[usize]); 7] = [
        (1.0, &[2, 6, 5, 0, 3]),
        (0.5, &[2, 6]), // 2.5 -> 2
        (0.3, &[2, 6]), // 1.5 -> 2
        (0.125, &[2]),
        (0.1, &[]), // 0.5 -> 0
        (0.7, &[2, 6, 5, 0]),
        (0.0, &[]),
    ];
    for (p, want) in cases {
        assert_eq!(copy_paste_selection(&src, &dst, p), want, "p {p}");
    }
    // The box against several: every IoA must be under the threshold.
    let dst2 = [[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 22.0, 22.0]];
    assert_eq!(copy_paste_selection(&src, &dst2, 1.0), [6, 5, 0, 3]);
}

#[test]
fn nothing_changes_at_p_zero_or_without_polygons() {
    let mut s = sample();
    copy_paste_flip(&mut s, 0.0);
    assert_eq!(s.img.data, image().data);
    assert_eq!(s.instances, sample().instances);
    let other = sample();
    copy_paste_from(&mut s, &other, 0.0);
    assert_eq!(s.instances, sample().instances);
    // Boxes only: no polygons, nothing pasted.
    let mut b = sample();
    b.instances.segments = None;
    let before = b.instances.clone();
    copy_paste_flip(&mut b, 1.0);
    assert_eq!((b.img.data, b.instances), (image().data, before));
    // Mixup mode pastes the other sample's pixels under its selected outlines.
    let mut a = sample();
    let mut o = sample();
    o.img.data.iter_mut().for_each(|v| *v = 255 - *v);
    o.instances.flip_lr(W as f32, None);
    copy_paste_from(&mut a, &o, 1.0);
    assert_eq!(a.instances.cls, [0, 1, 2, 3, 1, 3, 2]);
    let changed = a
        .img
        .data
        .chunks_exact(3)
        .zip(o.img.data.chunks_exact(3))
        .filter(|(x, y)| x == y)
        .count();
    assert_eq!(
        changed, 207,
        "the flip-mode mask, with the other image's pixels"
    );
}

/// The training entries of a synthetic dataset (polygons or boxes).
fn entries(name: &str, polygons: bool) -> Vec<LabelEntry> {
    let d = tmp(name);
    let yaml = ryolo::data::synth::generate_with(&d, 12, 64, 2, polygons).unwrap();
    let dc = load_data_yaml(&yaml).unwrap();
    let files = list_images(dc.split("train").unwrap()).unwrap();
    let fmt = if polygons {
        LabelFormat::Segment
    } else {
        LabelFormat::Detect
    };
    scan_with("train", &files, dc.nc(), false, fmt).entries
}

type Batches = Vec<(Vec<u8>, Vec<[f32; 4]>, usize)>;

fn batches(e: &[LabelEntry], aug: AugConfig, workers: usize, mosaic: bool) -> Batches {
    let ds = Arc::new(TrainDataset::new(e.to_vec(), 64, aug, 7, false));
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .unwrap(),
    );
    epoch_batches(ds, pool, 0, 4, mosaic, 2)
        .iter()
        .map(|b| (b.pixels, b.targets.bboxes, b.targets.segments.len()))
        .collect()
}

/// Every polygon point of every batch lies in its (normalised) box, inside the image.
fn polygons_inside_their_boxes(e: &[LabelEntry], aug: AugConfig) {
    let ds = Arc::new(TrainDataset::new(e.to_vec(), 64, aug, 3, false));
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap(),
    );
    for b in epoch_batches(ds, pool, 1, 4, true, 2).iter() {
        let t = &b.targets;
        assert_eq!(t.segments.len(), t.bboxes.len());
        for (p, bx) in t.segments.iter().zip(&t.bboxes) {
            assert!(!p.is_empty());
            let (x0, y0) = (bx[0] - bx[2] / 2.0, bx[1] - bx[3] / 2.0);
            let (x1, y1) = (bx[0] + bx[2] / 2.0, bx[1] + bx[3] / 2.0);
            for q in p {
                assert!(q[0] >= x0 - 1e-4 && q[0] <= x1 + 1e-4, "{q:?} {bx:?}");
                assert!(q[1] >= y0 - 1e-4 && q[1] <= y1 + 1e-4, "{q:?} {bx:?}");
                assert!((0.0..=1.0).contains(&q[0]) && (0.0..=1.0).contains(&q[1]));
            }
        }
    }
}

fn with(copy_paste: f64, mode: CopyPasteMode) -> AugConfig {
    AugConfig {
        copy_paste,
        copy_paste_mode: mode,
        mixup: 0.3,
        ..AugConfig::default()
    }
}

#[test]
fn loader_pastes_segments_only_and_stays_deterministic() {
    let seg = entries("cp-seg", true);
    let det = entries("cp-det", false);
    for mode in [CopyPasteMode::Flip, CopyPasteMode::Mixup] {
        // Box-only labels: the same batches as without copy-paste (no draws, no pixels).
        assert!(batches(&det, with(1.0, mode), 1, true) == batches(&det, with(0.0, mode), 1, true));
        // After close_mosaic copy-paste is off.
        assert!(
            batches(&seg, with(1.0, mode), 1, false) == batches(&seg, with(0.0, mode), 1, false)
        );
        let on = batches(&seg, with(1.0, mode), 1, true);
        let off = batches(&seg, with(0.0, mode), 1, true);
        assert!(on != off, "{mode:?}: copy-paste changes the batches");
        let count = |b: &Batches| b.iter().map(|x| x.1.len()).sum::<usize>();
        println!(
            "{mode:?}: {} labels with, {} without",
            count(&on),
            count(&off)
        );
        for (_, boxes, nseg) in &on {
            assert_eq!(boxes.len(), *nseg, "one polygon per box");
        }
        polygons_inside_their_boxes(&seg, with(1.0, mode));
        assert!(
            on == batches(&seg, with(1.0, mode), 2, true),
            "any worker count"
        );
    }
    // Rect training keeps copy-paste (Ultralytics turns off only mosaic, mixup and cutmix).
    for mode in [CopyPasteMode::Flip, CopyPasteMode::Mixup] {
        let rect = |p: f64| -> Vec<(Vec<u8>, usize, usize)> {
            let ds = TrainDataset::new(seg.clone(), 64, with(p, mode), 7, false).with_rect(4);
            let pool = Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .unwrap(),
            );
            epoch_batches(Arc::new(ds), pool, 0, 4, true, 2)
                .iter()
                .map(|b| (b.pixels, b.targets.bboxes.len(), b.targets.segments.len()))
                .collect()
        };
        let (on, off) = (rect(1.0), rect(0.0));
        assert!(on != off, "rect {mode:?}");
        assert!(on.iter().all(|b| b.1 == b.2));
        assert!(on.iter().map(|b| b.1).sum::<usize>() > off.iter().map(|b| b.1).sum::<usize>());
    }
    // Flip mode pastes instances every time it can: more labels than without.
    let on = batches(&seg, with(1.0, CopyPasteMode::Flip), 1, true);
    let off = batches(&seg, with(0.0, CopyPasteMode::Flip), 1, true);
    let count = |b: &Batches| b.iter().map(|x| x.1.len()).sum::<usize>();
    assert!(count(&on) > count(&off));
}

#[test]
fn segment_training_runs_with_copy_paste_in_both_modes() {
    let d = tmp("cp-train");
    let yaml = ryolo::data::synth::generate_with(&d.join("data"), 12, 64, 2, true).unwrap();
    // A tiny segment model (strides 8, 16, 32) keeps the runs to seconds.
    let model = d.join("tiny-seg.yaml");
    std::fs::write(
        &model,
        "nc: 3\nbackbone:\n  - [-1, 1, Conv, [8, 3, 2]]\n  - [-1, 1, Conv, [8, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n  - [[2, 3, 4], 1, Segment, [nc, 32, 16]]\n",
    )
    .unwrap();
    for mode in ["flip", "mixup"] {
        let a = args(&format!(
            "model={} data={} epochs=1 close_mosaic=0 imgsz=64 batch=4 nbs=4 seed=0 workers=1 project={} name={mode} val=False plots=False copy_paste=0.5 copy_paste_mode={mode}",
            model.display(),
            yaml.display(),
            d.display()
        ));
        let out = train(&a, &mut Callbacks::default()).unwrap();
        assert_eq!(out.epochs_done, 1, "{mode}");
        let csv = std::fs::read_to_string(d.join(mode).join("results.csv")).unwrap();
        assert_eq!(csv.lines().count(), 2, "{csv}");
    }
    let bad = args(&format!(
        "model={} data={} epochs=1 imgsz=64 project={} name=bad copy_paste_mode=paste",
        model.display(),
        yaml.display(),
        d.display()
    ));
    let err = train(&bad, &mut Callbacks::default()).unwrap_err();
    assert!(format!("{err:#}").contains("copy_paste_mode"), "{err:#}");
}

#[test]
fn shared_segment_and_obb_datasets_paste_consistent_labels() {
    let Some(shared) = common::shared() else {
        return;
    };
    for (name, nc, fmt) in [
        ("coco8-seg", 80, LabelFormat::Segment),
        ("dota8", 15, LabelFormat::Obb),
    ] {
        let dir = shared.join("datasets").join(name).join("images/train");
        let files = list_images(&[dir]).unwrap();
        let e = scan_with("train", &files, nc, false, fmt).entries;
        for mode in [CopyPasteMode::Flip, CopyPasteMode::Mixup] {
            let ds = Arc::new(TrainDataset::new(e.clone(), 160, with(1.0, mode), 5, false));
            let pool = Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(2)
                    .build()
                    .unwrap(),
            );
            let mut n = 0;
            for b in epoch_batches(ds, pool, 0, 2, true, 2).iter() {
                let t = &b.targets;
                n += t.cls.len();
                match fmt {
                    LabelFormat::Obb => assert_eq!(t.corners.len(), t.cls.len()),
                    _ => assert_eq!(t.segments.len(), t.cls.len()),
                }
            }
            assert!(n > 0, "{name} {mode:?}");
        }
        if fmt == LabelFormat::Segment {
            polygons_inside_their_boxes(&e, with(1.0, CopyPasteMode::Flip));
        }
    }
}
