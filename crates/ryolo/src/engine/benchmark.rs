//! `yolo benchmark`: every format ryolo runs (PyTorch weights on libtorch, ONNX on ONNX Runtime)
//! exported, validated at batch 1 and timed; the table and `benchmarks.log`.

use crate::cfg::Args;
use crate::task::TaskKind;
use anyhow::{anyhow, bail, Result};

/// Format, status, size (MB), (key metric, ms per image).
type BenchRow = (String, String, f64, Option<(f64, f64)>);

/// The task's benchmark column (Ultralytics' `TASK2METRIC`).
pub fn key_name(task: TaskKind) -> &'static str {
    match task {
        TaskKind::Segment => "metrics/mAP50-95(M)",
        TaskKind::Classify => "metrics/accuracy_top1",
        TaskKind::Pose => "metrics/mAP50-95(P)",
        _ => "metrics/mAP50-95(B)",
    }
}

/// The value of [`key_name`] in a validation result: mask mAP50-95 (segment), top-1 accuracy
/// (classify), keypoint mAP50-95 (pose), else the (rotated, for OBB) box mAP50-95.
pub fn key_metric(task: TaskKind, r: &crate::engine::val::ValResult) -> Result<f64> {
    let missing = || anyhow!("the {task} validation returned no {} value", key_name(task));
    Ok(match task {
        TaskKind::Segment => r.seg.as_ref().ok_or_else(missing)?.mean_results()[7],
        TaskKind::Classify => r.cls.as_ref().ok_or_else(missing)?.top1,
        TaskKind::Pose => r.pose.as_ref().ok_or_else(missing)?.mean_results()[7],
        _ => r.metrics.map(),
    })
}

/// Ultralytics' benchmark mode: for each format we run (PyTorch weights on libtorch, ONNX on ONNX
/// Runtime), the file size, mAP50-95 on the val split (batch 1) and the inference time per image.
pub fn run(args: &Args) -> Result<()> {
    let model = args
        .str("model")
        .ok_or_else(|| anyhow!("benchmark needs model=<.pt, .safetensors or .yaml>"))?;
    let data = args
        .str("data")
        .ok_or_else(|| anyhow!("benchmark needs data=<data.yaml>"))?;
    let t0 = std::time::Instant::now();
    // One task and one imgsz for every row (the checkpoint's unless imgsz is given, as
    // Ultralytics' Model.benchmark): the export and both validations use it.
    let loaded = crate::weights::load_model(&model, None, tch::Device::Cpu)?;
    let task = loaded.model.task();
    let args = &crate::engine::backend::with_checkpoint_imgsz(args, &loaded);
    drop(loaded);
    let mut o = args.0.clone();
    o.insert("task".into(), serde_yaml::Value::from(task.to_string()));
    o.insert("batch".into(), serde_yaml::Value::from(1));
    o.insert("plots".into(), serde_yaml::Value::from(false));
    o.insert("verbose".into(), serde_yaml::Value::from(false));
    let base = Args::new(&o);
    let size_mb = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.len() as f64 / 1e6)
            .unwrap_or(0.0)
    };
    let mut rows: Vec<BenchRow> = Vec::new();
    println!("\nBenchmark: PyTorch ({model})");
    // The PyTorch row is libtorch whatever RYOLO_BACKEND says (the ONNX row is ONNX Runtime).
    let torch = super::ortpath::scoped(super::ortpath::Engine::Torch, || {
        crate::engine::val::run(&base)
    });
    let torch = torch.and_then(|r| Ok((key_metric(task, &r)?, r.speed.inference)));
    rows.push(match torch {
        Ok(km) => (
            "PyTorch".into(),
            "✅".into(),
            size_mb(std::path::Path::new(&model)),
            Some(km),
        ),
        Err(e) => ("PyTorch".into(), format!("❌ {e:#}"), 0.0, None),
    });
    println!("\nBenchmark: ONNX");
    let mut eo = o.clone();
    eo.insert("format".into(), serde_yaml::Value::from("onnx"));
    let onnx = crate::export::run(&Args::new(&eo)).and_then(|f| {
        let mut vo = o.clone();
        vo.insert(
            "model".into(),
            serde_yaml::Value::from(f.display().to_string()),
        );
        let r = crate::engine::val::run(&Args::new(&vo))?;
        Ok((f, key_metric(task, &r)?, r.speed.inference))
    });
    rows.push(match onnx {
        Ok((f, k, ms)) => ("ONNX".into(), "✅".into(), size_mb(&f), Some((k, ms))),
        Err(e) => ("ONNX".into(), format!("❌ {e:#}"), 0.0, None),
    });
    let (h, w) = args.imgsz()?;
    let mut out = format!(
        "\nBenchmarks complete for {model} on {data} at imgsz={} ({:.2}s)\n",
        h.max(w),
        t0.elapsed().as_secs_f64()
    );
    out.push_str(&format!(
        "{:<10} {:<7} {:>10} {:>21} {:>23} {:>8}\n",
        "Format",
        "Status",
        "Size (MB)",
        key_name(task),
        "Inference time (ms/im)",
        "FPS"
    ));
    for (fmt, status, size, res) in &rows {
        let ok = res.is_some();
        let (map, ms) = res.unwrap_or((f64::NAN, f64::NAN));
        let st = if ok { status.as_str() } else { "❌" };
        out.push_str(&format!(
            "{fmt:<10} {st:<7} {size:>10.1} {map:>21.4} {ms:>23.2} {:>8.2}\n",
            1000.0 / ms
        ));
        if !ok {
            out.push_str(&format!("           {status}\n"));
        }
    }
    out.push_str("(TorchScript, OpenVINO, TensorRT, CoreML, TF*, PaddlePaddle, MNN, NCNN, IMX, RKNN: not available in ryolo)\n");
    print!("{out}");
    crate::util::fsio::write("benchmarks.log", &out)?;
    if rows.iter().all(|r| r.3.is_none()) {
        bail!("every format failed");
    }
    Ok(())
}
