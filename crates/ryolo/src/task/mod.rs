//! Tasks as types: which task a run is ([`TaskKind`], resolved once from the arguments, the model
//! name or the checkpoint) and what a task owns ([`Task`]: loss columns, metric columns, console
//! headers, fitness). Detection ([`detect::Detect`]) is the one implemented today; the others are
//! named, recognised and refused with a clear message until their files land.

pub mod classify;
pub mod detect;
pub mod obb;
pub mod pose;
pub mod segment;

use anyhow::{bail, Result};
use std::path::Path;

/// One of Ultralytics' five tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TaskKind {
    /// Boxes and classes.
    #[default]
    Detect,
    /// Boxes, classes and instance masks.
    Segment,
    /// One label per image.
    Classify,
    /// Boxes, classes and keypoints.
    Pose,
    /// Oriented (rotated) boxes.
    Obb,
}

impl TaskKind {
    /// Every task, in Ultralytics' order.
    pub const ALL: [TaskKind; 5] = [
        TaskKind::Detect,
        TaskKind::Segment,
        TaskKind::Classify,
        TaskKind::Pose,
        TaskKind::Obb,
    ];

    /// The task word (`detect`, `segment`, `classify`, `pose`, `obb`).
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Detect => "detect",
            TaskKind::Segment => "segment",
            TaskKind::Classify => "classify",
            TaskKind::Pose => "pose",
            TaskKind::Obb => "obb",
        }
    }

    /// Parses a task word; `None` for anything else.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == word)
    }

    /// The model-name suffix of the task (`-seg`, `-cls`, `-pose`, `-obb`; none for detect).
    pub fn suffix(self) -> &'static str {
        match self {
            TaskKind::Detect => "",
            TaskKind::Segment => "-seg",
            TaskKind::Classify => "-cls",
            TaskKind::Pose => "-pose",
            TaskKind::Obb => "-obb",
        }
    }

    /// The head module that ends a model YAML of this task.
    pub fn head_module(self) -> &'static str {
        match self {
            TaskKind::Detect => "Detect",
            TaskKind::Segment => "Segment",
            TaskKind::Classify => "Classify",
            TaskKind::Pose => "Pose",
            TaskKind::Obb => "OBB",
        }
    }

    /// The task a model file name implies (`yolo11n-seg.yaml` -> segment), as Ultralytics guesses
    /// it from the name; `None` when the name carries no task suffix.
    pub fn from_model_name(model: &str) -> Option<Self> {
        let stem = Path::new(model).file_stem()?.to_str()?.to_ascii_lowercase();
        [Self::Segment, Self::Classify, Self::Pose, Self::Obb]
            .into_iter()
            .find(|t| stem.contains(t.suffix()))
    }

    /// The task of a model YAML's head module (`Segment`, `Classify`, `Pose`, `OBB`, `Detect`, ...).
    pub fn from_head_module(module: &str) -> Option<Self> {
        let m = module
            .rsplit('.')
            .next()
            .unwrap_or(module)
            .to_ascii_lowercase();
        Some(match m.as_str() {
            "detect" | "v10detect" | "yoloedetect" | "worlddetect" => Self::Detect,
            "segment" | "yoloesegment" => Self::Segment,
            "classify" => Self::Classify,
            "pose" => Self::Pose,
            "obb" => Self::Obb,
            _ => return None,
        })
    }

    /// Whether ryolo can build this task's model (its head) yet.
    pub fn has_model(self) -> bool {
        matches!(
            self,
            TaskKind::Detect
                | TaskKind::Segment
                | TaskKind::Classify
                | TaskKind::Pose
                | TaskKind::Obb
        )
    }

    /// Whether ryolo implements this task yet.
    pub fn is_implemented(self) -> bool {
        matches!(
            self,
            TaskKind::Detect
                | TaskKind::Segment
                | TaskKind::Classify
                | TaskKind::Pose
                | TaskKind::Obb
        )
    }

    /// Fails with a message naming the task and where it came from unless it is implemented.
    pub fn ensure_implemented(self, source: &str) -> Result<Self> {
        if !self.is_implemented() {
            bail!(
                "task '{}' ({source}) is not supported by ryolo yet (implemented: {})",
                self.name(),
                implemented_list()
            );
        }
        Ok(self)
    }
}

/// Metric `i` of a task's metric values, 0 when missing or NaN (for fitness sums).
pub(crate) fn metric_at(metrics: &[f64], i: usize) -> f64 {
    metrics
        .get(i)
        .copied()
        .filter(|v| !v.is_nan())
        .unwrap_or(0.0)
}

/// The implemented task words, comma separated.
fn implemented_list() -> String {
    TaskKind::ALL
        .into_iter()
        .filter(|t| t.is_implemented())
        .map(TaskKind::name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Resolves the task of a run once: an explicit `task=` / positional word wins, else the model's
/// own task (from its checkpoint or head, then its file name), else detect. When an explicit task
/// contradicts the model's, the model's wins with a warning (as Ultralytics); a task ryolo does not
/// implement yet is an error that names it.
pub fn resolve(
    explicit: Option<&str>,
    model: Option<&str>,
    model_task: Option<TaskKind>,
) -> Result<TaskKind> {
    resolve_with(explicit, model, model_task)
}

/// [`resolve`]'s body.
fn resolve_with(
    explicit: Option<&str>,
    model: Option<&str>,
    model_task: Option<TaskKind>,
) -> Result<TaskKind> {
    let check = |t: TaskKind, source: &str| -> Result<TaskKind> { t.ensure_implemented(source) };
    let named = model.and_then(TaskKind::from_model_name);
    let from_model = model_task.or(named);
    let task = match explicit {
        Some(word) => {
            let t = TaskKind::parse(word).ok_or_else(|| {
                anyhow::anyhow!(
                    "task '{word}' is not supported by ryolo yet (implemented: {})",
                    implemented_list()
                )
            })?;
            match (from_model, model) {
                // As Ultralytics: the model's own task wins, with a warning.
                (Some(m), Some(name)) if m != t => {
                    eprintln!("WARNING conflicting 'task={t}' passed with 'task={m}' model. Ignoring 'task={t}' and updating to 'task={m}' to match model.");
                    check(m, &format!("model={name}"))?
                }
                _ => check(t, &format!("task={word}"))?,
            }
        }
        None => match (from_model, model) {
            (Some(m), Some(name)) => check(m, &format!("model={name}"))?,
            _ => TaskKind::Detect,
        },
    };
    Ok(task)
}

/// What a task owns on the generic engine: its loss and metric columns, console headers and the
/// fitness that picks `best`.
pub trait Task {
    /// Which task this is.
    fn kind(&self) -> TaskKind;
    /// Loss item names, e.g. `["box_loss", "cls_loss", "dfl_loss"]`.
    fn loss_names(&self) -> &'static [&'static str];
    /// The `metrics/...` columns of `results.csv`.
    fn metric_columns(&self) -> &'static [&'static str];
    /// Fitness from the metric values (in `metric_columns` order).
    fn fitness(&self, metrics: &[f64]) -> f64;
    /// Whether `amp=True` may train this task under CPU bfloat16 autocast (pose may not: it lowered
    /// keypoint accuracy; `amp=bf16` still forces it).
    fn cpu_bf16_by_default(&self) -> bool {
        true
    }
    /// The metric values of a validation run, in `metric_columns` order.
    fn metrics(&self, r: &crate::engine::val::ValResult) -> Vec<f64> {
        let m = &r.metrics;
        vec![m.mp(), m.mr(), m.map50(), m.map()]
    }

    /// The `results.csv` header: epoch, time, train losses, metrics, val losses, learning rates.
    fn results_header(&self) -> String {
        let mut cols = vec!["epoch".to_string(), "time".to_string()];
        cols.extend(self.loss_names().iter().map(|n| format!("train/{n}")));
        cols.extend(self.metric_columns().iter().map(|m| m.to_string()));
        cols.extend(self.loss_names().iter().map(|n| format!("val/{n}")));
        cols.extend(["lr/pg0", "lr/pg1", "lr/pg2"].map(String::from));
        cols.join(",")
    }

    /// The training console header (`Epoch GPU_mem <losses> Instances Size`).
    fn train_header(&self) -> String {
        let mut s = format!("{:>11}{:>11}", "Epoch", "GPU_mem");
        for n in self.loss_names() {
            s.push_str(&format!("{n:>11}"));
        }
        s.push_str(&format!("{:>11}{:>11}", "Instances", "Size"));
        s
    }
}

/// The task implementation for a kind (only detect today).
pub fn for_kind(kind: TaskKind) -> Result<Box<dyn Task + Send + Sync>> {
    match kind.ensure_implemented("requested")? {
        TaskKind::Detect => Ok(Box::new(detect::Detect)),
        TaskKind::Segment => Ok(Box::new(segment::Segment)),
        TaskKind::Classify => Ok(Box::new(classify::Classify)),
        TaskKind::Obb => Ok(Box::new(obb::Obb)),
        TaskKind::Pose => Ok(Box::new(pose::Pose)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_from_word_name_and_checkpoint() {
        assert_eq!(
            resolve(None, Some("yolo11n.yaml"), None).unwrap(),
            TaskKind::Detect
        );
        assert_eq!(
            resolve(Some("detect"), None, None).unwrap(),
            TaskKind::Detect
        );
        assert_eq!(
            TaskKind::from_model_name("yolo11n-seg.pt"),
            Some(TaskKind::Segment)
        );
        assert_eq!(
            TaskKind::from_model_name("a/yolov8s-obb.yaml"),
            Some(TaskKind::Obb)
        );
        assert_eq!(TaskKind::from_head_module("Pose"), Some(TaskKind::Pose));
        assert_eq!(
            resolve(None, Some("yolo11n-seg.yaml"), None).unwrap(),
            TaskKind::Segment
        );
        assert_eq!(
            resolve(None, Some("yolo11n-pose.yaml"), None).unwrap(),
            TaskKind::Pose
        );
        let e = resolve(Some("depth"), None, None).unwrap_err().to_string();
        assert!(e.contains("'depth'") && e.contains("not supported"), "{e}");
        assert_eq!(
            resolve(Some("detect"), Some("best.pt"), Some(TaskKind::Obb)).unwrap(),
            TaskKind::Obb,
            "the checkpoint's task wins"
        );
        assert_eq!(
            resolve(Some("detect"), Some("best.pt"), Some(TaskKind::Classify)).unwrap(),
            TaskKind::Classify,
            "the checkpoint's task wins"
        );
        let t = resolve(Some("obb"), Some("best.pt"), Some(TaskKind::Detect)).unwrap();
        assert_eq!(t, TaskKind::Detect, "the model's task wins");
        assert!(resolve(Some("bogus"), None, None).is_err());
    }

    #[test]
    fn detect_columns_are_ultralytics() {
        let d = detect::Detect;
        assert_eq!(d.results_header(), crate::engine::train::RESULTS_HEADER);
        assert_eq!(d.fitness(&[0.1, 0.2, 0.3, 0.4]), 0.4);
    }
}
