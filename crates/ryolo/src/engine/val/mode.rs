//! `yolo val`: load any model format, scan the split, validate, print Ultralytics' table and write
//! what was asked (plots, `save_json`, `save_txt`, `metric=coco`).

use super::{table_rows, task_table_header, validate, KptOpts, ValConfig, ValResult};
use crate::cfg::{self, Args};
use crate::data::{list_images, load_data_yaml, LabelEntry};
use crate::engine::backend::{Backend, ModelRef};
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};

/// Runs `yolo val` with merged arguments; returns the metrics.
pub fn run(args: &Args) -> Result<ValResult> {
    let model = args
        .str("model")
        .ok_or_else(|| anyhow!("val needs model=<.pt, .safetensors, .yaml or .onnx>"))?;
    let (backend, a) = Backend::load_for(args, &model)?;
    let m = backend.as_ref();
    let a = adopt_model(a, m);
    let data = crate::hub::datasets::val_data(args.str("data"), a.str("data"), m.task());
    if m.task() == crate::task::TaskKind::Classify {
        return run_classify(&a, &data, m);
    }
    let (entries, names) = entries(&a, &data, m)?;
    println!("{}", m.describe());
    let vc = ValConfig {
        kpts: kpt_opts(m, &data)?,
        ..config(&a, m)?
    };
    println!("{}", task_table_header(m.task()));
    let plots = a.on("plots");
    let dir = if plots || a.bool("save_json") || a.bool("save_txt") {
        cfg::save_dir(&a, "val")
    } else {
        PathBuf::new()
    };
    if !dir.as_os_str().is_empty() {
        // Made before validating: a folder that cannot be created fails at once, naming it.
        crate::util::fsio::create_dir_all(&dir)?;
    }
    let vc = ValConfig {
        plot_dir: plots.then(|| dir.clone()),
        ..vc
    };
    let r = validate(m, &entries, &vc, |_, _| {})?;
    for row in table_rows(&r, &names, a.on("verbose")) {
        println!("{row}");
    }
    println!(
        "Speed: {:.1}ms preprocess, {:.1}ms inference, 0.0ms loss, {:.1}ms postprocess per image",
        r.speed.preprocess, r.speed.inference, r.speed.postprocess
    );
    warn_box_only_outputs(&a, m.task());
    let dota = m.task() == crate::task::TaskKind::Obb && dota_split(&a, &data);
    outputs(&a, &dir, &entries, &names, &r, dota)?;
    Ok(r)
}

/// The arguments with the model's own task (the run folder is `runs/<task>/val`, the task an
/// `.onnx` file's metadata names) and, for a fixed-shape ONNX graph, its input size and batch
/// (Ultralytics reuses the exported shape from the metadata; a different `imgsz` is said).
fn adopt_model(mut a: Args, m: ModelRef) -> Args {
    a.0.insert("task".into(), serde_yaml::Value::from(m.task().to_string()));
    if let Some((h, w)) = m.fixed_imgsz() {
        let asked = a.imgsz().ok();
        let given = a.get("imgsz")
            != cfg::defaults()
                .get("imgsz")
                .unwrap_or(&serde_yaml::Value::Null);
        if given && asked.is_some_and(|(ah, aw)| ah.max(aw) != h.max(w)) {
            eprintln!(
                "WARNING imgsz={:?} ignored: the fixed-shape ONNX model takes ({h}, {w}) inputs \
                 (export with dynamic=True for other sizes)",
                asked.unwrap_or_default()
            );
        }
        let v = serde_yaml::Value::Sequence(vec![(h as u64).into(), (w as u64).into()]);
        a.0.insert("imgsz".into(), v);
    }
    if let Some(b) = m.fixed_batch() {
        a.0.insert("batch".into(), serde_yaml::Value::from(b as u64));
    }
    if let (Some((h, w)), Ok(b)) = (m.fixed_imgsz(), a.int("batch")) {
        println!("Setting batch={b} input of shape ({b}, 3, {h}, {w})");
    }
    a
}

/// `yolo val` of a classification model: the ImageFolder split, top-1 / top-5, the confusion
/// matrix plots.
fn run_classify(a: &Args, data: &str, m: ModelRef) -> Result<ValResult> {
    let split = a.str("split").unwrap_or_else(|| "val".into());
    let cd = crate::data::classify::check_cls_dataset(Path::new(data), &split)?;
    let imgsz = cls_imgsz(a)?;
    let opts = crate::data::classify::ClsOptions {
        imgsz,
        single_cls: a.bool("single_cls"),
        ..Default::default()
    };
    let ds = crate::data::classify::ClsDataset::new(cd.split(&split)?, m.names(), opts, &split)?;
    println!("{}", m.describe());
    println!("{}", crate::metrics::classify::ClsMetrics::table_header());
    let dir = a.on("plots").then(|| cfg::save_dir(a, "val"));
    if let Some(d) = &dir {
        crate::util::fsio::create_dir_all(d)?;
    }
    let batch = a.int("batch")?.max(1) as usize;
    let r = super::classify::validate_cls(
        m,
        &ds,
        batch,
        false,
        !a.on("channels_last"),
        dir.as_deref(),
        |_, _| {},
    )?;
    if let Some(c) = &r.cls {
        println!("{}", c.table_row());
    }
    println!(
        "Speed: {:.1}ms preprocess, {:.1}ms inference, 0.0ms loss, {:.1}ms postprocess per image",
        r.speed.preprocess, r.speed.inference, r.speed.postprocess
    );
    if let Some(dir) = &dir {
        crate::plot::charts::plot_confusion(&r.confusion, m.names(), dir, false)?;
        crate::plot::charts::plot_confusion(&r.confusion, m.names(), dir, true)?;
        println!("Results saved to {}", dir.display());
    }
    Ok(r)
}

/// The classification image size: the larger side asked, rounded up to a multiple of 32.
pub(crate) fn cls_imgsz(a: &Args) -> Result<usize> {
    let (h, w) = a.imgsz()?;
    Ok(h.max(w).div_ceil(32) * 32)
}

/// The split's verified entries and the names. `classes=` drops the labels of other classes
/// from the dataset (as Ultralytics; its validation NMS keeps every class).
fn entries(a: &Args, data: &str, m: ModelRef) -> Result<(Vec<LabelEntry>, Vec<String>)> {
    let dc = load_data_yaml(Path::new(data))?;
    if dc.nc() != m.names().len() {
        bail!(
            "{data} has {} classes but the model predicts {}",
            dc.nc(),
            m.names().len()
        );
    }
    let split = a.str("split").unwrap_or_else(|| "val".into());
    let files = list_images(dc.split(&split)?)?;
    let single_cls = a.bool("single_cls");
    let format = dc.label_format(m.task().name())?;
    let s = crate::data::labels::scan_with(&split, &files, dc.nc(), single_cls, format);
    s.check_parts_in(&split, format)?;
    let mut entries = s.entries;
    if entries.is_empty() {
        bail!("no valid images in the '{split}' split of {data}");
    }
    if let Some(classes) = a.classes()? {
        crate::data::filter::keep_classes(&mut entries, &classes);
    }
    let names = if single_cls {
        vec!["item".to_string()]
    } else {
        dc.names.clone()
    };
    Ok((entries, names))
}

/// The validation settings of `yolo val` (conf 0.001 unless given; fp16 only on CUDA).
fn config(a: &Args, m: ModelRef) -> Result<ValConfig> {
    let (h, w) = a.imgsz()?;
    let half_asked = matches!(a.get("quantize").as_i64(), Some(16));
    if half_asked && !m.device().is_cuda() {
        eprintln!("WARNING half precision needs CUDA; validating in fp32 on CPU");
    }
    Ok(ValConfig {
        imgsz: h.max(w),
        batch: a.int("batch")?.max(1) as usize,
        // OBB validates at conf 0.01 when none is given (Ultralytics' OBBValidator).
        conf: a
            .f64("conf")
            .unwrap_or(if m.task() == crate::task::TaskKind::Obb {
                0.01
            } else {
                cfg::mode_defaults::VAL_CONF
            }) as f32,
        iou: a.num("iou")? as f32,
        max_det: a.int("max_det")?.max(1) as usize,
        single_cls: a.bool("single_cls"),
        agnostic_nms: a.bool("agnostic_nms"),
        half: half_asked && m.device().is_cuda(),
        nchw: !a.on("channels_last"),
        loss: None,
        collect: a.bool("save_json")
            || a.bool("save_txt")
            || a.str("metric").as_deref() == Some("coco"),
        save_json: a.bool("save_json"),
        plot_dir: None,
        masks: mask_opts(a, m.task())?,
        kpts: None,
        obb: m.task() == crate::task::TaskKind::Obb,
    })
}

/// Pose runs: the model's `kpt_shape` and the OKS sigmas (the dataset's `kpt_oks_sigmas`, else
/// COCO's for [17, 3], else 1/K); None for other tasks.
pub(crate) fn kpt_opts(m: ModelRef, data: &str) -> Result<Option<KptOpts>> {
    if m.task() != crate::task::TaskKind::Pose {
        return Ok(None);
    }
    let kpt_shape = m
        .kpt_shape()
        .ok_or_else(|| anyhow!("the pose model does not say its kpt_shape"))?;
    let dc = load_data_yaml(Path::new(data))?;
    if let Some([k, d]) = dc.kpt_shape {
        if (k, d) != kpt_shape {
            bail!(
                "{data}: kpt_shape [{k}, {d}] but the model predicts [{}, {}]",
                kpt_shape.0,
                kpt_shape.1
            );
        }
    }
    let sigmas = crate::metrics::pose::oks_sigmas(kpt_shape, dc.kpt_oks_sigmas.as_deref())?;
    Ok(Some(KptOpts { kpt_shape, sigmas }))
}

/// Segment runs: `overlap_mask`, `mask_ratio`, and full-resolution mask metrics when `save_json` or
/// `save_txt` (as Ultralytics); None for other tasks.
pub(crate) fn mask_opts(
    a: &Args,
    task: crate::task::TaskKind,
) -> Result<Option<super::seg::MaskOpts>> {
    if task != crate::task::TaskKind::Segment {
        return Ok(None);
    }
    let ratio = a.int("mask_ratio")?;
    if ratio < 1 {
        bail!("mask_ratio={ratio}: must be a positive integer");
    }
    Ok(Some(super::seg::MaskOpts {
        overlap: a.bool("overlap_mask"),
        ratio: ratio as usize,
        native: a.bool("save_json") || a.bool("save_txt"),
    }))
}

/// Whether the validated split is DOTA data for Ultralytics' OBBValidator (one source whose path
/// contains `DOTA`): its `save_json` adds the DOTA Task1 files.
fn dota_split(a: &Args, data: &str) -> bool {
    let split = a.str("split").unwrap_or_else(|| "val".into());
    load_data_yaml(Path::new(data))
        .ok()
        .and_then(|dc| dc.split(&split).ok().map(super::obb_out::is_dota))
        .unwrap_or(false)
}

/// Pose validation writes its `save_txt` / `save_json` / `metric=coco` outputs with the
/// axis-aligned boxes only (Ultralytics adds keypoints), and OBB its `metric=coco` numbers from
/// the axis-aligned boxes: said once, never silently.
fn warn_box_only_outputs(a: &Args, task: crate::task::TaskKind) {
    use crate::task::TaskKind;
    if !matches!(task, TaskKind::Pose | TaskKind::Obb) {
        return;
    }
    let pose = task == TaskKind::Pose;
    let asked: Vec<&str> = [
        ("save_txt", pose && a.bool("save_txt")),
        ("save_json", pose && a.bool("save_json")),
        ("metric=coco", a.str("metric").as_deref() == Some("coco")),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect();
    if asked.is_empty() {
        return;
    }
    if pose {
        eprintln!(
            "WARNING {}: pose validation writes the axis-aligned boxes only; the keypoints are not \
             written by ryolo's val outputs yet",
            asked.join(", ")
        );
    } else {
        eprintln!(
            "WARNING metric=coco: obb validation scores the axis-aligned bounds of the rotated \
             boxes with COCOeval (Ultralytics has no COCO evaluation for OBB)"
        );
    }
}

/// COCO stats, `predictions.json`, label files and plots, as asked.
fn outputs(
    a: &Args,
    dir: &Path,
    entries: &[LabelEntry],
    names: &[String],
    r: &ValResult,
    dota: bool,
) -> Result<()> {
    if a.str("metric").as_deref() == Some("coco") {
        let stats = super::coco_stats(entries, r);
        println!("COCOeval (pycocotools-exact, maxDets 100):");
        for (name, v) in crate::metrics::coco::STAT_NAMES.iter().zip(stats) {
            println!("{name:>8} {v:.5}");
        }
    }
    if a.bool("save_json") {
        crate::util::fsio::create_dir_all(dir)?;
        let p = dir.join("predictions.json");
        let obb = (!r.rotated.is_empty()).then(|| super::obb_out::obb_rows(entries, r));
        let json = match &obb {
            Some(rows) => serde_json::Value::Array(rows.iter().map(|x| x.json()).collect()),
            None => super::predictions_json(entries, r),
        };
        crate::util::fsio::write(&p, serde_json::to_string(&json)?)?;
        println!("Saving {}...", p.display());
        if let (true, Some(rows)) = (dota, &obb) {
            if !rows.is_empty() {
                println!(
                    "Saving predictions with DOTA format to {}...",
                    dir.join("predictions_txt").display()
                );
                println!(
                    "Saving merged predictions with DOTA format to {}...",
                    dir.join("predictions_merged_txt").display()
                );
                super::obb_out::write_dota(dir, rows, names)?;
            }
        }
    }
    if a.bool("save_txt") {
        if r.rotated.is_empty() {
            super::write_labels(dir, entries, r, a.bool("save_conf"))?;
        } else {
            super::obb_out::write_obb_labels(dir, entries, r, a.bool("save_conf"))?;
        }
    }
    if a.on("plots") {
        crate::util::fsio::create_dir_all(dir)?;
        crate::plot::charts::plot_curves(&r.metrics, names, dir)?;
        if let Some(s) = &r.seg {
            crate::plot::charts::plot_curves_as(&s.masks, names, dir, "Mask")?;
        }
        if let Some(s) = &r.pose {
            crate::plot::charts::plot_curves_as(&s.pose, names, dir, "Pose")?;
        }
        crate::plot::charts::plot_confusion(&r.confusion, names, dir, false)?;
        crate::plot::charts::plot_confusion(&r.confusion, names, dir, true)?;
        println!("Results saved to {}", dir.display());
    }
    Ok(())
}
