//! Where `.pt` files are written from: `yolo export format=pt` and the trainer's checkpoints
//! (`weights/best.pt`, `weights/last.pt` beside our `.safetensors`).

use super::{metrics_from_results, results_columns, to_bytes, write_pt, Column, Layout, PtMeta};
use crate::nn::DetectionModel;
use crate::task::Task;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// `yolo export model=... format=pt`: the model (a `.yaml`, `.pt` or `.safetensors`) written as an
/// Ultralytics checkpoint beside it (`<stem>.pt` in the working directory for a built-in YAML;
/// `<stem>_ryolo.pt` when the source is itself that `.pt`, which is never overwritten).
pub fn export_pt(model: &str) -> Result<PathBuf> {
    let loaded = crate::weights::load_model(model, None, tch::Device::Cpu)?;
    let src = Path::new(model);
    let out = if src.exists() {
        let out = src.with_extension("pt");
        if out == src {
            src.with_file_name(format!("{}_ryolo.pt", file_stem(src)))
        } else {
            out
        }
    } else {
        PathBuf::from(format!("{}.pt", loaded.stem))
    };
    let mut meta = PtMeta::final_from(&loaded.train_args, &loaded.stem);
    if src.extension().and_then(|e| e.to_str()) == Some("safetensors") {
        let (m, _) = crate::weights::read_checkpoint(src)?;
        if let Some(task) =
            crate::task::TaskKind::parse(&m.task).and_then(|k| crate::task::for_kind(k).ok())
        {
            meta.train_metrics = metrics_from_meta(&m.metrics, task.as_ref());
        }
    }
    write_pt(&loaded.model, &meta, &out)?;
    println!(
        "PT: export success, saved as '{}' ({:.1} MB), an Ultralytics {} checkpoint",
        out.display(),
        std::fs::metadata(&out).map_or(0.0, |m| m.len() as f64 / 1e6),
        super::ULTRALYTICS_VERSION
    );
    Ok(out)
}

/// A path's file stem as text.
fn file_stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string()
}

/// `train_metrics` from our checkpoint metadata (`{"metrics": [...], "val_loss": [...],
/// "fitness": f}`), named as the task's results columns; empty when absent.
pub fn metrics_from_meta(m: &serde_json::Value, task: &dyn Task) -> Vec<(String, f64)> {
    let vals = |k: &str| -> Vec<f64> {
        m.get(k)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default()
    };
    let (metrics, losses) = (vals("metrics"), vals("val_loss"));
    let Some(fitness) = m.get("fitness").and_then(|v| v.as_f64()) else {
        return vec![];
    };
    let names: Vec<String> = task
        .metric_columns()
        .iter()
        .map(|s| s.to_string())
        .chain(task.loss_names().iter().map(|l| format!("val/{l}")))
        .collect();
    let values = metrics.into_iter().chain(losses);
    let mut cols: Vec<(String, Column)> = names
        .into_iter()
        .zip(values)
        .map(|(k, v)| (k, Column::Floats(vec![v])))
        .collect();
    cols.retain(|(_, c)| matches!(c, Column::Floats(v) if !v.is_empty()));
    metrics_from_results(&cols, 0, fitness)
}

/// What the trainer knows when it writes a `.pt`.
pub struct RunInfo<'a> {
    /// The run's arguments.
    pub args: &'a serde_yaml::Mapping,
    /// The run folder.
    pub save_dir: &'a Path,
    /// Model name stem (`yolo11n`).
    pub stem: &'a str,
    /// `results.csv` text including the epoch being saved.
    pub results_csv: &'a str,
}

impl RunInfo<'_> {
    /// Metadata for a file of the given layout; `metrics_row` picks the `train_metrics` row.
    fn meta(&self, layout: Layout, metrics_row: Option<usize>, fitness: f64) -> PtMeta {
        let cols = results_columns(self.results_csv);
        let train_metrics = metrics_row
            .map(|r| metrics_from_results(&cols, r, fitness))
            .unwrap_or_default();
        PtMeta {
            layout,
            args: self.args.clone(),
            save_dir: Some(self.save_dir.display().to_string()),
            yaml_file: format!("{}.yaml", self.stem),
            train_metrics,
            train_results: cols,
            date: super::iso_now(),
        }
    }
}

/// Writes the training-time `weights/last.pt` (and the same bytes to `best.pt` when `is_best`)
/// from the EMA model.
#[allow(clippy::too_many_arguments)]
pub fn save_training(
    ema: &DetectionModel,
    run: &RunInfo,
    epoch: usize,
    fitness: f64,
    best_fitness: f64,
    best_epoch: usize,
    updates: i64,
    is_best: bool,
) -> Result<()> {
    let layout = Layout::Training {
        epoch: epoch as i64,
        best_fitness,
        best_epoch: best_epoch as i64,
        updates,
    };
    let rows = n_rows(&results_columns(run.results_csv));
    let meta = run.meta(layout, rows.checked_sub(1), fitness);
    let wdir = run.save_dir.join("weights");
    let bytes = to_bytes(ema, &meta, "archive")
        .map_err(|e| e.context(format!("writing {}", wdir.join("last.pt").display())))?;
    crate::util::write_atomic(&wdir.join("last.pt"), &bytes)?;
    if is_best {
        crate::util::write_atomic(&wdir.join("best.pt"), &bytes)?;
    }
    Ok(())
}

/// Writes the final (stripped) `weights/last.pt` from `last` and `weights/best.pt` from
/// `best.safetensors`, both with the run's full `train_results`.
pub fn save_final(last: &DetectionModel, run: &RunInfo, task: &dyn Task) -> Result<()> {
    let wdir = run.save_dir.join("weights");
    let cols = results_columns(run.results_csv);
    let metrics: Vec<f64> = task
        .metric_columns()
        .iter()
        .map(|k| last_value(&cols, k))
        .collect();
    let meta = run.meta(
        Layout::Final,
        n_rows(&cols).checked_sub(1),
        task.fitness(&metrics),
    );
    write_pt(last, &meta, &wdir.join("last.pt"))?;
    let best = wdir.join("best.safetensors");
    if best.exists() {
        let (m, _) = crate::weights::read_checkpoint(&best)?;
        let model = crate::weights::load_model(&best.to_string_lossy(), None, tch::Device::Cpu)?;
        let meta = PtMeta {
            train_metrics: metrics_from_meta(&m.metrics, task),
            ..run.meta(Layout::Final, None, 0.0)
        };
        write_pt(&model.model, &meta, &wdir.join("best.pt"))?;
    }
    Ok(())
}

/// Rows of the results columns.
fn n_rows(cols: &[(String, Column)]) -> usize {
    cols.first().map_or(0, |(_, c)| match c {
        Column::Ints(v) => v.len(),
        Column::Floats(v) => v.len(),
    })
}

/// The last value of column `name` (0 when absent).
fn last_value(cols: &[(String, Column)], name: &str) -> f64 {
    cols.iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, c)| match c {
            Column::Ints(v) => v.last().map(|&i| i as f64),
            Column::Floats(v) => v.last().copied(),
        })
        .unwrap_or(0.0)
}
