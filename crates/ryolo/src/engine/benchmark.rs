//! `yolo benchmark`: every format ryolo runs (PyTorch weights on libtorch, ONNX on ONNX Runtime)
//! exported, validated at batch 1 and timed; the table and `benchmarks.log`.

use crate::cfg::Args;
use anyhow::{anyhow, bail, Result};

/// Format, status, size (MB), (mAP50-95, ms per image).
type BenchRow = (String, String, f64, Option<(f64, f64)>);

/// The task's benchmark metric (Ultralytics `TASK2METRIC`): mask mAP50-95 for segment, else box.
fn key_metric(r: &crate::engine::val::ValResult) -> f64 {
    match &r.seg {
        Some(s) => s.mean_results()[7],
        None => r.metrics.map(),
    }
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
    let mut o = args.0.clone();
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
    let mut seg = false;
    println!("\nBenchmark: PyTorch ({model})");
    // The PyTorch row is libtorch whatever RYOLO_BACKEND says (the ONNX row is ONNX Runtime).
    let torch = super::ortpath::scoped(super::ortpath::Engine::Torch, || {
        crate::engine::val::run(&base)
    });
    seg |= torch.as_ref().is_ok_and(|r| r.seg.is_some());
    rows.push(match torch {
        Ok(r) => (
            "PyTorch".into(),
            "✅".into(),
            size_mb(std::path::Path::new(&model)),
            Some((key_metric(&r), r.speed.inference)),
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
        Ok((f, crate::engine::val::run(&Args::new(&vo))?))
    });
    rows.push(match onnx {
        Ok((f, r)) => (
            "ONNX".into(),
            "✅".into(),
            size_mb(&f),
            Some((key_metric(&r), r.speed.inference)),
        ),
        Err(e) => ("ONNX".into(), format!("❌ {e:#}"), 0.0, None),
    });
    let (h, w) = args.imgsz()?;
    let mut out = format!(
        "\nBenchmarks complete for {model} on {data} at imgsz={} ({:.2}s)\n",
        h.max(w),
        t0.elapsed().as_secs_f64()
    );
    out.push_str(&format!(
        "{:<10} {:<7} {:>10} {:>20} {:>23} {:>8}\n",
        "Format",
        "Status",
        "Size (MB)",
        if seg {
            "metrics/mAP50-95(M)"
        } else {
            "metrics/mAP50-95(B)"
        },
        "Inference time (ms/im)",
        "FPS"
    ));
    for (fmt, status, size, res) in &rows {
        let ok = res.is_some();
        let (map, ms) = res.unwrap_or((f64::NAN, f64::NAN));
        let st = if ok { status.as_str() } else { "❌" };
        out.push_str(&format!(
            "{fmt:<10} {st:<7} {size:>10.1} {map:>20.4} {ms:>23.2} {:>8.2}\n",
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
