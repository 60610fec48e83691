//! Our [`DetectionModel`] as the object graph Ultralytics 8.4 pickles: one object per module with
//! the 17 `nn.Module` bookkeeping entries, the class's own attributes (spec/checkpoint-write.md
//! §4.1, §4.3; segment.md §9 for `SegmentationModel`, classify.md §9 for `ClassificationModel`) and
//! fp16 tensors; one shared SiLU.

use super::pickler::{Blob, Object, Py, StorageKind};
use crate::nn::classify::Classify;
use crate::nn::model::{ClsBranch, Detect, Head, REG_MAX};
use crate::nn::modules::{Block, Bottleneck, C2f, C2psa, Conv, Conv2d, Inner, Sppf};
use crate::nn::obb::Obb;
use crate::nn::pose::Pose;
use crate::nn::segment::Segment;
use crate::nn::yaml::{HeadKind, LayerKind};
use crate::nn::DetectionModel;
use anyhow::{anyhow, bail, Context, Result};
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

const TORCH_CONV: &str = "torch.nn.modules.conv";
const TORCH_CONTAINER: &str = "torch.nn.modules.container";
const UL_CONV: &str = "ultralytics.nn.modules.conv";
const UL_BLOCK: &str = "ultralytics.nn.modules.block";
const UL_HEAD: &str = "ultralytics.nn.modules.head";

/// A module's own parts: parameters, buffers, children and class attributes, in Python order.
#[derive(Default)]
struct Parts {
    params: Vec<(&'static str, Py)>,
    buffers: Vec<(&'static str, Py)>,
    children: Vec<(String, Py)>,
    attrs: Vec<(&'static str, Py)>,
}

/// Builds module objects; holds the one SiLU every activated Conv shares.
pub struct GraphBuilder {
    silu: Rc<Object>,
}

impl Default for GraphBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GraphBuilder {
    /// A builder with a fresh shared SiLU (`Conv.default_act`).
    pub fn new() -> Self {
        let silu = object(
            "torch.nn.modules.activation",
            "SiLU",
            Parts {
                attrs: vec![("inplace", Py::Bool(false))],
                ..Default::default()
            },
        );
        Self { silu }
    }

    /// The `DetectionModel` (or `SegmentationModel`, for a Segment head) object with its `yaml`,
    /// `save`, `names`, `stride`, `nc` and `args`; `max_det` is the head's (the run's `max_det`).
    /// A Classify head gives a `ClassificationModel` with `yaml`, `save`, `stride`, `names` and
    /// `criterion` only (no `args`; its torchvision `transforms` are not written: Ultralytics then
    /// builds the same eval transform from `imgsz`).
    pub fn detection_model(
        &self,
        m: &DetectionModel,
        yaml: Py,
        args: Py,
        max_det: i64,
    ) -> Result<Py> {
        let layers = &m.spec.layers;
        if m.blocks.len() + 1 != layers.len() {
            bail!(
                "model has {} blocks for {} layers",
                m.blocks.len(),
                layers.len()
            );
        }
        let froms = yaml_froms(&m.spec.yaml);
        let mut seq = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            let f = froms
                .get(i)
                .cloned()
                .unwrap_or_else(|| from_py(&layer.from_raw, layer.from_raw.len() > 1));
            let (class, parts) = match (&layer.kind, m.blocks.get(i)) {
                (LayerKind::Detect { head, .. }, _) => self.head(head, m, max_det)?,
                (LayerKind::Classify { .. }, _) => match &m.head {
                    Head::Classify(c) => ((UL_HEAD, "Classify"), self.classify(c)?),
                    _ => bail!("the model's head does not match its Classify layer"),
                },
                (kind, Some((_, block))) => self
                    .block(kind, block)
                    .with_context(|| format!("layer {i}"))?,
                (_, None) => bail!("layer {i} has no block"),
            };
            seq.push((i.to_string(), layer_object(class, parts, i as i64, f)));
        }
        let names = Py::Dict(
            m.names
                .iter()
                .enumerate()
                .map(|(i, n)| (Py::Int(i as i64), Py::s(n.as_str())))
                .collect(),
        );
        let stride: Vec<f32> = m.stride.iter().map(|&s| s as f32).collect();
        let stride = Py::Tensor(Rc::new(f32_blob(&stride, vec![stride.len() as i64])));
        let save = Py::List(save_list(m).into_iter().map(Py::Int).collect());
        let children = vec![("model".into(), container("Sequential", seq))];
        if let Head::Classify(_) = m.head {
            let parts = Parts {
                children,
                attrs: vec![
                    ("yaml", yaml),
                    ("save", save),
                    ("stride", stride),
                    ("names", names),
                    ("criterion", Py::None),
                ],
                ..Default::default()
            };
            return Ok(Py::Object(object(
                "ultralytics.nn.tasks",
                "ClassificationModel",
                parts,
            )));
        }
        let mut attrs = vec![
            ("yaml", yaml),
            ("save", save),
            ("names", names),
            ("inplace", Py::Bool(true)),
            ("stride", stride),
            ("nc", Py::Int(m.nc())),
            ("args", args),
            ("criterion", Py::None),
        ];
        if let Head::Pose(p) = &m.head {
            pose_model_attrs(&mut attrs, p, m.nc());
        }
        let parts = Parts {
            children,
            attrs,
            ..Default::default()
        };
        let class = match m.head {
            Head::Detect(_) => "DetectionModel",
            Head::Segment(_) => "SegmentationModel",
            Head::Obb(_) => "OBBModel",
            Head::Pose(_) => "PoseModel",
            Head::Classify(_) => unreachable!("returned above"),
        };
        Ok(Py::Object(object("ultralytics.nn.tasks", class, parts)))
    }

    /// The head layer: `Detect`, or `Segment` when both the YAML row and the model say so.
    fn head(&self, kind: &HeadKind, m: &DetectionModel, max_det: i64) -> Result<(Class, Parts)> {
        match (kind, &m.head) {
            (HeadKind::Detect, Head::Detect(d)) => {
                Ok(((UL_HEAD, "Detect"), self.detect(d, m, max_det)?))
            }
            (HeadKind::Segment { npr, .. }, Head::Segment(s)) => {
                Ok(((UL_HEAD, "Segment"), self.segment(s, *npr, m, max_det)?))
            }
            (HeadKind::Obb { .. }, Head::Obb(o)) => {
                Ok(((UL_HEAD, "OBB"), self.obb(o, m, max_det)?))
            }
            (HeadKind::Pose { .. }, Head::Pose(p)) => {
                Ok(((UL_HEAD, "Pose"), self.pose(p, m, max_det)?))
            }
            (k, _) => bail!("the model's head does not match its layer {k:?}"),
        }
    }

    /// `Segment`: Detect's parts plus children `proto` and `cv4` and attributes `nm`, `npr` after
    /// `stride` (spec/segment.md §9).
    fn segment(&self, s: &Segment, npr: i64, m: &DetectionModel, max_det: i64) -> Result<Parts> {
        let mut parts = self.detect(&s.detect, m, max_det)?;
        let p = &s.proto;
        let proto = object(
            UL_BLOCK,
            "Proto",
            Parts {
                children: vec![
                    ("cv1".into(), self.conv(&p.cv1)?),
                    (
                        "upsample".into(),
                        Py::Object(conv_transpose2d(&p.upsample)?),
                    ),
                    ("cv2".into(), self.conv(&p.cv2)?),
                    ("cv3".into(), self.conv(&p.cv3)?),
                ],
                ..Default::default()
            },
        );
        parts.children.push(("proto".into(), Py::Object(proto)));
        let at = self.push_cv4(&mut parts, &s.cv4)?;
        parts
            .attrs
            .splice(at..at, [("nm", Py::Int(s.nm)), ("npr", Py::Int(npr))]);
        Ok(parts)
    }

    /// Appends a head's `cv4` branch (a ModuleList of Sequential(Conv, Conv, Conv2d) per level) to
    /// `parts`; returns where the head's own attributes go (right after `stride`).
    fn push_cv4(&self, parts: &mut Parts, cv4: &[(Conv, Conv, Conv2d)]) -> Result<usize> {
        let mut levels = Vec::new();
        for (i, (a, b, c)) in cv4.iter().enumerate() {
            let seq = vec![
                ("0".into(), self.conv(a)?),
                ("1".into(), self.conv(b)?),
                ("2".into(), plain_conv2d(c)?),
            ];
            levels.push((i.to_string(), container("Sequential", seq)));
        }
        parts
            .children
            .push(("cv4".into(), container("ModuleList", levels)));
        Ok(parts
            .attrs
            .iter()
            .position(|(k, _)| *k == "stride")
            .map_or(parts.attrs.len(), |p| p + 1))
    }

    /// `OBB`: Detect's parts plus child `cv4` (angle branch) and attribute `ne` after `stride`
    /// (spec/obb.md §11).
    fn obb(&self, o: &Obb, m: &DetectionModel, max_det: i64) -> Result<Parts> {
        let mut parts = self.detect(&o.detect, m, max_det)?;
        let at = self.push_cv4(&mut parts, &o.cv4)?;
        parts.attrs.insert(at, ("ne", Py::Int(o.ne)));
        Ok(parts)
    }

    /// `Pose`: Detect's parts plus the child `cv4` and attributes `kpt_shape`, `nk` after `stride`
    /// (spec/pose.md §9; as a trained 8.4 `best.pt` holds them).
    fn pose(&self, p: &Pose, m: &DetectionModel, max_det: i64) -> Result<Parts> {
        let mut parts = self.detect(&p.detect, m, max_det)?;
        let at = self.push_cv4(&mut parts, &p.cv4)?;
        parts.attrs.splice(
            at..at,
            [
                (
                    "kpt_shape",
                    Py::List(vec![Py::Int(p.kpt_shape.0), Py::Int(p.kpt_shape.1)]),
                ),
                ("nk", Py::Int(p.nk())),
            ],
        );
        Ok(parts)
    }

    /// `Classify`: children conv (Conv), pool (AdaptiveAvgPool2d(1)), drop (Dropout, in place),
    /// linear (Linear 1280 -> nc); no attributes of its own.
    fn classify(&self, c: &Classify) -> Result<Parts> {
        let pool = object(
            "torch.nn.modules.pooling",
            "AdaptiveAvgPool2d",
            Parts {
                attrs: vec![("output_size", Py::Int(1))],
                ..Default::default()
            },
        );
        let drop = object(
            "torch.nn.modules.dropout",
            "Dropout",
            Parts {
                attrs: vec![("p", Py::Float(c.dropout)), ("inplace", Py::Bool(true))],
                ..Default::default()
            },
        );
        let ws = c.linear.ws.size();
        if ws.len() != 2 {
            bail!("Classify linear weight has shape {ws:?}");
        }
        let bias = match c.linear.bs.as_ref() {
            Some(b) => param(b)?,
            None => Py::None,
        };
        let linear = object(
            "torch.nn.modules.linear",
            "Linear",
            Parts {
                params: vec![("weight", param(&c.linear.ws)?), ("bias", bias)],
                attrs: vec![
                    ("in_features", Py::Int(ws[1])),
                    ("out_features", Py::Int(ws[0])),
                ],
                ..Default::default()
            },
        );
        Ok(Parts {
            children: vec![
                ("conv".into(), self.conv(&c.conv)?),
                ("pool".into(), Py::Object(pool)),
                ("drop".into(), Py::Object(drop)),
                ("linear".into(), Py::Object(linear)),
            ],
            ..Default::default()
        })
    }

    /// One non-head layer: its class and parts.
    fn block(&self, kind: &LayerKind, block: &Block) -> Result<(Class, Parts)> {
        Ok(match (kind, block) {
            (LayerKind::Conv { .. }, Block::Conv(c)) => ((UL_CONV, "Conv"), self.conv_parts(c)?),
            (LayerKind::C2f { .. }, Block::C2f(c)) => ((UL_BLOCK, "C2f"), self.c2f(c)?),
            (LayerKind::C3k2 { .. }, Block::C2f(c)) => ((UL_BLOCK, "C3k2"), self.c2f(c)?),
            (LayerKind::Sppf { .. }, Block::Sppf(s)) => ((UL_BLOCK, "SPPF"), self.sppf(s)?),
            (LayerKind::C2psa { .. }, Block::C2psa(c)) => ((UL_BLOCK, "C2PSA"), self.c2psa(c)?),
            (LayerKind::Upsample { scale }, Block::Upsample(_)) => (
                ("torch.nn.modules.upsampling", "Upsample"),
                upsample(*scale),
            ),
            (LayerKind::Concat, Block::Concat) => (
                (UL_CONV, "Concat"),
                Parts {
                    attrs: vec![("d", Py::Int(1))],
                    ..Default::default()
                },
            ),
            (k, _) => bail!("the model's block does not match its layer {k:?}"),
        })
    }

    /// `Conv` (or `DWConv`): conv, bn, act (the shared SiLU or an own Identity).
    fn conv_parts(&self, c: &Conv) -> Result<Parts> {
        let ws = c.conv.ws.size();
        if ws.len() != 4 {
            bail!("conv weight has shape {ws:?}");
        }
        let conv = conv2d(
            &c.conv.ws,
            None,
            ws[1] * c.groups,
            c.stride,
            c.pad,
            c.groups,
        )?;
        let bn = &c.bn;
        let (Some(w), Some(b)) = (bn.ws.as_ref(), bn.bs.as_ref()) else {
            bail!("BatchNorm without affine weights");
        };
        let bn = object(
            "torch.nn.modules.batchnorm",
            "BatchNorm2d",
            Parts {
                params: vec![("weight", param(w)?), ("bias", param(b)?)],
                buffers: vec![
                    ("running_mean", tensor(&bn.running_mean)?),
                    ("running_var", tensor(&bn.running_var)?),
                    (
                        "num_batches_tracked",
                        Py::Tensor(Rc::new(Blob {
                            kind: StorageKind::Long,
                            shape: vec![],
                            bytes: 0i64.to_le_bytes().to_vec(),
                        })),
                    ),
                ],
                attrs: vec![
                    ("num_features", Py::Int(ws[0])),
                    ("eps", Py::Float(c.bn_eps)),
                    ("momentum", Py::Float(c.bn_momentum)),
                    ("affine", Py::Bool(true)),
                    ("track_running_stats", Py::Bool(true)),
                ],
                ..Default::default()
            },
        );
        let act = if c.act {
            self.silu.clone()
        } else {
            object("torch.nn.modules.linear", "Identity", Parts::default())
        };
        Ok(Parts {
            children: vec![
                ("conv".into(), Py::Object(conv)),
                ("bn".into(), Py::Object(bn)),
                ("act".into(), Py::Object(act)),
            ],
            ..Default::default()
        })
    }

    /// A nested `Conv` object.
    fn conv(&self, c: &Conv) -> Result<Py> {
        Ok(Py::Object(object(UL_CONV, "Conv", self.conv_parts(c)?)))
    }

    /// A nested `DWConv` object.
    fn dwconv(&self, c: &Conv) -> Result<Py> {
        Ok(Py::Object(object(UL_CONV, "DWConv", self.conv_parts(c)?)))
    }

    /// `Bottleneck`: cv1, cv2 and `add`.
    fn bottleneck(&self, b: &Bottleneck) -> Result<Py> {
        let parts = Parts {
            children: vec![
                ("cv1".into(), self.conv(&b.cv1)?),
                ("cv2".into(), self.conv(&b.cv2)?),
            ],
            attrs: vec![("add", Py::Bool(b.add))],
            ..Default::default()
        };
        Ok(Py::Object(object(UL_BLOCK, "Bottleneck", parts)))
    }

    /// `C2f` / `C3k2`: cv1, cv2, a ModuleList of Bottleneck or C3k, and `c`.
    fn c2f(&self, c: &C2f) -> Result<Parts> {
        let mut inner = Vec::new();
        for (i, m) in c.m.iter().enumerate() {
            let o = match m {
                Inner::Bottleneck(b) => self.bottleneck(b)?,
                Inner::C3k(k) => {
                    let bs =
                        k.m.iter()
                            .enumerate()
                            .map(|(j, b)| Ok((j.to_string(), self.bottleneck(b)?)))
                            .collect::<Result<Vec<_>>>()?;
                    Py::Object(object(
                        UL_BLOCK,
                        "C3k",
                        Parts {
                            children: vec![
                                ("cv1".into(), self.conv(&k.cv1)?),
                                ("cv2".into(), self.conv(&k.cv2)?),
                                ("cv3".into(), self.conv(&k.cv3)?),
                                ("m".into(), container("Sequential", bs)),
                            ],
                            ..Default::default()
                        },
                    ))
                }
            };
            inner.push((i.to_string(), o));
        }
        Ok(Parts {
            children: vec![
                ("cv1".into(), self.conv(&c.cv1)?),
                ("cv2".into(), self.conv(&c.cv2)?),
                ("m".into(), container("ModuleList", inner)),
            ],
            attrs: vec![("c", Py::Int(c.c))],
            ..Default::default()
        })
    }

    /// `SPPF`: cv1, cv2, the MaxPool2d, `n` and `add`.
    fn sppf(&self, s: &Sppf) -> Result<Parts> {
        let pool = object(
            "torch.nn.modules.pooling",
            "MaxPool2d",
            Parts {
                attrs: vec![
                    ("kernel_size", Py::Int(s.k)),
                    ("stride", Py::Int(1)),
                    ("padding", Py::Int(s.k / 2)),
                    ("dilation", Py::Int(1)),
                    ("return_indices", Py::Bool(false)),
                    ("ceil_mode", Py::Bool(false)),
                ],
                ..Default::default()
            },
        );
        Ok(Parts {
            children: vec![
                ("cv1".into(), self.conv(&s.cv1)?),
                ("cv2".into(), self.conv(&s.cv2)?),
                ("m".into(), Py::Object(pool)),
            ],
            attrs: vec![("n", Py::Int(3)), ("add", Py::Bool(false))],
            ..Default::default()
        })
    }

    /// `C2PSA`: cv1, cv2, a Sequential of PSABlock (Attention + ffn), and `c`.
    fn c2psa(&self, c: &C2psa) -> Result<Parts> {
        let mut blocks = Vec::new();
        for (i, (a, f0, f1)) in c.m.iter().enumerate() {
            let attn = object(
                UL_BLOCK,
                "Attention",
                Parts {
                    children: vec![
                        ("qkv".into(), self.conv(&a.qkv)?),
                        ("proj".into(), self.conv(&a.proj)?),
                        ("pe".into(), self.conv(&a.pe)?),
                    ],
                    attrs: vec![
                        ("num_heads", Py::Int(a.heads)),
                        ("head_dim", Py::Int(a.head_dim)),
                        ("key_dim", Py::Int(a.key_dim)),
                        ("scale", Py::Float(a.scale)),
                    ],
                    ..Default::default()
                },
            );
            let ffn = container(
                "Sequential",
                vec![("0".into(), self.conv(f0)?), ("1".into(), self.conv(f1)?)],
            );
            let block = object(
                UL_BLOCK,
                "PSABlock",
                Parts {
                    children: vec![("attn".into(), Py::Object(attn)), ("ffn".into(), ffn)],
                    attrs: vec![("add", Py::Bool(true))],
                    ..Default::default()
                },
            );
            blocks.push((i.to_string(), Py::Object(block)));
        }
        Ok(Parts {
            children: vec![
                ("cv1".into(), self.conv(&c.cv1)?),
                ("cv2".into(), self.conv(&c.cv2)?),
                ("m".into(), container("Sequential", blocks)),
            ],
            attrs: vec![("c", Py::Int(c.c))],
            ..Default::default()
        })
    }

    /// `Detect`: cv2 / cv3 branches, DFL, and its attributes (empty anchor cache).
    fn detect(&self, d: &Detect, m: &DetectionModel, max_det: i64) -> Result<Parts> {
        let mut cv2 = Vec::new();
        for (i, (a, b, c)) in d.cv2.iter().enumerate() {
            let seq = vec![
                ("0".into(), self.conv(a)?),
                ("1".into(), self.conv(b)?),
                ("2".into(), plain_conv2d(c)?),
            ];
            cv2.push((i.to_string(), container("Sequential", seq)));
        }
        let mut cv3 = Vec::new();
        for (i, branch) in d.cv3.iter().enumerate() {
            let seq = match branch {
                ClsBranch::Legacy(a, b, c) => vec![
                    ("0".into(), self.conv(a)?),
                    ("1".into(), self.conv(b)?),
                    ("2".into(), plain_conv2d(c)?),
                ],
                ClsBranch::Light(convs, c) => {
                    let pair = |dw: &Conv, pw: &Conv| -> Result<Py> {
                        Ok(container(
                            "Sequential",
                            vec![("0".into(), self.dwconv(dw)?), ("1".into(), self.conv(pw)?)],
                        ))
                    };
                    vec![
                        ("0".into(), pair(&convs[0], &convs[1])?),
                        ("1".into(), pair(&convs[2], &convs[3])?),
                        ("2".into(), plain_conv2d(c)?),
                    ]
                }
            };
            cv3.push((i.to_string(), container("Sequential", seq)));
        }
        let dfl_conv = conv2d(&d.dfl, None, REG_MAX, 1, 0, 1)?;
        let dfl = object(
            UL_BLOCK,
            "DFL",
            Parts {
                children: vec![("conv".into(), Py::Object(dfl_conv))],
                attrs: vec![("c1", Py::Int(REG_MAX))],
                ..Default::default()
            },
        );
        let stride: Vec<f32> = m.stride.iter().map(|&s| s as f32).collect();
        let empty_half = || {
            Py::Tensor(Rc::new(Blob {
                kind: StorageKind::Half,
                shape: vec![0],
                bytes: vec![],
            }))
        };
        let parts = Parts {
            children: vec![
                ("cv2".into(), container("ModuleList", cv2)),
                ("cv3".into(), container("ModuleList", cv3)),
                ("dfl".into(), Py::Object(dfl)),
            ],
            attrs: vec![
                ("nc", Py::Int(d.nc)),
                ("nl", Py::Int(d.cv2.len() as i64)),
                ("reg_max", Py::Int(REG_MAX)),
                ("no", Py::Int(d.nc + 4 * REG_MAX)),
                ("stride", half_of(&stride)?),
                // `np`, `i`, `f`, `type` go here (layer attributes), then:
                ("inplace", Py::Bool(true)),
                ("anchors", empty_half()),
                ("strides", empty_half()),
                ("shape", Py::None),
                ("max_det", Py::Int(max_det)),
                ("_end2end", Py::Bool(false)),
            ],
            ..Default::default()
        };
        Ok(parts)
    }
}

/// The `PoseModel` attributes in the order a trained 8.4 `best.pt` has them: `kpt_shape` after
/// `stride` (set by `PoseModel.__init__`), `kpt_oks_sigmas` and `kpt_names` after `args` (set by
/// `PoseTrainer.set_model_attributes`); without names, the trainer's default `{c: ["0", …]}`.
fn pose_model_attrs(attrs: &mut Vec<(&'static str, Py)>, p: &Pose, nc: i64) {
    let at = |attrs: &Vec<(&'static str, Py)>, key: &str| {
        attrs
            .iter()
            .position(|(k, _)| *k == key)
            .map_or(attrs.len(), |i| i + 1)
    };
    let i = at(attrs, "stride");
    attrs.insert(
        i,
        (
            "kpt_shape",
            Py::List(vec![Py::Int(p.kpt_shape.0), Py::Int(p.kpt_shape.1)]),
        ),
    );
    let sigmas = match &p.kpt_oks_sigmas {
        Some(s) => Py::List(s.iter().map(|&v| Py::Float(v)).collect()),
        None => Py::None,
    };
    let names_of = |v: &[String]| Py::List(v.iter().map(|n| Py::s(n.as_str())).collect());
    let names = match &p.kpt_names {
        Some(n) => Py::Dict(n.iter().map(|(c, v)| (Py::Int(*c), names_of(v))).collect()),
        None => {
            let default: Vec<String> = (0..p.kpt_shape.0).map(|k| k.to_string()).collect();
            Py::Dict((0..nc).map(|c| (Py::Int(c), names_of(&default))).collect())
        }
    };
    let i = at(attrs, "args");
    attrs.splice(i..i, [("kpt_oks_sigmas", sigmas), ("kpt_names", names)]);
}

/// A class as `(module, name)`.
type Class = (&'static str, &'static str);

/// An object with the 17 bookkeeping entries of `nn.Module`, then `parts.attrs`.
fn object(module: &'static str, class: &'static str, parts: Parts) -> Rc<Object> {
    let dict =
        |v: Vec<(&'static str, Py)>| Py::Dict(v.into_iter().map(|(k, v)| (Py::s(k), v)).collect());
    let mut state: Vec<(String, Py)> = vec![
        ("training".into(), Py::Bool(false)),
        ("_parameters".into(), dict(parts.params)),
        ("_buffers".into(), dict(parts.buffers)),
        ("_non_persistent_buffers_set".into(), Py::EmptySet),
    ];
    for k in ["_backward_pre_hooks", "_backward_hooks"] {
        state.push((k.into(), Py::OrderedDict));
    }
    state.push(("_is_full_backward_hook".into(), Py::None));
    for k in [
        "_forward_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_state_dict_hooks",
        "_state_dict_pre_hooks",
        "_load_state_dict_pre_hooks",
        "_load_state_dict_post_hooks",
    ] {
        state.push((k.into(), Py::OrderedDict));
    }
    let children = parts
        .children
        .into_iter()
        .map(|(k, v)| (Py::Str(k), v))
        .collect();
    state.push(("_modules".into(), Py::Dict(children)));
    state.extend(parts.attrs.into_iter().map(|(k, v)| (k.to_string(), v)));
    Rc::new(Object {
        module,
        class,
        state,
    })
}

/// A `Sequential` or `ModuleList` of children.
fn container(class: &'static str, children: Vec<(String, Py)>) -> Py {
    Py::Object(object(
        TORCH_CONTAINER,
        class,
        Parts {
            children,
            ..Default::default()
        },
    ))
}

/// A top-level layer: its class, then `np`, `i`, `f`, `type` (Detect: after its `stride`;
/// Segment: after its `npr`; OBB: after its `ne`).
fn layer_object(class: Class, mut parts: Parts, i: i64, f: Py) -> Py {
    let np = parts_params(&parts);
    let layer = vec![
        ("np", Py::Int(np)),
        ("i", Py::Int(i)),
        ("f", f),
        ("type", Py::s(format!("{}.{}", class.0, class.1))),
    ];
    let after = match class.1 {
        "Detect" => Some("stride"),
        "Segment" => Some("npr"),
        "OBB" => Some("ne"),
        "Pose" => Some("nk"),
        _ => None,
    };
    let at = parts
        .attrs
        .iter()
        .position(|(k, _)| Some(*k) == after)
        .map_or(parts.attrs.len(), |p| p + 1);
    parts.attrs.splice(at..at, layer);
    Py::Object(object(class.0, class.1, parts))
}

/// Parameter count of a module's parts (parameters of it and all its children).
fn parts_params(parts: &Parts) -> i64 {
    let own: i64 = parts.params.iter().map(|(_, p)| param_numel(p)).sum();
    own + parts
        .children
        .iter()
        .map(|(_, c)| object_params(c))
        .sum::<i64>()
}

/// Parameter count of an object value (0 for anything else).
fn object_params(v: &Py) -> i64 {
    let Py::Object(o) = v else { return 0 };
    o.state
        .iter()
        .map(|(k, v)| match (k.as_str(), v) {
            ("_parameters", Py::Dict(d)) => d.iter().map(|(_, p)| param_numel(p)).sum(),
            ("_modules", Py::Dict(d)) => d.iter().map(|(_, c)| object_params(c)).sum(),
            _ => 0,
        })
        .sum()
}

/// Elements of a parameter value (0 for None).
fn param_numel(p: &Py) -> i64 {
    match p {
        Py::Param(b) => b.numel(),
        _ => 0,
    }
}

/// `nn.Conv2d` with its hyper-parameters; `k` comes from the weight.
fn conv2d(
    w: &Tensor,
    bias: Option<&Tensor>,
    c1: i64,
    s: i64,
    p: i64,
    g: i64,
) -> Result<Rc<Object>> {
    let ws = w.size();
    if ws.len() != 4 || ws[1] * g != c1 {
        bail!("conv weight {ws:?} does not fit {c1} input channels in {g} groups");
    }
    let bias = match bias {
        Some(b) => param(b)?,
        None => Py::None,
    };
    Ok(object(
        TORCH_CONV,
        "Conv2d",
        Parts {
            params: vec![("weight", param(w)?), ("bias", bias)],
            attrs: vec![
                ("in_channels", Py::Int(c1)),
                ("out_channels", Py::Int(ws[0])),
                ("kernel_size", Py::ints(&[ws[2], ws[3]])),
                ("stride", Py::ints(&[s, s])),
                ("padding", Py::ints(&[p, p])),
                ("dilation", Py::ints(&[1, 1])),
                ("transposed", Py::Bool(false)),
                ("output_padding", Py::ints(&[0, 0])),
                ("groups", Py::Int(g)),
                ("padding_mode", Py::s("zeros")),
                ("_reversed_padding_repeated_twice", Py::ints(&[p, p, p, p])),
            ],
            ..Default::default()
        },
    ))
}

/// `nn.ConvTranspose2d(c, c, 2, 2, 0, bias=True)`: Proto's upsample (stride 2, no padding, one
/// group, as [`crate::nn::segment`] runs it); the weight is `[in, out, kh, kw]`.
fn conv_transpose2d(u: &tch::nn::ConvTranspose2D) -> Result<Rc<Object>> {
    let ws = u.ws.size();
    if ws.len() != 4 {
        bail!("transposed conv weight has shape {ws:?}");
    }
    let bias = match u.bs.as_ref() {
        Some(b) => param(b)?,
        None => Py::None,
    };
    Ok(object(
        TORCH_CONV,
        "ConvTranspose2d",
        Parts {
            params: vec![("weight", param(&u.ws)?), ("bias", bias)],
            attrs: vec![
                ("in_channels", Py::Int(ws[0])),
                ("out_channels", Py::Int(ws[1])),
                ("kernel_size", Py::ints(&[ws[2], ws[3]])),
                ("stride", Py::ints(&[2, 2])),
                ("padding", Py::ints(&[0, 0])),
                ("dilation", Py::ints(&[1, 1])),
                ("transposed", Py::Bool(true)),
                ("output_padding", Py::ints(&[0, 0])),
                ("groups", Py::Int(1)),
                ("padding_mode", Py::s("zeros")),
                ("_reversed_padding_repeated_twice", Py::ints(&[0, 0, 0, 0])),
            ],
            ..Default::default()
        },
    ))
}

/// Detect's final 1x1 `nn.Conv2d` with bias.
fn plain_conv2d(c: &Conv2d) -> Result<Py> {
    let c1 = c.conv.ws.size().get(1).copied().unwrap_or(0);
    Ok(Py::Object(conv2d(
        &c.conv.ws,
        c.conv.bs.as_ref(),
        c1,
        1,
        0,
        1,
    )?))
}

/// `nn.Upsample(None, scale, "nearest")`.
fn upsample(scale: i64) -> Parts {
    Parts {
        attrs: vec![
            ("name", Py::s("Upsample")),
            ("size", Py::None),
            ("scale_factor", Py::Float(scale as f64)),
            ("mode", Py::s("nearest")),
            ("align_corners", Py::None),
            ("recompute_scale_factor", Py::None),
        ],
        ..Default::default()
    }
}

/// `sorted(x % i for every layer i and x in its from, x != -1)`, as `parse_model` builds `save`.
fn save_list(m: &DetectionModel) -> Vec<i64> {
    let mut save: Vec<i64> = m
        .spec
        .layers
        .iter()
        .flat_map(|l| {
            l.from_raw
                .iter()
                .zip(&l.from)
                .filter(|(raw, _)| **raw != -1)
                .map(|(_, abs)| *abs)
                .collect::<Vec<_>>()
        })
        .collect();
    save.sort_unstable();
    save
}

/// The `from` of every layer as written in the YAML: an int or a list of ints.
fn yaml_froms(yaml: &serde_yaml::Value) -> Vec<Py> {
    ["backbone", "head"]
        .iter()
        .filter_map(|s| yaml.get(s).and_then(serde_yaml::Value::as_sequence))
        .flatten()
        .map(|row| match row.get(0) {
            Some(serde_yaml::Value::Sequence(s)) => Py::List(
                s.iter()
                    .map(|v| Py::Int(v.as_i64().unwrap_or(-1)))
                    .collect(),
            ),
            Some(v) => Py::Int(v.as_i64().unwrap_or(-1)),
            None => Py::Int(-1),
        })
        .collect()
}

/// A `from` list as Python writes it: a list when the YAML had one, else the int.
fn from_py(from: &[i64], list: bool) -> Py {
    match (list, from) {
        (false, [one]) => Py::Int(*one),
        _ => Py::List(from.iter().map(|&f| Py::Int(f)).collect()),
    }
}

/// A tensor as an fp16 Parameter.
fn param(t: &Tensor) -> Result<Py> {
    Ok(Py::Param(Rc::new(half_blob(t)?)))
}

/// A tensor as an fp16 plain tensor.
fn tensor(t: &Tensor) -> Result<Py> {
    Ok(Py::Tensor(Rc::new(half_blob(t)?)))
}

/// f32 values as an fp16 tensor.
fn half_of(v: &[f32]) -> Result<Py> {
    tensor(&Tensor::from_slice(v))
}

/// fp32 values as a blob of the given shape.
fn f32_blob(v: &[f32], shape: Vec<i64>) -> Blob {
    Blob {
        kind: StorageKind::Float,
        shape,
        bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// A tensor converted as Ultralytics saves it: `.half()` (round to nearest even), then
/// `nan_to_num_` (NaN -> 0, +-inf -> +-65504), contiguous, on the CPU.
pub fn half_blob(t: &Tensor) -> Result<Blob> {
    let h = t
        .detach()
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Half)?
        .f_nan_to_num(0.0, None, None)?
        .f_contiguous()?;
    let n = h.numel();
    let mut bytes = vec![0u8; n * 2];
    h.f_copy_data_u8(&mut bytes, n)
        .map_err(|e| anyhow!("copying tensor data: {e}"))?;
    Ok(Blob {
        kind: StorageKind::Half,
        shape: h.size(),
        bytes,
    })
}
