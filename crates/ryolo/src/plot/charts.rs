//! Charts a user looks at after training and validation (spec/metrics.md §11): results.png, the PR /
//! F1 / P / R curves, confusion matrices and labels.jpg, drawn with plotters and the embedded font.

use crate::data::LabelEntry;
use crate::metrics::{smooth, ConfusionMatrix, DetMetrics};
use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, bytes);
    });
}

fn e<E: std::fmt::Debug>(err: E) -> anyhow::Error {
    anyhow!("plotting: {err:?}")
}

/// The label of a category axis tick: `name(i)` at segment centres when `show`, else nothing.
fn segment_label(v: &SegmentValue<usize>, show: bool, name: impl Fn(usize) -> String) -> String {
    match v {
        SegmentValue::CenterOf(i) if show => name(*i),
        _ => String::new(),
    }
}

use plotters::coord::types::RangedCoordf64;
type Chart<'a> = ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The lower-left legend of the curve charts.
fn draw_legend(chart: &mut Chart<'_>) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(e)
}

const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const ORANGE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);

/// The colour of class `i` in curves (matplotlib's tab10 cycle).
fn tab10(i: usize) -> RGBColor {
    const C: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = C[i % 10];
    RGBColor(r, g, b)
}

fn gaussian_smooth(y: &[f64], sigma: f64) -> Vec<f64> {
    let r = (3.0 * sigma).ceil() as i64;
    (0..y.len() as i64)
        .map(|i| {
            let (mut s, mut w) = (0.0, 0.0);
            for k in -r..=r {
                let j = (i + k).clamp(0, y.len() as i64 - 1) as usize;
                let g = (-(k * k) as f64 / (2.0 * sigma * sigma)).exp();
                s += g * y[j];
                w += g;
            }
            s / w
        })
        .collect()
}

/// `results.png` from `results.csv`: one panel per loss and metric column, raw values with markers and
/// a Gaussian-smoothed dotted line, x = epoch.
pub fn plot_results(csv: &Path, out: &Path) -> Result<()> {
    register_font();
    let text = std::fs::read_to_string(csv)?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .ok_or_else(|| anyhow!("{} is empty", csv.display()))?
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let rows: Vec<Vec<f64>> = lines
        .map(|l| {
            l.split(',')
                .map(|v| v.trim().parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let cols: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.contains("loss") || h.contains("metric"))
        .map(|(i, _)| i)
        .collect();
    let losses: Vec<usize> = cols
        .iter()
        .copied()
        .filter(|&i| header[i].contains("loss"))
        .collect();
    let metrics: Vec<usize> = cols
        .iter()
        .copied()
        .filter(|&i| header[i].contains("metric"))
        .collect();
    let (lh, mh) = (losses.len().div_ceil(2), metrics.len().div_ceil(2));
    let order: Vec<usize> = losses[..lh]
        .iter()
        .chain(&metrics[..mh])
        .chain(&losses[lh..])
        .chain(&metrics[mh..])
        .copied()
        .collect();
    let ncols = order.len().div_ceil(2).max(1);
    let root = BitMapBackend::new(out, (ncols as u32 * 300, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let panels = root.split_evenly((2, ncols));
    let x: Vec<f64> = rows.iter().map(|r| r[0]).collect();
    for (panel, &c) in panels.iter().zip(&order) {
        let y: Vec<f64> = rows
            .iter()
            .map(|r| r.get(c).copied().unwrap_or(f64::NAN))
            .collect();
        let (lo, hi) = y
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::MAX, f64::MIN), |a, &v| (a.0.min(v), a.1.max(v)));
        let (lo, hi) = if lo > hi {
            (0.0, 1.0)
        } else if (hi - lo).abs() < 1e-12 {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        };
        let (x0, x1) = (x[0], x[x.len() - 1].max(x[0] + 1.0));
        let mut chart = ChartBuilder::on(panel)
            .caption(&header[c], ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(22)
            .y_label_area_size(46)
            .build_cartesian_2d(x0..x1, lo..hi)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_labels(5)
            .y_labels(5)
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(e)?;
        let pts: Vec<(f64, f64)> = x
            .iter()
            .copied()
            .zip(y.iter().copied())
            .filter(|p| p.1.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), BLUE.stroke_width(2)))
            .map_err(e)?
            .label("results");
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
            .map_err(e)?;
        if pts.len() > 2 {
            let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
            let sm = gaussian_smooth(&ys, 3.0);
            let dotted: Vec<(f64, f64)> = pts.iter().map(|p| p.0).zip(sm).collect();
            chart
                .draw_series(DashedLineSeries::new(dotted, 2, 4, ORANGE.stroke_width(2)))
                .map_err(e)?;
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

/// PR curve and F1 / P / R vs confidence curves of a validation (`BoxPR_curve.png`, ...).
pub fn plot_curves(m: &DetMetrics, names: &[String], dir: &Path) -> Result<()> {
    plot_curves_as(m, names, dir, "Box")
}

/// The four curves with a file prefix (`Box` or `Mask`): `{prefix}PR_curve.png`, `F1`, `P`, `R`.
pub fn plot_curves_as(m: &DetMetrics, names: &[String], dir: &Path, prefix: &str) -> Result<()> {
    register_font();
    let cname = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let nc = m.classes.len();
    if nc == 0 {
        return Ok(());
    }
    let per_class = names.len() < 21;
    // PR: precision envelope over 101 recall points.
    {
        let path = dir.join(format!("{prefix}PR_curve.png"));
        let root = BitMapBackend::new(&path, (900, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Precision-Recall Curve", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("Recall")
            .y_desc("Precision")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(e)?;
        let q: Vec<f64> = (0..101).map(|i| i as f64 / 100.0).collect();
        if per_class {
            for (i, &c) in m.classes.iter().enumerate() {
                let col = tab10(i);
                chart
                    .draw_series(LineSeries::new(
                        q.iter().copied().zip(m.pr_curve[i].iter().copied()),
                        col.stroke_width(1),
                    ))
                    .map_err(e)?
                    .label(format!("{} {:.3}", cname(c), m.ap[i][0]))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], col));
            }
        }
        let mean: Vec<f64> = (0..101)
            .map(|k| m.pr_curve.iter().map(|c| c[k]).sum::<f64>() / nc as f64)
            .collect();
        chart
            .draw_series(LineSeries::new(
                q.iter().copied().zip(mean),
                BLUE.stroke_width(3),
            ))
            .map_err(e)?
            .label(format!("all classes {:.3} mAP@0.5", m.map50()))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE.stroke_width(3)));
        draw_legend(&mut chart)?;
        root.present().map_err(e)?;
    }
    for (file, title, curves) in [
        ("F1_curve.png", "F1", &m.f1_curve),
        ("P_curve.png", "Precision", &m.p_curve),
        ("R_curve.png", "Recall", &m.r_curve),
    ] {
        let path = dir.join(format!("{prefix}{file}"));
        let root = BitMapBackend::new(&path, (900, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{title}-Confidence Curve"), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("Confidence")
            .y_desc(title)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(e)?;
        if per_class {
            for (i, &c) in m.classes.iter().enumerate() {
                let col = tab10(i);
                chart
                    .draw_series(LineSeries::new(
                        m.px.iter().copied().zip(curves[i].iter().copied()),
                        col.stroke_width(1),
                    ))
                    .map_err(e)?
                    .label(cname(c))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], col));
            }
        }
        let mean: Vec<f64> = (0..m.px.len())
            .map(|k| curves.iter().map(|c| c[k]).sum::<f64>() / nc as f64)
            .collect();
        let sm = smooth(&mean, 0.1);
        let best = (0..sm.len()).fold(0, |b, i| if sm[i] > sm[b] { i } else { b });
        chart
            .draw_series(LineSeries::new(
                m.px.iter().copied().zip(sm.iter().copied()),
                BLUE.stroke_width(3),
            ))
            .map_err(e)?
            .label(format!("all classes {:.2} at {:.3}", sm[best], m.px[best]))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE.stroke_width(3)));
        draw_legend(&mut chart)?;
        root.present().map_err(e)?;
    }
    Ok(())
}

/// `confusion_matrix.png` (counts) or `confusion_matrix_normalized.png` (columns sum to 1).
pub fn plot_confusion(
    cm: &ConfusionMatrix,
    names: &[String],
    dir: &Path,
    normalize: bool,
) -> Result<()> {
    register_font();
    let n = cm.nc + 1;
    let mut labels: Vec<String> = names.iter().take(cm.nc).cloned().collect();
    labels.push("background".into());
    let col_sums: Vec<f64> = (0..n)
        .map(|j| (0..n).map(|i| cm.m[i][j]).sum::<f64>())
        .collect();
    let val = |i: usize, j: usize| {
        if normalize {
            cm.m[i][j] / (col_sums[j] + 1e-9)
        } else {
            cm.m[i][j]
        }
    };
    let vmax = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| val(i, j))
        .fold(0.0, f64::max)
        .max(1e-9);
    let file = if normalize {
        "confusion_matrix_normalized.png"
    } else {
        "confusion_matrix.png"
    };
    let path = dir.join(file);
    let size = (200 + 40 * n as u32).clamp(600, 2400);
    let root = BitMapBackend::new(&path, (size + 120, size)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let title = if normalize {
        "Confusion Matrix Normalized"
    } else {
        "Confusion Matrix"
    };
    let lbl = |i: usize| labels.get(i).cloned().unwrap_or_default();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(110)
        .y_label_area_size(130)
        .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
        .map_err(e)?;
    let show = n <= 31;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("True")
        .y_desc("Predicted")
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&|v| segment_label(v, show, lbl))
        .y_label_formatter(&|v| segment_label(v, show, |i| lbl(n - 1 - i)))
        .x_label_style(
            ("sans-serif", 13)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(
            (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .map(|(i, j)| {
                    // Row i (predicted) is drawn top to bottom.
                    let t = val(i, j) / vmax;
                    let c = RGBColor(
                        (247.0 - t * 239.0) as u8,
                        (251.0 - t * 203.0) as u8,
                        (255.0 - t * 148.0) as u8,
                    );
                    let y = n - 1 - i;
                    Rectangle::new(
                        [
                            (SegmentValue::Exact(j), SegmentValue::Exact(y)),
                            (SegmentValue::Exact(j + 1), SegmentValue::Exact(y + 1)),
                        ],
                        c.filled(),
                    )
                }),
        )
        .map_err(e)?;
    if show {
        chart
            .draw_series(
                (0..n)
                    .flat_map(|i| (0..n).map(move |j| (i, j)))
                    .filter_map(|(i, j)| {
                        let v = val(i, j);
                        if (normalize && v < 0.005) || (!normalize && v == 0.0) {
                            return None;
                        }
                        let s = if normalize {
                            format!("{v:.2}")
                        } else {
                            format!("{}", v as i64)
                        };
                        let color = if v / vmax > 0.5 { WHITE } else { BLACK };
                        Some(Text::new(
                            s,
                            (SegmentValue::CenterOf(j), SegmentValue::CenterOf(n - 1 - i)),
                            ("sans-serif", 13)
                                .into_font()
                                .color(&color)
                                .pos(Pos::new(HPos::Center, VPos::Center)),
                        ))
                    }),
            )
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

/// `labels.jpg`: instances per class, box shapes, and 2-D histograms of box centres and sizes.
pub fn plot_labels(entries: &[LabelEntry], names: &[String], out: &Path) -> Result<()> {
    register_font();
    let nc = names.len().max(1);
    let mut counts = vec![0usize; nc];
    let mut boxes: Vec<[f32; 4]> = Vec::new();
    for en in entries {
        for (c, b) in en.cls.iter().zip(&en.boxes) {
            if (*c as usize) < nc {
                counts[*c as usize] += 1;
            }
            boxes.push(*b);
        }
    }
    let png = out.with_extension("png");
    {
        let root = BitMapBackend::new(&png, (1000, 1000)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let p = root.split_evenly((2, 2));
        let maxc = counts.iter().copied().max().unwrap_or(1).max(1);
        let mut ch = ChartBuilder::on(&p[0])
            .margin(10)
            .x_label_area_size(if nc <= 30 { 90 } else { 20 })
            .y_label_area_size(50)
            .build_cartesian_2d((0..nc - 1).into_segmented(), 0..(maxc + maxc / 10 + 1))
            .map_err(e)?;
        let show = nc <= 30;
        ch.configure_mesh()
            .disable_x_mesh()
            .y_desc("instances")
            .x_labels(nc)
            .x_label_formatter(&|v| {
                segment_label(v, show, |i| names.get(i).cloned().unwrap_or_default())
            })
            .x_label_style(
                ("sans-serif", 12)
                    .into_font()
                    .transform(FontTransform::Rotate90),
            )
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(e)?;
        ch.draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let col = tab10(i);
            Rectangle::new(
                [(SegmentValue::Exact(i), 0), (SegmentValue::Exact(i + 1), c)],
                col.mix(0.8).filled(),
            )
        }))
        .map_err(e)?;
        // Box shapes, centred, up to 500.
        let mut ch = ChartBuilder::on(&p[1])
            .margin(10)
            .x_label_area_size(20)
            .y_label_area_size(30)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(e)?;
        ch.configure_mesh()
            .disable_mesh()
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(e)?;
        ch.draw_series(boxes.iter().take(500).map(|b| {
            let (w, h) = (b[2] as f64, b[3] as f64);
            Rectangle::new(
                [
                    (0.5 - w / 2.0, 0.5 - h / 2.0),
                    (0.5 + w / 2.0, 0.5 + h / 2.0),
                ],
                BLUE.mix(0.3),
            )
        }))
        .map_err(e)?;
        for (k, (xi, yi, xl, yl)) in [(0usize, 1usize, "x", "y"), (2, 3, "width", "height")]
            .into_iter()
            .enumerate()
        {
            let bins = 50usize;
            let mut hist = vec![vec![0usize; bins]; bins];
            for b in &boxes {
                let bx = ((b[xi] as f64 * bins as f64) as usize).min(bins - 1);
                let by = ((b[yi] as f64 * bins as f64) as usize).min(bins - 1);
                hist[bx][by] += 1;
            }
            let hmax = hist.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
            let mut ch = ChartBuilder::on(&p[2 + k])
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(46)
                .build_cartesian_2d(0f64..1f64, 0f64..1f64)
                .map_err(e)?;
            ch.configure_mesh()
                .disable_mesh()
                .x_desc(xl)
                .y_desc(yl)
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(e)?;
            ch.draw_series(
                (0..bins)
                    .flat_map(|i| (0..bins).map(move |j| (i, j)))
                    .filter(|&(i, j)| hist[i][j] > 0)
                    .map(|(i, j)| {
                        let t = (hist[i][j] as f64 / hmax).sqrt();
                        let c = RGBColor((230.0 - 200.0 * t) as u8, (240.0 - 150.0 * t) as u8, 255);
                        let s = 1.0 / bins as f64;
                        Rectangle::new(
                            [
                                (i as f64 * s, j as f64 * s),
                                ((i + 1) as f64 * s, (j + 1) as f64 * s),
                            ],
                            c.filled(),
                        )
                    }),
            )
            .map_err(e)?;
        }
        root.present().map_err(e)?;
    }
    let img = image::open(&png).with_context(|| format!("reading {}", png.display()))?;
    crate::util::fsio::save_image(&img.to_rgb8(), out)?;
    let _ = std::fs::remove_file(&png);
    Ok(())
}
