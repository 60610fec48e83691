//! Tracker timing (`yolo bench track`): per-frame `update` time (association + Kalman, no detector, no GMC)
//! on a stored detection stream, for comparison with Ultralytics' Python trackers (scripts/bench_track.py).

use super::{config::GmcMethod, Detection, Tracker, TrackerConfig};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;

/// Reads a detection stream: JSON with `inputs[f]` = frame f+1's rows `[x1, y1, x2, y2, conf, cls]`
/// (the layout of the track fixtures and of scripts/bench_track.py's crowd file).
pub fn load_stream(path: &Path) -> Result<Vec<Vec<Detection>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let Some(frames) = v.get("inputs").and_then(|x| x.as_array()) else {
        bail!(
            "{}: no 'inputs' list (frames of [x1, y1, x2, y2, conf, cls] rows)",
            path.display()
        );
    };
    let mut out = Vec::with_capacity(frames.len());
    for (f, fr) in frames.iter().enumerate() {
        let rows = fr
            .as_array()
            .with_context(|| format!("{}: inputs[{f}] is not a list", path.display()))?;
        let mut dets = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let vals: Option<Vec<f32>> = r.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_f64().map(|x| x as f32))
                    .collect()
            });
            match vals {
                Some(v) if v.len() == 6 => dets.push(Detection {
                    xyxy: [v[0], v[1], v[2], v[3]],
                    conf: v[4],
                    cls: v[5],
                }),
                _ => bail!(
                    "{}: inputs[{f}][{i}] is not a row of 6 numbers [x1, y1, x2, y2, conf, cls]",
                    path.display()
                ),
            }
        }
        out.push(dets);
    }
    Ok(out)
}

/// Timing of repeated runs over one stream.
#[derive(Clone, Debug)]
pub struct TrackTiming {
    /// Mean per-frame `update` time of each run, in milliseconds.
    pub run_means_ms: Vec<f64>,
    /// Median over all frames of all runs, in milliseconds.
    pub frame_median_ms: f64,
    /// Rows output over one run (a sanity figure to compare with the Python side).
    pub rows_out: usize,
    /// Detections per frame on average.
    pub dets_per_frame: f64,
}

impl TrackTiming {
    /// The median of the per-run means.
    pub fn median_run_mean_ms(&self) -> f64 {
        median(&self.run_means_ms)
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

/// Runs a fresh tracker of `cfg` over `frames` `runs` times (GMC off: no frames are given), timing each
/// `update` call.
pub fn time_tracker(
    cfg: &TrackerConfig,
    frames: &[Vec<Detection>],
    runs: usize,
) -> Result<TrackTiming> {
    let mut cfg = cfg.clone();
    cfg.gmc_method = GmcMethod::None;
    let mut all = vec![];
    let mut means = vec![];
    let mut rows_out = 0;
    for _ in 0..runs.max(1) {
        let mut t = Tracker::new(&cfg)?;
        let mut sum = 0.0;
        rows_out = 0;
        for dets in frames {
            let t0 = Instant::now();
            let out = t.update(dets, None);
            let dt = t0.elapsed().as_secs_f64() * 1e3;
            rows_out += out.len();
            sum += dt;
            all.push(dt);
        }
        means.push(sum / frames.len().max(1) as f64);
    }
    Ok(TrackTiming {
        run_means_ms: means,
        frame_median_ms: median(&all),
        rows_out,
        dets_per_frame: frames.iter().map(Vec::len).sum::<usize>() as f64
            / frames.len().max(1) as f64,
    })
}
