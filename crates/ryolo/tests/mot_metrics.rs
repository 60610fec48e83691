//! MOT evaluation against py-motmetrics' expected TUD values and TrackEval on mot17-mini.

use ryolo::metrics::mot::{self, MotCounts, MotFile, MotOptions, MotRow};
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets")
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
    let mut total = MotCounts::default();
    for (name, expect) in &want[..2] {
        let gt = MotFile::read(&d.join(name).join("gt.txt")).unwrap();
        let res = MotFile::read(&d.join(name).join("test.txt")).unwrap();
        assert!(!mot::looks_like_mot17(&gt));
        let c = mot::evaluate(&gt, &res, &MotOptions::default()).unwrap();
        assert_eq!(row(&c), *expect, "{name}");
        total.add(&c);
    }
    assert_eq!(row(&total), want[2].1, "OVERALL");
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
