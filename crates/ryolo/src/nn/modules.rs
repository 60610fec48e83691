//! The YOLOv8 / YOLO11 building blocks (spec/model.md §3), with Ultralytics' parameter names so that
//! state-dict keys fall out of the `nn::Path` structure.

use tch::{nn, Kind, Tensor};

/// BatchNorm epsilon (Ultralytics `initialize_weights`).
pub const BN_EPS: f64 = 1e-3;
/// BatchNorm momentum (PyTorch convention).
pub const BN_MOMENTUM: f64 = 0.03;

thread_local! {
    /// Multiply-accumulates counted by `Conv` forwards while profiling (None when not profiling).
    pub static MACS: std::cell::Cell<Option<f64>> = const { std::cell::Cell::new(None) };
}

/// Adds `n` multiply-accumulates to the profiling counter, when one is running.
pub fn count_macs(n: f64) {
    MACS.with(|m| {
        if let Some(v) = m.get() {
            m.set(Some(v + n));
        }
    });
}

/// PyTorch's default conv init bound: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
fn conv_init(c_in: i64, groups: i64, k: i64) -> nn::Init {
    let b = 1.0 / (((c_in / groups) * k * k) as f64).sqrt();
    nn::Init::Uniform { lo: -b, up: b }
}

/// A plain `nn.Conv2d` with bias (Detect's final 1x1 convs).
#[derive(Debug)]
pub struct Conv2d {
    /// Weight `[c2, c1, 1, 1]` and bias `[c2]`.
    pub conv: nn::Conv2D,
}

impl Conv2d {
    /// `Conv2d(c1, c2, 1, bias=True)`.
    pub fn new(p: nn::Path, c1: i64, c2: i64) -> Self {
        let cfg = nn::ConvConfig {
            bias: true,
            ws_init: conv_init(c1, 1, 1),
            bs_init: conv_init(c1, 1, 1),
            ..Default::default()
        };
        Self {
            conv: nn::conv2d(p, c1, c2, 1, cfg),
        }
    }
    /// Applies the convolution.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.conv2d(
            &self.conv.ws,
            self.conv.bs.as_ref(),
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        );
        count_macs((y.numel() as i64 * self.conv.ws.size()[1]) as f64);
        y
    }
}

/// `Conv`: Conv2d(no bias) -> BatchNorm2d(eps 1e-3, momentum 0.03) -> SiLU (or identity).
#[derive(Debug)]
pub struct Conv {
    pub(crate) conv: nn::Conv2D,
    pub(crate) bn: nn::BatchNorm,
    pub(crate) act: bool,
    pub(crate) stride: i64,
    pub(crate) pad: i64,
    pub(crate) groups: i64,
    pub(crate) fused: Option<(Tensor, Tensor)>,
    /// BatchNorm epsilon and momentum (detection 1e-3 / 0.03, classification PyTorch's 1e-5 / 0.1).
    pub(crate) bn_eps: f64,
    pub(crate) bn_momentum: f64,
}

impl Conv {
    /// `Conv(c1, c2, k, s, g, act)` with autopad `k // 2`.
    pub fn new(p: nn::Path, c1: i64, c2: i64, k: i64, s: i64, g: i64, act: bool) -> Self {
        let cfg = nn::ConvConfig {
            stride: s,
            padding: k / 2,
            groups: g,
            bias: false,
            ws_init: conv_init(c1, g, k),
            ..Default::default()
        };
        let conv = nn::conv2d(&p / "conv", c1, c2, k, cfg);
        // PyTorch's BatchNorm init (weight 1, bias 0); tch's default weight init is U(0, 1).
        let bn_cfg = nn::BatchNormConfig {
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let bn = nn::batch_norm2d(&p / "bn", c2, bn_cfg);
        Self {
            conv,
            bn,
            act,
            stride: s,
            pad: k / 2,
            groups: g,
            fused: None,
            bn_eps: BN_EPS,
            bn_momentum: BN_MOMENTUM,
        }
    }

    /// `DWConv(c1, c2, k)`: groups = gcd(c1, c2).
    pub fn dw(p: nn::Path, c1: i64, c2: i64, k: i64) -> Self {
        Self::new(p, c1, c2, k, 1, gcd(c1, c2), true)
    }

    /// Forward; `train` selects batch statistics for BatchNorm.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let y = match &self.fused {
            Some((w, b)) => x.conv2d(
                w,
                Some(b),
                [self.stride; 2],
                [self.pad; 2],
                [1, 1],
                self.groups,
            ),
            None => {
                let y = x.conv2d(
                    &self.conv.ws,
                    None::<Tensor>,
                    [self.stride; 2],
                    [self.pad; 2],
                    [1, 1],
                    self.groups,
                );
                let bn = &self.bn;
                // thop counts an affine BatchNorm as 4 operations per element (and SiLU as none).
                count_macs(4.0 * y.numel() as f64);
                y.batch_norm(
                    bn.ws.as_ref(),
                    bn.bs.as_ref(),
                    Some(&bn.running_mean),
                    Some(&bn.running_var),
                    train,
                    self.bn_momentum,
                    self.bn_eps,
                    true,
                )
            }
        };
        let ws = self.conv.ws.size();
        count_macs((y.numel() as i64 * ws[1] * ws[2] * ws[3]) as f64);
        if self.act {
            y.silu()
        } else {
            y
        }
    }

    /// Folds BatchNorm into the convolution (inference only).
    pub fn fuse(&mut self) {
        tch::no_grad(|| {
            let bn = &self.bn;
            let gamma = bn.ws.as_ref().expect("bn weight");
            let std = (&bn.running_var + self.bn_eps).sqrt();
            let scale = gamma / &std;
            let w = &self.conv.ws * scale.view([-1, 1, 1, 1]);
            // Ultralytics' rounding order: beta − gamma·mean / std.
            let b = bn.bs.as_ref().expect("bn bias") - gamma * &bn.running_mean / &std;
            self.fused = Some((w, b));
        });
    }

    /// Leaf modules: conv + bn + (an own Identity when act is off).
    pub fn leaves(&self) -> usize {
        let bn = if self.fused.is_some() { 0 } else { 1 };
        1 + bn + usize::from(!self.act)
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `Bottleneck(c1, c2, shortcut, k=(3,3), e)`.
#[derive(Debug)]
pub struct Bottleneck {
    pub(crate) cv1: Conv,
    pub(crate) cv2: Conv,
    pub(crate) add: bool,
}

impl Bottleneck {
    /// Two 3x3 convs, hidden width `int(c2 * e)`, residual when `shortcut && c1 == c2`.
    pub fn new(p: nn::Path, c1: i64, c2: i64, shortcut: bool, e: f64) -> Self {
        let c_ = (c2 as f64 * e) as i64;
        Self {
            cv1: Conv::new(&p / "cv1", c1, c_, 3, 1, 1, true),
            cv2: Conv::new(&p / "cv2", c_, c2, 3, 1, 1, true),
            add: shortcut && c1 == c2,
        }
    }
    fn forward(&self, x: &Tensor, t: bool) -> Tensor {
        let y = self.cv2.forward(&self.cv1.forward(x, t), t);
        if self.add {
            x + y
        } else {
            y
        }
    }
    fn convs_mut(&mut self) -> Vec<&mut Conv> {
        vec![&mut self.cv1, &mut self.cv2]
    }
    fn leaves(&self) -> usize {
        self.cv1.leaves() + self.cv2.leaves()
    }
}

/// `C3k(c1, c2, n, shortcut=True, e=0.5)`: CSP block with two branches and n bottlenecks.
#[derive(Debug)]
pub struct C3k {
    pub(crate) cv1: Conv,
    pub(crate) cv2: Conv,
    pub(crate) cv3: Conv,
    pub(crate) m: Vec<Bottleneck>,
}

impl C3k {
    fn new(p: nn::Path, c1: i64, c2: i64, n: i64) -> Self {
        let c_ = (c2 as f64 * 0.5) as i64;
        let m = (0..n)
            .map(|i| Bottleneck::new(&p / "m" / i, c_, c_, true, 1.0))
            .collect();
        Self {
            cv1: Conv::new(&p / "cv1", c1, c_, 1, 1, 1, true),
            cv2: Conv::new(&p / "cv2", c1, c_, 1, 1, 1, true),
            cv3: Conv::new(&p / "cv3", 2 * c_, c2, 1, 1, 1, true),
            m,
        }
    }
    fn forward(&self, x: &Tensor, t: bool) -> Tensor {
        let mut a = self.cv1.forward(x, t);
        for b in &self.m {
            a = b.forward(&a, t);
        }
        self.cv3
            .forward(&Tensor::cat(&[a, self.cv2.forward(x, t)], 1), t)
    }
}

/// The inner block of a C2f-style layer.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Inner {
    Bottleneck(Bottleneck),
    C3k(C3k),
}

/// `C2f` and `C3k2` (same skeleton, different inner blocks).
#[derive(Debug)]
pub struct C2f {
    pub(crate) cv1: Conv,
    pub(crate) cv2: Conv,
    pub(crate) m: Vec<Inner>,
    pub(crate) c: i64,
}

impl C2f {
    /// `C2f(c1, c2, n, shortcut)`: inner `Bottleneck(c, c, shortcut, e=1.0)`.
    #[allow(clippy::self_named_constructors)]
    pub fn c2f(p: nn::Path, c1: i64, c2: i64, n: i64, shortcut: bool) -> Self {
        let c = (c2 as f64 * 0.5) as i64;
        let m = (0..n)
            .map(|i| Inner::Bottleneck(Bottleneck::new(&p / "m" / i, c, c, shortcut, 1.0)))
            .collect();
        Self::with_inner(p, c1, c2, n, c, m)
    }

    /// `C3k2(c1, c2, n, c3k, e)`: inner `C3k(c, c, 2)` or `Bottleneck(c, c, True, e=0.5)`.
    pub fn c3k2(p: nn::Path, c1: i64, c2: i64, n: i64, c3k: bool, e: f64) -> Self {
        let c = (c2 as f64 * e) as i64;
        let m = (0..n)
            .map(|i| {
                if c3k {
                    Inner::C3k(C3k::new(&p / "m" / i, c, c, 2))
                } else {
                    Inner::Bottleneck(Bottleneck::new(&p / "m" / i, c, c, true, 0.5))
                }
            })
            .collect();
        Self::with_inner(p, c1, c2, n, c, m)
    }

    fn with_inner(p: nn::Path, c1: i64, c2: i64, n: i64, c: i64, m: Vec<Inner>) -> Self {
        Self {
            cv1: Conv::new(&p / "cv1", c1, 2 * c, 1, 1, 1, true),
            cv2: Conv::new(&p / "cv2", (2 + n) * c, c2, 1, 1, 1, true),
            m,
            c,
        }
    }

    /// Forward: split, chain the inner blocks, concatenate, fuse channels.
    pub fn forward(&self, x: &Tensor, t: bool) -> Tensor {
        let mut ys = self.cv1.forward(x, t).split_with_sizes([self.c, self.c], 1);
        for m in &self.m {
            let last = ys.last().expect("two halves");
            let y = match m {
                Inner::Bottleneck(b) => b.forward(last, t),
                Inner::C3k(c) => c.forward(last, t),
            };
            ys.push(y);
        }
        self.cv2.forward(&Tensor::cat(&ys, 1), t)
    }

    fn convs_mut(&mut self) -> Vec<&mut Conv> {
        let mut v = vec![&mut self.cv1, &mut self.cv2];
        for m in &mut self.m {
            match m {
                Inner::Bottleneck(b) => v.extend(b.convs_mut()),
                Inner::C3k(c) => {
                    v.extend([&mut c.cv1, &mut c.cv2, &mut c.cv3]);
                    for b in &mut c.m {
                        v.extend(b.convs_mut());
                    }
                }
            }
        }
        v
    }

    fn leaves(&self) -> usize {
        let inner: usize = self
            .m
            .iter()
            .map(|m| match m {
                Inner::Bottleneck(b) => b.leaves(),
                Inner::C3k(c) => {
                    c.cv1.leaves()
                        + c.cv2.leaves()
                        + c.cv3.leaves()
                        + c.m.iter().map(Bottleneck::leaves).sum::<usize>()
                }
            })
            .sum();
        self.cv1.leaves() + self.cv2.leaves() + inner
    }
}

/// `SPPF(c1, c2, k)`: three chained max-pools, concatenated.
#[derive(Debug)]
pub struct Sppf {
    pub(crate) cv1: Conv,
    pub(crate) cv2: Conv,
    pub(crate) k: i64,
}

impl Sppf {
    /// Hidden width `c1 // 2`.
    pub fn new(p: nn::Path, c1: i64, c2: i64, k: i64) -> Self {
        let c_ = c1 / 2;
        Self {
            cv1: Conv::new(&p / "cv1", c1, c_, 1, 1, 1, true),
            cv2: Conv::new(&p / "cv2", 4 * c_, c2, 1, 1, 1, true),
            k,
        }
    }
    fn forward(&self, x: &Tensor, t: bool) -> Tensor {
        let y0 = self.cv1.forward(x, t);
        let mp = |x: &Tensor| x.max_pool2d([self.k; 2], [1, 1], [self.k / 2; 2], [1, 1], false);
        let y1 = mp(&y0);
        let y2 = mp(&y1);
        let y3 = mp(&y2);
        self.cv2.forward(&Tensor::cat(&[y0, y1, y2, y3], 1), t)
    }
}

/// `Attention(dim, num_heads, attn_ratio=0.5)` with a depthwise positional encoding.
#[derive(Debug)]
pub struct Attention {
    pub(crate) qkv: Conv,
    pub(crate) proj: Conv,
    pub(crate) pe: Conv,
    pub(crate) heads: i64,
    pub(crate) key_dim: i64,
    pub(crate) head_dim: i64,
    pub(crate) scale: f64,
}

impl Attention {
    fn new(p: nn::Path, dim: i64, heads: i64) -> Self {
        let head_dim = dim / heads;
        let key_dim = (head_dim as f64 * 0.5) as i64;
        let h = dim + 2 * key_dim * heads;
        Self {
            qkv: Conv::new(&p / "qkv", dim, h, 1, 1, 1, false),
            proj: Conv::new(&p / "proj", dim, dim, 1, 1, 1, false),
            pe: Conv::new(&p / "pe", dim, dim, 3, 1, dim, false),
            heads,
            key_dim,
            head_dim,
            scale: (key_dim as f64).powf(-0.5),
        }
    }
    fn forward(&self, x: &Tensor, t: bool) -> Tensor {
        let (b, c, h, w) = x.size4().expect("4-d input");
        let n = h * w;
        let qkv = self
            .qkv
            .forward(x, t)
            .view([b, self.heads, 2 * self.key_dim + self.head_dim, n]);
        let parts = qkv.split_with_sizes([self.key_dim, self.key_dim, self.head_dim], 2);
        let (q, k, v) = (&parts[0], &parts[1], &parts[2]);
        let attn = (q * self.scale)
            .transpose(-2, -1)
            .matmul(k)
            .softmax(-1, Kind::Float)
            .to_kind(x.kind());
        // thop 2.2 counts both attention products.
        count_macs((b * self.heads * n * n * (self.key_dim + self.head_dim)) as f64);
        let out = v.matmul(&attn.transpose(-2, -1)).view([b, c, h, w])
            + self.pe.forward(&v.reshape([b, c, h, w]), t);
        self.proj.forward(&out, t)
    }
}

/// `C2PSA(c1, c2, n)`: n position-sensitive attention blocks on half the channels.
#[derive(Debug)]
pub struct C2psa {
    pub(crate) cv1: Conv,
    pub(crate) cv2: Conv,
    pub(crate) m: Vec<(Attention, Conv, Conv)>,
    pub(crate) c: i64,
}

impl C2psa {
    /// `c = int(c1 * 0.5)`, heads `max(c // 64, 1)`.
    pub fn new(p: nn::Path, c1: i64, n: i64) -> Self {
        let c = (c1 as f64 * 0.5) as i64;
        let heads = (c / 64).max(1);
        let m = (0..n)
            .map(|i| {
                let q = &p / "m" / i;
                (
                    Attention::new(&q / "attn", c, heads),
                    Conv::new(&q / "ffn" / 0, c, 2 * c, 1, 1, 1, true),
                    Conv::new(&q / "ffn" / 1, 2 * c, c, 1, 1, 1, false),
                )
            })
            .collect();
        Self {
            cv1: Conv::new(&p / "cv1", c1, 2 * c, 1, 1, 1, true),
            cv2: Conv::new(&p / "cv2", 2 * c, c1, 1, 1, 1, true),
            m,
            c,
        }
    }
    fn forward(&self, x: &Tensor, t: bool) -> Tensor {
        let ab = self.cv1.forward(x, t).split_with_sizes([self.c, self.c], 1);
        let mut b = ab[1].shallow_clone();
        for (attn, f0, f1) in &self.m {
            b = &b + attn.forward(&b, t);
            b = &b + f1.forward(&f0.forward(&b, t), t);
        }
        self.cv2
            .forward(&Tensor::cat(&[ab[0].shallow_clone(), b], 1), t)
    }
    fn convs_mut(&mut self) -> Vec<&mut Conv> {
        let mut v = vec![&mut self.cv1, &mut self.cv2];
        for (a, f0, f1) in &mut self.m {
            v.extend([&mut a.qkv, &mut a.proj, &mut a.pe, f0, f1]);
        }
        v
    }
}

/// A non-Detect layer of the model.
#[derive(Debug)]
pub enum Block {
    /// `Conv`.
    Conv(Conv),
    /// `C2f` or `C3k2`.
    C2f(C2f),
    /// `SPPF`.
    Sppf(Sppf),
    /// `C2PSA`.
    C2psa(C2psa),
    /// `nn.Upsample(scale, nearest)`.
    Upsample(i64),
    /// `Concat(1)`.
    Concat,
}

impl Block {
    /// Forward over the layer's inputs (one, or several for Concat).
    pub fn forward(&self, xs: &[&Tensor], t: bool) -> Tensor {
        match self {
            Block::Conv(m) => m.forward(xs[0], t),
            Block::C2f(m) => m.forward(xs[0], t),
            Block::Sppf(m) => m.forward(xs[0], t),
            Block::C2psa(m) => m.forward(xs[0], t),
            Block::Upsample(s) => {
                let (_, _, h, w) = xs[0].size4().expect("4-d input");
                xs[0].upsample_nearest2d([h * s, w * s], *s as f64, *s as f64)
            }
            Block::Concat => Tensor::cat(xs, 1),
        }
    }

    /// Every `Conv` inside (for fusion and counting).
    pub fn convs_mut(&mut self) -> Vec<&mut Conv> {
        match self {
            Block::Conv(m) => vec![m],
            Block::C2f(m) => m.convs_mut(),
            Block::Sppf(m) => vec![&mut m.cv1, &mut m.cv2],
            Block::C2psa(m) => m.convs_mut(),
            Block::Upsample(_) | Block::Concat => vec![],
        }
    }

    /// Leaf modules (excluding the shared SiLU).
    pub fn leaves(&self) -> usize {
        match self {
            Block::Conv(m) => m.leaves(),
            Block::C2f(m) => m.leaves(),
            Block::Sppf(m) => m.cv1.leaves() + m.cv2.leaves() + 1,
            Block::C2psa(m) => {
                m.cv1.leaves()
                    + m.cv2.leaves()
                    + m.m
                        .iter()
                        .map(|(a, f0, f1)| {
                            a.qkv.leaves()
                                + a.proj.leaves()
                                + a.pe.leaves()
                                + f0.leaves()
                                + f1.leaves()
                        })
                        .sum::<usize>()
            }
            Block::Upsample(_) | Block::Concat => 1,
        }
    }
}
