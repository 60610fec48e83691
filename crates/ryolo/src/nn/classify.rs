//! The Classify head (spec/classify.md §3.2): Conv 1x1 to 1280, global average pool, dropout,
//! Linear to `nc`; logits in training, softmax probabilities at inference.

use super::modules::{count_macs, Conv};
use super::yaml::CLASSIFY_HIDDEN;
use tch::{nn, Tensor};

/// `Classify(c1, nc)`.
#[derive(Debug)]
pub struct Classify {
    pub(crate) conv: Conv,
    pub(crate) linear: nn::Linear,
    /// Number of classes.
    pub nc: i64,
    /// Dropout probability while training (`dropout=`).
    pub dropout: f64,
}

impl Classify {
    /// Builds the head under `p` for `c1` input channels.
    pub(crate) fn new(p: nn::Path, c1: i64, nc: i64) -> Self {
        let b = 1.0 / (CLASSIFY_HIDDEN as f64).sqrt();
        let cfg = nn::LinearConfig {
            ws_init: nn::Init::Uniform { lo: -b, up: b },
            bs_init: Some(nn::Init::Uniform { lo: -b, up: b }),
            bias: true,
        };
        Self {
            conv: Conv::new(&p / "conv", c1, CLASSIFY_HIDDEN, 1, 1, 1, true),
            linear: nn::linear(&p / "linear", CLASSIFY_HIDDEN, nc, cfg),
            nc,
            dropout: 0.0,
        }
    }

    /// Logits `(B, nc)`; `train` selects BatchNorm batch statistics and dropout.
    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.conv.forward(x, train);
        // thop counts the pool as one op per input element, the Linear as in x out per sample.
        count_macs(y.numel() as f64);
        let y = y.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        let y = if train && self.dropout > 0.0 {
            y.dropout(self.dropout, true)
        } else {
            y
        };
        count_macs((y.size()[0] * CLASSIFY_HIDDEN * self.nc) as f64);
        y.apply(&self.linear)
    }

    /// Leaf modules: the Conv's, pool, dropout, linear.
    pub(crate) fn leaves(&self) -> usize {
        self.conv.leaves() + 3
    }
}
