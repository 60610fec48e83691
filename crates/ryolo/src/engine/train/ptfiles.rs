//! The Ultralytics-format `weights/best.pt` and `weights/last.pt` written beside our
//! `.safetensors` checkpoints (spec/checkpoint-write.md): training-time files every save, final
//! (stripped) ones when the run ends. Resuming still uses `last.safetensors`.

use super::{EpochReport, Trainer};
use crate::weights::ptwrite::{self, RunInfo};
use anyhow::Result;

impl Trainer {
    /// What every `.pt` of this run records; `results_csv` is the results text to store.
    fn run_info<'a>(&'a self, results_csv: &'a str) -> RunInfo<'a> {
        RunInfo {
            args: &self.args.0,
            save_dir: &self.save_dir,
            stem: &self.stem,
            results_csv,
        }
    }

    /// Writes the training-time `last.pt` (and `best.pt` when this epoch is the best) from the EMA.
    pub(super) fn save_pt(&self, epoch: usize, report: &EpochReport, is_best: bool) -> Result<()> {
        let csv = self.csv.text_with(Some(&report.csv_row()));
        ptwrite::save_training(
            &self.ema_model,
            &self.run_info(&csv),
            epoch,
            report.fitness,
            self.state.best_fitness.unwrap_or(report.fitness),
            self.state.best_epoch,
            self.ema.updates,
            is_best,
        )
    }

    /// Rewrites `last.pt` and `best.pt` as final files (as Ultralytics' `strip_optimizer`).
    pub(super) fn finish_pt(&self) -> Result<()> {
        let csv = self.csv.text_with(None);
        ptwrite::save_final(&self.ema_model, &self.run_info(&csv), self.task.as_ref())
    }
}
