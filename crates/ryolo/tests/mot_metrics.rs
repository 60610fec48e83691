//! MOT evaluation against py-motmetrics' expected TUD values and TrackEval on mot17-mini.

use ryolo::metrics::mot::{self, MotCounts, MotFile, MotOptions, MotRow};
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets")
}

/// HOTA, DetA, AssA, LocA (means over the 19 α) as TrackEval prints them.
fn hrow(c: &MotCounts) -> String {
    let h = &c.hota;
    format!(
        "{:.6} {:.6} {:.6} {:.6}",
        h.hota(),
        h.det_a(),
        h.ass_a(),
        h.loc_a()
    )
}

/// The 15 columns of mot-metrics-tud/SOURCE.md, as printed there (6 decimals, counts).
fn row(c: &MotCounts) -> String {
    format!(
        "{:.6} {:.6} {:.6} {:.6} {:.6} {} {} {} {} {} {} {} {} {:.6} {:.6}",
        c.idf1(),
        c.idp(),
        c.idr(),
        c.recall(),
        c.precision(),
        c.num_unique_objects,
        c.mostly_tracked,
        c.partially_tracked,
        c.mostly_lost,
        c.num_false_positives,
        c.num_misses,
        c.num_switches,
        c.num_fragmentations,
        c.mota(),
        c.motp()
    )
}

#[test]
fn tud_reproduces_py_motmetrics_expected_values() {
    let d = shared().join("mot-metrics-tud");
    let want = [
        (
            "TUD-Campus",
            "0.557659 0.729730 0.451253 0.582173 0.941441 8 1 6 1 13 150 7 7 0.526462 0.277201",
        ),
        (
            "TUD-Stadtmitte",
            "0.644619 0.819760 0.531142 0.608997 0.939920 10 5 4 1 45 452 7 6 0.564014 0.345904",
        ),
        (
            "OVERALL",
            "0.624296 0.799176 0.512211 0.602640 0.940268 18 6 10 2 58 602 14 13 0.555116 0.330177",
        ),
    ];
    // TrackEval 1.3.0 (BENCHMARK MOT15) HOTA on the same files (scripts/mot_reference.py).
    let hota = [
        ("TUD-Campus", "0.391397 0.418047 0.369121 0.770052"),
        ("TUD-Stadtmitte", "0.397849 0.392268 0.408841 0.737521"),
        ("OVERALL", "0.399957 0.397683 0.412450 0.732480"),
    ];
    let mut total = MotCounts::default();
    for ((name, expect), (_, h)) in want[..2].iter().zip(&hota) {
        let gt = MotFile::read(&d.join(name).join("gt.txt")).unwrap();
        let res = MotFile::read(&d.join(name).join("test.txt")).unwrap();
        assert!(!mot::looks_like_mot17(&gt));
        let c = mot::evaluate(&gt, &res, &MotOptions::default()).unwrap();
        assert_eq!(row(&c), *expect, "{name}");
        assert_eq!(hrow(&c), *h, "{name} HOTA");
        total.add(&c);
    }
    assert_eq!(row(&total), want[2].1, "OVERALL");
    assert_eq!(hrow(&total), hota[2].1, "OVERALL HOTA");
    // ID counts as py-motmetrics 1.4 reports them (idtp/idfp/idfn, scripts/mot_reference.py).
    assert_eq!((total.idtp, total.idfp, total.idfn), (776, 195, 739));
}

#[test]
fn folder_discovery_and_table() {
    let d = shared().join("mot-metrics-tud");
    let (seqs, warn) =
        mot::discover(&d.join("TUD-Campus/gt.txt"), &d.join("TUD-Campus/test.txt")).unwrap();
    assert!(warn.is_empty());
    assert_eq!(seqs.len(), 1);
    assert_eq!(seqs[0].name, "TUD-Campus");
    let r = mot::evaluate_all(&seqs, None).unwrap();
    let t = mot::table(&r);
    assert!(t.contains("TUD-Campus"), "{t}");
    assert!(t.lines().nth(1).unwrap().contains("55.8%"), "{t}");
    assert!(t.lines().last().unwrap().starts_with("OVERALL"), "{t}");
    // A results folder must hold <SEQ>.txt per GT sequence.
    let e = mot::discover(&d, &d.join("TUD-Campus"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("TUD-Campus.txt"), "{e}");
}

#[test]
fn parse_errors_name_file_and_line() {
    let p = Path::new("res.txt");
    let e = MotFile::parse("1,1,0,0,10,10\n2,1,0,0,x,10\n", p)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("res.txt:2:") && e.contains("width"), "{e}");
    let e = MotFile::parse("1,1,0,0,10\n", p).unwrap_err().to_string();
    assert!(
        e.starts_with("res.txt:1:") && e.contains("at least 6"),
        "{e}"
    );
    let e = MotFile::parse("1,3,0,0,10,10\n\n1,3,5,5,10,10\n", p)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("res.txt:3:") && e.contains("line 1"), "{e}");
    let e = MotFile::parse("0,3,0,0,10,10\n", p)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("res.txt:1:") && e.contains("frame 0"), "{e}");
    let e = MotFile::parse("1.5,3,0,0,10,10\n", p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("whole number"), "{e}");
    // Blank-separated rows are accepted too.
    let f = MotFile::parse("1 2 3 4 5 6 0.9\n", p).unwrap();
    let r: &MotRow = &f.frames[&1][0];
    assert_eq!(
        (r.id, r.xywh, r.conf, r.class),
        (2, [3.0, 4.0, 5.0, 6.0], 0.9, -1.0)
    );
}

/// py-motmetrics 1.4 on TrackEval's MOT17-preprocessed data (scripts/mot_reference.py); TrackEval's own CLEAR and
/// Identity numbers agree on every count but MT/PT (TrackEval counts a track ratio of exactly 0.8 as PT).
const GT_ALL: [(&str, &str); 8] = [
    (
        "MOT17-02-FRCNN",
        "0.897959 0.814815 1.000000 1.000000 0.814815 22 22 0 0 20 0 0 0 0.772727 0.000000",
    ),
    (
        "MOT17-04-FRCNN",
        "0.613139 0.442105 1.000000 1.000000 0.442105 42 42 0 0 424 0 0 0 -0.261905 0.000000",
    ),
    (
        "MOT17-05-FRCNN",
        "0.818182 0.692308 1.000000 1.000000 0.692308 9 9 0 0 20 0 0 0 0.555556 0.000000",
    ),
    (
        "MOT17-09-FRCNN",
        "0.857143 0.750000 1.000000 1.000000 0.750000 6 6 0 0 8 0 0 0 0.666667 0.000000",
    ),
    (
        "MOT17-10-FRCNN",
        "0.883721 0.791667 1.000000 1.000000 0.791667 19 19 0 0 25 0 0 0 0.736842 0.000000",
    ),
    (
        "MOT17-11-FRCNN",
        "0.894737 0.809524 1.000000 1.000000 0.809524 17 17 0 0 28 0 0 0 0.764706 0.000000",
    ),
    (
        "MOT17-13-FRCNN",
        "0.767025 0.622093 1.000000 1.000000 0.622093 22 22 0 0 65 0 0 0 0.392523 0.000000",
    ),
    (
        "OVERALL",
        "0.733995 0.579772 1.000000 1.000000 0.579772 137 137 0 0 590 0 0 0 0.275184 0.000000",
    ),
];
const PERTURBED: [(&str, &str); 8] = [
    (
        "MOT17-02-FRCNN",
        "0.758621 0.767442 0.750000 0.852273 0.872093 22 15 5 2 11 13 5 3 0.670455 0.159192",
    ),
    (
        "MOT17-04-FRCNN",
        "0.819723 0.849840 0.791667 0.845238 0.907348 42 39 0 3 29 52 12 23 0.723214 0.178369",
    ),
    (
        "MOT17-05-FRCNN",
        "0.760870 0.744681 0.777778 0.777778 0.744681 9 7 1 1 12 10 0 2 0.511111 0.222511",
    ),
    (
        "MOT17-09-FRCNN",
        "0.775510 0.760000 0.791667 0.875000 0.840000 6 3 3 0 4 3 1 3 0.666667 0.197691",
    ),
    (
        "MOT17-10-FRCNN",
        "0.735135 0.755556 0.715789 0.800000 0.844444 19 17 0 2 14 19 5 7 0.600000 0.167946",
    ),
    (
        "MOT17-11-FRCNN",
        "0.824034 0.842105 0.806723 0.848739 0.885965 17 16 0 1 13 18 3 6 0.714286 0.172217",
    ),
    (
        "MOT17-13-FRCNN",
        "0.777251 0.788462 0.766355 0.831776 0.855769 22 19 1 2 15 18 4 4 0.654206 0.228464",
    ),
    (
        "OVERALL",
        "0.793471 0.811297 0.776413 0.836609 0.874198 137 116 10 11 98 133 30 48 0.679361 0.183593",
    ),
];

/// TrackEval's HOTA, DetA, AssA, LocA for the same runs (7 sequences, then COMBINED_SEQ).
const GT_ALL_HOTA: [&str; 8] = [
    "0.902671 0.814815 1.000000 1.000000",
    "0.664910 0.442105 1.000000 1.000000",
    "0.832050 0.692308 1.000000 1.000000",
    "0.866025 0.750000 1.000000 1.000000",
    "0.889757 0.791667 1.000000 1.000000",
    "0.899735 0.809524 1.000000 1.000000",
    "0.788729 0.622093 1.000000 1.000000",
    "0.761428 0.579772 1.000000 1.000000",
];
const PERTURBED_HOTA: [&str; 8] = [
    "0.724620 0.656695 0.841046 0.866853",
    "0.707906 0.652674 0.814911 0.854720",
    "0.665917 0.528372 0.932534 0.812876",
    "0.670633 0.590351 0.844612 0.844232",
    "0.667594 0.588832 0.799358 0.861944",
    "0.717382 0.641637 0.853547 0.858017",
    "0.674569 0.599562 0.828184 0.813915",
    "0.698636 0.626522 0.830469 0.849402",
];

/// The synthetic trackers of scripts/mot_reference.py, built from `gt` (same rules, same f64 arithmetic).
fn synthetic(gt: &MotFile, name: &str) -> MotFile {
    let mut rows: Vec<(u64, i64, [f64; 4])> = vec![];
    for (&f, frame) in &gt.frames {
        for r in frame {
            let [x, y, w, h] = r.xywh;
            match name {
                "gt_all" => rows.push((f, r.id, r.xywh)),
                "gt_peds" if r.class == 1.0 && r.conf != 0.0 => rows.push((f, r.id, r.xywh)),
                "perturbed" if r.class == 1.0 && r.conf != 0.0 => {
                    if (f as i64 * 7 + r.id) % 11 == 0 {
                        continue;
                    }
                    let id = if r.id % 4 == 0 && f >= 3 {
                        r.id + 1000
                    } else {
                        r.id
                    };
                    let k = if r.id % 13 == 0 { 5 } else { r.id % 3 };
                    rows.push((f, id, [x + w * 0.1 * k as f64, y, w, h]));
                }
                "perturbed" if [2.0, 7.0, 8.0, 12.0].contains(&r.class) => {
                    rows.push((f, r.id + 50000, [x, y + 1.0, w, h]))
                }
                _ => {}
            }
        }
        if name == "perturbed" {
            rows.push((f, 99999, [5.0, 5.0, 20.0, 40.0]));
        }
    }
    rows.sort_by_key(|r| (r.0, r.1));
    let text: String = rows
        .iter()
        .map(|(f, i, b)| {
            format!(
                "{f},{i},{:?},{:?},{:?},{:?},1,-1,-1,-1\n",
                b[0], b[1], b[2], b[3]
            )
        })
        .collect();
    MotFile::parse(&text, Path::new(name)).unwrap()
}

#[test]
fn mot17_mini_preprocessing_matches_trackeval_and_motmetrics() {
    let root = shared().join("mot17-mini/train");
    // The GT folder holds no <SEQ>.txt results: discovery names the first missing file.
    let e = mot::discover(&root, &root).unwrap_err().to_string();
    assert!(e.contains("MOT17-02-FRCNN.txt"), "{e}");
    let mut names: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 7);
    for (tracker, want, hota) in [
        ("gt_all", &GT_ALL, &GT_ALL_HOTA),
        ("perturbed", &PERTURBED, &PERTURBED_HOTA),
    ] {
        let mut total = MotCounts::default();
        for ((name, expect), h) in names.iter().zip(want.iter()).zip(hota.iter()) {
            assert_eq!(name, expect.0);
            let gt = MotFile::read(&root.join(name).join("gt/gt.txt")).unwrap();
            assert!(mot::looks_like_mot17(&gt), "{name}");
            let n = std::fs::read_dir(root.join(name).join("img1"))
                .unwrap()
                .count() as u64;
            let opts = MotOptions {
                mot17: true,
                num_frames: Some(n),
            };
            let c = mot::evaluate(&gt, &synthetic(&gt, tracker), &opts).unwrap();
            assert_eq!(row(&c), expect.1, "{tracker} {name}");
            assert_eq!(hrow(&c), *h, "{tracker} {name} HOTA");
            total.add(&c);
        }
        assert_eq!(row(&total), want[7].1, "{tracker} OVERALL");
        assert_eq!(hrow(&total), hota[7], "{tracker} OVERALL HOTA");
    }
    // The pedestrians themselves: a perfect tracker.
    let gt = MotFile::read(&root.join("MOT17-04-FRCNN/gt/gt.txt")).unwrap();
    let opts = MotOptions {
        mot17: true,
        num_frames: Some(8),
    };
    let c = mot::evaluate(&gt, &synthetic(&gt, "gt_peds"), &opts).unwrap();
    assert_eq!(
        (c.mota(), c.idf1(), c.motp(), c.num_objects),
        (1.0, 1.0, 0.0, 336)
    );
    // Without the MOT17 rules every GT row with consider=1 counts and distractor matches stay FPs.
    let plain = mot::evaluate(&gt, &synthetic(&gt, "gt_all"), &MotOptions::default()).unwrap();
    assert_eq!(plain.num_objects, 336);
    assert!(plain.num_false_positives > 424, "{plain:?}");
}

#[test]
fn mot17_rules_refuse_what_trackeval_refuses() {
    let root = shared().join("mot17-mini/train/MOT17-02-FRCNN");
    let gt = MotFile::read(&root.join("gt/gt.txt")).unwrap();
    // seqinfo.ini says 600 frames; img1/ has 4: the length is 4 and a row on frame 5 is an error.
    let (seqs, _) = mot::discover(&root.join("gt/gt.txt"), &root.join("gt/gt.txt")).unwrap();
    assert_eq!(seqs[0].num_frames, Some(4));
    assert!(seqs[0].note.as_deref().unwrap().contains("seqLength 600"));
    let late = MotFile::parse(
        "1,1,0,0,10,10,1,-1\n5,1,0,0,10,10,1,-1\n",
        Path::new("t.txt"),
    )
    .unwrap();
    let opts = MotOptions {
        mot17: true,
        num_frames: Some(4),
    };
    let e = mot::evaluate(&gt, &late, &opts).unwrap_err().to_string();
    assert!(e.starts_with("t.txt:2:") && e.contains("4 frames"), "{e}");
    let car = MotFile::parse("1,1,0,0,10,10,1,3\n", Path::new("t.txt")).unwrap();
    let e = mot::evaluate(&gt, &car, &opts).unwrap_err().to_string();
    assert!(
        e.starts_with("t.txt:1:") && e.contains("pedestrians"),
        "{e}"
    );
}
