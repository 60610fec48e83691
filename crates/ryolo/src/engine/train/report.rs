//! What training reports: per-epoch records for callbacks, `results.csv` and the console lines.

use crate::util::fmt_g;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The detection `results.csv` header (Ultralytics' columns); other tasks build theirs from
/// [`crate::task::Task::results_header`].
pub const RESULTS_HEADER: &str = "epoch,time,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2";

/// What an epoch produced, passed to callbacks.
#[derive(Debug, Clone, Default)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Total epochs.
    pub epochs: usize,
    /// Seconds since training started.
    pub time: f64,
    /// Mean train losses (the task's loss items, e.g. `[box, cls, dfl]`).
    pub train_loss: Vec<f64>,
    /// The task's metric columns (detect: `P, R, mAP50, mAP50-95`).
    pub metrics: Vec<f64>,
    /// Mean val losses.
    pub val_loss: Vec<f64>,
    /// Learning rate per group.
    pub lr: [f64; 3],
    /// Fitness (detect: mAP50-95).
    pub fitness: f64,
    /// The run folder.
    pub save_dir: PathBuf,
}

impl EpochReport {
    /// The results.csv row.
    pub fn csv_row(&self) -> String {
        let mut v = vec![self.epoch.to_string(), fmt_g(self.time, 6)];
        v.extend(
            self.train_loss
                .iter()
                .chain(&self.metrics)
                .chain(&self.val_loss)
                .chain(&self.lr)
                .map(|x| fmt_g(*x, 6)),
        );
        v.join(",")
    }
}

type Hook = Box<dyn FnMut(&EpochReport)>;

/// Closures run on Ultralytics' training events.
#[derive(Default)]
pub struct Callbacks {
    /// Before the first epoch.
    pub on_train_start: Vec<Hook>,
    /// Before the batches of an epoch (`epoch` is the 1-based epoch about to run).
    pub on_train_epoch_start: Vec<Hook>,
    /// After each optimizer-step batch (`train_loss`: the epoch's running mean losses so far).
    pub on_train_batch_end: Vec<Hook>,
    /// After the batches of an epoch, before validation.
    pub on_train_epoch_end: Vec<Hook>,
    /// After validation of an epoch (metrics filled in).
    pub on_fit_epoch_end: Vec<Hook>,
    /// After checkpoints were written.
    pub on_model_save: Vec<Hook>,
    /// After training ended.
    pub on_train_end: Vec<Hook>,
    /// Set (by a hook, a signal handler or another thread) to stop after the current epoch, leaving
    /// a resumable run as an interruption would.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Callbacks {
    /// Runs every hook of one event.
    pub fn run(hooks: &mut [Hook], r: &EpochReport) {
        for h in hooks {
            h(r);
        }
    }
}

/// `results.csv`: the header and one row per completed epoch, rewritten atomically.
#[derive(Debug)]
pub struct ResultsCsv {
    path: PathBuf,
    header: String,
    rows: Vec<String>,
}

impl ResultsCsv {
    /// Opens the run's file, keeping the rows of epochs up to `done` (a kill between the csv and
    /// the checkpoint write leaves one extra row).
    pub fn open(save_dir: &Path, header: String, done: usize) -> Self {
        let path = save_dir.join("results.csv");
        let rows = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter(|l| {
                l.split(',')
                    .next()
                    .and_then(|e| e.trim().parse::<usize>().ok())
                    .is_some_and(|e| e <= done)
            })
            .map(str::to_string)
            .collect();
        Self { path, header, rows }
    }

    /// Appends a row and rewrites the file.
    pub fn push(&mut self, row: String) -> Result<()> {
        self.rows.push(row);
        crate::util::write_atomic(
            &self.path,
            format!("{}\n{}\n", self.header, self.rows.join("\n")).as_bytes(),
        )
    }

    /// The file's text once `row` (if any) is pushed.
    pub fn text_with(&self, row: Option<&str>) -> String {
        let rows: Vec<&str> = self.rows.iter().map(String::as_str).chain(row).collect();
        format!("{}\n{}\n", self.header, rows.join("\n"))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The `engine/trainer:` line: every argument, sorted, Python-style `None`.
pub fn arg_line(a: &serde_yaml::Mapping) -> String {
    let mut keys: Vec<(String, String)> = a
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap_or("").to_string(),
                serde_yaml::to_string(v)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            )
        })
        .collect();
    keys.sort();
    keys.into_iter()
        .map(|(k, v)| format!("{k}={}", if v == "~" { "None".into() } else { v }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The progress line of a training batch: epoch, GPU memory held (GiB, `0` on the CPU), running
/// losses, instances, size.
pub fn batch_line(
    epoch: usize,
    epochs: usize,
    gpu_mem_gib: f64,
    losses: &[f64],
    instances: usize,
    size: usize,
) -> String {
    let mut s = format!(
        "{:>11}{:>11}",
        format!("{epoch}/{epochs}"),
        format!("{}G", fmt_g(gpu_mem_gib, 3))
    );
    for l in losses {
        s.push_str(&format!("{:>11}", fmt_g(*l, 4)));
    }
    s.push_str(&format!("{instances:>11}{size:>11}"));
    s
}

#[cfg(test)]
mod tests {
    use super::batch_line;

    #[test]
    fn batch_lines_show_gpu_memory_as_ultralytics() {
        // Ultralytics: ("%11s" * 2 + "%11.4g" * n) % (epoch, f"{mem:.3g}G", *losses, inst, size).
        let cpu = batch_line(1, 30, 0.0, &[3.786, 6.14], 44, 640);
        assert_eq!(
            cpu,
            format!(
                "{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
                "1/30", "0G", "3.786", "6.14", 44, 640
            )
        );
        let gpu = batch_line(2, 30, 5.41015625, &[2.9], 41, 640);
        assert!(
            gpu.starts_with(&format!("{:>11}{:>11}", "2/30", "5.41G")),
            "{gpu}"
        );
    }
}
