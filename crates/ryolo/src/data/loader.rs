//! The training loader: samples built on a thread pool (`workers`), batches prefetched on a background
//! thread while the model computes, deterministic for a seed whatever the number of workers.

use super::augment::{
    copy_paste_flip, copy_paste_from, cutmix, mixup, mosaic4_layout, pastes, random_perspective,
    random_perspective_grey, random_perspective_on, AugConfig, Canvas, CopyPasteMode, GreySample,
    Sample, Tile,
};
use super::finish::{Finish, Flips, Pixels};
use super::instances::{Instances, SEGMENT_POINTS};
use super::LabelEntry;
use crate::data::batch::Targets;
use crate::data::image::{into_rgb8, load_dynamic};
use crate::ops::{resize_linear, resize_linear_raw, Rgb};
use anyhow::Result;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// Loads an image and resizes it so the long side is `imgsz` (ceil sizes, bilinear).
/// Grey images are resized on one channel and expanded afterwards (the same bytes, a third of the
/// work).
pub fn load_resized(path: &Path, imgsz: usize) -> Result<Rgb> {
    resize_long_side(load_dynamic(path)?, imgsz).map(|r| r.0)
}

/// Where `cache=disk` keeps an image's decoded pixels: `<image>.ryolo.npy` beside it, or (read-only
/// folder) in the user cache dir under a name from its path, size and modification time.
pub fn disk_cache_path(im: &Path) -> PathBuf {
    let writable = im
        .parent()
        .and_then(|p| std::fs::metadata(p).ok())
        .is_some_and(|m| !m.permissions().readonly());
    if writable {
        return im.with_extension("ryolo.npy");
    }
    let mut h = 0xcbf29ce484222325u64;
    let meta = std::fs::metadata(im).ok();
    let stamp = format!(
        "{}|{:?}|{:?}",
        im.display(),
        meta.as_ref().map(|m| m.len()),
        meta.and_then(|m| m.modified().ok())
    );
    for b in stamp.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("ryolo/images")
        .join(format!("{h:016x}.npy"))
}

/// Decodes an image through its `cache=disk` copy, writing the copy first when it is missing or
/// older than the image. The pixels are exactly the decoder's (grey stays grey).
pub fn load_via_disk_cache(im: &Path) -> Result<image::DynamicImage> {
    let npy = disk_cache_path(im);
    let fresh =
        |p: &Path| -> Option<std::time::SystemTime> { std::fs::metadata(p).ok()?.modified().ok() };
    if let (Some(c), Some(i)) = (fresh(&npy), fresh(im)) {
        if c >= i {
            // Regular files only, at most an RGB image of the pixel limit plus the header.
            let cap = crate::data::image::max_image_pixels()
                .unwrap_or(crate::data::image::DEFAULT_MAX_IMAGE_PIXELS)
                .saturating_mul(3)
                .saturating_add(1 << 16);
            if let Some(img) = super::dataset::read_bounded(&npy, cap)
                .ok()
                .and_then(|b| crate::util::npy::decode_u8(&b))
            {
                return Ok(img);
            }
        }
    }
    let img = load_dynamic(im)?;
    if let Some(bytes) = crate::util::npy::encode_u8(&img) {
        if let Some(d) = npy.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let _ = crate::util::write_atomic(&npy, &bytes);
    }
    Ok(img)
}

/// Resizes so the long side is `imgsz` (grey on one channel), as [`load_resized`]; the flag tells
/// a grey source (every pixel has R = G = B).
fn resize_long_side(dynamic: image::DynamicImage, imgsz: usize) -> Result<(Rgb, bool)> {
    let grey = matches!(dynamic, image::DynamicImage::ImageLuma8(_));
    let (w0, h0) = (dynamic.width() as usize, dynamic.height() as usize);
    let r = imgsz as f64 / h0.max(w0) as f64;
    if (r - 1.0).abs() < f64::EPSILON {
        return Ok((Rgb::from_owned(into_rgb8(dynamic)), grey));
    }
    let w = ((w0 as f64 * r).ceil() as usize).min(imgsz).max(1);
    let h = ((h0 as f64 * r).ceil() as usize).min(imgsz).max(1);
    if let image::DynamicImage::ImageLuma8(l) = &dynamic {
        let g = resize_linear_raw::<1>(l.as_raw(), w0, h0, w, h);
        return Ok((
            Rgb {
                w,
                h,
                data: crate::ops::grey_to_rgb(&g),
            },
            true,
        ));
    }
    Ok((
        resize_linear(&Rgb::from_owned(into_rgb8(dynamic)), w, h),
        false,
    ))
}

/// An augmented sample: RGB, or grey when every image in it was grey (the same pixels, kept on
/// one channel until the batch is assembled).
#[derive(Debug, Clone)]
pub enum Aug {
    /// Three channels.
    Rgb(Sample),
    /// One channel.
    Grey(GreySample),
}

impl Aug {
    /// Draws the last steps (§7-8) for this sample: labels flip now, pixels when written.
    fn draw_finish(&mut self, hsv: [f64; 3], f: Flips, rng: &mut impl Rng) -> Finish {
        match self {
            Aug::Rgb(s) => Finish::draw(&mut s.instances, (s.img.w, s.img.h), false, hsv, f, rng),
            Aug::Grey(g) => Finish::draw(&mut g.instances, (g.w, g.h), true, hsv, f, rng),
        }
    }

    /// The pixels and their `(w, h)`.
    fn pixels(&self) -> (Pixels<'_>, (usize, usize)) {
        match self {
            Aug::Rgb(s) => (Pixels::Rgb(&s.img.data), (s.img.w, s.img.h)),
            Aug::Grey(g) => (Pixels::Grey(&g.data), (g.w, g.h)),
        }
    }

    /// The labels, taken.
    fn into_instances(self) -> Instances {
        match self {
            Aug::Rgb(s) => s.instances,
            Aug::Grey(g) => g.instances,
        }
    }

    /// The finished RGB sample.
    fn finished(self, fin: &Finish) -> Sample {
        let (px, (w, h)) = self.pixels();
        let mut data = vec![0u8; w * h * 3];
        fin.write(px, (w, h), &mut data);
        Sample {
            img: Rgb { w, h, data },
            instances: self.into_instances(),
        }
    }

    /// The labels.
    pub fn instances(&self) -> &Instances {
        match self {
            Aug::Rgb(s) => &s.instances,
            Aug::Grey(g) => &g.instances,
        }
    }

    /// As an RGB sample.
    pub fn into_rgb(self) -> Sample {
        match self {
            Aug::Rgb(s) => s,
            Aug::Grey(g) => g.into_rgb(),
        }
    }
}

/// A seeded RNG for one (seed, epoch, index, stream) so samples do not depend on scheduling.
fn rng_for(seed: u64, epoch: usize, index: usize, stream: u64) -> rand::rngs::SmallRng {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for v in [epoch as u64, index as u64, stream] {
        h = (h ^ v).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 31;
    }
    rand::rngs::SmallRng::seed_from_u64(h)
}

/// Ultralytics' warning (v8_transforms) when keypoint labels without `flip_idx` meet
/// `fliplr > 0` or `flipud > 0`: both flips are then disabled. None when flips may run.
pub fn flip_idx_warning(
    keypoints: bool,
    flip_idx: Option<&[usize]>,
    aug: &AugConfig,
) -> Option<&'static str> {
    (keypoints && flip_idx.is_none_or(|f| f.is_empty()) && (aug.fliplr > 0.0 || aug.flipud > 0.0))
        .then_some(
        "No 'flip_idx' array defined in data.yaml, disabling 'fliplr' and 'flipud' augmentations.",
    )
}

/// One rect batch: dataset indices and the `(h, w)` canvas they share.
pub type RectBatch = (Vec<usize>, (usize, usize));

/// A training dataset: verified entries, augmentation settings and an optional RAM cache.
#[derive(Debug)]
pub struct TrainDataset {
    /// Verified images and labels.
    pub entries: Vec<LabelEntry>,
    /// Training size.
    pub imgsz: usize,
    /// Augmentation.
    pub aug: AugConfig,
    /// Seed.
    pub seed: u64,
    cache: Option<Vec<Arc<Rgb>>>,
    disk: bool,
    /// Per image: decoded from a grey file (set when decoded).
    grey: Vec<std::sync::atomic::AtomicBool>,
    grey_path: bool,
    /// `rect=True`: fixed batches of similar aspect ratio with their `(h, w)` canvas (no shuffle).
    pub rect: Option<Vec<RectBatch>>,
    /// Keypoint order after a flip (`flip_idx` of data.yaml).
    flip_idx: Option<Vec<usize>>,
    /// Whether flips may run: not for keypoints without `flip_idx` (spec/pose.md §2).
    flips_ok: bool,
    /// Segment training: build mask targets this way.
    pub masks: Option<crate::data::batch::MaskSpec>,
    /// Without a RAM cache: decoded images kept across epochs, as Ultralytics' mosaic buffer keeps
    /// them in its persistent workers (never changes a pixel; bounds the decoding work).
    kept: std::sync::Mutex<Kept>,
}

/// The decoded images [`TrainDataset::decode`] keeps: up to `cap` (0: none), oldest dropped
/// first.
#[derive(Debug, Default)]
struct Kept {
    cap: usize,
    order: std::collections::VecDeque<usize>,
    imgs: std::collections::HashMap<usize, Arc<Rgb>>,
}

impl Kept {
    fn get(&self, i: usize) -> Option<Arc<Rgb>> {
        self.imgs.get(&i).cloned()
    }

    fn insert(&mut self, i: usize, img: &Arc<Rgb>) {
        if self.cap == 0 || self.imgs.insert(i, img.clone()).is_some() {
            return;
        }
        self.order.push_back(i);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.imgs.remove(&old);
            }
        }
    }

    fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
        while self.order.len() > cap {
            if let Some(old) = self.order.pop_front() {
                self.imgs.remove(&old);
            }
        }
    }
}

impl TrainDataset {
    /// A dataset; `cache_ram` decodes and resizes every image once, in parallel. Keypoint labels
    /// are not flipped until [`Self::with_flip_idx`] gives their order.
    pub fn new(
        entries: Vec<LabelEntry>,
        imgsz: usize,
        aug: AugConfig,
        seed: u64,
        cache_ram: bool,
    ) -> Self {
        let grey: Vec<std::sync::atomic::AtomicBool> =
            entries.iter().map(|_| Default::default()).collect();
        let cache = cache_ram.then(|| {
            entries
                .par_iter()
                .zip(&grey)
                .map(|(e, g)| {
                    let (img, is_grey) = load_dynamic(&e.im_file)
                        .and_then(|d| resize_long_side(d, imgsz))
                        .unwrap_or_else(|err| {
                            eprintln!("WARNING {err:#}; caching a blank image");
                            (gray(imgsz), true)
                        });
                    g.store(is_grey, std::sync::atomic::Ordering::Relaxed);
                    Arc::new(img)
                })
                .collect()
        });
        let flips_ok = entries.iter().all(|e| e.keypoints.is_none());
        if aug.copy_paste > 0.0 && !entries.iter().any(|e| pastes(&e.instances())) {
            println!(
                "WARNING copy_paste={} has no effect: the training labels carry no polygons",
                aug.copy_paste
            );
        }
        Self {
            entries,
            imgsz,
            aug,
            seed,
            cache,
            disk: false,
            grey,
            grey_path: true,
            rect: None,
            flip_idx: None,
            flips_ok,
            masks: None,
            kept: Default::default(),
        }
    }

    /// The keypoint order after a flip (data.yaml `flip_idx`). Without one, a keypoint dataset is
    /// not flipped (Ultralytics' warning when `fliplr` or `flipud` > 0); one of the wrong length is
    /// an error.
    pub fn with_flip_idx(mut self, flip_idx: Option<Vec<usize>>) -> Result<Self> {
        let flip_idx = flip_idx.filter(|f| !f.is_empty());
        // Pose entries carry `Some` keypoints even for background images.
        let keypoints = self.entries.iter().any(|e| e.keypoints.is_some());
        let nkpt = self
            .entries
            .iter()
            .filter_map(|e| e.keypoints.as_ref())
            .flatten()
            .map(Vec::len)
            .max();
        if let (Some(idx), Some(n)) = (&flip_idx, nkpt) {
            if idx.len() != n || idx.iter().any(|&i| i >= n) {
                anyhow::bail!("flip_idx {idx:?} does not list the {n} keypoints of the labels")
            }
        }
        if let Some(w) = flip_idx_warning(keypoints, flip_idx.as_deref(), &self.aug) {
            println!("WARNING {w}");
        }
        self.flips_ok = flip_idx.is_some() || !keypoints;
        self.flip_idx = flip_idx;
        Ok(self)
    }

    /// The flips of this dataset.
    fn flips(&self) -> Flips<'_> {
        let on = |p: f64| if self.flips_ok { p } else { 0.0 };
        Flips {
            ud: on(self.aug.flipud),
            lr: on(self.aug.fliplr),
            idx: self.flip_idx.as_deref(),
            bgr: self.aug.bgr,
        }
    }

    /// The labels of image `i` in pixels of its loaded image (polygons resampled, spec/segment.md
    /// §2.4).
    fn instances(&self, i: usize, img: &Rgb) -> Instances {
        let mut inst = self.entries[i].instances();
        inst.resample_segments(SEGMENT_POINTS);
        inst.denormalize(img.w, img.h);
        inst
    }

    /// `cache=disk`: decodes every image once into its `.ryolo.npy` copy (in parallel) and reads
    /// those afterwards. Returns how many bytes the copies hold.
    pub fn with_disk_cache(mut self) -> (Self, u64) {
        let bytes = self
            .entries
            .par_iter()
            .map(|e| {
                let _ = load_via_disk_cache(&e.im_file);
                std::fs::metadata(disk_cache_path(&e.im_file)).map_or(0, |m| m.len())
            })
            .sum();
        self.disk = self.cache.is_none();
        (self, bytes)
    }

    /// Switches to rectangular training batches of `batch` images (pad 0, mosaic off).
    pub fn with_rect(mut self, batch: usize) -> Self {
        let shapes: Vec<(u32, u32)> = self.entries.iter().map(|e| e.shape).collect();
        self.rect = Some(crate::data::batch::rect_batches(
            &shapes, self.imgsz, batch, 32, 0.0,
        ));
        self.aug.mosaic = 0.0;
        self.aug.mixup = 0.0;
        self.aug.cutmix = 0.0;
        self
    }

    /// A rect-training sample: copy-paste (`flip` mode, on the loaded image), letterboxed into its
    /// batch canvas, then affine (within the canvas), copy-paste (`mixup` mode, the partner
    /// letterboxed into the same canvas); HSV and flips drawn, applied when the pixels are written
    /// to the batch. `mosaic` false = after close_mosaic (copy-paste off).
    fn get_rect_unfinished(
        &self,
        i: usize,
        epoch: usize,
        shape: (usize, usize),
        recent: &Recent,
        mosaic: bool,
    ) -> (Aug, Finish) {
        let mut rng = rng_for(self.seed, epoch, i, 0);
        let mut a = Aug::Rgb(self.rect_pre(i, shape, recent, mosaic, true, &mut rng));
        let fin = a.draw_finish(self.aug.hsv, self.flips(), &mut rng);
        (a, fin)
    }

    /// The rect pre-transform of image `i`: flip copy-paste, letterbox, affine, mixup copy-paste
    /// (the copy-paste steps only with `paste`, before close_mosaic and with `copy_paste > 0`).
    fn rect_pre(
        &self,
        i: usize,
        shape: (usize, usize),
        recent: &Recent,
        mosaic: bool,
        paste: bool,
        rng: &mut impl Rng,
    ) -> Sample {
        let cp = paste && mosaic && self.aug.copy_paste > 0.0;
        let mut img = self.load(i, recent);
        let mut instances = self.instances(i, &img);
        if cp && self.aug.copy_paste_mode == CopyPasteMode::Flip && pastes(&instances) {
            let mut s = Sample {
                img: (*img).clone(),
                instances,
            };
            copy_paste_flip(&mut s, self.aug.copy_paste);
            instances = s.instances;
            img = Arc::new(s.img);
        }
        let (lb, info) = crate::ops::letterbox(&img, shape, false, true, 32);
        let (r, (px, py)) = (info.ratio as f32, (info.pad.0 as f32, info.pad.1 as f32));
        instances.scale(r, r);
        instances.translate(px, py);
        let s = Sample { img: lb, instances };
        let mut s = random_perspective(s, &self.aug, shape.1, shape.0, rng);
        if cp && self.aug.copy_paste_mode == CopyPasteMode::Mixup {
            let p = self.aug.copy_paste;
            if pastes(&s.instances) && rng.gen::<f64>() <= p {
                let j = rng.gen_range(0..self.len());
                let other = self.rect_pre(j, shape, recent, mosaic, false, rng);
                copy_paste_from(&mut s, &other, p);
            }
        }
        s
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the dataset is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Decodes and resizes image `i` (or takes it from the RAM cache).
    pub fn decode(&self, i: usize) -> Arc<Rgb> {
        if let Some(c) = &self.cache {
            return c[i].clone();
        }
        if let Some(img) = self.kept().get(i) {
            return img;
        }
        let e = &self.entries[i];
        let loaded = if self.disk {
            load_via_disk_cache(&e.im_file)
        } else {
            load_dynamic(&e.im_file)
        }
        .and_then(|d| resize_long_side(d, self.imgsz));
        let (img, is_grey) = match loaded {
            Ok((img, is_grey)) => {
                let img = Arc::new(img);
                self.kept().insert(i, &img);
                (img, is_grey)
            }
            Err(err) => {
                // Not kept: the next epoch tries (and warns) again.
                eprintln!("WARNING {err:#}; using a blank image");
                (Arc::new(gray(self.imgsz)), true)
            }
        };
        self.grey[i].store(is_grey, std::sync::atomic::Ordering::Relaxed);
        img
    }

    /// How many decoded images [`Self::decode`] keeps across epochs (0: none, the default).
    pub fn keep_decoded(&self, cap: usize) {
        self.kept().set_cap(cap);
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        // Nothing panics while holding it; a poisoned lock still holds consistent data.
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn load(&self, i: usize, recent: &Recent) -> Arc<Rgb> {
        match (&self.cache, recent.imgs.get(&i)) {
            (Some(c), _) => c[i].clone(),
            (None, Some(im)) => im.clone(),
            (None, None) => self.decode(i),
        }
    }

    fn is_grey(&self, i: usize) -> bool {
        self.grey_path && self.grey[i].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns the one-channel path for grey images on (default) or off; both give the same bytes.
    pub fn with_grey_path(mut self, on: bool) -> Self {
        self.grey_path = on;
        self
    }

    /// Mosaic (or the single image), flip copy-paste, affine, mixup copy-paste (spec/augment.md §1
    /// steps 1-3). The copy-paste steps run only with `paste` (not for copy-paste's own partner),
    /// before close_mosaic (`mosaic`) and with `copy_paste > 0`.
    fn pre_transform(
        &self,
        i: usize,
        mosaic: bool,
        recent: &Recent,
        paste: bool,
        rng: &mut impl Rng,
    ) -> Aug {
        let s = self.imgsz;
        let cp = paste && mosaic && self.aug.copy_paste > 0.0;
        let flip = cp && self.aug.copy_paste_mode == CopyPasteMode::Flip;
        let a = if mosaic && rng.gen::<f64>() < self.aug.mosaic {
            // Partners: uniform over the dataset with a RAM cache, else over the recent-image window
            // (as Ultralytics' mosaic buffer; deterministic because the window follows the epoch order).
            let others: [usize; 3] = std::array::from_fn(|_| {
                if self.cache.is_some() || recent.order.is_empty() {
                    rng.gen_range(0..self.len())
                } else {
                    recent.order[rng.gen_range(0..recent.order.len())]
                }
            });
            let ids = [i, others[0], others[1], others[2]];
            let imgs = ids.map(|k| self.load(k, recent));
            let insts: [Instances; 4] = std::array::from_fn(|k| self.instances(ids[k], &imgs[k]));
            let refs: [Tile; 4] = std::array::from_fn(|k| (&*imgs[k], &insts[k]));
            let (canvas, inst) = mosaic4_layout(refs, s, rng);
            let grey = ids.iter().all(|&k| self.is_grey(k));
            if flip && pastes(&inst) {
                // Copy-paste needs the mosaic's pixels.
                let mut m = Sample {
                    img: canvas.materialize(),
                    instances: inst,
                };
                copy_paste_flip(&mut m, self.aug.copy_paste);
                self.warp(&Canvas::single(&m.img), &m.instances, grey, rng)
            } else {
                // The mosaic is never built: the affine warp reads its four tiles directly.
                self.warp(&canvas, &inst, grey, rng)
            }
        } else {
            let base = self.load(i, recent);
            let inst = self.instances(i, &base);
            if flip && pastes(&inst) {
                let mut m = Sample {
                    img: (*base).clone(),
                    instances: inst,
                };
                copy_paste_flip(&mut m, self.aug.copy_paste);
                self.warp(&Canvas::single(&m.img), &m.instances, self.is_grey(i), rng)
            } else {
                self.warp(&Canvas::single(&base), &inst, self.is_grey(i), rng)
            }
        };
        if !cp || self.aug.copy_paste_mode != CopyPasteMode::Mixup {
            return a;
        }
        // Mixup mode: with probability copy_paste, from another image through mosaic + affine.
        let p = self.aug.copy_paste;
        if !pastes(a.instances()) || rng.gen::<f64>() > p {
            return a;
        }
        let j = rng.gen_range(0..self.len());
        let other = self.pre_transform(j, mosaic, recent, false, rng).into_rgb();
        let mut a = a.into_rgb();
        copy_paste_from(&mut a, &other, p);
        Aug::Rgb(a)
    }

    /// The random affine of a canvas; grey tiles are warped on one channel (the same bytes).
    fn warp(&self, canvas: &Canvas, inst: &Instances, grey: bool, rng: &mut impl Rng) -> Aug {
        let s = self.imgsz;
        if grey {
            match random_perspective_grey(canvas, inst, &self.aug, s, rng) {
                Ok(g) => Aug::Grey(g),
                Err(rgb) => Aug::Rgb(*rgb),
            }
        } else {
            Aug::Rgb(random_perspective_on(canvas, inst, &self.aug, s, s, rng))
        }
    }

    /// The augmented sample `i` of `epoch` (mosaic, mixup, cutmix and copy-paste off once `mosaic`
    /// is false).
    pub fn get(&self, i: usize, epoch: usize, mosaic: bool, recent: &Recent) -> Sample {
        let (a, fin) = self.get_unfinished(i, epoch, mosaic, recent);
        a.finished(&fin)
    }

    /// Whether sample `i` of `epoch` is built on one channel (all its images grey) until it is
    /// written to its batch slot.
    pub fn builds_grey(&self, i: usize, epoch: usize, mosaic: bool, recent: &Recent) -> bool {
        matches!(
            self.get_unfinished(i, epoch, mosaic, recent).0,
            Aug::Grey(_)
        )
    }

    /// [`Self::get`] with its last steps drawn, not applied (all-grey samples on one channel).
    fn get_unfinished(
        &self,
        i: usize,
        epoch: usize,
        mosaic: bool,
        recent: &Recent,
    ) -> (Aug, Finish) {
        let mut rng = rng_for(self.seed, epoch, i, 0);
        let mut a = self.pre_transform(i, mosaic, recent, true, &mut rng);
        if mosaic && self.aug.mixup > 0.0 && rng.gen::<f64>() < self.aug.mixup {
            let j = rng.gen_range(0..self.len());
            let other = self
                .pre_transform(j, mosaic, recent, true, &mut rng)
                .into_rgb();
            a = Aug::Rgb(mixup(a.into_rgb(), other, &mut rng));
        }
        if mosaic && self.aug.cutmix > 0.0 && rng.gen::<f64>() < self.aug.cutmix {
            let j = rng.gen_range(0..self.len());
            let other = self
                .pre_transform(j, mosaic, recent, true, &mut rng)
                .into_rgb();
            a = Aug::Rgb(cutmix(a.into_rgb(), &other, &mut rng));
        }
        let fin = a.draw_finish(self.aug.hsv, self.flips(), &mut rng);
        (a, fin)
    }
}

/// The recently decoded images (the current batch and the ones before it, up to a window), which
/// mosaic draws its partner images from.
#[derive(Debug, Default)]
pub struct Recent {
    /// Dataset indices in the window, oldest first.
    pub order: Vec<usize>,
    /// Their decoded images.
    pub imgs: std::collections::HashMap<usize, Arc<Rgb>>,
}

impl Recent {
    fn push(&mut self, items: Vec<(usize, Arc<Rgb>)>, window: usize) {
        for (i, im) in items {
            if self.imgs.insert(i, im).is_none() {
                self.order.push(i);
            }
        }
        while self.order.len() > window {
            let old = self.order.remove(0);
            self.imgs.remove(&old);
        }
    }
}

fn gray(s: usize) -> Rgb {
    Rgb {
        w: s,
        h: s,
        data: vec![114; s * s * 3],
    }
}

/// A collated batch: `B x H x W x 3` RGB bytes and the targets.
#[derive(Debug)]
pub struct Batch {
    /// Images, NHWC u8.
    pub pixels: Vec<u8>,
    /// Batch size, height, width.
    pub shape: (usize, usize, usize),
    /// Targets with batch indices.
    pub targets: Targets,
    /// Segment training: the mask targets.
    pub masks: Option<crate::data::batch::BatchMasks>,
    /// Dataset indices of the images.
    pub indices: Vec<usize>,
}

impl Batch {
    /// `(B, 3, H, W)` float tensor in [0, 1] on `device`.
    pub fn tensor(&self, device: tch::Device) -> tch::Tensor {
        crate::ops::images_to_tensor(&self.pixels, self.shape, device)
    }
}

/// Builds the samples of one batch on the pool, each finished (HSV, flips) into its slot of the
/// batch buffer by the worker that made it (no serial collate pass).
fn build_batch(
    pool: &rayon::ThreadPool,
    idx: Vec<usize>,
    (h, w): (usize, usize),
    masks: Option<crate::data::batch::MaskSpec>,
    make: impl Fn(usize) -> (Aug, Finish) + Sync,
) -> Batch {
    let per = h * w * 3;
    let mut pixels = vec![0u8; idx.len() * per];
    let done: Vec<(Instances, Vec<u32>, Vec<[f32; 5]>)> = pool.install(|| {
        pixels
            .par_chunks_mut(per)
            .zip(idx.par_iter())
            .map(|(dst, &i)| {
                let (aug, fin) = make(i);
                let (px, wh) = aug.pixels();
                debug_assert_eq!(wh, (w, h));
                fin.write(px, (w, h), dst);
                let mut inst = aug.into_instances();
                // Masks from the pixel polygons of the final image, then normalised labels.
                let m = masks
                    .map(|spec| crate::data::batch::sample_masks(&mut inst, h, w, spec))
                    .unwrap_or_default();
                // OBB targets from the pixel corners (Format's minAreaRect), then normalised labels.
                let rb = crate::data::obb::rbox_targets(&inst, w, h);
                inst.normalize(w, h);
                (inst, m, rb)
            })
            .collect()
    });
    let mut rboxes = Vec::new();
    let (mut labels, mut parts) = (Vec::new(), Vec::new());
    for (inst, m, rb) in done {
        labels.push(inst);
        parts.push(m);
        rboxes.extend(rb);
    }
    let masks = masks.map(|spec| {
        let r = spec.ratio.max(1);
        crate::data::batch::BatchMasks::collate(parts, (h / r, w / r))
    });
    Batch {
        pixels,
        shape: (idx.len(), h, w),
        targets: Targets {
            rboxes,
            ..Targets::collate(labels)
        },
        masks,
        indices: idx,
    }
}

/// The image order of an epoch: a seeded shuffle.
pub fn epoch_order(n: usize, seed: u64, epoch: usize, shuffle: bool) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    if shuffle {
        v.shuffle(&mut rng_for(seed, epoch, usize::MAX, 1));
    }
    v
}

/// Starts producing the batches of one epoch on a background thread (`prefetch` batches ahead).
pub fn epoch_batches(
    ds: Arc<TrainDataset>,
    pool: Arc<rayon::ThreadPool>,
    epoch: usize,
    batch: usize,
    mosaic: bool,
    prefetch: usize,
) -> Receiver<Batch> {
    epoch_batches_shard(ds, pool, epoch, batch, mosaic, prefetch, (0, 1))
}

/// [`epoch_batches`] for rank `shard.0` of `shard.1` in data-parallel training: the same global
/// batches (order, mosaic window, per-image augmentation streams), of which this rank augments
/// and returns only its contiguous slice ([`crate::engine::dist::shard`]). The ranks' slices
/// together are exactly the one-process batch.
pub fn epoch_batches_shard(
    ds: Arc<TrainDataset>,
    pool: Arc<rayon::ThreadPool>,
    epoch: usize,
    batch: usize,
    mosaic: bool,
    prefetch: usize,
    shard: (usize, usize),
) -> Receiver<Batch> {
    let mine = move |idx: &[usize]| -> Vec<usize> {
        let (a, b) = crate::engine::dist::shard(idx.len(), shard.0, shard.1);
        idx[a..b].to_vec()
    };
    let (tx, rx) = sync_channel(prefetch.max(1));
    std::thread::spawn(move || {
        if let Some(rect) = &ds.rect {
            let empty = Recent::default();
            for (idx, shape) in rect {
                let b = build_batch(&pool, mine(idx), *shape, ds.masks, |i| {
                    ds.get_rect_unfinished(i, epoch, *shape, &empty, mosaic)
                });
                if tx.send(b).is_err() {
                    return;
                }
            }
            return;
        }
        let order = epoch_order(ds.len(), ds.seed, epoch, true);
        let window = (8 * batch).min(1000).max(batch.max(1)).min(ds.len());
        // Ultralytics' buffer bound: min(n, 8 batch, 1000) decoded images.
        ds.keep_decoded(window);
        let mut recent = Recent::default();
        let chunks: Vec<Vec<usize>> = order.chunks(batch.max(1)).map(<[usize]>::to_vec).collect();
        let decode = |idx: &[usize]| -> Vec<(usize, Arc<Rgb>)> {
            if ds.cache.is_some() {
                return Vec::new();
            }
            idx.par_iter().map(|&i| (i, ds.decode(i))).collect()
        };
        let mut fresh = pool.install(|| decode(chunks.first().map_or(&[][..], |c| &c[..])));
        for (k, idx) in chunks.iter().enumerate() {
            recent.push(std::mem::take(&mut fresh), window.max(idx.len()));
            let s = ds.imgsz;
            // Augment this batch while the next batch's images decode on the same pool.
            let next = chunks.get(k + 1).map_or(&[][..], |c| &c[..]);
            let (b, f) = pool.install(|| {
                rayon::join(
                    || {
                        build_batch(&pool, mine(idx), (s, s), ds.masks, |i| {
                            ds.get_unfinished(i, epoch, mosaic, &recent)
                        })
                    },
                    || decode(next),
                )
            });
            fresh = f;
            if tx.send(b).is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::instances::Polygon;
    use crate::data::{list_images, scan_with, LabelFormat};

    const COCO_FLIP: [usize; 17] = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15];

    /// The verified training entries of a shared dataset in `format`, or None (loudly) when absent.
    fn entries(name: &str, nc: usize, format: LabelFormat) -> Option<Vec<LabelEntry>> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
        let dir = root.join(name).join("images/train");
        if !dir.exists() {
            eprintln!("\n!!!!! SKIPPED: {} not found !!!!!\n", dir.display());
            return None;
        }
        let files = list_images(&[dir]).ok()?;
        let s = scan_with("train", &files, nc, false, format);
        s.check_parts(format).unwrap();
        Some(s.entries)
    }

    /// All batches of one epoch.
    fn epoch(ds: &Arc<TrainDataset>, workers: usize, mosaic: bool) -> Vec<Batch> {
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(workers)
                .build()
                .unwrap(),
        );
        epoch_batches(ds.clone(), pool, 0, 2, mosaic, 2)
            .iter()
            .collect()
    }

    /// Strong augmentation: every step that moves labels.
    fn strong() -> AugConfig {
        AugConfig {
            mixup: 0.5,
            cutmix: 0.5,
            degrees: 20.0,
            shear: 5.0,
            flipud: 0.5,
            ..AugConfig::default()
        }
    }

    #[test]
    fn kept_decodes_change_no_pixel_and_stay_bounded() {
        let Some(e) = entries("coco8", 80, LabelFormat::Detect) else {
            return;
        };
        let pool = || {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(2)
                    .build()
                    .unwrap(),
            )
        };
        let run = |ds: &Arc<TrainDataset>, ep: usize| -> Vec<Vec<u8>> {
            epoch_batches(ds.clone(), pool(), ep, 2, true, 2)
                .iter()
                .map(|b| b.pixels)
                .collect()
        };
        // Epoch 1 after epoch 0 (its images kept) against epoch 1 of a fresh dataset (all decoded).
        let warm = Arc::new(TrainDataset::new(e.clone(), 160, strong(), 7, false));
        let _ = run(&warm, 0);
        // coco8's 4 training images fit the window (min(n, 8 batch, 1000)): all kept.
        assert_eq!(warm.kept().imgs.len(), 4);
        let cold = Arc::new(TrainDataset::new(e, 160, strong(), 7, false));
        assert!(
            run(&warm, 1) == run(&cold, 1),
            "kept images give the same pixels"
        );
        // The bound is kept when it shrinks, oldest dropped first.
        let first = warm.kept().order.front().copied();
        warm.keep_decoded(3);
        let k = warm.kept();
        assert_eq!((k.order.len(), k.imgs.len()), (3, 3));
        assert!(first.is_none_or(|f| !k.imgs.contains_key(&f)));
    }

    #[test]
    fn polygons_travel_with_their_boxes() {
        let Some(e) = entries("coco8-seg", 80, LabelFormat::Segment) else {
            return;
        };
        let ds = Arc::new(TrainDataset::new(e, 160, strong(), 5, false));
        for mosaic in [true, false] {
            let a = epoch(&ds, 1, mosaic);
            let n: usize = a.iter().map(|b| b.targets.cls.len()).sum();
            assert!(n > 0);
            for b in &a {
                let t = &b.targets;
                assert_eq!(t.segments.len(), t.cls.len());
                for (p, bx) in t.segments.iter().zip(&t.bboxes) {
                    assert!(p.len() >= SEGMENT_POINTS, "{}", p.len());
                    // Every point lies in its (normalised cx cy w h) box, within the image.
                    let (x0, y0) = (bx[0] - bx[2] / 2.0, bx[1] - bx[3] / 2.0);
                    let (x1, y1) = (bx[0] + bx[2] / 2.0, bx[1] + bx[3] / 2.0);
                    for q in p {
                        assert!(q[0] >= x0 - 1e-4 && q[0] <= x1 + 1e-4, "{q:?} {bx:?}");
                        assert!(q[1] >= y0 - 1e-4 && q[1] <= y1 + 1e-4, "{q:?} {bx:?}");
                        assert!((0.0..=1.0).contains(&q[0]) && (0.0..=1.0).contains(&q[1]));
                    }
                }
            }
            let b = epoch(&ds, 2, mosaic);
            let key = |v: &[Batch]| -> Vec<(Vec<u8>, Vec<Polygon>)> {
                v.iter()
                    .map(|b| (b.pixels.clone(), b.targets.segments.clone()))
                    .collect()
            };
            assert!(key(&a) == key(&b), "deterministic for any worker count");
        }
    }

    #[test]
    fn keypoints_travel_and_flip_through_flip_idx() {
        let fmt = LabelFormat::Pose { nkpt: 17, ndim: 3 };
        let Some(e) = entries("coco8-pose", 1, fmt) else {
            return;
        };
        let ds = TrainDataset::new(e.clone(), 160, strong(), 3, false);
        assert_eq!(ds.flips().lr, 0.0, "no flips before flip_idx is known");
        assert!(TrainDataset::new(e.clone(), 160, strong(), 3, false)
            .with_flip_idx(Some(vec![0, 1]))
            .is_err());
        let ds = Arc::new(ds.with_flip_idx(Some(COCO_FLIP.to_vec())).unwrap());
        assert_eq!(ds.flips().lr, 0.5);
        let mut visible = 0;
        for b in epoch(&ds, 1, true) {
            let t = &b.targets;
            assert_eq!(t.keypoints.len(), t.cls.len());
            for k in t.keypoints.iter().flatten() {
                assert!(
                    (0.0..=1.0).contains(&k[0]) && (0.0..=1.0).contains(&k[1]),
                    "{k:?}"
                );
                visible += (k[2] > 0.0) as usize;
            }
            assert!(t.segments.is_empty() && t.corners.is_empty());
        }
        assert!(visible > 0);
        // A certain left-right flip against none (the same draws): keypoint k is the mirrored
        // keypoint flip_idx[k].
        let get = |fliplr: f64| {
            let aug = AugConfig {
                fliplr,
                ..AugConfig::none()
            };
            let ds = TrainDataset::new(e.clone(), 160, aug, 3, false)
                .with_flip_idx(Some(COCO_FLIP.to_vec()))
                .unwrap();
            ds.get(0, 0, false, &Recent::default())
        };
        let (s, plain) = (get(1.0), get(0.0));
        let got = &s.instances.keypoints.as_ref().unwrap()[0];
        let want = &plain.instances.keypoints.as_ref().unwrap()[0];
        for (k, g) in got.iter().enumerate() {
            let w = want[COCO_FLIP[k]];
            assert!(
                (g[0] - (s.img.w as f32 - w[0])).abs() < 1e-3,
                "{k}: {g:?} {w:?}"
            );
            assert!(g[1] == w[1] && g[2] == w[2], "{k}: {g:?} {w:?}");
        }
    }

    #[test]
    fn obb_corners_travel_with_their_boxes() {
        let Some(e) = entries("dota8", 15, LabelFormat::Obb) else {
            return;
        };
        let ds = Arc::new(TrainDataset::new(e, 160, strong(), 1, false));
        let mut n = 0;
        for b in epoch(&ds, 1, true) {
            let t = &b.targets;
            assert_eq!(t.corners.len(), t.cls.len());
            // one canonical rotated box per row, from the same pixel corners (spec/obb.md §1)
            assert_eq!(t.rboxes.len(), t.cls.len());
            for (r, c) in t.rboxes.iter().zip(&t.corners) {
                let (w, h) = (b.shape.2 as f32, b.shape.1 as f32);
                let px: Vec<[f32; 2]> = c.iter().map(|p| [p[0] * w, p[1] * h]).collect();
                let want = crate::data::obb::xywhr_from_points(&px);
                let area = |b: &[f32; 5], sx: f32, sy: f32| b[2] * sx * b[3] * sy;
                // sheared rectangles have near-tied edges, so only the centre and area are stable
                // under the rounding of the normalised corners, not the chosen angle
                let close = (r[0] * w - want[0]).abs() < 0.1 && (r[1] * h - want[1]).abs() < 0.1;
                assert!(close, "{r:?} {want:?} {c:?}");
                assert!(
                    (area(r, w, h) - area(&want, 1.0, 1.0)).abs()
                        <= 1e-3 * area(&want, 1.0, 1.0) + 1e-3
                );
                assert!(w != h || r[2] >= r[3], "canonical w >= h: {r:?}");
            }
            n += t.cls.len();
        }
        assert!(n > 0);
    }
}
