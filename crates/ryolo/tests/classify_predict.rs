//! Classify predict against Ultralytics 8.4.190 (`cls_predict.json`): probabilities, top-1 /
//! top-5, the `verbose()` text and `save_txt` lines of the trained `cls_yolo11n.pt` on bus.jpg and
//! zidane.jpg (on libtorch and on ONNX Runtime through the in-memory export), the console line,
//! batching, and `yolo classify predict` end to end.

mod common;
use ryolo::engine::predict::classify::preprocess;
use ryolo::engine::predict::Predictor;
use std::path::{Path, PathBuf};
use tch::Tensor;

fn cls_dir(shared: &Path) -> PathBuf {
    shared.join("fixtures/ultralytics/classify")
}

fn sample(shared: &Path, name: &str) -> PathBuf {
    shared.join("datasets/samples").join(name)
}

fn fixture(shared: &Path) -> serde_json::Value {
    let s = std::fs::read_to_string(cls_dir(shared).join("cls_predict.json")).unwrap();
    serde_json::from_str(&s).unwrap()
}

fn model(shared: &Path) -> String {
    cls_dir(shared)
        .join("cls_yolo11n.pt")
        .to_string_lossy()
        .to_string()
}

fn usizes(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn probabilities_top5_and_texts_equal_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = fixture(&shared);
    for engine in common::engines() {
        let m = ryolo::weights::load_model(&model(&shared), None, tch::Device::Cpu)
            .unwrap()
            .model;
        let b = common::on_engine(m, engine);
        let p = Predictor::with_backend(b, (224, 224), Default::default());
        eprintln!("[{}] {}", engine.name(), p.model().describe());
        check_probs(&shared, &fx, &p);
    }
    let bus = &fx["predict"][0];
    assert_eq!(bus["save_txt"], "0.72 chair\n0.23 person\n0.05 bowl\n");
}

/// The fixture's images predicted by `p` against Ultralytics' probabilities, top-5 and texts.
fn check_probs(shared: &Path, fx: &serde_json::Value, p: &Predictor) {
    assert_eq!(p.imgsz, (224, 224));
    for case in fx["predict"].as_array().unwrap() {
        let name = case["image"].as_str().unwrap();
        let pred = p.predict_path(&sample(shared, name)).unwrap();
        assert!(pred.detections.is_empty() && pred.masks.is_none());
        assert_eq!(pred.letterbox.shape, (224, 224));
        let probs = pred.probs.as_ref().expect("a classify model gives probs");
        let want: Vec<f64> = case["probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(probs.data.len(), want.len());
        let diff = probs
            .data
            .iter()
            .zip(&want)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        eprintln!("{name}: max |probs - Ultralytics| = {diff:.2e}");
        assert!(diff < 1e-3, "{name}: probs {:?} vs {want:?}", probs.data);
        assert_eq!(probs.top1(), case["top1"].as_u64().unwrap() as usize);
        assert_eq!(probs.top5(), usizes(&case["top5"]));
        assert!((probs.top1conf() as f64 - case["top1conf"].as_f64().unwrap()).abs() < 1e-3);
        assert_eq!(probs.top5conf()[0], probs.top1conf());
        assert_eq!(probs.verbose(), case["verbose"].as_str().unwrap());
        assert_eq!(probs.txt(), case["save_txt"].as_str().unwrap());
        assert_eq!(p.verbose(&pred), case["verbose"].as_str().unwrap());
        // The console line: `image 1/1 <path>: 224x224 chair 0.72, person 0.23, bowl 0.05, 12.3ms`.
        let what = format!("image 1/1 {}", sample(shared, name).display());
        let line = p.line(&what, &pred);
        let head = format!("{what}: 224x224 {}", case["verbose"].as_str().unwrap());
        let ms = line
            .strip_prefix(&head)
            .and_then(|r| r.strip_suffix("ms"))
            .unwrap_or_else(|| panic!("console line {line:?}"));
        let (int, frac) = ms.split_once('.').unwrap();
        assert!(int.parse::<u64>().is_ok() && frac.len() == 1, "{line:?}");
    }
}

#[test]
fn eval_input_is_within_a_few_levels_of_ultralytics() {
    let Some(shared) = common::shared() else {
        return;
    };
    for name in ["bus", "zidane"] {
        let img =
            ryolo::engine::predict::load_image(&sample(&shared, &format!("{name}.jpg"))).unwrap();
        let got = preprocess(&img, (224, 224));
        let want =
            Tensor::read_npy(cls_dir(&shared).join(format!("cls_eval_{name}_input.npy"))).unwrap();
        let want: Vec<f32> = Vec::try_from(want.view([-1])).unwrap();
        assert_eq!(got.len(), want.len());
        let max = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!(
            "{name}: max |input - Ultralytics| = {max:.4} ({:.1}/255)",
            max * 255.0
        );
        // Our JPEG decoder differs from libjpeg by a few levels.
        assert!(max <= 3.0 / 255.0 + 1e-6, "{name}: {max}");
    }
}

#[test]
fn batches_equal_single_images_and_non_square_sizes_resize() {
    let Some(shared) = common::shared() else {
        return;
    };
    let mut p = Predictor::load(&model(&shared), 224, tch::Device::Cpu).unwrap();
    let imgs: Vec<image::RgbImage> = ["bus.jpg", "zidane.jpg"]
        .iter()
        .map(|n| ryolo::engine::predict::load_image(&sample(&shared, n)).unwrap())
        .collect();
    let batch = p.predict_batch(&imgs).unwrap();
    assert_eq!(batch.len(), 2);
    for (img, b) in imgs.iter().zip(&batch) {
        let one = p.predict(img).unwrap();
        let (a, b) = (&one.probs.unwrap().data, &b.probs.as_ref().unwrap().data);
        for (x, y) in a.iter().zip(b.iter()) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }
    // A non-square imgsz: the image is resized to exactly (h, w), no crop.
    p.imgsz = (160, 256);
    let pred = p.predict(&imgs[0]).unwrap();
    assert_eq!(pred.letterbox.shape, (160, 256));
    let probs = pred.probs.unwrap();
    assert_eq!(probs.data.len(), 3);
    assert!((probs.data.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    // Detection predictors keep `probs: None`.
    let det = common::bt_model(&shared);
    let dp = Predictor::new(det, (320, 320), Default::default());
    assert!(dp.predict(&imgs[0]).unwrap().probs.is_none());
}

#[test]
fn classify_resolves_from_the_word_and_the_model_name() {
    let a = common::args("classify predict model=cls_yolo11n.pt");
    assert_eq!(a.task().unwrap(), ryolo::task::TaskKind::Classify);
    let a = common::args("predict model=yolo11n-cls.pt");
    assert_eq!(a.task().unwrap(), ryolo::task::TaskKind::Classify);
}

#[test]
fn cli_classify_predict_writes_images_and_labels() {
    let Some(shared) = common::shared() else {
        return;
    };
    let fx = fixture(&shared);
    let d = common::tmp("clspredict-cli");
    let src = d.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for n in ["bus.jpg", "zidane.jpg"] {
        std::fs::copy(sample(&shared, n), src.join(n)).unwrap();
    }
    // As the CLI's predict branch (batch 1); detection-only arguments are ignored.
    let line = format!(
        "classify predict model={} source={} save_txt=True save_conf=True conf=0.5 batch=1 project={} name=p",
        model(&shared),
        src.display(),
        d.display()
    );
    ryolo::engine::predict::run(&common::args(&line)).unwrap();
    let out = d.join("p");
    let mut files: Vec<String> = walk(&out)
        .into_iter()
        .map(|f| {
            f.strip_prefix(&out)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    files.sort();
    let want: Vec<String> = fx["predict_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(files, want);
    assert_eq!(
        std::fs::read_to_string(out.join("labels/bus.txt")).unwrap(),
        fx["predict"][0]["save_txt"].as_str().unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(out.join("labels/zidane.txt")).unwrap(),
        fx["predict"][1]["save_txt"].as_str().unwrap()
    );
    // The annotated image: original size, the top-left corner greyed by the text box.
    let orig = image::open(src.join("bus.jpg")).unwrap().to_rgb8();
    let ann = image::open(out.join("bus.jpg")).unwrap().to_rgb8();
    assert_eq!(ann.dimensions(), orig.dimensions());
    let y = (0.03 * orig.height() as f32).round() as u32 + 2;
    let diff: u32 = (0..60)
        .map(|x| {
            let (a, b) = (orig.get_pixel(y + x, y).0, ann.get_pixel(y + x, y).0);
            (0..3).map(|c| a[c].abs_diff(b[c]) as u32).sum::<u32>()
        })
        .sum();
    assert!(diff > 60, "no text box drawn ({diff})");
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
