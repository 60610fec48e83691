//! `metric=coco`: a re-implementation of pycocotools' COCOeval for boxes (evaluateImg, accumulate,
//! summarize), so numbers can be compared with papers. All arithmetic in f64 like NumPy.

use std::collections::BTreeMap;

/// A ground-truth box: image, category, `[x, y, w, h]`, area and crowd flag.
#[derive(Debug, Clone)]
pub struct CocoGt {
    /// Image id.
    pub image: String,
    /// Category id.
    pub category: i64,
    /// `[x, y, w, h]` in pixels.
    pub bbox: [f64; 4],
    /// Area used for the size ranges (COCO's `area` field).
    pub area: f64,
    /// `iscrowd`.
    pub crowd: bool,
}

/// A detection: image, category, `[x, y, w, h]`, score.
#[derive(Debug, Clone)]
pub struct CocoDt {
    /// Image id.
    pub image: String,
    /// Category id.
    pub category: i64,
    /// `[x, y, w, h]` in pixels.
    pub bbox: [f64; 4],
    /// Confidence.
    pub score: f64,
}

/// The 12 COCOeval summary numbers: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.
pub type CocoStats = [f64; 12];

const AREAS: [(f64, f64); 4] = [(0.0, 1e10), (0.0, 1024.0), (1024.0, 9216.0), (9216.0, 1e10)];
const MAX_DETS: [usize; 3] = [1, 10, 100];

/// `np.linspace(start, stop, n)` with NumPy's arithmetic (`start + i * step`, last = stop).
fn np_linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    let step = (stop - start) / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
    v[n - 1] = stop;
    v
}

/// COCO box IoU of a detection with a ground truth (crowd gts use the detection area as union).
fn iou(d: &[f64; 4], g: &[f64; 4], crowd: bool) -> f64 {
    let iw = (d[0] + d[2]).min(g[0] + g[2]) - d[0].max(g[0]);
    let ih = (d[1] + d[3]).min(g[1] + g[3]) - d[1].max(g[1]);
    if iw <= 0.0 || ih <= 0.0 {
        return 0.0;
    }
    let inter = iw * ih;
    let union = if crowd {
        d[2] * d[3]
    } else {
        d[2] * d[3] + g[2] * g[3] - inter
    };
    inter / union
}

/// One image's evaluateImg result for one category and area range (detections sorted by score).
struct ImgEval {
    dt_scores: Vec<f64>,
    dt_matched: Vec<Vec<bool>>,
    dt_ignore: Vec<Vec<bool>>,
    gt_ignore: Vec<bool>,
}

/// Boxes grouped by `(image, category)`.
type Groups<'a, T> = BTreeMap<(&'a str, i64), Vec<&'a T>>;

/// Runs COCOeval (bbox, useCats) over all images that appear in `images`.
pub fn evaluate(images: &[String], gts: &[CocoGt], dts: &[CocoDt]) -> CocoStats {
    let mut cats: Vec<i64> = gts.iter().map(|g| g.category).collect();
    cats.sort();
    cats.dedup();
    let mut gmap: Groups<CocoGt> = BTreeMap::new();
    for g in gts {
        gmap.entry((g.image.as_str(), g.category))
            .or_default()
            .push(g);
    }
    let mut dmap: Groups<CocoDt> = BTreeMap::new();
    for d in dts {
        dmap.entry((d.image.as_str(), d.category))
            .or_default()
            .push(d);
    }
    let mut acc = Accumulator::new(cats.len());
    let max_det = *MAX_DETS.last().expect("max dets");
    for (k, &cat) in cats.iter().enumerate() {
        for (a, &area) in AREAS.iter().enumerate() {
            // evaluateImg for every image of this category and area range.
            let evals: Vec<ImgEval> = images
                .iter()
                .filter_map(|im| {
                    let key = (im.as_str(), cat);
                    let g = gmap.get(&key).cloned().unwrap_or_default();
                    let d = dmap.get(&key).cloned().unwrap_or_default();
                    evaluate_img(g, d, area, &acc.thr, max_det)
                })
                .collect();
            for (m, &md) in MAX_DETS.iter().enumerate() {
                acc.accumulate(&evals, md, k, a, m);
            }
        }
    }
    acc.stats()
}

/// pycocotools' evaluateImg: greedy matching of the `max_det` best detections to the gts at every
/// IoU threshold, with gts and detections outside the area range `(lo, hi)` ignored.
fn evaluate_img(
    g: Vec<&CocoGt>,
    mut d: Vec<&CocoDt>,
    (lo, hi): (f64, f64),
    thr: &[f64],
    max_det: usize,
) -> Option<ImgEval> {
    if g.is_empty() && d.is_empty() {
        return None;
    }
    let g_ig: Vec<bool> = g
        .iter()
        .map(|x| x.crowd || x.area < lo || x.area > hi)
        .collect();
    // Sort gts: non-ignored first (stable).
    let mut gi: Vec<usize> = (0..g.len()).collect();
    gi.sort_by_key(|&i| g_ig[i]);
    let g: Vec<&CocoGt> = gi.iter().map(|&i| g[i]).collect();
    let g_ig: Vec<bool> = gi.iter().map(|&i| g_ig[i]).collect();
    d.sort_by(|x, y| y.score.total_cmp(&x.score));
    d.truncate(max_det);
    let (dtm, mut dtig) = match_dets(&g, &g_ig, &d, thr);
    for (di, dd) in d.iter().enumerate() {
        let area = dd.bbox[2] * dd.bbox[3];
        if area < lo || area > hi {
            for t in 0..thr.len() {
                if !dtm[t][di] {
                    dtig[t][di] = true;
                }
            }
        }
    }
    Some(ImgEval {
        dt_scores: d.iter().map(|x| x.score).collect(),
        dt_matched: dtm,
        dt_ignore: dtig,
        gt_ignore: g_ig,
    })
}

/// The matching loop of evaluateImg (gts sorted non-ignored first, detections by score): per IoU
/// threshold, whether each detection is matched and whether its match is an ignored gt.
fn match_dets(
    g: &[&CocoGt],
    g_ig: &[bool],
    d: &[&CocoDt],
    thr: &[f64],
) -> (Vec<Vec<bool>>, Vec<Vec<bool>>) {
    let ious: Vec<Vec<f64>> = d
        .iter()
        .map(|dd| {
            g.iter()
                .map(|gg| iou(&dd.bbox, &gg.bbox, gg.crowd))
                .collect()
        })
        .collect();
    let nt = thr.len();
    let mut gtm = vec![vec![false; g.len()]; nt];
    let mut dtm = vec![vec![false; d.len()]; nt];
    let mut dtig = vec![vec![false; d.len()]; nt];
    for (t, &th) in thr.iter().enumerate() {
        for di in 0..d.len() {
            let mut best = th.min(1.0 - 1e-10);
            let mut m: Option<usize> = None;
            for gi in 0..g.len() {
                if gtm[t][gi] && !g[gi].crowd {
                    continue;
                }
                if let Some(mm) = m {
                    if !g_ig[mm] && g_ig[gi] {
                        break;
                    }
                }
                if ious[di][gi] < best {
                    continue;
                }
                best = ious[di][gi];
                m = Some(gi);
            }
            if let Some(mm) = m {
                dtig[t][di] = g_ig[mm];
                dtm[t][di] = true;
                gtm[t][mm] = true;
            }
        }
    }
    (dtm, dtig)
}

/// COCOeval's accumulate arrays: precision `[T, R, K, A, M]` and recall `[T, K, A, M]`, -1 where a
/// category has no gts in an area range.
struct Accumulator {
    /// IoU thresholds 0.5:0.05:0.95.
    thr: Vec<f64>,
    /// Recall thresholds 0:0.01:1.
    rec_thr: Vec<f64>,
    /// Number of categories.
    nk: usize,
    precision: Vec<f64>,
    recall: Vec<f64>,
}

impl Accumulator {
    /// Arrays for `nk` categories, all -1.
    fn new(nk: usize) -> Self {
        let thr = np_linspace(0.5, 0.95, 10);
        let rec_thr = np_linspace(0.0, 1.0, 101);
        let (nt, nr, na, nm) = (thr.len(), rec_thr.len(), AREAS.len(), MAX_DETS.len());
        Self {
            precision: vec![-1.0; nt * nr * nk * na * nm],
            recall: vec![-1.0; nt * nk * na * nm],
            thr,
            rec_thr,
            nk,
        }
    }

    /// Index of precision `[t, r, k, a, m]`.
    fn pidx(&self, t: usize, r: usize, k: usize, a: usize, m: usize) -> usize {
        (((t * self.rec_thr.len() + r) * self.nk + k) * AREAS.len() + a) * MAX_DETS.len() + m
    }

    /// Index of recall `[t, k, a, m]`.
    fn ridx(&self, t: usize, k: usize, a: usize, m: usize) -> usize {
        ((t * self.nk + k) * AREAS.len() + a) * MAX_DETS.len() + m
    }

    /// accumulate for category `k`, area range `a` and max detections `md` (index `m`).
    fn accumulate(&mut self, evals: &[ImgEval], md: usize, k: usize, a: usize, m: usize) {
        let nt = self.thr.len();
        let mut scores = Vec::new();
        let mut matched: Vec<Vec<bool>> = vec![vec![]; nt];
        let mut ignored: Vec<Vec<bool>> = vec![vec![]; nt];
        let mut npig = 0usize;
        for e in evals {
            let n = e.dt_scores.len().min(md);
            scores.extend_from_slice(&e.dt_scores[..n]);
            for t in 0..nt {
                matched[t].extend_from_slice(&e.dt_matched[t][..n]);
                ignored[t].extend_from_slice(&e.dt_ignore[t][..n]);
            }
            npig += e.gt_ignore.iter().filter(|x| !**x).count();
        }
        if npig == 0 {
            return;
        }
        // Stable sort by descending score (NumPy mergesort).
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&x, &y| scores[y].total_cmp(&scores[x]));
        for t in 0..nt {
            let (rc, pr) = pr_curve(&self.rec_thr, &order, &matched[t], &ignored[t], npig);
            let ri = self.ridx(t, k, a, m);
            self.recall[ri] = rc;
            for (r, p) in pr.into_iter().enumerate() {
                let pi = self.pidx(t, r, k, a, m);
                self.precision[pi] = p;
            }
        }
    }

    /// summarize's mean of the AP (or AR) entries > -1 at IoU `iou_t` (all when None), area range `a`
    /// and max detections index `m`; -1 when there are none.
    fn summarize(&self, ap: bool, iou_t: Option<f64>, a: usize, m: usize) -> f64 {
        let ts: Vec<usize> = (0..self.thr.len())
            .filter(|&t| iou_t.is_none_or(|v| self.thr[t] == v))
            .collect();
        let mut vals = Vec::new();
        for &t in &ts {
            for k in 0..self.nk {
                if ap {
                    for r in 0..self.rec_thr.len() {
                        vals.push(self.precision[self.pidx(t, r, k, a, m)]);
                    }
                } else {
                    vals.push(self.recall[self.ridx(t, k, a, m)]);
                }
            }
        }
        let v: Vec<f64> = vals.into_iter().filter(|&x| x > -1.0).collect();
        if v.is_empty() {
            -1.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    }

    /// The 12 summary numbers (see [`CocoStats`]).
    fn stats(&self) -> CocoStats {
        [
            self.summarize(true, None, 0, 2),
            self.summarize(true, Some(0.5), 0, 2),
            self.summarize(true, Some(0.75), 0, 2),
            self.summarize(true, None, 1, 2),
            self.summarize(true, None, 2, 2),
            self.summarize(true, None, 3, 2),
            self.summarize(false, None, 0, 0),
            self.summarize(false, None, 0, 1),
            self.summarize(false, None, 0, 2),
            self.summarize(false, None, 1, 2),
            self.summarize(false, None, 2, 2),
            self.summarize(false, None, 3, 2),
        ]
    }
}

/// The precision/recall curve over the detections in `order` (`npig` non-ignored gts): the final
/// recall and the precision (made monotone) at each of the recall thresholds `rec_thr`.
fn pr_curve(
    rec_thr: &[f64],
    order: &[usize],
    matched: &[bool],
    ignored: &[bool],
    npig: usize,
) -> (f64, Vec<f64>) {
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    let mut rc = Vec::with_capacity(order.len());
    let mut pr = Vec::with_capacity(order.len());
    for &i in order {
        let (mt, ig) = (matched[i], ignored[i]);
        if mt && !ig {
            tp += 1.0;
        }
        if !mt && !ig {
            fp += 1.0;
        }
        rc.push(tp / npig as f64);
        pr.push(tp / (fp + tp + f64::EPSILON));
    }
    for i in (1..pr.len()).rev() {
        if pr[i] > pr[i - 1] {
            pr[i - 1] = pr[i];
        }
    }
    let at = rec_thr
        .iter()
        .map(|&r| {
            let pi = rc.partition_point(|&v| v < r);
            if pi < pr.len() {
                pr[pi]
            } else {
                0.0
            }
        })
        .collect();
    (rc.last().copied().unwrap_or(0.0), at)
}

/// Names of the 12 summary numbers, in order.
pub const STAT_NAMES: [&str; 12] = [
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
];
