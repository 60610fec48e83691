//! ONNX export written from our module tree (spec/export.md): input `images` (B, 3, H, W), output
//! `output0` (B, 4 + nc, A) with DFL and box decoding inside the graph, Conv+BN fused, Ultralytics'
//! metadata keys; Segment models (spec/segment.md §8) add 32 mask-coefficient rows to `output0` and
//! the prototypes `output1` (B, 32, H/4, W/4); Classify models (spec/classify.md §8) give softmax
//! probabilities `output0` (B, nc). Static shapes, or dynamic batch and size.

mod mode;
pub mod proto;
pub mod pyliteral;

pub use mode::run;

use crate::nn::classify::Classify;
use crate::nn::model::{make_anchors, ClsBranch, Detect, Head, REG_MAX};
use crate::nn::modules::{Block, C2f, Conv, Conv2d, Inner};
use crate::nn::segment::{Proto, Segment};
use crate::nn::DetectionModel;
use anyhow::{anyhow, bail, Result};
use prost::Message;
use proto::*;
use tch::{Kind, Tensor};

/// Export settings.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// Input `(h, w)`.
    pub imgsz: (usize, usize),
    /// ONNX opset (default 18, as Ultralytics 8.4 with torch 2.11).
    pub opset: i64,
    /// Metadata entries (names, stride, imgsz, task, batch, args, ...).
    pub metadata: Vec<(String, String)>,
    /// Batch size of the input (ignored when `dynamic`).
    pub batch: i64,
    /// Dynamic batch, height and width axes (`dynamic=True`): anchors are computed in the graph.
    pub dynamic: bool,
}

/// A value in the graph: its name and `(c, h, w)` shape (batch 1).
#[derive(Clone, Debug)]
struct V {
    name: String,
    c: i64,
    h: i64,
    w: i64,
}

#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    n: usize,
}

fn ai(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: Some(v),
        r#type: 2,
        ..Default::default()
    }
}
fn aints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: 7,
        ..Default::default()
    }
}
fn af(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: Some(v),
        r#type: 1,
        ..Default::default()
    }
}
fn astr(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: Some(v.as_bytes().to_vec()),
        r#type: 3,
        ..Default::default()
    }
}

impl Graph {
    fn fresh(&mut self, p: &str) -> String {
        self.n += 1;
        format!("/{p}_{}", self.n)
    }
    fn init(&mut self, name: &str, dims: &[i64], data_type: i32, raw: Vec<u8>) -> String {
        self.inits.push(TensorProto {
            dims: dims.to_vec(),
            data_type,
            name: name.into(),
            raw_data: raw,
        });
        name.to_string()
    }
    fn tensor(&mut self, name: &str, t: &Tensor) -> String {
        let t = t
            .detach()
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let mut raw = vec![0u8; t.numel() * 4];
        t.copy_data_u8(&mut raw, t.numel());
        self.init(name, &t.size(), 1, raw)
    }
    fn f32s(&mut self, p: &str, dims: &[i64], v: &[f32]) -> String {
        let name = self.fresh(p);
        self.init(
            &name,
            dims,
            1,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
    }
    fn i64s(&mut self, p: &str, v: &[i64]) -> String {
        let name = self.fresh(p);
        self.init(
            &name,
            &[v.len() as i64],
            7,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
    }
    fn i64_scalar(&mut self, p: &str, v: i64) -> String {
        let name = self.fresh(p);
        self.init(&name, &[], 7, v.to_le_bytes().to_vec())
    }

    /// Anchor centres `(2, h*w)` and strides `(1, h*w)` of a feature map, computed from its runtime
    /// shape (for dynamic-size exports), in `make_anchors` order (x fastest).
    fn anchors_from_shape(&mut self, feat: &str, stride: f32) -> (String, String) {
        let shape = self.op("Shape", &[feat], vec![]);
        let (i2, i3) = (self.i64_scalar("idx", 2), self.i64_scalar("idx", 3));
        let h = self.op("Gather", &[&shape, &i2], vec![ai("axis", 0)]);
        let w = self.op("Gather", &[&shape, &i3], vec![ai("axis", 0)]);
        let (zero, one) = (self.i64_scalar("zero", 0), self.i64_scalar("one", 1));
        let half = self.f32s("offset", &[], &[0.5]);
        let axis = |g: &mut Self, n: &str| {
            let r = g.op("Range", &[&zero, n, &one], vec![]);
            let f = g.op("Cast", &[&r], vec![ai("to", 1)]);
            g.op("Add", &[&f, &half], vec![])
        };
        let (sx, sy) = (axis(self, &w), axis(self, &h));
        let (a0, a1) = (self.i64s("axes", &[0]), self.i64s("axes", &[1]));
        let sx = self.op("Unsqueeze", &[&sx, &a0], vec![]); // (1, w)
        let sy = self.op("Unsqueeze", &[&sy, &a1], vec![]); // (h, 1)
        let nought = self.f32s("zero", &[], &[0.0]);
        let zx = self.op("Mul", &[&sx, &nought], vec![]);
        let zy = self.op("Mul", &[&sy, &nought], vec![]);
        let gx = self.op("Add", &[&sx, &zy], vec![]); // (h, w)
        let gy = self.op("Add", &[&sy, &zx], vec![]);
        let flat = self.i64s("shape", &[1, -1]);
        let gx = self.op("Reshape", &[&gx, &flat], vec![]);
        let gy = self.op("Reshape", &[&gy, &flat], vec![]);
        let anc = self.op("Concat", &[&gx, &gy], vec![ai("axis", 0)]);
        let st = self.f32s("stride", &[], &[stride]);
        let z = self.op("Mul", &[&gx, &nought], vec![]);
        let st = self.op("Add", &[&z, &st], vec![]);
        (anc, st)
    }

    fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.op_n(op, inputs, 1, attrs).remove(0)
    }
    fn op_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        n: usize,
        attrs: Vec<AttributeProto>,
    ) -> Vec<String> {
        let base = self.fresh(op);
        let outputs: Vec<String> = (0..n).map(|i| format!("{base}_out{i}")).collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.clone(),
            name: base,
            op_type: op.into(),
            attribute: attrs,
        });
        outputs
    }

    fn conv(&mut self, x: &V, c: &Conv) -> Result<V> {
        let (w, b) = c
            .fused
            .as_ref()
            .ok_or_else(|| anyhow!("export needs a fused model"))?;
        let size = w.size();
        let (k, s, p, g) = (size[2], c.stride, c.pad, c.groups);
        let wn = self.fresh("w");
        let wn = self.tensor(&wn, w);
        let bn = self.fresh("b");
        let bn = self.tensor(&bn, b);
        let y = self.op(
            "Conv",
            &[&x.name, &wn, &bn],
            vec![
                aints("dilations", &[1, 1]),
                ai("group", g),
                aints("kernel_shape", &[k, k]),
                aints("pads", &[p, p, p, p]),
                aints("strides", &[s, s]),
            ],
        );
        let y = if c.act {
            let sg = self.op("Sigmoid", &[&y], vec![]);
            self.op("Mul", &[&y, &sg], vec![])
        } else {
            y
        };
        Ok(V {
            name: y,
            c: size[0],
            h: (x.h + 2 * p - k) / s + 1,
            w: (x.w + 2 * p - k) / s + 1,
        })
    }

    fn conv2d(&mut self, x: &V, c: &Conv2d) -> V {
        let wn = self.fresh("w");
        let wn = self.tensor(&wn, &c.conv.ws);
        let bn = self.fresh("b");
        let bn = self.tensor(&bn, c.conv.bs.as_ref().expect("Detect convs have a bias"));
        let y = self.op(
            "Conv",
            &[&x.name, &wn, &bn],
            vec![
                aints("dilations", &[1, 1]),
                ai("group", 1),
                aints("kernel_shape", &[1, 1]),
                aints("pads", &[0, 0, 0, 0]),
                aints("strides", &[1, 1]),
            ],
        );
        V {
            name: y,
            c: c.conv.ws.size()[0],
            h: x.h,
            w: x.w,
        }
    }

    fn add(&mut self, a: &V, b: &V) -> V {
        V {
            name: self.op("Add", &[&a.name, &b.name], vec![]),
            ..a.clone()
        }
    }

    fn concat(&mut self, xs: &[&V]) -> V {
        let names: Vec<&str> = xs.iter().map(|v| v.name.as_str()).collect();
        V {
            name: self.op("Concat", &names, vec![ai("axis", 1)]),
            c: xs.iter().map(|v| v.c).sum(),
            h: xs[0].h,
            w: xs[0].w,
        }
    }

    fn split(&mut self, x: &V, sizes: &[i64]) -> Vec<V> {
        let s = self.i64s("split", sizes);
        let outs = self.op_n("Split", &[&x.name, &s], sizes.len(), vec![ai("axis", 1)]);
        outs.into_iter()
            .zip(sizes)
            .map(|(n, &c)| V {
                name: n,
                c,
                h: x.h,
                w: x.w,
            })
            .collect()
    }

    fn bottleneck(&mut self, x: &V, b: &crate::nn::modules::Bottleneck) -> Result<V> {
        let y = self.conv(x, &b.cv1)?;
        let y = self.conv(&y, &b.cv2)?;
        Ok(if b.add { self.add(x, &y) } else { y })
    }

    fn c2f(&mut self, x: &V, m: &C2f) -> Result<V> {
        let y = self.conv(x, &m.cv1)?;
        let mut ys = self.split(&y, &[m.c, m.c]);
        for inner in &m.m {
            let last = ys.last().expect("halves").clone();
            let y = match inner {
                Inner::Bottleneck(b) => self.bottleneck(&last, b)?,
                Inner::C3k(c) => {
                    let mut a = self.conv(&last, &c.cv1)?;
                    for b in &c.m {
                        a = self.bottleneck(&a, b)?;
                    }
                    let b2 = self.conv(&last, &c.cv2)?;
                    let cat = self.concat(&[&a, &b2]);
                    self.conv(&cat, &c.cv3)?
                }
            };
            ys.push(y);
        }
        let refs: Vec<&V> = ys.iter().collect();
        let cat = self.concat(&refs);
        self.conv(&cat, &m.cv2)
    }

    fn block(&mut self, xs: &[&V], b: &Block) -> Result<V> {
        Ok(match b {
            Block::Conv(c) => self.conv(xs[0], c)?,
            Block::C2f(m) => self.c2f(xs[0], m)?,
            Block::Sppf(m) => {
                let y0 = self.conv(xs[0], &m.cv1)?;
                let mut ys = vec![y0];
                for _ in 0..3 {
                    let last = ys.last().expect("y").clone();
                    let p = m.k / 2;
                    let n = self.op(
                        "MaxPool",
                        &[&last.name],
                        vec![
                            ai("ceil_mode", 0),
                            aints("dilations", &[1, 1]),
                            aints("kernel_shape", &[m.k, m.k]),
                            aints("pads", &[p, p, p, p]),
                            aints("strides", &[1, 1]),
                        ],
                    );
                    ys.push(V { name: n, ..last });
                }
                let refs: Vec<&V> = ys.iter().collect();
                let cat = self.concat(&refs);
                self.conv(&cat, &m.cv2)?
            }
            Block::C2psa(m) => {
                let y = self.conv(xs[0], &m.cv1)?;
                let ab = self.split(&y, &[m.c, m.c]);
                let mut b = ab[1].clone();
                for (attn, f0, f1) in &m.m {
                    let a = self.attention(&b, attn)?;
                    b = self.add(&b, &a);
                    let f = self.conv(&b, f0)?;
                    let f = self.conv(&f, f1)?;
                    b = self.add(&b, &f);
                }
                let cat = self.concat(&[&ab[0], &b]);
                self.conv(&cat, &m.cv2)?
            }
            Block::Upsample(s) => {
                let roi = self.f32s("roi", &[0], &[]);
                let scales = self.f32s("scales", &[4], &[1.0, 1.0, *s as f32, *s as f32]);
                let n = self.op(
                    "Resize",
                    &[&xs[0].name, &roi, &scales],
                    vec![
                        astr("coordinate_transformation_mode", "asymmetric"),
                        astr("mode", "nearest"),
                        astr("nearest_mode", "floor"),
                    ],
                );
                V {
                    name: n,
                    c: xs[0].c,
                    h: xs[0].h * s,
                    w: xs[0].w * s,
                }
            }
            Block::Concat => self.concat(xs),
        })
    }

    fn attention(&mut self, x: &V, a: &crate::nn::modules::Attention) -> Result<V> {
        let qkv = self.conv(x, &a.qkv)?;
        // Leading 0: Reshape copies the batch size from its input; -1: any height x width.
        let shape = self.i64s("shape", &[0, a.heads, 2 * a.key_dim + a.head_dim, -1]);
        let r = self.op("Reshape", &[&qkv.name, &shape], vec![]);
        let sizes = self.i64s("split", &[a.key_dim, a.key_dim, a.head_dim]);
        let qkv = self.op_n("Split", &[&r, &sizes], 3, vec![ai("axis", 2)]);
        let scale = self.f32s("scale", &[], &[a.scale as f32]);
        let q = self.op("Mul", &[&qkv[0], &scale], vec![]);
        let qt = self.op("Transpose", &[&q], vec![aints("perm", &[0, 1, 3, 2])]);
        let attn = self.op("MatMul", &[&qt, &qkv[1]], vec![]);
        let attn = self.op("Softmax", &[&attn], vec![ai("axis", -1)]);
        let at = self.op("Transpose", &[&attn], vec![aints("perm", &[0, 1, 3, 2])]);
        let out = self.op("MatMul", &[&qkv[2], &at], vec![]);
        let bchw = self.op("Shape", &[&x.name], vec![]);
        let out = self.op("Reshape", &[&out, &bchw], vec![]);
        let v = self.op("Reshape", &[&qkv[2], &bchw], vec![]);
        let pe = self.conv(
            &V {
                name: v,
                ..x.clone()
            },
            &a.pe,
        )?;
        let sum = self.op("Add", &[&out, &pe.name], vec![]);
        self.conv(
            &V {
                name: sum,
                ..x.clone()
            },
            &a.proj,
        )
    }
}

/// A graph output: its name and dims (negative dims are symbolic axes, see [`value_info`]).
type Output = (String, Vec<i64>);

/// Builds the ONNX model bytes of a fused model.
pub fn to_onnx(model: &DetectionModel, cfg: &ExportConfig) -> Result<Vec<u8>> {
    if !model.is_fused() {
        bail!("export needs a fused model (call fuse() first)");
    }
    let mut g = Graph::default();
    let input = V {
        name: "images".into(),
        c: 3,
        h: cfg.imgsz.0 as i64,
        w: cfg.imgsz.1 as i64,
    };
    let feats = g.body(model, input)?;
    let outputs = match &model.head {
        Head::Classify(c) => g.classify_head(c, &feats[0], cfg)?,
        _ => g.detect_head(model, &feats, cfg)?,
    };
    Ok(model_proto(g, cfg, &outputs).encode_to_vec())
}

impl Graph {
    /// The layers before the head, from `input`; returns the head's input feature maps.
    fn body(&mut self, model: &DetectionModel, input: V) -> Result<Vec<V>> {
        let mut outs: Vec<Option<V>> = Vec::new();
        let mut prev = input;
        for (i, (from, block)) in model.blocks.iter().enumerate() {
            let xs: Vec<V> = from
                .iter()
                .map(|&f| {
                    if f == i as i64 - 1 || f < 0 {
                        prev.clone()
                    } else {
                        outs[f as usize].clone().expect("saved")
                    }
                })
                .collect();
            let refs: Vec<&V> = xs.iter().collect();
            let y = self.block(&refs, block)?;
            outs.push(if model.save[i] { Some(y.clone()) } else { None });
            prev = y;
        }
        let last = model.blocks.len() as i64 - 1;
        Ok(model
            .detect_from
            .iter()
            .map(|&f| {
                if f == last || f < 0 {
                    prev.clone()
                } else {
                    outs[f as usize].clone().expect("saved")
                }
            })
            .collect())
    }

    /// The Classify head: Conv (fused, SiLU), GlobalAveragePool, Flatten, Gemm (the Linear), Softmax
    /// over the classes into `output0` `(B, nc)` probabilities.
    fn classify_head(&mut self, c: &Classify, x: &V, cfg: &ExportConfig) -> Result<Vec<Output>> {
        let y = self.conv(x, &c.conv)?;
        let pooled = self.op("GlobalAveragePool", &[&y.name], vec![]);
        let flat = self.op("Flatten", &[&pooled], vec![ai("axis", 1)]);
        let wn = self.fresh("w");
        let wn = self.tensor(&wn, &c.linear.ws);
        let bn = self.fresh("b");
        let bias = c
            .linear
            .bs
            .as_ref()
            .ok_or_else(|| anyhow!("export: the Classify Linear has no bias"))?;
        let bn = self.tensor(&bn, bias);
        let logits = self.op(
            "Gemm",
            &[&flat, &wn, &bn],
            vec![af("alpha", 1.0), af("beta", 1.0), ai("transB", 1)],
        );
        let n = self.nodes.len();
        self.nodes.push(NodeProto {
            input: vec![logits],
            output: vec!["output0".into()],
            name: format!("/Softmax_out_{n}"),
            op_type: "Softmax".into(),
            attribute: vec![ai("axis", 1)],
        });
        let batch = if cfg.dynamic { -8 } else { cfg.batch };
        Ok(vec![("output0".into(), vec![batch, c.nc])])
    }

    /// The head: `output0` `(B, 4 + nc [+ nm], A)` (decoded boxes, class probabilities, and for
    /// Segment the raw mask coefficients) and, for Segment, `output1` protos `(B, nm, H/4, W/4)`.
    fn detect_head(
        &mut self,
        model: &DetectionModel,
        feats: &[V],
        cfg: &ExportConfig,
    ) -> Result<Vec<Output>> {
        let det = model.head.detect().ok_or_else(|| {
            anyhow!("export: a classify model has no Detect head (use classify_head)")
        })?;
        let nc = det.nc;
        let mut boxes = Vec::new();
        let mut scores = Vec::new();
        for (i, x) in feats.iter().enumerate() {
            let (b, s) = self.detect_level(det, i, x)?;
            boxes.push(b);
            scores.push(s);
        }
        let br: Vec<&str> = boxes.iter().map(String::as_str).collect();
        let boxes = self.op("Concat", &br, vec![ai("axis", 2)]);
        let sr: Vec<&str> = scores.iter().map(String::as_str).collect();
        let scores = self.op("Concat", &sr, vec![ai("axis", 2)]);
        let lr = self.dfl(&boxes);
        let (an, sn) = if cfg.dynamic {
            self.anchors_dynamic(feats, &model.stride)
        } else {
            self.anchors_static(feats, &model.stride)?
        };
        let probs = self.op("Sigmoid", &[&scores], vec![]);
        let a_total: i64 = feats.iter().map(|v| v.h * v.w).sum();
        if let Head::Obb(o) = &model.head {
            // OBB: angles from cv4, rotated decode, `output0 (B, 4 + nc + 1, A)`.
            let angle = self.obb_angle(o, feats)?;
            let dbox = self.dist2rbox(&lr, &angle, &an, &sn);
            self.output("output0", &[&dbox, &probs, &angle], 1);
            let dims = if cfg.dynamic {
                vec![-1, 4 + nc + o.ne, -4]
            } else {
                vec![cfg.batch, 4 + nc + o.ne, a_total]
            };
            return Ok(vec![("output0".into(), dims)]);
        }
        let dbox = self.dist2bbox(&lr, &an, &sn);
        if let Head::Pose(p) = &model.head {
            // Pose: keypoints decoded in the graph, `output0 (B, 4 + nc + K·D, A)`.
            let kp = self.pose_kpts(p, feats, &an, &sn)?;
            self.output("output0", &[&dbox, &probs, &kp], 1);
            let dims = if cfg.dynamic {
                vec![-1, 4 + nc + p.nk(), -4]
            } else {
                vec![cfg.batch, 4 + nc + p.nk(), a_total]
            };
            return Ok(vec![("output0".into(), dims)]);
        }
        let Head::Segment(seg) = &model.head else {
            self.output("output0", &[&dbox, &probs], 1);
            let dims = if cfg.dynamic {
                vec![-1, 4 + nc, -4]
            } else {
                vec![cfg.batch, 4 + nc, a_total]
            };
            return Ok(vec![("output0".into(), dims)]);
        };
        let mc = self.mask_coefficients(seg, feats)?;
        self.output("output0", &[&dbox, &probs, &mc], 1);
        let protos = self.proto(&seg.proto, &feats[0])?;
        let last = self.nodes.last_mut().expect("the Proto's last node");
        if last.output.first() != Some(&protos.name) {
            bail!("export: the Proto does not end in its own node");
        }
        last.output[0] = "output1".into();
        Ok(if cfg.dynamic {
            vec![
                ("output0".into(), vec![-1, -5, -4]),
                ("output1".into(), vec![-1, seg.nm, -6, -7]),
            ]
        } else {
            vec![
                ("output0".into(), vec![cfg.batch, 4 + nc + seg.nm, a_total]),
                (
                    "output1".into(),
                    vec![cfg.batch, seg.nm, protos.h, protos.w],
                ),
            ]
        })
    }

    /// Pose keypoints of every level decoded to input pixels (`kpts_decode`): `x = (2·raw + ax −
    /// 0.5)·s`, likewise y, visibility through a sigmoid; `(B, K·D, A)`.
    fn pose_kpts(
        &mut self,
        p: &crate::nn::pose::Pose,
        feats: &[V],
        an: &str,
        sn: &str,
    ) -> Result<String> {
        let (k, d) = p.kpt_shape;
        let mut parts = Vec::new();
        for (x, (a, b, c)) in feats.iter().zip(&p.cv4) {
            let y = self.conv(x, a)?;
            let y = self.conv(&y, b)?;
            let y = self.conv2d(&y, c);
            let shp = self.i64s("shape", &[0, p.nk(), -1]);
            parts.push(self.op("Reshape", &[&y.name, &shp], vec![]));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let raw = self.op("Concat", &refs, vec![ai("axis", 2)]);
        let shp = self.i64s("shape", &[0, k, d, -1]);
        let y = self.op("Reshape", &[&raw, &shp], vec![]);
        let ones = self.i64s("split", &vec![1; d as usize]);
        let vals = self.op_n("Split", &[&y, &ones], d as usize, vec![ai("axis", 2)]);
        let halves = self.i64s("split", &[1, 1]);
        let axy = self.op_n("Split", &[an, &halves], 2, vec![ai("axis", 1)]);
        let two = self.f32s("two", &[], &[2.0]);
        let half = self.f32s("half", &[], &[0.5]);
        let mut out = Vec::new();
        for (v, a) in vals.iter().zip(&axy) {
            let doubled = self.op("Mul", &[v, &two], vec![]);
            let ac = self.op("Sub", &[a, &half], vec![]);
            let shifted = self.op("Add", &[&doubled, &ac], vec![]);
            out.push(self.op("Mul", &[&shifted, sn], vec![]));
        }
        if d == 3 {
            out.push(self.op("Sigmoid", &[&vals[2]], vec![]));
        }
        let refs: Vec<&str> = out.iter().map(String::as_str).collect();
        let cat = self.op("Concat", &refs, vec![ai("axis", 2)]);
        let shp = self.i64s("shape", &[0, k * d, -1]);
        Ok(self.op("Reshape", &[&cat, &shp], vec![]))
    }

    /// OBB angles of every level, concatenated: `(sigmoid(cv4) − 0.25)·π`, `(B, ne, A)`.
    fn obb_angle(&mut self, o: &crate::nn::obb::Obb, feats: &[V]) -> Result<String> {
        let mut parts = Vec::new();
        for (x, (a, b, c)) in feats.iter().zip(&o.cv4) {
            let y = self.conv(x, a)?;
            let y = self.conv(&y, b)?;
            let y = self.conv2d(&y, c);
            let shp = self.i64s("shape", &[0, o.ne, -1]);
            parts.push(self.op("Reshape", &[&y.name, &shp], vec![]));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let logits = self.op("Concat", &refs, vec![ai("axis", 2)]);
        let sig = self.op("Sigmoid", &[&logits], vec![]);
        let quarter = self.f32s("quarter", &[], &[0.25]);
        let centred = self.op("Sub", &[&sig, &quarter], vec![]);
        let pi = self.f32s("pi", &[], &[std::f32::consts::PI]);
        Ok(self.op("Mul", &[&centred, &pi], vec![]))
    }

    /// Rotated decode (`dist2rbox`): distances `lr` in the box frame, angles, anchors `an` →
    /// `(cx, cy, w, h)` in pixels (times strides `sn`).
    fn dist2rbox(&mut self, lr: &[String], angle: &str, an: &str, sn: &str) -> String {
        let diff = self.op("Sub", &[&lr[1], &lr[0]], vec![]);
        let half = self.f32s("half", &[], &[2.0]);
        let d = self.op("Div", &[&diff, &half], vec![]);
        let ones = self.i64s("split", &[1, 1]);
        let xy = self.op_n("Split", &[&d, &ones], 2, vec![ai("axis", 1)]);
        let cos = self.op("Cos", &[angle], vec![]);
        let sin = self.op("Sin", &[angle], vec![]);
        let xc = self.op("Mul", &[&xy[0], &cos], vec![]);
        let ys = self.op("Mul", &[&xy[1], &sin], vec![]);
        let x = self.op("Sub", &[&xc, &ys], vec![]);
        let xs = self.op("Mul", &[&xy[0], &sin], vec![]);
        let yc = self.op("Mul", &[&xy[1], &cos], vec![]);
        let y = self.op("Add", &[&xs, &yc], vec![]);
        let rxy = self.op("Concat", &[&x, &y], vec![ai("axis", 1)]);
        let cxy = self.op("Add", &[&rxy, an], vec![]);
        let wh = self.op("Add", &[&lr[0], &lr[1]], vec![]);
        let dbox = self.op("Concat", &[&cxy, &wh], vec![ai("axis", 1)]);
        self.op("Mul", &[&dbox, sn], vec![])
    }

    /// Segment's mask coefficients of every level, concatenated: `(B, nm, A)` (no activation).
    fn mask_coefficients(&mut self, seg: &Segment, feats: &[V]) -> Result<String> {
        let mut mcs = Vec::new();
        for (x, (a, b, c)) in feats.iter().zip(&seg.cv4) {
            let y = self.conv(x, a)?;
            let y = self.conv(&y, b)?;
            let y = self.conv2d(&y, c);
            let shp = self.i64s("shape", &[0, seg.nm, -1]);
            mcs.push(self.op("Reshape", &[&y.name, &shp], vec![]));
        }
        let refs: Vec<&str> = mcs.iter().map(String::as_str).collect();
        Ok(self.op("Concat", &refs, vec![ai("axis", 2)]))
    }

    /// The Proto on P3: Conv 3x3, ConvTranspose 2x2 stride 2 (with bias), Conv 3x3, Conv 1x1.
    fn proto(&mut self, p: &Proto, x: &V) -> Result<V> {
        let y = self.conv(x, &p.cv1)?;
        let u = &p.upsample;
        let wn = self.fresh("w");
        let wn = self.tensor(&wn, &u.ws);
        let bn = self.fresh("b");
        let bias =
            u.bs.as_ref()
                .ok_or_else(|| anyhow!("export: the Proto's ConvTranspose has no bias"))?;
        let bn = self.tensor(&bn, bias);
        let up = self.op(
            "ConvTranspose",
            &[&y.name, &wn, &bn],
            vec![
                aints("dilations", &[1, 1]),
                ai("group", 1),
                aints("kernel_shape", &[2, 2]),
                aints("pads", &[0, 0, 0, 0]),
                aints("strides", &[2, 2]),
            ],
        );
        let up = V {
            name: up,
            c: u.ws.size()[1],
            h: y.h * 2,
            w: y.w * 2,
        };
        let y = self.conv(&up, &p.cv2)?;
        self.conv(&y, &p.cv3)
    }

    /// One Detect level: its box logits `(B, 4 * REG_MAX, h*w)` and class logits `(B, nc, h*w)`.
    fn detect_level(&mut self, d: &Detect, i: usize, x: &V) -> Result<(String, String)> {
        let (a, b, c) = &d.cv2[i];
        let y = self.conv(x, a)?;
        let y = self.conv(&y, b)?;
        let y = self.conv2d(&y, c);
        let shp = self.i64s("shape", &[0, 4 * REG_MAX, -1]);
        let boxes = self.op("Reshape", &[&y.name, &shp], vec![]);
        let s = match &d.cv3[i] {
            ClsBranch::Legacy(a, b, c) => {
                let y = self.conv(x, a)?;
                let y = self.conv(&y, b)?;
                self.conv2d(&y, c)
            }
            ClsBranch::Light(m, c) => {
                let mut y = self.conv(x, &m[0])?;
                for conv in &m[1..] {
                    y = self.conv(&y, conv)?;
                }
                self.conv2d(&y, c)
            }
        };
        let shp = self.i64s("shape", &[0, d.nc, -1]);
        let scores = self.op("Reshape", &[&s.name, &shp], vec![]);
        Ok((boxes, scores))
    }

    /// DFL: softmax over the 16 bins, expectation with weights 0..15; returns the (left, top) and
    /// (right, bottom) distances `(B, 2, A)`.
    fn dfl(&mut self, boxes: &str) -> Vec<String> {
        let shp = self.i64s("shape", &[0, 4, REG_MAX, -1]);
        let r = self.op("Reshape", &[boxes, &shp], vec![]);
        let sm = self.op("Softmax", &[&r], vec![ai("axis", 2)]);
        let proj: Vec<f32> = (0..REG_MAX).map(|v| v as f32).collect();
        let pw = self.f32s("dfl", &[1, 1, REG_MAX, 1], &proj);
        let weighted = self.op("Mul", &[&sm, &pw], vec![]);
        let axes = self.i64s("axes", &[2]);
        let dist = self.op("ReduceSum", &[&weighted, &axes], vec![ai("keepdims", 0)]);
        let halves = self.i64s("split", &[2, 2]);
        self.op_n("Split", &[&dist, &halves], 2, vec![ai("axis", 1)])
    }

    /// Anchor centres `(1, 2, A)` and strides `(1, 1, A)` as constants (static export).
    fn anchors_static(&mut self, feats: &[V], stride: &[f64]) -> Result<(String, String)> {
        let a_total: i64 = feats.iter().map(|v| v.h * v.w).sum();
        let shapes: Vec<(i64, i64)> = feats.iter().map(|v| (v.h, v.w)).collect();
        let (anc, st) = make_anchors(&shapes, stride, tch::Device::Cpu);
        let anc_v: Vec<f32> =
            Vec::<f32>::try_from(anc.transpose(0, 1).contiguous().flatten(0, -1))?;
        let st_v: Vec<f32> = Vec::<f32>::try_from(st.flatten(0, -1))?;
        Ok((
            self.f32s("anchors", &[1, 2, a_total], &anc_v),
            self.f32s("strides", &[1, 1, a_total], &st_v),
        ))
    }

    /// Anchor centres `(1, 2, A)` and strides `(1, 1, A)` computed from the feature maps' runtime
    /// shapes (dynamic export).
    fn anchors_dynamic(&mut self, feats: &[V], stride: &[f64]) -> (String, String) {
        let mut ancs = Vec::new();
        let mut sts = Vec::new();
        for (x, &s) in feats.iter().zip(stride) {
            let (a, t) = self.anchors_from_shape(&x.name, s as f32);
            ancs.push(a);
            sts.push(t);
        }
        let ar: Vec<&str> = ancs.iter().map(String::as_str).collect();
        let sr: Vec<&str> = sts.iter().map(String::as_str).collect();
        let anc = self.op("Concat", &ar, vec![ai("axis", 1)]);
        let st = self.op("Concat", &sr, vec![ai("axis", 1)]);
        let a0 = self.i64s("axes", &[0]);
        (
            self.op("Unsqueeze", &[&anc, &a0], vec![]),
            self.op("Unsqueeze", &[&st, &a0], vec![]),
        )
    }

    /// Distances `lr` around anchors `an` to `(cx, cy, w, h)` boxes in pixels (times strides `sn`).
    fn dist2bbox(&mut self, lr: &[String], an: &str, sn: &str) -> String {
        let x1y1 = self.op("Sub", &[an, &lr[0]], vec![]);
        let x2y2 = self.op("Add", &[an, &lr[1]], vec![]);
        let sum = self.op("Add", &[&x1y1, &x2y2], vec![]);
        let half = self.f32s("half", &[], &[2.0]);
        let cxy = self.op("Div", &[&sum, &half], vec![]);
        let wh = self.op("Sub", &[&x2y2, &x1y1], vec![]);
        let dbox = self.op("Concat", &[&cxy, &wh], vec![ai("axis", 1)]);
        self.op("Mul", &[&dbox, sn], vec![])
    }

    /// A `Concat` along `axis` whose output is the graph output `name`.
    fn output(&mut self, name: &str, inputs: &[&str], axis: i64) {
        let n = self.nodes.len();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.into()],
            name: format!("/Concat_out_{n}"),
            op_type: "Concat".into(),
            attribute: vec![ai("axis", axis)],
        });
    }
}

/// A float tensor's name and type; negative dims are the symbolic axes batch (-1), height (-2),
/// width (-3), anchors (-4), Segment's output rows (-5), mask height (-6) and mask width (-7), and
/// Classify's output batch (-8) under the names Ultralytics' dynamic export gives them.
fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let axis_name = |d: i64| match d {
        -1 => "batch",
        -2 => "height",
        -3 => "width",
        -5 => "Concatoutput0_dim_1",
        -6 => "mask_height",
        -7 => "mask_width",
        -8 => "Softmaxoutput0_dim_0",
        _ => "anchors",
    };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            dim_value: (d >= 0).then_some(d),
                            dim_param: (d < 0).then(|| axis_name(d).to_string()),
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

/// The IR version of the ONNX release that introduced `opset` (opset <= 18: 8, 19-20: 9, later:
/// 10, the cap of 8.4): Ultralytics 8.4's opset-18 export is IR 8 (spec/export.md §3).
pub fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=18 => 8,
        19 | 20 => 9,
        _ => 10,
    }
}

/// The model: graph `g` with input `images` and `outputs`, opset, IR version and metadata.
fn model_proto(g: Graph, cfg: &ExportConfig, outputs: &[Output]) -> ModelProto {
    let (ih, iw) = (cfg.imgsz.0 as i64, cfg.imgsz.1 as i64);
    let graph = GraphProto {
        node: g.nodes,
        name: "main_graph".into(),
        initializer: g.inits,
        input: vec![if cfg.dynamic {
            value_info("images", &[-1, 3, -2, -3])
        } else {
            value_info("images", &[cfg.batch, 3, ih, iw])
        }],
        output: outputs.iter().map(|(n, d)| value_info(n, d)).collect(),
    };
    ModelProto {
        ir_version: ir_version(cfg.opset),
        producer_name: "ryolo".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: cfg.opset,
        }],
        metadata_props: cfg
            .metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
    }
}

/// Ultralytics' metadata entries for a model, in its order; `imgsz`, `names`, `args` and `end2end`
/// are Python literals (Ultralytics parses them with `ast.literal_eval`), `args` as given.
pub fn metadata(
    model: &DetectionModel,
    imgsz: (usize, usize),
    batch: usize,
    args: &str,
) -> Vec<(String, String)> {
    let mut m = vec![
        (
            "description".into(),
            format!("ryolo {} model", model.spec.name),
        ),
        ("author".into(), "ryolo".into()),
        ("date".into(), crate::weights::ptwrite::iso_now()),
        ("version".into(), env!("CARGO_PKG_VERSION").into()),
        ("license".into(), "AGPL-3.0".into()),
        ("docs".into(), "https://docs.ultralytics.com".into()),
        (
            "stride".into(),
            format!(
                "{}",
                model.stride.iter().cloned().fold(0.0, f64::max) as i64
            ),
        ),
        ("task".into(), model.task().name().into()),
        (
            "head".into(),
            match model.head {
                Head::Detect(_) => "Detect",
                Head::Segment(_) => "Segment",
                Head::Obb(_) => "OBB",
                Head::Classify(_) => "Classify",
                Head::Pose(_) => "Pose",
            }
            .into(),
        ),
        ("batch".into(), batch.to_string()),
        ("imgsz".into(), format!("[{}, {}]", imgsz.0, imgsz.1)),
        ("names".into(), pyliteral::py_names(&model.names)),
        ("args".into(), args.into()),
        ("channels".into(), "3".into()),
        ("end2end".into(), "False".into()),
    ];
    if let Some(p) = model.head.pose() {
        // Pose: `kpt_shape` and, when the model has them, `kpt_names` (Python literals).
        m.push((
            "kpt_shape".into(),
            format!("[{}, {}]", p.kpt_shape.0, p.kpt_shape.1),
        ));
        if let Some(names) = &p.kpt_names {
            let items: Vec<String> = names
                .iter()
                .map(|(c, n)| {
                    let list: Vec<String> = n.iter().map(|s| pyliteral::py_str(s)).collect();
                    format!("{c}: [{}]", list.join(", "))
                })
                .collect();
            m.push(("kpt_names".into(), format!("{{{}}}", items.join(", "))));
        }
    }
    m
}
