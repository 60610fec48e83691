//! Dataset tools on the real (flawed) datasets of ../shared: COCO and VOC converters, the scan of
//! coco128's quirks, autosplit.

mod common;
use common::tmp;
use ryolo::data::convert::{autosplit, from_coco, from_voc};
use std::path::Path;

fn rows(p: &Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect()
}

#[test]
fn coco128_json_reproduces_coco128_labels() {
    let Some(shared) = common::shared() else {
        return;
    };
    let ds = shared.join("datasets");
    let out = tmp("coco128");
    let rep = from_coco(
        &ds.join("coco128_json/annotations/instances_train2017.json"),
        Some(&ds.join("coco128/images/train2017")),
        &out,
    )
    .unwrap();
    assert_eq!(rep.names.len(), 80);
    assert_eq!(rep.names[0], "person");
    assert_eq!(rep.images, 128);
    assert!(rep.dropped.is_empty(), "{:?}", rep.dropped);
    let want_dir = ds.join("coco128/labels/train2017");
    let mut compared = 0;
    let mut max_err = 0f64;
    for e in std::fs::read_dir(out.join("labels/train2017")).unwrap() {
        let p = e.unwrap().path();
        let (got, want) = (rows(&p), rows(&want_dir.join(p.file_name().unwrap())));
        assert_eq!(got.len(), want.len(), "{}", p.display());
        let mut g = got.clone();
        let mut w = want.clone();
        g.sort_by(|a, b| a.partial_cmp(b).unwrap());
        w.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for (a, b) in g.iter().zip(&w) {
            assert_eq!(a[0], b[0]);
            for k in 1..5 {
                max_err = max_err.max((a[k] - b[k]).abs());
            }
        }
        compared += 1;
    }
    println!("coco128: {compared} label files, max abs error {max_err:.2e}");
    assert_eq!(compared, 126);
    assert!(max_err <= 1e-6, "{max_err}");
    assert!(rep.yaml.exists());
}

#[test]
fn roboflow_coco_super_category_is_not_a_class() {
    let Some(shared) = common::shared() else {
        return;
    };
    let out = tmp("rbc");
    let rep = from_coco(&shared.join("datasets/rbc_coco"), None, &out).unwrap();
    assert_eq!(rep.names, vec!["rbc", "wbc"]);
    assert_eq!(rep.images, 240);
    assert_eq!(
        rep.boxes + rep.dropped.len(),
        4947 + 470 + 221,
        "every box written or reported"
    );
    for s in ["train", "val", "test"] {
        assert!(out.join("images").join(s).is_dir(), "{s}");
    }
    let dc = ryolo::data::load_data_yaml(&rep.yaml).unwrap();
    assert_eq!(dc.nc(), 2);
}

#[test]
fn voc_converters_keep_or_report_every_box() {
    let Some(shared) = common::shared() else {
        return;
    };
    let out = tmp("raccoon");
    let rep = from_voc(&shared.join("datasets/raccoon"), None, &out).unwrap();
    assert_eq!((rep.images, rep.boxes), (200, 217));
    assert_eq!(rep.names, vec!["raccoon"]);
    let out = tmp("bccd");
    let rep = from_voc(&shared.join("datasets/bccd/BCCD"), None, &out).unwrap();
    assert_eq!(rep.names, vec!["Platelets", "RBC", "WBC"]);
    let zero: Vec<&String> = rep
        .dropped
        .iter()
        .filter(|d| d.contains("zero area"))
        .collect();
    assert_eq!(zero.len(), 2, "{:?}", rep.dropped);
    assert!(
        zero.iter().any(|d| d.contains("BloodImage_00338"))
            && zero.iter().any(|d| d.contains("BloodImage_00343"))
    );
    assert_eq!(rep.boxes, 4888 - 2);
    // The converted dataset scans clean.
    let dc = ryolo::data::load_data_yaml(&rep.yaml).unwrap();
    let files = ryolo::data::list_images(dc.split("train").unwrap()).unwrap();
    let s = ryolo::data::scan("train", &files, dc.nc(), false);
    assert_eq!(s.corrupt, 0);
}

#[test]
fn coco128_quirks_are_reported_not_fatal() {
    let Some(shared) = common::shared() else {
        return;
    };
    let dc = ryolo::data::load_data_yaml(&shared.join("datasets/coco128/coco128.yaml")).unwrap();
    let files = ryolo::data::list_images(dc.split("train").unwrap()).unwrap();
    assert_eq!(
        files.len(),
        128,
        "label files without images are not images"
    );
    let s = ryolo::data::scan("train", &files, dc.nc(), false);
    assert_eq!((s.found, s.backgrounds, s.corrupt), (126, 2, 0));
    assert_eq!(s.entries.iter().map(|e| e.cls.len()).sum::<usize>(), 929);
}

#[test]
fn autosplit_writes_three_lists() {
    let Some(shared) = common::shared() else {
        return;
    };
    let d = tmp("split");
    let imgs = d.join("images");
    std::fs::create_dir_all(&imgs).unwrap();
    for e in std::fs::read_dir(shared.join("datasets/coco128/images/train2017")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, imgs.join(p.file_name().unwrap())).unwrap();
    }
    let c = autosplit(&imgs, [0.8, 0.2, 0.0], false, 0).unwrap();
    assert_eq!(c.iter().sum::<usize>(), 128);
    assert!(c[0] > c[1] && c[1] > 0 && c[2] == 0, "{c:?}");
    let listed = ryolo::data::list_images(&[d.join("autosplit_train.txt")]).unwrap();
    assert_eq!(listed.len(), c[0]);
    assert!(!d.join("autosplit_test.txt").exists());
}
