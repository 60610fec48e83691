//! `yolo bench track`: tracker timing on a stored detection stream (the fixture's 200 frames).

mod common;
use common::{shared, tmp, yolo};

#[test]
fn bench_track_runs_every_tracker_on_the_fixture_stream() {
    let Some(sh) = shared() else { return };
    let fx = sh.join("fixtures/ultralytics/track/track_synthetic.json");
    let d = tmp("bench-track");
    let (ok, out) = yolo(
        &[
            "bench",
            "track",
            &format!("source={}", fx.display()),
            "n=1",
            "imgsz=320",
        ],
        &d,
    );
    assert!(ok, "{out}");
    assert!(out.contains("'imgsz' is not used"), "{out}");
    // Same output row counts as Ultralytics' trackers on this stream (820 / 821 / 772, as the fixture).
    for (name, rows) in [
        ("bytetrack.yaml", 820),
        ("botsort.yaml", 821),
        ("tracktrack.yaml", 772),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(line.contains(&format!("rows out {rows} ")), "{line}");
    }
    let (ok, out) = yolo(
        &[
            "bench",
            "track",
            &format!(
                "source={}",
                sh.join("fixtures/ultralytics/track/README.md").display()
            ),
        ],
        &d,
    );
    assert!(!ok && out.contains("README.md: not JSON"), "{out}");
}
