//! `yolo export`: load, fuse, write the ONNX graph with Ultralytics' metadata (`format=pt`: an
//! Ultralytics checkpoint instead).

use crate::cfg::Args;
use anyhow::{anyhow, bail, Result};

/// Runs `yolo export format=onnx`: the fused model written as an ONNX graph beside the weights
/// (or `<stem>.onnx` for a built-in YAML); `format=pt` writes an Ultralytics `.pt` instead
/// ([`crate::weights::ptwrite::export_pt`]). Returns the file.
pub fn run(args: &Args) -> Result<std::path::PathBuf> {
    let model = args
        .str("model")
        .ok_or_else(|| anyhow!("export needs model=<.pt, .safetensors or .yaml>"))?;
    let format = args.str("format").unwrap_or_default().to_ascii_lowercase();
    if format == "pt" {
        return crate::weights::ptwrite::export_pt(&model);
    }
    if format != "onnx" {
        bail!("format={format} is not supported; ryolo exports format=onnx and format=pt");
    }
    let dynamic = args.bool("dynamic");
    let batch = args.i64("batch").unwrap_or(1).max(1);
    if let Some(q) = args.get("quantize").as_i64() {
        // Ultralytics: half=True needs a GPU export; int8 needs calibration formats.
        bail!("quantize={q} (half/int8) ONNX export is not supported on the CPU; export fp32");
    }
    let mut loaded = crate::weights::load_model(&model, None, tch::Device::Cpu)?;
    let a = crate::engine::backend::with_checkpoint_imgsz(args, &loaded);
    let (h, w) = a.imgsz()?;
    // Classify: stride 1, imgsz not rounded (spec/classify.md §8).
    let s = if loaded.model.task() == crate::task::TaskKind::Classify {
        1
    } else {
        loaded.model.stride.iter().cloned().fold(32.0, f64::max) as usize
    };
    let imgsz = (
        crate::engine::predict::check_imgsz(h, s),
        crate::engine::predict::check_imgsz(w, s),
    );
    loaded.model.fuse();
    // Exported for inference: no parameter takes gradients (Ultralytics prints 0 gradients).
    loaded.model.vs.freeze();
    println!("{}", loaded.model.info());
    let opset = a.i64("opset").unwrap_or(crate::cfg::mode_defaults::OPSET);
    let meta = crate::export::metadata(
        &loaded.model,
        imgsz,
        batch as usize,
        &crate::export::pyliteral::onnx_args(&a, batch, dynamic),
    );
    let bytes = crate::export::to_onnx(
        &loaded.model,
        &crate::export::ExportConfig {
            imgsz,
            opset,
            metadata: meta,
            batch,
            dynamic,
        },
    )?;
    let out = std::path::Path::new(&model).with_extension("onnx");
    let out = if std::path::Path::new(&model).exists() {
        out
    } else {
        std::path::PathBuf::from(format!("{}.onnx", loaded.stem))
    };
    crate::weights::write_atomic(&out, &bytes)?;
    let shape = if dynamic {
        "(batch, 3, height, width)".to_string()
    } else {
        format!("({batch}, 3, {}, {})", imgsz.0, imgsz.1)
    };
    println!(
        "ONNX: export success, saved as '{}' ({:.1} MB), input images {shape}, opset {opset}",
        out.display(),
        bytes.len() as f64 / 1e6
    );
    Ok(out)
}
