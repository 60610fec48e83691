//! Benchmarks (`yolo bench loader|predict|train`): figures printed for the closing notes, never timed
//! unit tests.

use crate::data::augment::AugConfig;
use crate::data::loader::{epoch_batches, TrainDataset};
use crate::data::{list_images, load_data_yaml, scan};
use crate::engine::predict::{load_image, Predictor};
use crate::nn::DetectionModel;
use crate::ops::{letterbox, NmsConfig, Rgb};
use crate::util::threads::process_cpu_seconds;
use anyhow::{anyhow, Result};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tch::{Kind, Tensor};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

/// Training-loader throughput (images/s) and CPU time per image (ms, all threads) over at least
/// `n` images after two warm-up batches;
/// `cache` is `ram`, `disk` or anything else for none.
pub fn loader(
    data: &Path,
    imgsz: usize,
    batch: usize,
    workers: usize,
    cache: &str,
    n: usize,
) -> Result<(f64, f64)> {
    let cache_ram = cache == "ram";
    let dc = load_data_yaml(data)?;
    let s = scan("train", &list_images(dc.split("train")?)?, dc.nc(), false);
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers.max(1))
            .build()?,
    );
    let t = Instant::now();
    let ds = pool.install(|| {
        let d = TrainDataset::new(s.entries, imgsz, AugConfig::default(), 0, cache_ram);
        if cache == "disk" {
            d.with_disk_cache().0
        } else {
            d
        }
    });
    let ds = Arc::new(ds);
    if cache_ram || cache == "disk" {
        println!(
            "cache={cache}: {} images cached in {:.1}s",
            ds.len(),
            t.elapsed().as_secs_f64()
        );
    }
    let (mut seen, mut epoch) = (0usize, 0usize);
    let mut start: Option<(Instant, f64)> = None;
    let mut warm = 0;
    while seen < n {
        for b in epoch_batches(ds.clone(), pool.clone(), epoch, batch, true, 4).iter() {
            if warm < 2 {
                warm += 1;
                if warm == 2 {
                    start = Some((Instant::now(), process_cpu_seconds()));
                }
                continue;
            }
            seen += b.shape.0;
            if seen >= n {
                break;
            }
        }
        epoch += 1;
    }
    let (secs, cpu) = start
        .map(|(t, c)| (t.elapsed().as_secs_f64(), process_cpu_seconds() - c))
        .unwrap_or((1.0, 0.0));
    Ok((seen as f64 / secs, cpu * 1e3 / seen.max(1) as f64))
}

/// Median latencies in ms: forward only (fused, batch `batch`) and the whole pipeline for one image
/// (decode + letterbox + forward + NMS) on `image`.
pub fn predict(
    model: crate::engine::backend::Backend,
    imgsz: usize,
    batch: usize,
    image: Option<&Path>,
    runs: usize,
) -> Result<(f64, Option<f64>)> {
    let p = Predictor::with_backend(model, (imgsz, imgsz), NmsConfig::default());
    let m = p.model();
    let (h, w) = p.imgsz;
    let x = Tensor::rand(
        [batch as i64, 3, h as i64, w as i64],
        (Kind::Float, m.device()),
    );
    let mut fwd = Vec::new();
    // ONNX: the input as the float buffer ONNX Runtime reads (what predict feeds it).
    let planar: Vec<f32> = match m {
        crate::engine::backend::ModelRef::Onnx(_) => Vec::<f32>::try_from(x.flatten(0, -1))?,
        _ => Vec::new(),
    };
    for i in 0..runs + 3 {
        let t = Instant::now();
        match m {
            crate::engine::backend::ModelRef::Onnx(om) => {
                let _ = om.run(&planar, [batch, 3, h, w])?;
            }
            _ => {
                let y = m.infer(&x)?;
                let _ = y.double_value(&[0, 0, 0]);
            }
        }
        if i >= 3 {
            fwd.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mut whole = None;
    if let Some(img) = image {
        let mut v = Vec::new();
        for i in 0..runs + 2 {
            let t = Instant::now();
            let im = load_image(img)?;
            let _ = p.predict(&im)?;
            if i >= 2 {
                v.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        whole = Some(median(v));
    }
    Ok((median(fwd), whole))
}

/// Train-step throughput (images/s): forward, loss, backward and an SGD-like update, on letterboxed
/// copies of real images with their labels, over `steps` steps after 2 warm-up steps. The input is
/// channels-last as in training, or NCHW with `nchw` (`channels_last=False`). `bf16`: the forward
/// under CPU bfloat16 autocast with channels-last weights too, as CPU training runs with
/// `amp=True` where bfloat16 is native (switches `model`'s weights to channels-last).
pub fn train_step(
    model: &DetectionModel,
    data: &Path,
    imgsz: usize,
    batch: usize,
    steps: usize,
    (bf16, nchw): (bool, bool),
) -> Result<f64> {
    let dc = load_data_yaml(data)?;
    let s = scan("train", &list_images(dc.split("train")?)?, dc.nc(), false);
    let items: Vec<(Rgb, Vec<u32>, Vec<[f32; 4]>)> = s
        .entries
        .iter()
        .take(batch)
        .map(|e| -> Result<_> {
            let img = Rgb::from_image(&load_image(&e.im_file)?);
            let (lb, _) = letterbox(&img, (imgsz, imgsz), false, true, 32);
            Ok((lb, e.cls.clone(), e.boxes.clone()))
        })
        .collect::<Result<_>>()?;
    if items.is_empty() {
        return Err(anyhow!("no training images"));
    }
    let mut buf = Vec::new();
    let mut labels = Vec::new();
    for k in 0..batch {
        let (img, c, b) = &items[k % items.len()];
        buf.extend_from_slice(&img.data);
        labels.push((c.clone(), b.clone()));
    }
    let x = crate::util::amp::input_layout(
        &crate::ops::images_to_tensor(&buf, (batch, imgsz, imgsz), model.device()),
        nchw,
    );
    if bf16 && !nchw {
        crate::util::amp::vars_channels_last(&model.vs);
    }
    let targets = crate::loss::targets_from(&labels);
    let cfg = crate::loss::LossConfig::default();
    let vars: Vec<Tensor> = model.vs.trainable_variables();
    let mut times = Vec::new();
    for i in 0..steps + 2 {
        let t = Instant::now();
        let raw = crate::util::amp::cpu_autocast(bf16, || model.forward_raw(&x, true));
        let raw = if bf16 { raw.to_float() } else { raw };
        let out = crate::loss::detection_loss(&cfg, &raw, &model.stride, &targets);
        out.total.backward();
        tch::no_grad(|| {
            for v in &vars {
                let mut g = v.grad();
                if g.defined() {
                    let mut v = v.shallow_clone();
                    let _ = v.g_add_(&(&g * -1e-6));
                    let _ = g.zero_();
                }
            }
        });
        let _ = out.items.double_value(&[0]);
        if i >= 2 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(batch as f64 / median(times))
}

/// One row of [`predict_engines`]: the engine, its forward and whole-pipeline medians (ms), and
/// for an in-memory export the seconds it took.
#[derive(Debug, Clone)]
pub struct EngineRow {
    /// `libtorch`, `ONNX Runtime (in-memory export)` or `ONNX Runtime`.
    pub engine: &'static str,
    /// Forward median, ms.
    pub forward: f64,
    /// Whole-pipeline median, ms (when an image was given).
    pub whole: Option<f64>,
    /// In-memory export plus session creation, s.
    pub export_secs: Option<f64>,
}

/// [`predict`] on every engine that can run `model` on `device`, side by side: a `.pt`,
/// `.safetensors` or `.yaml` model on the CPU runs on libtorch and on ONNX Runtime through its
/// in-memory export (when the runtime loads); a `.onnx` model or a CUDA device gives one row.
/// Also returns the engine the default path ([`super::ortpath::ENV`] as set) picks.
pub fn predict_engines(
    model: &str,
    device: tch::Device,
    imgsz: usize,
    batch: usize,
    image: Option<&Path>,
    runs: usize,
) -> Result<(Vec<EngineRow>, &'static str)> {
    use super::backend::Backend;
    use super::ortpath::{engine_name, select, Engine, Needs};
    let row = |b: Backend| -> Result<EngineRow> {
        let engine = engine_name(&b);
        let export_secs = match &b {
            Backend::Onnx(m) => m.exported.as_ref().map(|e| e.secs),
            _ => None,
        };
        let (forward, whole) = predict(b, imgsz, batch, image, runs)?;
        Ok(EngineRow {
            engine,
            forward,
            whole,
            export_secs,
        })
    };
    let first = Backend::load(model, device)?;
    let Backend::Torch(tm) = first else {
        let name = engine_name(&first);
        return Ok((vec![row(first)?], name));
    };
    let ort = device == tch::Device::Cpu && super::onnx::OnnxModel::available();
    let default = match Engine::from_env()? {
        Engine::Torch => "libtorch",
        _ if !ort => "libtorch",
        _ => "ONNX Runtime (in-memory export)",
    };
    let mut rows = vec![row(Backend::Torch(tm))?];
    if ort {
        let mut tm = crate::weights::load_model(model, None, device)?.model;
        tm.fuse();
        tm.vs.freeze();
        rows.push(row(select(
            tm,
            Path::new(model),
            Engine::OnnxRuntime,
            Needs::Nothing,
        )?)?);
    }
    Ok((rows, default))
}
