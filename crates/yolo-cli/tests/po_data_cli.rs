//! The pose / OBB data tools of the real `yolo` binary: `data synth task=pose|obb` write sets that
//! `data check` accepts, `data convert from=dota` writes normalised corner files and `data
//! split_dota` tiles a DOTA root.

mod common;
use common::{tmp, yolo};

#[test]
fn synth_pose_and_obb_sets_pass_data_check() {
    let d = tmp("synth-po");
    for task in ["pose", "obb"] {
        let out_arg = format!("out={task}");
        let task_arg = format!("task={task}");
        let (ok, out) = yolo(
            &["data", "synth", &out_arg, "n=6", "imgsz=96", &task_arg],
            &d,
        );
        assert!(ok, "{out}");
        assert!(
            out.contains(&format!("Synthetic {task} dataset written")),
            "{out}"
        );
        let data_arg = format!("data={task}/data.yaml");
        let (ok, out) = yolo(&["data", "check", &data_arg, &task_arg], &d);
        assert!(ok, "{out}");
        assert!(out.contains("0 corrupt"), "{out}");
        assert!(
            out.contains("train: ") && out.contains(" instances"),
            "{out}"
        );
    }
    let (ok, out) = yolo(&["data", "synth", "out=x", "task=classify"], &d);
    assert!(
        !ok && out.contains("task=detect, segment, pose or obb"),
        "{out}"
    );
}

#[test]
fn dota_labels_convert_in_place() {
    let d = tmp("dota-cli");
    let (ok, out) = yolo(
        &["data", "synth", "out=s", "n=4", "imgsz=64", "task=obb"],
        &d,
    );
    assert!(ok, "{out}");
    let root = d.join("dota");
    for p in ["images/train", "images/val", "labels/train_original"] {
        std::fs::create_dir_all(root.join(p)).unwrap();
    }
    std::fs::copy(
        d.join("s/images/train/train_00000.png"),
        root.join("images/train/P0001.png"),
    )
    .unwrap();
    std::fs::write(
        root.join("labels/train_original/P0001.txt"),
        "imagesource:GoogleEarth\ngsd:0.1\n0 0 64 0 64 32 0 32 plane 0\n8 16 24 16 24 48 8 48 helipad 1\n",
    )
    .unwrap();
    let (ok, out) = yolo(&["data", "convert", "from=dota", "source=dota"], &d);
    assert!(ok, "{out}");
    assert!(
        out.contains("Converted 1 DOTA label files (2 boxes"),
        "{out}"
    );
    let got = std::fs::read_to_string(root.join("labels/train/P0001.txt")).unwrap();
    assert_eq!(
        got,
        "0 0 0 1 0 1 0.5 0 0.5\n17 0.125 0.25 0.375 0.25 0.375 0.75 0.125 0.75\n"
    );
    let (ok, out) = yolo(&["data", "convert", "from=dota", "source=missing"], &d);
    assert!(!ok && out.contains("missing"), "{out}");
}

#[test]
fn split_dota_tiles_a_dota_root() {
    let d = tmp("split-dota-cli");
    let (ok, out) = yolo(
        &["data", "synth", "out=s", "n=1", "imgsz=300", "task=obb"],
        &d,
    );
    assert!(ok, "{out}");
    let root = d.join("dota");
    for p in ["images/train", "labels/train", "images/test"] {
        std::fs::create_dir_all(root.join(p)).unwrap();
    }
    let src = d.join("s/images/train/train_00000.png");
    std::fs::copy(&src, root.join("images/train/P0001.png")).unwrap();
    std::fs::copy(&src, root.join("images/test/P0002.png")).unwrap();
    // One box (x 30-60 px, y 30-90 px) inside the first 128 px window only.
    std::fs::write(
        root.join("labels/train/P0001.txt"),
        "3 0.1 0.1 0.2 0.1 0.2 0.3 0.1 0.3\n",
    )
    .unwrap();
    let (ok, out) = yolo(
        &[
            "data",
            "split_dota",
            "source=dota",
            "out=tiles",
            "crop_size=128",
            "gap=28",
            "rates=1.0",
            "color=red",
        ],
        &d,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("WARNING yolo data split_dota: 'color' is not used"),
        "{out}"
    );
    // 300 px with 128 px windows, step 100: starts 0, 100, then 200 moved back to 172.
    assert!(
        out.contains("train: 1 images -> 9 tiles") && out.contains("1 label files (1 objects)"),
        "{out}"
    );
    assert!(out.contains("test: 1 images -> 9 tiles"), "{out}");
    let mut names: Vec<String> = std::fs::read_dir(d.join("tiles/images/train"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let want: Vec<String> = ["0", "100", "172"]
        .iter()
        .flat_map(|x| {
            ["0", "100", "172"]
                .iter()
                .map(move |y| format!("P0001__128__{x}___{y}.jpg"))
        })
        .collect();
    assert_eq!(names, want);
    let label =
        std::fs::read_to_string(d.join("tiles/labels/train/P0001__128__0___0.txt")).unwrap();
    assert_eq!(
        label,
        "3 0.234375 0.234375 0.46875 0.234375 0.46875 0.703125 0.234375 0.703125\n"
    );
    let (ok, out) = yolo(
        &[
            "data",
            "split_dota",
            "source=dota",
            "out=t",
            "crop_size=100",
            "gap=100",
        ],
        &d,
    );
    assert!(
        !ok && out.contains("invalid crop_size gap pair [100 100]"),
        "{out}"
    );
}
