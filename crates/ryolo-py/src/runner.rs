//! The predict loop of one `predict`/`track` call, in pure Rust (runs with the GIL released):
//! inputs in batches of `batch`, videos frame by frame, tracking, the CLI's console lines.

use crate::sources::Input;
use anyhow::Result;
use ryolo::data::video::VideoReader;
use ryolo::engine::predict::track::Tracking;
use ryolo::engine::predict::{load_image, Prediction, Predictor, Speed};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A predictor shared by a call's runner and its results (libtorch tensors are not `Sync`).
pub type SharedPredictor = Arc<Mutex<Predictor>>;

/// Runs `f` on the shared predictor (a poisoned lock still holds a usable model).
pub fn with_p<T>(p: &SharedPredictor, f: impl FnOnce(&Predictor) -> T) -> T {
    let g = p.lock().unwrap_or_else(|e| e.into_inner());
    f(&g)
}

/// One predicted image or frame.
pub struct Output {
    /// The image (RGB).
    pub img: image::RgbImage,
    /// The prediction.
    pub pred: Prediction,
    /// The source path (`image0.jpg` for arrays).
    pub path: String,
}

/// A video being read.
struct Video {
    reader: VideoReader,
    path: String,
    /// Position of the video among the inputs.
    index: usize,
}

/// The state of a predict call: what remains to read and what was predicted but not yet taken.
pub struct Runner {
    /// The predictor (shared with the results, which draw with its class names).
    pub p: SharedPredictor,
    inputs: VecDeque<(usize, Input)>,
    n: usize,
    batch: usize,
    vid_stride: usize,
    stream_buffer: bool,
    video: Option<Video>,
    ready: VecDeque<Output>,
    /// Track mode: the trackers (shared with the model, for `persist`).
    pub tracking: Option<Arc<Mutex<Tracking>>>,
    /// Print the CLI's per-image lines.
    pub verbose: bool,
    total: Speed,
    count: usize,
    last_shape: (usize, usize),
}

impl Runner {
    /// A runner over `inputs`.
    pub fn new(
        p: SharedPredictor,
        inputs: Vec<Input>,
        batch: usize,
        vid_stride: usize,
        stream_buffer: bool,
    ) -> Self {
        let n = inputs.len();
        Self {
            p,
            inputs: inputs.into_iter().enumerate().collect(),
            n,
            batch: batch.max(1),
            vid_stride: vid_stride.max(1),
            stream_buffer,
            video: None,
            ready: VecDeque::new(),
            tracking: None,
            verbose: true,
            total: Speed::default(),
            count: 0,
            last_shape: (0, 0),
        }
    }

    /// The next result, or None when every input is done.
    pub fn next_output(&mut self) -> Result<Option<Output>> {
        loop {
            if let Some(o) = self.ready.pop_front() {
                return Ok(Some(o));
            }
            if let Some(v) = self.video.as_mut() {
                match v.reader.next() {
                    Some(frame) => {
                        let frame = frame?;
                        let k = v.reader.frame;
                        if !(k - 1).is_multiple_of(self.vid_stride) {
                            continue;
                        }
                        let pred = with_p(&self.p, |p| p.predict(&frame))?;
                        let frames = v.reader.info.frames;
                        let what = if frames == 0 {
                            format!("{k}: {}", v.path)
                        } else {
                            format!(
                                "video {}/{} (frame {k}/{frames}) {}",
                                v.index + 1,
                                self.n,
                                v.path
                            )
                        };
                        let path = v.path.clone();
                        let o = self.finish(what, frame, pred, path)?;
                        return Ok(Some(o));
                    }
                    None => {
                        self.video = None;
                        continue;
                    }
                }
            }
            let Some((i, input)) = self.inputs.pop_front() else {
                return Ok(None);
            };
            match input {
                Input::Video(s) => {
                    self.video = Some(Video {
                        reader: VideoReader::open(&s, self.stream_buffer)?,
                        path: s,
                        index: i,
                    });
                }
                first => {
                    let mut batch = vec![(i, first)];
                    while batch.len() < self.batch
                        && matches!(
                            self.inputs.front(),
                            Some((_, Input::File(_) | Input::Image(..)))
                        )
                    {
                        batch.extend(self.inputs.pop_front());
                    }
                    self.run_batch(batch)?;
                }
            }
        }
    }

    /// Predicts one batch of images into `ready` (unreadable files are skipped with the CLI's
    /// warning).
    fn run_batch(&mut self, batch: Vec<(usize, Input)>) -> Result<()> {
        let mut imgs = Vec::new();
        for (i, input) in batch {
            match input {
                Input::File(f) => match load_image(&f) {
                    Ok(img) => imgs.push((i, img, f.to_string_lossy().into_owned())),
                    Err(e) => eprintln!("WARNING skipping {}: {e:#}", f.display()),
                },
                Input::Image(img, name) => imgs.push((i, img, name)),
                Input::Video(_) => {}
            }
        }
        let only: Vec<image::RgbImage> = imgs.iter().map(|x| x.1.clone()).collect();
        let preds = with_p(&self.p, |p| p.predict_batch(&only))?;
        for ((i, img, path), pred) in imgs.into_iter().zip(preds) {
            let what = format!("image {}/{} {}", i + 1, self.n, path);
            let o = self.finish(what, img, pred, path)?;
            self.ready.push_back(o);
        }
        Ok(())
    }

    /// Tracks (track mode), counts and reports one result.
    fn finish(
        &mut self,
        what: String,
        img: image::RgbImage,
        mut pred: Prediction,
        path: String,
    ) -> Result<Output> {
        if let Some(t) = &self.tracking {
            let mut t = t
                .lock()
                .map_err(|_| anyhow::anyhow!("the tracker state is poisoned"))?;
            t.update(0, &path, &img, &mut pred)?;
        }
        self.total.add(pred.speed);
        self.count += 1;
        self.last_shape = pred.letterbox.shape;
        if self.verbose {
            println!("{}", with_p(&self.p, |p| p.line(&what, &pred)));
        }
        Ok(Output { img, pred, path })
    }

    /// The CLI's closing `Speed:` line (when verbose and something ran).
    pub fn speed_line(&self) {
        if !self.verbose || self.count == 0 {
            return;
        }
        let k = self.count as f64;
        println!(
            "Speed: {:.1}ms preprocess, {:.1}ms inference, {:.1}ms postprocess per image at shape ({}, 3, {}, {})",
            self.total.preprocess / k,
            self.total.inference / k,
            self.total.postprocess / k,
            self.batch.min(self.n.max(1)),
            self.last_shape.0,
            self.last_shape.1
        );
    }
}
