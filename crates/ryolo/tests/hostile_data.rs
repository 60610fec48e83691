//! Hostile dataset files, one crafted case per class (spec: "no panic, abort or hang on any input,
//! and never a silent no-op"): huge duplicate-heavy labels, bad `nc`/`names`, deeply nested YAML,
//! decompression-bomb headers, truncated images in validation, FIFOs, symlink loops, garbage
//! source lists. Each finishes in well under a second of work.

mod common;
use common::tmp;
use ryolo::data::labels::{verify, Verdict};
use ryolo::data::{list_images, load_data_yaml, scan};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `f` on a thread and fails the test if it has not returned within `limit` (a hang).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what}: no answer within {limit:?} (hang)"))
}

/// A folder with `images/` and `labels/` and one valid 32x24 PNG `a.png` labelled `0 ...`.
fn dataset(name: &str) -> (PathBuf, PathBuf) {
    let d = tmp(name);
    std::fs::create_dir_all(d.join("images")).unwrap();
    std::fs::create_dir_all(d.join("labels")).unwrap();
    let img = d.join("images/a.png");
    image::RgbImage::new(32, 24).save(&img).unwrap();
    std::fs::write(d.join("labels/a.txt"), "0 0.5 0.5 0.2 0.2\n").unwrap();
    (d, img)
}

/// A PNG chunk: length, type, data, CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc_in = kind.to_vec();
    crc_in.extend_from_slice(data);
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&crc_in);
    out.extend_from_slice(&crc32(&crc_in).to_be_bytes());
    out
}

/// The CRC-32 PNG uses.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A PNG whose header claims `w x h` 1-bit grey pixels (the data is a few bytes: a bomb's header).
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// Creates a FIFO at `p` with the system's `mkfifo`.
fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mkfifo {}", p.display());
}

#[test]
fn big_duplicate_heavy_label_file_parses_fast_and_huge_ones_are_refused() {
    let (d, img) = dataset("dup-labels");
    let lb = d.join("labels/a.txt");
    // 4 MB: 222k copies of one row, then 4.6 MB of 200k rows with 1000 distinct boxes.
    let same = "0 0.5 0.5 0.2 0.2\n".repeat(222_222);
    let mixed: String = (0..200_000)
        .map(|i| format!("1 0.5 0.5 0.2 {:.6}\n", 0.1 + (i % 1000) as f64 * 1e-4))
        .collect();
    for (text, kept) in [(same, 1), (mixed, 1000)] {
        std::fs::write(&lb, &text).unwrap();
        let t = Instant::now();
        let c = verify(&img, 3, false);
        let secs = t.elapsed().as_secs_f64();
        assert!(secs < 1.0, "{} bytes took {secs:.2} s", text.len());
        let e = c.entry.unwrap();
        assert_eq!(e.boxes.len(), kept);
        let removed = format!("{} duplicate labels removed", text.lines().count() - kept);
        assert!(
            c.warnings.iter().any(|w| w.contains(&removed)),
            "{:?}",
            c.warnings
        );
    }
    // With duplicates removed the kept rows take NumPy's sorted-unique order (spec/data.md §3).
    std::fs::write(
        &lb,
        "2 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.3 0.3\n",
    )
    .unwrap();
    assert_eq!(verify(&img, 3, false).entry.unwrap().cls, [0, 1, 2]);
    // Many zero-area rows: one warning for the file, not one per row.
    std::fs::write(
        &lb,
        "0 0.5 0.5 0 0.2\n".repeat(100_000) + "0 0.5 0.5 0.2 0.2\n",
    )
    .unwrap();
    let c = verify(&img, 3, false);
    assert_eq!(c.verdict, Verdict::Found);
    assert_eq!(
        c.warnings.len(),
        1,
        "{:?}",
        &c.warnings[..2.min(c.warnings.len())]
    );
    assert!(c.warnings[0].contains("a.txt:1: zero-area box ignored (and 99999 more"));
    // Over 64 MiB (a sparse file): refused by size, naming the file, without reading it.
    let f = std::fs::File::create(&lb).unwrap();
    f.set_len(65 << 20).unwrap();
    let t = Instant::now();
    let c = verify(&img, 3, false);
    assert!(t.elapsed() < Duration::from_millis(500));
    assert_eq!(c.verdict, Verdict::Corrupt);
    assert!(
        c.warnings[0].contains("labels/a.txt") && c.warnings[0].contains("over the limit"),
        "{:?}",
        c.warnings
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn nc_and_names_are_bounded_and_consistent() {
    let d = tmp("nc-names");
    let f = d.join("data.yaml");
    let load = |body: &str| {
        let head = if body.contains("train:") {
            "val: images\n"
        } else {
            "train: images\nval: images\n"
        };
        std::fs::write(&f, format!("{head}{body}")).unwrap();
        load_data_yaml(&f)
    };
    for (body, key) in [
        ("nc: -3\n", "'nc: -3'"),
        ("nc: 0\n", "'nc: 0'"),
        ("nc: 1e12\n", "'nc: 1000000000000.0'"),
        ("nc: 3.7\n", "'nc: 3.7'"),
        ("nc: 10001\n", "'nc: 10001'"),
        ("nc: three\n", "'nc: three'"),
        ("nc: [3]\n", "'nc: - 3'"),
        ("nc: 99999999999999999999999\n", "line 3: nc: invalid type"),
        ("names: []\n", "'names' is empty"),
        ("names: {}\n", "'names' is empty"),
        ("nc: 2\nnames: []\n", "'names' is empty"),
        (
            "nc: 3\nnames: [a, b]\n",
            "'nc: 3' does not match the 2 entries of 'names'",
        ),
        ("nc: -3\nnames: [a, b, c]\n", "'nc: -3'"),
        ("names: {0: a, 2: b}\n", "'names' keys must be 0..1"),
        ("names: 7\n", "'names' must be a list or a mapping"),
        (
            "kpt_shape: [1000000000, 3]\nnames: [a]\n",
            "'kpt_shape' must be",
        ),
        ("names: [a]\ntrain: [images, 5]\n", "'train' holds 5"),
        ("names: [a]\npath: [x]\n", "'path: - x'"),
    ] {
        let t = Instant::now();
        let e = format!("{:#}", load(body).unwrap_err());
        assert!(t.elapsed() < Duration::from_millis(500), "{body:?}");
        assert!(e.contains("data.yaml") && e.contains(key), "{body:?}: {e}");
    }
    let names = |body: &str| load(body).unwrap().names;
    assert_eq!(names("nc: 3\n"), ["class_0", "class_1", "class_2"]);
    assert_eq!(names("nc: 2.0\nnames: [a, b]\n"), ["a", "b"]);
    assert_eq!(names("nc: null\nnames: {1: b, 0: a}\n"), ["a", "b"]);
    assert_eq!(load("nc: 10000\n").unwrap().nc(), 10_000);
    std::fs::remove_dir_all(d).unwrap();
}

/// Nine levels of ten aliases each: a billion leaves once expanded.
fn billion_laughs() -> String {
    let mut y = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n".to_string();
    for i in 1..9 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        y += &format!("l{i}: &l{i} [{refs}]\n");
    }
    y
}

#[test]
fn nested_bracket_and_oversized_yaml_is_refused_before_parsing() {
    let d = tmp("nested-yaml");
    let f = d.join("data.yaml");
    let head = "train: images\nval: images\nnames: [a]\n";
    for (body, want) in [
        (
            format!("x: {}\n", "[".repeat(100_000)),
            "data.yaml:4: nesting deeper than 64",
        ),
        (
            format!("x: {}\n", "{a: ".repeat(50_000)),
            "data.yaml:4: nesting deeper than 64",
        ),
        // Quotes, comments and scalars cannot hide real brackets from the pre-scan.
        (
            format!("x: [a 'b, {}\n", "[".repeat(100_000)),
            "nesting deeper than 64",
        ),
        (
            format!("x: ['a\n #', {}\n", "[".repeat(100_000)),
            "nesting deeper than 64",
        ),
        (
            format!("x: [[[[']]]]', {}\n", "[".repeat(70)),
            "nesting deeper than 64",
        ),
        (
            (0..100)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                .collect(),
            "nesting deeper than 64 levels (indentation)",
        ),
        // Aliases: a billion laughs.
        (billion_laughs(), "aliases (*name), over the limit of 8"),
        (
            "x: '".to_string() + &"a".repeat(3 << 20) + "'\n",
            "over the limit of 2097152 bytes",
        ),
    ] {
        std::fs::write(&f, format!("{head}{body}")).unwrap();
        let t = Instant::now();
        let e = format!("{:#}", load_data_yaml(&f).unwrap_err());
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:.60}: {:?}",
            body,
            t.elapsed()
        );
        assert!(
            e.contains("data.yaml") && e.contains(want),
            "{:.60}: {e}",
            body
        );
    }
    // Brackets inside a block scalar (an Ultralytics download script) and quotes are fine.
    let script = format!(
        "download: |\n  x = {}\n  y = 1\nnames2: '{}'\n",
        "[".repeat(200),
        "[".repeat(200)
    );
    std::fs::write(&f, format!("{head}{script}")).unwrap();
    assert_eq!(load_data_yaml(&f).unwrap().names, ["a"]);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn bomb_header_is_rejected_per_file_by_the_scan_and_the_loaders() {
    let (d, _) = dataset("bomb-png");
    let bomb = d.join("images/bomb.png");
    std::fs::write(&bomb, bomb_png(60_000, 60_000)).unwrap();
    std::fs::write(d.join("labels/bomb.txt"), "0 0.5 0.5 0.2 0.2\n").unwrap();
    let files = list_images(&[d.join("images")]).unwrap();
    let t = Instant::now();
    let s = scan("bomb", &files, 3, false);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!((s.found, s.corrupt), (1, 1));
    let w = s.warnings.iter().find(|w| w.contains("bomb.png")).unwrap();
    assert!(
        w.contains("60000x60000 is 3600000000 pixels, over the limit of 89478485")
            && w.contains("RYOLO_MAX_IMAGE_PIXELS"),
        "{w}"
    );
    // The training and validation loaders refuse it too, before allocating.
    let e = format!("{:#}", ryolo::data::image::load_dynamic(&bomb).unwrap_err());
    assert!(
        e.contains("bomb.png") && e.contains("over the limit"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        ryolo::data::loader::load_resized(&bomb, 640).unwrap_err()
    );
    assert!(e.contains("over the limit"), "{e}");
    // One side over the limit alone (a 1-pixel-high strip) is refused by the decoder's Limits.
    std::fs::write(&bomb, bomb_png(100_000_000, 1)).unwrap();
    let e = format!("{:#}", ryolo::data::image::probe(&bomb, false).unwrap_err());
    assert!(e.contains("limit"), "{e}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn truncated_png_is_caught_by_the_scan_and_skipped_by_validation() {
    use ryolo::engine::val::{validate, ValConfig};
    let d = tmp("trunc-val");
    let yaml = ryolo::data::synth::generate(&d.join("data"), 4, 64, 3).unwrap();
    let dc = load_data_yaml(&yaml).unwrap();
    let files = list_images(dc.split("val").unwrap()).unwrap();
    let s = scan("val", &files, dc.nc(), false);
    assert_eq!(s.entries.len(), 4);
    // The file is damaged after the scan (its cache is then stale, but validate() trusts entries).
    let broken = files[1].clone();
    let bytes = std::fs::read(&broken).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let spec = ryolo::nn::ModelSpec::from_name("yolo11n.yaml", Some(3)).unwrap();
    let m = ryolo::nn::DetectionModel::new(spec, tch::Device::Cpu).unwrap();
    let cfg = ValConfig {
        imgsz: 64,
        batch: 1,
        ..Default::default()
    };
    let r = validate(&m, &s.entries, &cfg, |_, _| {}).unwrap();
    assert_eq!(r.skipped, std::slice::from_ref(&broken));
    assert_eq!(r.seen, 3);
    // The other images are validated exactly as without the broken one.
    let others: Vec<_> = s
        .entries
        .iter()
        .filter(|e| e.im_file != broken)
        .cloned()
        .collect();
    let want = validate(&m, &others, &cfg, |_, _| {}).unwrap();
    assert_eq!(r.instances, want.instances);
    assert_eq!(r.metrics.map(), want.metrics.map());
    assert_eq!(r.per_class, want.per_class);
    // Batched, the broken image's batch is validated without it.
    let r4 = validate(
        &m,
        &s.entries,
        &ValConfig {
            batch: 4,
            ..cfg.clone()
        },
        |_, _| {},
    )
    .unwrap();
    assert_eq!((r4.seen, r4.skipped.len()), (3, 1));
    // A fresh scan drops it with the reason.
    let s = scan("val", &files, dc.nc(), false);
    assert_eq!(s.corrupt, 1);
    let w = s
        .warnings
        .iter()
        .find(|w| w.contains("val_00001.png"))
        .unwrap();
    assert!(
        w.contains("ignoring corrupt image") && w.contains("does not decode"),
        "{w}"
    );
    // Every image broken: an error, not an empty result.
    let bad = vec![ryolo::data::LabelEntry {
        im_file: broken,
        ..s.entries[0].clone()
    }];
    let e = validate(&m, &bad, &cfg, |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("none of the 1 validation images"), "{e}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn fifo_image_label_and_lists_are_reported_not_waited_on() {
    let (d, img) = dataset("fifo");
    mkfifo(&d.join("images/b.png"));
    std::fs::remove_file(d.join("labels/a.txt")).unwrap();
    mkfifo(&d.join("labels/a.txt"));
    mkfifo(&d.join("list.txt"));
    mkfifo(&d.join("data.yaml"));
    let dd = d.clone();
    let s = within(Duration::from_secs(20), "scan with FIFOs", move || {
        let files = list_images(&[dd.join("images")]).unwrap();
        scan("fifo", &files, 3, false)
    });
    assert_eq!((s.found, s.corrupt, s.entries.len()), (0, 2, 0));
    let has = |name: &str, why: &str| {
        s.warnings
            .iter()
            .any(|w| w.contains(name) && w.contains(why))
    };
    assert!(
        has("images/b.png", "not a regular file (a FIFO)"),
        "{:?}",
        s.warnings
    );
    assert!(
        has(
            "labels/a.txt",
            "ignoring corrupt label: not a regular file (a FIFO)"
        ),
        "{:?}",
        s.warnings
    );
    let dd = d.clone();
    let errs = within(
        Duration::from_secs(20),
        "FIFO list, yaml, image",
        move || {
            [
                list_images(&[dd.join("list.txt")]).map(|_| ()),
                load_data_yaml(&dd.join("data.yaml")).map(|_| ()),
                ryolo::data::image::load_dynamic(&dd.join("images/b.png")).map(|_| ()),
                ryolo::engine::predict::expand_source(dd.join("list.txt").to_str().unwrap())
                    .map(|_| ()),
            ]
            .map(|r| format!("{:#}", r.unwrap_err()))
        },
    );
    let wants = [
        "list.txt is not a regular file or a folder",
        "data.yaml: not a regular file (a FIFO)",
        "b.png: not a regular file (a FIFO)",
        "list.txt' is not a regular file or a folder",
    ];
    for (e, want) in errs.iter().zip(wants) {
        assert!(e.contains(want), "{e}");
    }
    // A FIFO where cache=disk keeps the image's pixels: decoded from the image instead.
    let npy = ryolo::data::loader::disk_cache_path(&img);
    mkfifo(&npy);
    let im = img.clone();
    let loaded = within(Duration::from_secs(20), "FIFO disk cache", move || {
        ryolo::data::loader::load_via_disk_cache(&im).map(|i| (i.width(), i.height()))
    });
    assert_eq!(loaded.unwrap(), (32, 24));
    // The valid image alone (label now missing) is still a background.
    std::fs::remove_file(d.join("labels/a.txt")).unwrap();
    assert_eq!(verify(&img, 3, false).verdict, Verdict::Missing);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn symlink_loop_and_aliases_in_images_list_each_image_once() {
    let (d, _) = dataset("symlinks");
    let sub = d.join("images/sub");
    std::fs::create_dir_all(&sub).unwrap();
    image::RgbImage::new(32, 24)
        .save(sub.join("b.png"))
        .unwrap();
    std::os::unix::fs::symlink("..", sub.join("loop")).unwrap();
    std::os::unix::fs::symlink(&sub, d.join("images/alias")).unwrap();
    std::os::unix::fs::symlink("a.png", d.join("images/c.png")).unwrap();
    std::os::unix::fs::symlink("self.png", d.join("images/self.png")).unwrap();
    let files = within(Duration::from_secs(20), "listing a symlink loop", {
        let dd = d.clone();
        move || list_images(&[dd.join("images")]).unwrap()
    });
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(d.join("images"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    // a.png once (c.png links to it), b.png once (alias/ and sub/loop/sub are the same folder),
    // and the self-referencing link stays listed so the scan reports it.
    assert_eq!(names, ["a.png", "alias/b.png", "self.png"]);
    let s = scan("links", &files, 3, false);
    assert_eq!((s.found, s.backgrounds, s.corrupt), (1, 1, 1));
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("self.png") && w.contains("symbolic links")),
        "{:?}",
        s.warnings
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn garbage_source_lists_name_the_file_and_line() {
    let (d, img) = dataset("garbage-list");
    let list = d.join("list.txt");
    let mut bytes = b"images/a.png\n\n".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0x00, b'\n']);
    std::fs::write(&list, &bytes).unwrap();
    let src = list.to_str().unwrap();
    let e = format!(
        "{:#}",
        ryolo::engine::predict::expand_source(src).unwrap_err()
    );
    assert!(e.contains("list.txt:3: not UTF-8 text"), "{e}");
    let e = format!(
        "{:#}",
        list_images(std::slice::from_ref(&list)).unwrap_err()
    );
    assert!(e.contains("list.txt:3: not UTF-8 text"), "{e}");
    // Missing and non-image lines are skipped (with file:line warnings); the good one stays.
    std::fs::write(&list, "images/a.png\nimages/missing.png\nlabels/a.txt\n").unwrap();
    assert_eq!(
        ryolo::engine::predict::expand_source(src).unwrap(),
        std::slice::from_ref(&img)
    );
    // Binary garbage that happens to be valid UTF-8 is just lines naming no file.
    let garbage: String = (0..5000u32)
        .map(|i| char::from_u32(32 + (i * 7919) % 90).unwrap())
        .collect();
    std::fs::write(&list, garbage).unwrap();
    let e = format!(
        "{:#}",
        ryolo::engine::predict::expand_source(src).unwrap_err()
    );
    assert!(e.contains("no images or videos found"), "{e}");
    std::fs::remove_dir_all(d).unwrap();
}
