//! MOT evaluation: CLEAR MOT and ID metrics exactly as py-motmetrics 1.4 computes them (IoU ≥ 0.5), per
//! sequence and OVERALL, with TrackEval's MOT16/17 pedestrian/distractor preprocessing as an option.

use super::hota::{hota, HotaFrame, HotaSums};
use super::lsa::{assign_allowed, min_cost_assignment};
pub use super::mot_io::{discover, MotFile, MotRow, MotSequence};
use anyhow::{bail, Result};
use std::collections::HashMap;

/// MOT16/17 GT classes whose matched tracker boxes are removed (person on vehicle, static person,
/// distractor, reflection), as TrackEval's `distractor_class_names`.
pub const MOT17_DISTRACTORS: [f64; 4] = [2.0, 7.0, 8.0, 12.0];

/// How a sequence is evaluated.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MotOptions {
    /// MOT16/17 preprocessing (TrackEval `DO_PREPROC`): tracker boxes matched (IoU ≥ 0.5, maximum total IoU)
    /// to a distractor-class GT box are removed, then only GT rows with class 1 (pedestrian) and consider ≠ 0
    /// are kept. Off: GT rows with consider (column 7) = 0 are dropped, classes are not looked at (MOT15).
    pub mot17: bool,
    /// The sequence length: rows of later frames are an error (TrackEval's rule). None: no check.
    pub num_frames: Option<u64>,
}

/// The event counts of one sequence (or their sum): everything the metrics are computed from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MotCounts {
    /// Frames with a GT or tracker row (the sequence length when known).
    pub num_frames: u64,
    /// GT boxes (matches + switches + misses).
    pub num_objects: u64,
    /// Tracker boxes (matches + switches + false positives).
    pub num_predictions: u64,
    /// Matches that are not switches.
    pub num_matches: u64,
    /// ID switches.
    pub num_switches: u64,
    /// False positives (unmatched tracker boxes).
    pub num_false_positives: u64,
    /// Misses (unmatched GT boxes, FN).
    pub num_misses: u64,
    /// Fragmentations: a tracked object's interruptions (tracked → missed, then tracked again).
    pub num_fragmentations: u64,
    /// GT ids seen.
    pub num_unique_objects: u64,
    /// GT ids tracked on at least 80 % of their frames.
    pub mostly_tracked: u64,
    /// GT ids tracked on 20 % to 80 % of their frames.
    pub partially_tracked: u64,
    /// GT ids tracked on less than 20 % of their frames.
    pub mostly_lost: u64,
    /// Sum of the 1 − IoU distances of all matches and switches.
    pub dist_sum: f64,
    /// ID true positives after the global trajectory matching.
    pub idtp: u64,
    /// ID false positives.
    pub idfp: u64,
    /// ID false negatives.
    pub idfn: u64,
    /// HOTA sums (TrackEval's HOTA, DetA, AssA, LocA).
    pub hota: HotaSums,
}

fn div(a: f64, b: f64) -> f64 {
    a / b
}

impl MotCounts {
    /// Matches + switches.
    pub fn num_detections(&self) -> u64 {
        self.num_matches + self.num_switches
    }
    /// MOTA = 1 − (FN + FP + IDSW) / GT.
    pub fn mota(&self) -> f64 {
        1.0 - div(
            (self.num_misses + self.num_switches + self.num_false_positives) as f64,
            self.num_objects as f64,
        )
    }
    /// MOTP as py-motmetrics: the mean 1 − IoU distance of the matches (lower is better).
    pub fn motp(&self) -> f64 {
        div(self.dist_sum, self.num_detections() as f64)
    }
    /// Detection recall.
    pub fn recall(&self) -> f64 {
        div(self.num_detections() as f64, self.num_objects as f64)
    }
    /// Detection precision.
    pub fn precision(&self) -> f64 {
        div(
            self.num_detections() as f64,
            (self.num_detections() + self.num_false_positives) as f64,
        )
    }
    /// IDF1 = 2 IDTP / (GT + predictions).
    pub fn idf1(&self) -> f64 {
        div(
            2.0 * self.idtp as f64,
            (self.num_objects + self.num_predictions) as f64,
        )
    }
    /// ID precision.
    pub fn idp(&self) -> f64 {
        div(self.idtp as f64, (self.idtp + self.idfp) as f64)
    }
    /// ID recall.
    pub fn idr(&self) -> f64 {
        div(self.idtp as f64, (self.idtp + self.idfn) as f64)
    }

    /// Adds `o` (py-motmetrics' OVERALL: counts summed, ratios recomputed from the sums).
    pub fn add(&mut self, o: &MotCounts) {
        self.num_frames += o.num_frames;
        self.num_objects += o.num_objects;
        self.num_predictions += o.num_predictions;
        self.num_matches += o.num_matches;
        self.num_switches += o.num_switches;
        self.num_false_positives += o.num_false_positives;
        self.num_misses += o.num_misses;
        self.num_fragmentations += o.num_fragmentations;
        self.num_unique_objects += o.num_unique_objects;
        self.mostly_tracked += o.mostly_tracked;
        self.partially_tracked += o.partially_tracked;
        self.mostly_lost += o.mostly_lost;
        self.dist_sum += o.dist_sum;
        self.idtp += o.idtp;
        self.idfp += o.idfp;
        self.idfn += o.idfn;
        self.hota.add(&o.hota);
    }
}

/// py-motmetrics' `iou_matrix` distance of two `[x, y, w, h]` boxes: 1 − IoU, None (do not pair) above `max`.
/// Both boxes are first shifted by −1 (its MATLAB-convention load), so the f64 rounding is the same.
pub fn iou_distance(a: &[f64; 4], b: &[f64; 4], max: f64) -> Option<f64> {
    let a0 = [a[0] - 1.0, a[1] - 1.0];
    let a1 = [a0[0] + a[2], a0[1] + a[3]];
    let b0 = [b[0] - 1.0, b[1] - 1.0];
    let b1 = [b0[0] + b[2], b0[1] + b[3]];
    let iw = (a1[0].min(b1[0]) - a0[0].max(b0[0])).max(0.0);
    let ih = (a1[1].min(b1[1]) - a0[1].max(b0[1])).max(0.0);
    let inter = iw * ih;
    let va = (a1[0] - a0[0]).max(0.0) * (a1[1] - a0[1]).max(0.0);
    let vb = (b1[0] - b0[0]).max(0.0) * (b1[1] - b0[1]).max(0.0);
    let iou = if inter == 0.0 {
        0.0
    } else {
        inter / (va + vb - inter)
    };
    let d = 1.0 - iou;
    // NaN (a zero-area union) is kept as NaN by NumPy's `dist > max` test: never paired either.
    (d <= max).then_some(d)
}

/// TrackEval's box IoU (`_calculate_box_ious`, xywh) used by its MOT17 preprocessing.
fn trackeval_iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let eps = f64::EPSILON;
    let (ax1, ay1) = (a[0] + a[2], a[1] + a[3]);
    let (bx1, by1) = (b[0] + b[2], b[1] + b[3]);
    let mut inter =
        (ax1.min(bx1) - a[0].max(b[0])).max(0.0) * (ay1.min(by1) - a[1].max(b[1])).max(0.0);
    let area_a = (ax1 - a[0]) * (ay1 - a[1]);
    let area_b = (bx1 - b[0]) * (by1 - b[1]);
    let mut union = area_a + area_b - inter;
    if area_a <= eps || area_b <= eps || inter < eps || union <= eps {
        inter = 0.0;
    }
    if union <= eps {
        union = 1.0;
    }
    inter / union
}

/// Per-object bookkeeping for track ratios and fragmentations.
#[derive(Default)]
struct ObjState {
    present: u64,
    tracked: u64,
    seen_hit: bool,
    missing: bool,
    frags: u64,
}

/// py-motmetrics' `MOTAccumulator` (switches never time out) plus the counts its ID metrics need.
#[derive(Default)]
struct Accumulator {
    /// Object → hypothesis it was last matched to.
    last: HashMap<i64, i64>,
    c: MotCounts,
    objs: HashMap<i64, ObjState>,
    hyp_frames: HashMap<i64, u64>,
    pair_frames: HashMap<(i64, i64), u64>,
    frames: u64,
    hota_frames: Vec<HotaFrame>,
}

impl Accumulator {
    /// One frame: GT rows `gt` and tracker rows `hyp`.
    fn update(&mut self, gt: &[&MotRow], hyp: &[&MotRow]) {
        self.frames += 1;
        let (no, nh) = (gt.len(), hyp.len());
        let mut sim = Vec::with_capacity(no * nh);
        for o in gt {
            for h in hyp {
                sim.push(trackeval_iou(&o.xywh, &h.xywh));
            }
        }
        self.hota_frames.push(HotaFrame {
            gt: gt.iter().map(|r| r.id).collect(),
            hyp: hyp.iter().map(|r| r.id).collect(),
            sim,
        });
        let mut d = vec![f64::NAN; no * nh];
        for (i, o) in gt.iter().enumerate() {
            for (j, h) in hyp.iter().enumerate() {
                if let Some(v) = iou_distance(&o.xywh, &h.xywh, 0.5) {
                    d[i * nh + j] = v;
                    *self.pair_frames.entry((o.id, h.id)).or_insert(0) += 1;
                }
            }
        }
        for h in hyp {
            *self.hyp_frames.entry(h.id).or_insert(0) += 1;
        }
        let mut om = vec![false; no];
        let mut hm = vec![false; nh];
        let mut hit = vec![false; no];
        if no > 0 && nh > 0 {
            // 1. Pairs matched before and still within the distance limit stay matched.
            for i in 0..no {
                let Some(&hprev) = self.last.get(&gt[i].id) else {
                    continue;
                };
                let Some(j) = (0..nh).find(|&j| !hm[j] && hyp[j].id == hprev) else {
                    continue;
                };
                let v = d[i * nh + j];
                if v.is_finite() {
                    om[i] = true;
                    hm[j] = true;
                    hit[i] = true;
                    self.c.num_matches += 1;
                    self.c.dist_sum += v;
                }
            }
            // 2. The rest: most pairs, then least total distance.
            let mut rest = d.clone();
            for i in 0..no {
                for j in 0..nh {
                    if om[i] || hm[j] {
                        rest[i * nh + j] = f64::NAN;
                    }
                }
            }
            for (i, j) in assign_allowed(no, nh, &rest) {
                let (o, h) = (gt[i].id, hyp[j].id);
                match self.last.get(&o) {
                    Some(&p) if p != h => self.c.num_switches += 1,
                    _ => self.c.num_matches += 1,
                }
                self.c.dist_sum += rest[i * nh + j];
                self.last.insert(o, h);
                om[i] = true;
                hm[j] = true;
                hit[i] = true;
            }
        }
        // 3./4. Misses and false positives.
        self.c.num_misses += om.iter().filter(|m| !**m).count() as u64;
        self.c.num_false_positives += hm.iter().filter(|m| !**m).count() as u64;
        for (o, &h) in gt.iter().zip(&hit) {
            let s = self.objs.entry(o.id).or_default();
            s.present += 1;
            if h {
                s.tracked += 1;
                if s.missing {
                    s.frags += 1;
                    s.missing = false;
                }
                s.seen_hit = true;
            } else if s.seen_hit {
                s.missing = true;
            }
        }
    }

    /// The counts, with MT/PT/ML, fragmentations and the ID metrics.
    fn finish(mut self) -> MotCounts {
        let c = &mut self.c;
        c.hota = hota(&self.hota_frames);
        c.num_frames = self.frames;
        c.num_objects = c.num_matches + c.num_switches + c.num_misses;
        c.num_predictions = c.num_matches + c.num_switches + c.num_false_positives;
        c.num_unique_objects = self.objs.len() as u64;
        for s in self.objs.values() {
            let r = s.tracked as f64 / s.present as f64;
            if r >= 0.8 {
                c.mostly_tracked += 1;
            } else if r >= 0.2 {
                c.partially_tracked += 1;
            } else {
                c.mostly_lost += 1;
            }
            c.num_fragmentations += s.frags;
        }
        // ID metrics. py-motmetrics solves the (objects + hypotheses)² min-cost problem with a dummy partner
        // per trajectory (cost fp + fn); pairing o with h saves 2·ex(o, h) over leaving both unpaired, so
        // its optimum is the maximum-weight matching of the co-occurrence counts ex (same IDTP, much smaller).
        let mut oids: Vec<i64> = self.objs.keys().copied().collect();
        let mut hids: Vec<i64> = self.hyp_frames.keys().copied().collect();
        oids.sort_unstable();
        hids.sort_unstable();
        let (no, nh) = (oids.len(), hids.len());
        let mut neg = vec![0.0f64; no * nh];
        for (r, o) in oids.iter().enumerate() {
            for (k, h) in hids.iter().enumerate() {
                neg[r * nh + k] = -(self.pair_frames.get(&(*o, *h)).copied().unwrap_or(0) as f64);
            }
        }
        let idtp: f64 = min_cost_assignment(no, nh, &neg)
            .into_iter()
            .map(|(r, k)| -neg[r * nh + k])
            .sum();
        c.idtp = idtp as u64;
        c.idfn = c.num_objects - c.idtp;
        c.idfp = c.num_predictions - c.idtp;
        self.c
    }
}

/// TrackEval's MOT16/17 preprocessing of one frame: the tracker rows left after removing those matched to
/// distractor GT boxes, and the GT rows kept (pedestrians with consider ≠ 0).
fn mot17_frame<'a>(gt: &'a [MotRow], hyp: &'a [MotRow]) -> (Vec<&'a MotRow>, Vec<&'a MotRow>) {
    let mut drop = vec![false; hyp.len()];
    if !gt.is_empty() && !hyp.is_empty() {
        let (no, nh) = (gt.len(), hyp.len());
        let thr = 0.5 - f64::EPSILON;
        let mut score = vec![0.0f64; no * nh];
        for (i, o) in gt.iter().enumerate() {
            for (j, h) in hyp.iter().enumerate() {
                let s = trackeval_iou(&o.xywh, &h.xywh);
                score[i * nh + j] = if s < thr { 0.0 } else { s };
            }
        }
        // Maximum total IoU; pairs scoring 0 are no match.
        let neg: Vec<f64> = score.iter().map(|s| -s).collect();
        for (i, j) in min_cost_assignment(no, nh, &neg) {
            if score[i * nh + j] > f64::EPSILON && MOT17_DISTRACTORS.contains(&gt[i].class) {
                drop[j] = true;
            }
        }
    }
    let g = gt
        .iter()
        .filter(|r| r.conf != 0.0 && r.class == 1.0)
        .collect();
    let h = hyp
        .iter()
        .zip(&drop)
        .filter(|(_, d)| !**d)
        .map(|(r, _)| r)
        .collect();
    (g, h)
}

/// Whether `gt` looks like MOT16/17/20 ground truth (a class id 1-13 in column 8 of every row; MOT15 has
/// −1 or world coordinates there).
pub fn looks_like_mot17(gt: &MotFile) -> bool {
    let mut any = false;
    for r in gt.frames.values().flatten() {
        if !is_mot17_class(r.class) {
            return false;
        }
        any = true;
    }
    any
}

fn is_mot17_class(c: f64) -> bool {
    c.fract() == 0.0 && (1.0..=13.0).contains(&c)
}

/// Evaluates tracker results `res` against ground truth `gt` (one sequence).
pub fn evaluate(gt: &MotFile, res: &MotFile, opts: &MotOptions) -> Result<MotCounts> {
    if let Some(n) = opts.num_frames {
        for f in [gt, res] {
            if let Some((frame, r)) = f.first_row_after(n) {
                bail!(
                    "{}:{}: frame {frame} is beyond the sequence's {n} frames",
                    f.path.display(),
                    r.line
                );
            }
        }
    }
    if opts.mot17 {
        for r in gt.frames.values().flatten() {
            if !is_mot17_class(r.class) {
                bail!(
                    "{}:{}: class {} is not a MOT17 class (1-13); use mot17=False for MOT15-style files",
                    gt.path.display(),
                    r.line,
                    r.class
                );
            }
        }
        for r in res.frames.values().flatten() {
            if r.class > 1.0 {
                bail!(
                    "{}:{}: class {} in a tracker file: MOT17 evaluation is for pedestrians only (class column -1 or 1)",
                    res.path.display(),
                    r.line,
                    r.class
                );
            }
        }
    }
    let mut acc = Accumulator::default();
    let mut frames: Vec<u64> = gt.frames.keys().chain(res.frames.keys()).copied().collect();
    frames.sort_unstable();
    frames.dedup();
    let empty = vec![];
    for f in frames {
        let g = gt.frames.get(&f).unwrap_or(&empty);
        let h = res.frames.get(&f).unwrap_or(&empty);
        let (g, h) = if opts.mot17 {
            mot17_frame(g, h)
        } else {
            (
                g.iter().filter(|r| r.conf != 0.0).collect(),
                h.iter().collect(),
            )
        };
        if g.is_empty() && h.is_empty() && !opts.mot17 {
            // A frame whose GT rows were all ignored: py-motmetrics (min_confidence=1) never sees it.
            continue;
        }
        acc.update(&g, &h);
    }
    let mut c = acc.finish();
    if let Some(n) = opts.num_frames {
        c.num_frames = n;
    }
    Ok(c)
}

/// One evaluated sequence.
#[derive(Clone, Debug)]
pub struct MotResult {
    /// Sequence name.
    pub name: String,
    /// Its counts.
    pub counts: MotCounts,
    /// Whether the MOT16/17 rules were applied (OVERALL: on every sequence).
    pub mot17: bool,
}

/// Evaluates every sequence (`mot17`: None = detect from each GT file) and appends `OVERALL`.
pub fn evaluate_all(seqs: &[MotSequence], mot17: Option<bool>) -> Result<Vec<MotResult>> {
    let mut out: Vec<MotResult> = vec![];
    let mut total = MotCounts::default();
    for s in seqs {
        let gt = MotFile::read(&s.gt)?;
        let res = MotFile::read(&s.results)?;
        let opts = MotOptions {
            mot17: mot17.unwrap_or_else(|| looks_like_mot17(&gt)),
            num_frames: s.num_frames,
        };
        let c = evaluate(&gt, &res, &opts)?;
        total.add(&c);
        out.push(MotResult {
            name: s.name.clone(),
            counts: c,
            mot17: opts.mot17,
        });
    }
    let all17 = out.iter().all(|r| r.mot17);
    out.push(MotResult {
        name: "OVERALL".into(),
        counts: total,
        mot17: all17,
    });
    Ok(out)
}

/// The metrics table as py-motmetrics' `eval_motchallenge` prints it (ratios in %, MOTP as a distance),
/// plus TrackEval's HOTA (mean over the 19 α thresholds).
pub fn table(results: &[MotResult]) -> String {
    let w = results
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(0)
        .max(8);
    let head = [
        "IDF1", "IDP", "IDR", "Rcll", "Prcn", "GT", "MT", "PT", "ML", "FP", "FN", "IDs", "FM",
        "MOTA", "MOTP", "HOTA",
    ];
    let widths = [6, 6, 6, 6, 6, 5, 4, 4, 4, 6, 6, 5, 5, 6, 6, 6];
    let mut s = format!("{:<w$}", "");
    for (h, wd) in head.iter().zip(widths) {
        s.push_str(&format!(" {h:>wd$}"));
    }
    s.push('\n');
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    for r in results {
        let c = &r.counts;
        let cells = [
            pct(c.idf1()),
            pct(c.idp()),
            pct(c.idr()),
            pct(c.recall()),
            pct(c.precision()),
            c.num_unique_objects.to_string(),
            c.mostly_tracked.to_string(),
            c.partially_tracked.to_string(),
            c.mostly_lost.to_string(),
            c.num_false_positives.to_string(),
            c.num_misses.to_string(),
            c.num_switches.to_string(),
            c.num_fragmentations.to_string(),
            pct(c.mota()),
            format!("{:.3}", c.motp()),
            pct(c.hota.hota()),
        ];
        s.push_str(&format!("{:<w$}", r.name));
        for (v, wd) in cells.iter().zip(widths) {
            s.push_str(&format!(" {v:>wd$}"));
        }
        s.push('\n');
    }
    s
}

/// The metrics as JSON (one object per sequence, OVERALL last), ratios as fractions.
pub fn to_json(results: &[MotResult]) -> serde_json::Value {
    serde_json::Value::Array(
        results
            .iter()
            .map(|r| {
                let c = &r.counts;
                serde_json::json!({
                    "name": r.name, "mot17_rules": r.mot17, "idf1": c.idf1(), "idp": c.idp(), "idr": c.idr(),
                    "recall": c.recall(), "precision": c.precision(),
                    "num_unique_objects": c.num_unique_objects, "mostly_tracked": c.mostly_tracked,
                    "partially_tracked": c.partially_tracked, "mostly_lost": c.mostly_lost,
                    "num_false_positives": c.num_false_positives, "num_misses": c.num_misses,
                    "num_switches": c.num_switches, "num_fragmentations": c.num_fragmentations,
                    "mota": c.mota(), "motp": c.motp(), "num_frames": c.num_frames,
                    "num_objects": c.num_objects, "num_predictions": c.num_predictions,
                    "idtp": c.idtp, "idfp": c.idfp, "idfn": c.idfn,
                    "hota": c.hota.hota(), "deta": c.hota.det_a(), "assa": c.hota.ass_a(), "loca": c.hota.loc_a(),
                })
            })
            .collect(),
    )
}

/// `yolo data mot`: evaluates `results` against `gt` (see [`discover`]), prints the table (and notes), and
/// writes the metrics as JSON to `save_json` when given. `mot17`: None = detect per GT file.
pub fn run(
    gt: &std::path::Path,
    results: &std::path::Path,
    mot17: Option<bool>,
    save_json: Option<&std::path::Path>,
) -> Result<Vec<MotResult>> {
    let (seqs, warnings) = discover(gt, results)?;
    for w in &warnings {
        eprintln!("WARNING {w}");
    }
    for n in seqs.iter().filter_map(|s| s.note.as_ref()) {
        println!("{n}");
    }
    let out = evaluate_all(&seqs, mot17)?;
    let per_seq = &out[..out.len() - 1];
    let modes: Vec<bool> = per_seq.iter().map(|r| r.mot17).collect();
    let rule = match (modes.iter().all(|m| *m), modes.iter().any(|m| *m)) {
        (true, _) => {
            "MOT16/17 rules: pedestrians only, distractor matches removed (TrackEval preprocessing)"
        }
        (false, true) => {
            "MOT16/17 rules on some sequences (GT with class ids), MOT15 rules on the others"
        }
        _ => "MOT15 rules: every GT row with consider != 0",
    };
    println!(
        "MOT evaluation of {} sequence(s), IoU >= 0.5 matching as py-motmetrics; {rule}",
        seqs.len()
    );
    print!("{}", table(&out));
    if let Some(p) = save_json {
        let text = serde_json::to_string_pretty(&to_json(&out))?;
        crate::util::write_atomic(p, text.as_bytes())?;
        println!("Metrics saved to {}", p.display());
    }
    Ok(out)
}
