//! `DetectionModel`: the layer graph built from a [`ModelSpec`], the Detect head, decoding, fusion and
//! the Ultralytics summary line (spec/model.md §2-5).

use super::classify::Classify;
use super::modules::{Block, C2f, C2psa, Conv, Conv2d, Sppf, MACS};
use super::obb::{dist2rbox, Obb};
use super::pose::Pose;
use super::segment::Segment;
use super::yaml::{HeadKind, LayerKind, ModelSpec};
use anyhow::{bail, Result};
use tch::{nn, Device, Kind, Tensor};

/// DFL bins.
pub const REG_MAX: i64 = 16;

/// The class branch of one Detect level.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum ClsBranch {
    /// YOLOv8: Conv 3x3, Conv 3x3, Conv2d 1x1.
    Legacy(Conv, Conv, Conv2d),
    /// YOLO11: (DWConv 3x3, Conv 1x1) twice, Conv2d 1x1.
    Light([Conv; 4], Conv2d),
}

/// The Detect head: box (DFL) and class branches for P3, P4, P5.
#[derive(Debug)]
pub struct Detect {
    pub(crate) cv2: Vec<(Conv, Conv, Conv2d)>,
    pub(crate) cv3: Vec<ClsBranch>,
    pub(crate) dfl: Tensor,
    /// Number of classes.
    pub nc: i64,
}

/// Training-form head output: per-anchor box distributions and class logits, anchors of P3, P4, P5
/// flattened row-major and concatenated.
#[derive(Debug)]
pub struct RawOutput {
    /// `(B, 4*reg_max, A)` DFL logits.
    pub boxes: Tensor,
    /// `(B, nc, A)` class logits.
    pub scores: Tensor,
    /// Feature map sizes `(H, W)` of the three levels.
    pub shapes: Vec<(i64, i64)>,
    /// Segment heads: mask coefficients `(B, nm, A)` and prototypes `(B, nm, H/4, W/4)`.
    pub masks: Option<(Tensor, Tensor)>,
    /// OBB heads: angles `(B, 1, A)` in radians (already `(sigmoid − 0.25)·π`).
    pub angle: Option<Tensor>,
    /// Pose heads: raw keypoint maps `(B, K·D, A)`.
    pub kpts: Option<Tensor>,
}

impl RawOutput {
    /// The same outputs in fp32 (after an autocast forward).
    pub fn to_float(self) -> Self {
        Self {
            boxes: self.boxes.to_kind(Kind::Float),
            scores: self.scores.to_kind(Kind::Float),
            shapes: self.shapes,
            masks: self
                .masks
                .map(|(c, p)| (c.to_kind(Kind::Float), p.to_kind(Kind::Float))),
            angle: self.angle.map(|a| a.to_kind(Kind::Float)),
            kpts: self.kpts.map(|k| k.to_kind(Kind::Float)),
        }
    }
}

impl Detect {
    pub(crate) fn new(p: &nn::Path, nc: i64, ch: &[i64], legacy: bool) -> Self {
        let c2 = 16.max(ch[0] / 4).max(4 * REG_MAX);
        let c3 = ch[0].max(nc.min(100));
        let cv2 = ch
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let q = p / "cv2" / i as i64;
                (
                    Conv::new(&q / 0, c, c2, 3, 1, 1, true),
                    Conv::new(&q / 1, c2, c2, 3, 1, 1, true),
                    Conv2d::new(&q / 2, c2, 4 * REG_MAX),
                )
            })
            .collect();
        let cv3 = ch
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let q = p / "cv3" / i as i64;
                if legacy {
                    ClsBranch::Legacy(
                        Conv::new(&q / 0, c, c3, 3, 1, 1, true),
                        Conv::new(&q / 1, c3, c3, 3, 1, 1, true),
                        Conv2d::new(&q / 2, c3, nc),
                    )
                } else {
                    ClsBranch::Light(
                        [
                            Conv::dw(&q / 0 / 0, c, c, 3),
                            Conv::new(&q / 0 / 1, c, c3, 1, 1, 1, true),
                            Conv::dw(&q / 1 / 0, c3, c3, 3),
                            Conv::new(&q / 1 / 1, c3, c3, 1, 1, 1, true),
                        ],
                        Conv2d::new(&q / 2, c3, nc),
                    )
                }
            })
            .collect();
        let dfl = (p / "dfl" / "conv").zeros_no_train("weight", &[1, REG_MAX, 1, 1]);
        tch::no_grad(|| {
            let mut d = dfl.shallow_clone();
            d.copy_(&Tensor::arange(REG_MAX, (Kind::Float, dfl.device())).view([1, REG_MAX, 1, 1]));
        });
        Self { cv2, cv3, dfl, nc }
    }

    fn forward(&self, xs: &[&Tensor], t: bool) -> RawOutput {
        let mut boxes = Vec::new();
        let mut scores = Vec::new();
        let mut shapes = Vec::new();
        for (i, x) in xs.iter().enumerate() {
            let (b, _, h, w) = x.size4().expect("4-d feature map");
            shapes.push((h, w));
            let (a, bb, c) = &self.cv2[i];
            boxes.push(
                c.forward(&bb.forward(&a.forward(x, t), t))
                    .view([b, 4 * REG_MAX, h * w]),
            );
            let s = match &self.cv3[i] {
                ClsBranch::Legacy(a, bb, c) => c.forward(&bb.forward(&a.forward(x, t), t)),
                ClsBranch::Light(m, c) => {
                    let mut y = m[0].forward(x, t);
                    for conv in &m[1..] {
                        y = conv.forward(&y, t);
                    }
                    c.forward(&y)
                }
            };
            scores.push(s.view([b, self.nc, h * w]));
        }
        RawOutput {
            boxes: Tensor::cat(&boxes, 2),
            scores: Tensor::cat(&scores, 2),
            shapes,
            masks: None,
            angle: None,
            kpts: None,
        }
    }

    /// Sets the Ultralytics 8.4 initial biases: box 2.0, class `ln(5 / nc / (640 / s)^2)`.
    fn bias_init(&mut self, strides: &[f64]) {
        tch::no_grad(|| {
            for (i, s) in strides.iter().enumerate() {
                if let Some(b) = self.cv2[i].2.conv.bs.as_mut() {
                    let _ = b.fill_(2.0);
                }
                let cls = match &mut self.cv3[i] {
                    ClsBranch::Legacy(_, _, c) | ClsBranch::Light(_, c) => c,
                };
                if let Some(b) = cls.conv.bs.as_mut() {
                    let _ = b.fill_((5.0 / self.nc as f64 / (640.0 / s).powi(2)).ln());
                }
            }
        });
    }

    pub(crate) fn convs_mut(&mut self) -> Vec<&mut Conv> {
        let mut v = Vec::new();
        for (a, b, _) in &mut self.cv2 {
            v.extend([a, b]);
        }
        for c in &mut self.cv3 {
            match c {
                ClsBranch::Legacy(a, b, _) => v.extend([a, b]),
                ClsBranch::Light(m, _) => v.extend(m.iter_mut()),
            }
        }
        v
    }

    pub(crate) fn leaves(&self) -> usize {
        let convs: usize = self
            .cv2
            .iter()
            .map(|(a, b, _)| a.leaves() + b.leaves() + 1)
            .sum::<usize>()
            + self
                .cv3
                .iter()
                .map(|c| match c {
                    ClsBranch::Legacy(a, b, _) => a.leaves() + b.leaves() + 1,
                    ClsBranch::Light(m, _) => m.iter().map(Conv::leaves).sum::<usize>() + 1,
                })
                .sum::<usize>();
        convs + 1
    }
}

/// The head that ends the network. The box tasks compose [`Detect`] with their extra branches;
/// classify will bring its own.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Head {
    /// Boxes and classes (P3-P5).
    Detect(Detect),
    /// Boxes, classes and instance masks.
    Segment(Box<Segment>),
    /// Rotated boxes (Detect plus an angle per anchor).
    Obb(Box<Obb>),
    /// One label per image.
    Classify(Box<Classify>),
    /// Boxes, classes and keypoints.
    Pose(Box<Pose>),
}

impl Head {
    /// The detection part every box head composes (None for classification).
    pub fn detect(&self) -> Option<&Detect> {
        match self {
            Head::Detect(d) => Some(d),
            Head::Segment(s) => Some(&s.detect),
            Head::Obb(o) => Some(&o.detect),
            Head::Pose(p) => Some(&p.detect),
            Head::Classify(_) => None,
        }
    }

    fn detect_mut(&mut self) -> Option<&mut Detect> {
        match self {
            Head::Detect(d) => Some(d),
            Head::Segment(s) => Some(&mut s.detect),
            Head::Obb(o) => Some(&mut o.detect),
            Head::Pose(p) => Some(&mut p.detect),
            Head::Classify(_) => None,
        }
    }

    /// Number of classes.
    pub fn nc(&self) -> i64 {
        match self {
            Head::Classify(c) => c.nc,
            h => h.detect().map_or(0, |d| d.nc),
        }
    }

    /// The task this head serves.
    pub fn task(&self) -> crate::task::TaskKind {
        match self {
            Head::Detect(_) => crate::task::TaskKind::Detect,
            Head::Segment(_) => crate::task::TaskKind::Segment,
            Head::Obb(_) => crate::task::TaskKind::Obb,
            Head::Classify(_) => crate::task::TaskKind::Classify,
            Head::Pose(_) => crate::task::TaskKind::Pose,
        }
    }

    /// Mask coefficients per anchor (Segment heads), else 0.
    pub fn nm(&self) -> i64 {
        match self {
            Head::Segment(s) => s.nm,
            _ => 0,
        }
    }

    /// The Pose head (keypoint shape, names, sigmas), if this is one.
    pub fn pose(&self) -> Option<&Pose> {
        match self {
            Head::Pose(p) => Some(p),
            _ => None,
        }
    }

    /// The Pose head, mutably (to set `kpt_names` / `kpt_oks_sigmas`).
    pub fn pose_mut(&mut self) -> Option<&mut Pose> {
        match self {
            Head::Pose(p) => Some(p),
            _ => None,
        }
    }

    /// Training-form outputs of the head from its input feature maps.
    fn forward(&self, xs: &[&Tensor], train: bool) -> RawOutput {
        match self {
            Head::Detect(d) => d.forward(xs, train),
            Head::Segment(s) => {
                let masks = s.forward_masks(xs, train);
                let mut raw = s.detect.forward(xs, train);
                raw.masks = Some(masks);
                raw
            }
            Head::Obb(o) => {
                let mut raw = o.detect.forward(xs, train);
                raw.angle = Some(o.forward_angle(xs, train));
                raw
            }
            Head::Pose(p) => {
                let mut raw = p.detect.forward(xs, train);
                raw.kpts = Some(p.forward_kpts(xs, train));
                raw
            }
            // Classification: the logits travel as `scores` (B, nc); no boxes, no levels.
            Head::Classify(c) => {
                let logits = c.forward(xs[0], train);
                let b = logits.size()[0];
                RawOutput {
                    boxes: Tensor::zeros([b, 0, 0], (Kind::Float, logits.device())),
                    scores: logits,
                    shapes: Vec::new(),
                    masks: None,
                    angle: None,
                    kpts: None,
                }
            }
        }
    }

    /// The task's initial biases.
    fn bias_init(&mut self, strides: &[f64]) {
        if let Some(d) = self.detect_mut() {
            d.bias_init(strides)
        }
    }

    /// The head's fusable convolutions.
    fn convs_mut(&mut self) -> Vec<&mut Conv> {
        match self {
            Head::Detect(d) => d.convs_mut(),
            Head::Segment(s) => s.convs_mut(),
            Head::Obb(o) => o.convs_mut(),
            Head::Pose(p) => p.convs_mut(),
            Head::Classify(c) => vec![&mut c.conv],
        }
    }

    /// Leaf modules (for the layer count of the summary line).
    fn leaves(&self) -> usize {
        match self {
            Head::Detect(d) => d.leaves(),
            Head::Segment(s) => s.detect.leaves() + s.leaves(),
            Head::Obb(o) => o.detect.leaves() + o.leaves(),
            Head::Pose(p) => p.leaves(),
            Head::Classify(c) => c.leaves(),
        }
    }
}

/// Anchor centres `(A, 2)` in grid units and their strides `(A, 1)` for the given level sizes.
pub fn make_anchors(shapes: &[(i64, i64)], strides: &[f64], device: Device) -> (Tensor, Tensor) {
    let mut pts = Vec::new();
    let mut sts = Vec::new();
    for (&(h, w), &s) in shapes.iter().zip(strides) {
        let opts = (Kind::Float, device);
        let sx = Tensor::arange(w, opts) + 0.5;
        let sy = Tensor::arange(h, opts) + 0.5;
        let grid = Tensor::meshgrid_indexing(&[&sy, &sx], "ij");
        pts.push(Tensor::stack(
            &[grid[1].flatten(0, -1), grid[0].flatten(0, -1)],
            -1,
        ));
        sts.push(Tensor::full([h * w, 1], s, opts));
    }
    (Tensor::cat(&pts, 0), Tensor::cat(&sts, 0))
}

/// Expected distance per side from DFL logits: `(B, 64, A)` -> `(B, 4, A)`.
pub fn dfl_decode(boxes: &Tensor, dfl_weight: &Tensor) -> Tensor {
    let (b, _, a) = boxes.size3().expect("3-d boxes");
    let p = boxes.view([b, 4, REG_MAX, a]).softmax(2, Kind::Float);
    (p * dfl_weight.view([1, 1, REG_MAX, 1])).sum_dim_intlist(2, false, Kind::Float)
}

/// A YOLOv8 / YOLO11 detection model on a libtorch device.
#[derive(Debug)]
pub struct DetectionModel {
    /// All parameters and buffers, named as Ultralytics' state dict.
    pub vs: nn::VarStore,
    /// The architecture.
    pub spec: ModelSpec,
    /// Class names, index = class id.
    pub names: Vec<String>,
    /// Strides of P3, P4, P5.
    pub stride: Vec<f64>,
    pub(crate) blocks: Vec<(Vec<i64>, Block)>,
    /// The head (Detect today).
    pub head: Head,
    pub(crate) detect_from: Vec<i64>,
    pub(crate) save: Vec<bool>,
    pub(crate) fused: bool,
}

impl DetectionModel {
    /// Builds the model with fresh (PyTorch-default) weights and the Detect bias init.
    pub fn new(spec: ModelSpec, device: Device) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let root = vs.root() / "model";
        let mut blocks = Vec::new();
        let mut detect = None;
        let mut detect_from = Vec::new();
        let n_layers = spec.layers.len();
        let mut save = vec![false; n_layers];
        for (i, l) in spec.layers.iter().enumerate() {
            let p = &root / i as i64;
            for &f in &l.from {
                if f >= 0 && f != i as i64 - 1 {
                    save[f as usize] = true;
                }
            }
            let block = match &l.kind {
                LayerKind::Conv { c1, c2, k, s } => {
                    Block::Conv(Conv::new(p, *c1, *c2, *k, *s, 1, true))
                }
                LayerKind::C2f {
                    c1,
                    c2,
                    n,
                    shortcut,
                } => Block::C2f(C2f::c2f(p, *c1, *c2, *n, *shortcut)),
                LayerKind::C3k2 { c1, c2, n, c3k, e } => {
                    Block::C2f(C2f::c3k2(p, *c1, *c2, *n, *c3k, *e))
                }
                LayerKind::Sppf { c1, c2, k } => Block::Sppf(Sppf::new(p, *c1, *c2, *k)),
                LayerKind::C2psa { c1, n, .. } => Block::C2psa(C2psa::new(p, *c1, *n)),
                LayerKind::Upsample { scale } => Block::Upsample(*scale),
                LayerKind::Classify { c1, nc } => {
                    if i != n_layers - 1 {
                        bail!("the head must be the last layer");
                    }
                    detect = Some(Head::Classify(Box::new(Classify::new(p, *c1, *nc))));
                    detect_from = l.from.clone();
                    for &f in &l.from {
                        if f >= 0 {
                            save[f as usize] = true;
                        }
                    }
                    continue;
                }
                LayerKind::Concat => Block::Concat,
                LayerKind::Detect {
                    nc,
                    ch,
                    legacy,
                    head,
                } => {
                    if i != n_layers - 1 {
                        bail!("the head must be the last layer");
                    }
                    let d = Detect::new(&p, *nc, ch, *legacy);
                    detect = Some(match *head {
                        HeadKind::Detect => Head::Detect(d),
                        HeadKind::Segment { nm, npr } => {
                            Head::Segment(Box::new(Segment::new(p, d, nm, npr, ch)))
                        }
                        HeadKind::Obb { ne } => Head::Obb(Box::new(Obb::new(p, d, ne, ch))),
                        HeadKind::Pose { kpt_shape } => {
                            Head::Pose(Box::new(Pose::new(p, d, kpt_shape, ch)))
                        }
                    });
                    detect_from = l.from.clone();
                    // The Detect inputs are all kept.
                    for &f in &l.from {
                        save[f as usize] = true;
                    }
                    continue;
                }
            };
            blocks.push((l.from.clone(), block));
        }
        let Some(detect) = detect else {
            bail!("the model has no Detect head (checked when parsed)");
        };
        let names = (0..spec.nc).map(|i| format!("class{i}")).collect();
        let mut m = Self {
            vs,
            spec,
            names,
            stride: vec![],
            blocks,
            head: detect,
            detect_from,
            save,
            fused: false,
        };
        if let Head::Classify(_) = m.head {
            // ClassificationModel: PyTorch's BatchNorm constants, stride 1, no bias prior.
            for c in m.convs_mut() {
                c.bn_eps = 1e-5;
                c.bn_momentum = 0.1;
            }
            m.stride = vec![1.0];
            return Ok(m);
        }
        // The strides from the layer walk (equal to Ultralytics' 256x256 probe forward: nn::yaml's
        // cost test), else from that forward.
        m.stride = match m.spec.cost() {
            Ok(c) if !c.strides.is_empty() => c.strides,
            _ => {
                let raw = tch::no_grad(|| {
                    m.forward_raw(
                        &Tensor::zeros([1, 3, 256, 256], (Kind::Float, device)),
                        false,
                    )
                });
                raw.shapes.iter().map(|(h, _)| 256.0 / *h as f64).collect()
            }
        };
        let strides = m.stride.clone();
        m.head.bias_init(&strides);
        Ok(m)
    }

    /// Number of classes.
    pub fn nc(&self) -> i64 {
        self.head.nc()
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Runs the network up to the head's raw outputs (`train` = BatchNorm batch statistics).
    pub fn forward_raw(&self, x: &Tensor, train: bool) -> RawOutput {
        self.forward_raw_with_inputs(x, train).0
    }

    /// [`DetectionModel::forward_raw`] plus the head's input feature maps (P3, P4, P5 `(B, C, H, W)`).
    pub fn forward_raw_with_inputs(&self, x: &Tensor, train: bool) -> (RawOutput, Vec<Tensor>) {
        let mut outs: Vec<Option<Tensor>> = Vec::with_capacity(self.save.len());
        let mut prev = x.shallow_clone();
        for (i, (from, block)) in self.blocks.iter().enumerate() {
            let y = {
                let xs: Vec<&Tensor> = from
                    .iter()
                    .map(|&f| {
                        if f == i as i64 - 1 || f < 0 {
                            &prev
                        } else {
                            outs[f as usize].as_ref().expect("saved output")
                        }
                    })
                    .collect();
                block.forward(&xs, train)
            };
            outs.push(if self.save[i] {
                Some(y.shallow_clone())
            } else {
                None
            });
            prev = y;
        }
        let last = self.blocks.len() as i64 - 1;
        let xs: Vec<&Tensor> = self
            .detect_from
            .iter()
            .map(|&f| {
                if f == last {
                    &prev
                } else {
                    outs[f as usize].as_ref().expect("saved output")
                }
            })
            .collect();
        let inputs = xs.iter().map(|t| t.shallow_clone()).collect();
        (self.head.forward(&xs, train), inputs)
    }

    /// Decodes raw head outputs into `(B, 4 + nc, A)`: box `cx, cy, w, h` in input pixels, then class
    /// probabilities.
    pub fn decode(&self, raw: &RawOutput) -> Tensor {
        let Some(det) = self.head.detect() else {
            // Classification: softmax probabilities (B, nc).
            return raw.scores.softmax(1, Kind::Float);
        };
        let (anchors, strides) = make_anchors(&raw.shapes, &self.stride, raw.boxes.device());
        let dist = dfl_decode(&raw.boxes, &det.dfl);
        let lt = dist.narrow(1, 0, 2);
        let rb = dist.narrow(1, 2, 2);
        let anc = anchors.transpose(0, 1).unsqueeze(0);
        let stride_row = strides.transpose(0, 1).unsqueeze(0);
        if let Some(angle) = &raw.angle {
            // OBB: rotated decode, then `[cx, cy, w, h, probabilities, θ]`.
            let dbox = dist2rbox(&dist, angle, &anc, 1) * &stride_row;
            return Tensor::cat(&[&dbox, &raw.scores.sigmoid(), angle], 1);
        }
        let x1y1 = &anc - lt;
        let x2y2 = &anc + rb;
        let cxy = (&x1y1 + &x2y2) / 2.0;
        let wh = x2y2 - x1y1;
        let dbox = Tensor::cat(&[cxy, wh], 1) * stride_row;
        let mut rows = vec![dbox, raw.scores.sigmoid()];
        if let Some((coefs, _)) = &raw.masks {
            rows.push(coefs.shallow_clone());
        }
        if let (Some(k), Head::Pose(p)) = (&raw.kpts, &self.head) {
            rows.push(p.decode_kpts(k, &anchors, &strides));
        }
        Tensor::cat(&rows, 1)
    }

    /// Inference forward: `(B, 3, H, W)` in [0, 1] -> `(B, 4 + nc [+ nm | + K·D | + 1], A)`
    /// (Ultralytics' `output0`; Segment models append the mask coefficients, Pose models the
    /// decoded keypoints, OBB models the angle in radians).
    pub fn predict(&self, x: &Tensor) -> Tensor {
        self.decode(&self.forward_raw(x, false))
    }

    /// Inference forward with the prototypes: `output0` and, for Segment models, `output1`
    /// `(B, nm, H/4, W/4)`.
    pub fn predict_with_protos(&self, x: &Tensor) -> (Tensor, Option<Tensor>) {
        let raw = self.forward_raw(x, false);
        let protos = raw.masks.as_ref().map(|(_, p)| p.shallow_clone());
        (self.decode(&raw), protos)
    }

    /// [`DetectionModel::predict_with_protos`] plus per-anchor appearance features `(B, A, s)` taken from the
    /// head's inputs as Ultralytics' `get_obj_feats`: each level's channels averaged in `C/s` consecutive
    /// groups (`s` = the smallest channel count), anchors in the output's order.
    pub fn predict_with_feats(&self, x: &Tensor) -> (Tensor, Option<Tensor>, Tensor) {
        let (raw, inputs) = self.forward_raw_with_inputs(x, false);
        let protos = raw.masks.as_ref().map(|(_, p)| p.shallow_clone());
        let s = inputs.iter().map(|t| t.size()[1]).min().unwrap_or(1).max(1);
        let per: Vec<Tensor> = inputs
            .iter()
            .map(|t| {
                let (b, c) = (t.size()[0], t.size()[1]);
                t.permute([0, 2, 3, 1])
                    .reshape([b, -1, s, c / s])
                    .mean_dim(-1, false, Kind::Float)
            })
            .collect();
        (self.decode(&raw), protos, Tensor::cat(&per, 1))
    }

    /// The task of the head (detect, segment, obb, classify).
    pub fn task(&self) -> crate::task::TaskKind {
        self.head.task()
    }

    /// Test-time augmentation (spec/inference.md §7): the image at scales 1, 0.83 (flipped left-right)
    /// and 0.67, each padded with 0.447 to a multiple of 32; boxes mapped back; the full-scale output
    /// loses its P5 anchors and the 0.67 one its P3 anchors; all concatenated for NMS.
    pub fn predict_augment(&self, x: &Tensor) -> Tensor {
        if matches!(self.head, Head::Obb(_) | Head::Pose(_)) {
            // Ultralytics: only a plain Detect head has TTA; the others revert to one scale.
            eprintln!("WARNING Model does not support 'augment=True', reverting to single-scale prediction.");
            return self.predict(x);
        }
        let (h, w) = (x.size()[2], x.size()[3]);
        let gs = self.stride.iter().cloned().fold(32.0, f64::max) as i64;
        let mut outs = Vec::new();
        for (s, flip) in [(1.0f64, false), (0.83, true), (0.67, false)] {
            let xi = if flip { x.flip([3]) } else { x.shallow_clone() };
            let xi = if s == 1.0 {
                xi
            } else {
                let (nh, nw) = ((h as f64 * s) as i64, (w as f64 * s) as i64);
                let r = xi.upsample_bilinear2d([nh, nw], false, None, None);
                let (ph, pw) = (
                    (h as f64 * s / gs as f64).ceil() as i64 * gs,
                    (w as f64 * s / gs as f64).ceil() as i64 * gs,
                );
                // Pad right and bottom with 0.447 (ImageNet mean).
                let pad = [0, pw - nw, 0, ph - nh];
                let ones =
                    Tensor::ones([1, 1, nh, nw], (x.kind(), x.device())).constant_pad_nd(pad);
                r.constant_pad_nd(pad) + (1.0 - ones) * 0.447
            };
            let y = self.predict(&xi);
            let nc = y.size()[1] - 4;
            let parts = y.split_with_sizes([1, 1, 2, nc], 1);
            let cx = &parts[0] / s;
            let cx = if flip { (w as f64) - cx } else { cx };
            outs.push(Tensor::cat(
                &[cx, &parts[1] / s, &parts[2] / s, parts[3].shallow_clone()],
                1,
            ));
        }
        // Anchors per level are in the ratio 16:4:1 (P3:P4:P5), 21 parts in all.
        let a0 = outs[0].size()[2];
        outs[0] = outs[0].narrow(2, 0, a0 - a0 / 21);
        let a2 = outs[2].size()[2];
        let cut = a2 / 21 * 16;
        outs[2] = outs[2].narrow(2, cut, a2 - cut);
        Tensor::cat(&outs, 2)
    }

    fn convs_mut(&mut self) -> Vec<&mut Conv> {
        let mut v: Vec<&mut Conv> = Vec::new();
        for (_, b) in &mut self.blocks {
            v.extend(b.convs_mut());
        }
        v.extend(self.head.convs_mut());
        v
    }

    /// Folds every Conv's BatchNorm into its weights (inference; idempotent).
    pub fn fuse(&mut self) {
        if !self.fused {
            for c in self.convs_mut() {
                c.fuse();
            }
            self.fused = true;
        }
    }

    /// Whether [`fuse`](Self::fuse) was applied.
    pub fn is_fused(&self) -> bool {
        self.fused
    }

    /// Model statistics as Ultralytics' summary counts them.
    pub fn info(&self) -> ModelInfo {
        let mut params = 0i64;
        let mut grads = 0i64;
        for (name, t) in self.vs.variables() {
            if self.fused && name.contains(".bn.") {
                continue;
            }
            if name.ends_with("running_mean") || name.ends_with("running_var") {
                continue;
            }
            params += t.numel() as i64;
            // Fusing replaces the Conv+BN parameters by fresh ones without gradients; plain
            // convolutions (the heads' last 1x1s, the Proto's ConvTranspose) keep theirs.
            let replaced = self.fused && (name.contains(".conv.") || name.contains(".bn."));
            if t.requires_grad() && !replaced {
                grads += t.numel() as i64;
            }
        }
        if self.fused {
            // Fused convs gain a bias each.
            let mut extra = 0i64;
            for (name, t) in self.vs.variables() {
                if name.ends_with(".bn.bias") {
                    extra += t.numel() as i64;
                }
            }
            params += extra;
        }
        let leaves: usize =
            self.blocks.iter().map(|(_, b)| b.leaves()).sum::<usize>() + self.head.leaves() + 1;
        // The layer walk's count (equal to the counted forward for every model the walk knows:
        // nn::yaml's cost test), else a counted forward at 640x640.
        let macs = match self.spec.cost() {
            Ok(c) if self.fused => c.macs - c.bn_macs,
            Ok(c) => c.macs,
            Err(_) => self.counted_macs(),
        };
        ModelInfo {
            name: self.spec.name.clone(),
            layers: leaves,
            params,
            grads,
            gflops: 2.0 * macs / 1e9,
            fused: self.fused,
        }
    }
}

impl DetectionModel {
    /// Multiply-accumulates of one 640x640 forward as thop counts them (convolutions, BatchNorm
    /// unless fused, attention products, DFL), by running it with the counter on.
    pub fn counted_macs(&self) -> f64 {
        MACS.with(|m| m.set(Some(0.0)));
        tch::no_grad(|| {
            self.forward_raw(
                &Tensor::zeros([1, 3, 640, 640], (Kind::Float, self.device())),
                false,
            )
        });
        // The DFL 1x1 conv (16 bins to 1, 4 sides per anchor), as thop counts it.
        let anchors: i64 = if self.head.detect().is_some() {
            self.stride
                .iter()
                .map(|s| ((640.0 / s) as i64).pow(2))
                .sum()
        } else {
            0
        };
        MACS.with(|m| m.replace(None)).unwrap_or(0.0) + (4 * REG_MAX * anchors) as f64
    }
}

/// The numbers of the Ultralytics summary line.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// `YOLO11n` etc.
    pub name: String,
    /// Distinct leaf modules.
    pub layers: usize,
    /// Parameters.
    pub params: i64,
    /// Parameters that take gradients.
    pub grads: i64,
    /// GFLOPs at 640x640 (convolutions).
    pub gflops: f64,
    /// Whether the model is fused.
    pub fused: bool,
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

impl std::fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fused = if self.fused { " (fused)" } else { "" };
        write!(
            f,
            "{} summary{fused}: {} layers, {} parameters, {} gradients, {:.1} GFLOPs",
            self.name,
            thousands(self.layers as i64),
            thousands(self.params),
            thousands(self.grads),
            self.gflops
        )
    }
}
