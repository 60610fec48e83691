//! One flat gradient bucket: every trainable parameter's `.grad` is a view into a single
//! buffer, so backward accumulates in place and one all-reduce averages all gradients.

use super::ffi;
use super::group::{check, ProcessGroup};
use anyhow::{anyhow, Result};
use tch::{Kind, Tensor};

/// The flat buffer and the parameters whose gradients are views into it.
pub struct GradBucket {
    flat: Tensor,
    /// (name, parameter, offset, numel) in a rank-independent order.
    params: Vec<(String, Tensor, i64, i64)>,
}

impl GradBucket {
    /// Attaches every parameter that requires grad (in the given order, the same on every rank):
    /// allocates the flat buffer, copies any gradient already there (a resumed run's) into it,
    /// and makes each `.grad` a view of its slice with the parameter's strides.
    pub fn attach(vars: &[(String, Tensor)]) -> Result<Self> {
        let trainable: Vec<&(String, Tensor)> =
            vars.iter().filter(|(_, p)| p.requires_grad()).collect();
        let kind = trainable.first().map_or(Kind::Float, |(_, p)| p.kind());
        let device = trainable
            .first()
            .map_or(tch::Device::Cpu, |(_, p)| p.device());
        if let Some((n, p)) = trainable.iter().find(|(_, p)| p.kind() != kind) {
            return Err(anyhow!(
                "gradient bucket: parameter {n} is {:?}, the others {kind:?}",
                p.kind()
            ));
        }
        let total: i64 = trainable.iter().map(|(_, p)| p.numel() as i64).sum();
        let flat = Tensor::zeros([total], (kind, device));
        let mut params = Vec::with_capacity(trainable.len());
        let mut off = 0i64;
        for (name, p) in trainable {
            let n = p.numel() as i64;
            // The parameter's own strides (channels-last under bfloat16 autocast): libtorch's
            // gradient layout contract, so backward accumulates into the view as it is.
            let view = if dense(&p.size(), &p.stride()) {
                flat.as_strided(p.size(), p.stride(), Some(off))
            } else {
                flat.narrow(0, off, n).view(p.size().as_slice())
            };
            let old = p.grad();
            if old.defined() {
                tch::no_grad(|| view.shallow_clone().copy_(&old));
            }
            // SAFETY: both pointers are live tch tensors for the duration of the call.
            check(|e| unsafe {
                ffi::ryolo_dist_set_grad(ffi::tensor_ptr(p), ffi::tensor_ptr(&view), e)
            })
            .map_err(|m| anyhow!("gradient bucket: setting the gradient of {name}: {m}"))?;
            params.push((name.clone(), p.shallow_clone(), off, n));
            off += n;
        }
        Ok(Self { flat, params })
    }

    /// The number of gradient values.
    pub fn len(&self) -> i64 {
        self.flat.numel() as i64
    }

    /// True when no parameter is trainable.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The flat buffer.
    pub fn flat(&self) -> &Tensor {
        &self.flat
    }

    /// True when every parameter's gradient still is its view of the buffer (nothing replaced
    /// or dropped it).
    fn intact(&self) -> bool {
        let base = self.flat.data_ptr() as usize;
        let es = self.flat.kind().elt_size_in_bytes();
        self.params.iter().all(|(_, p, off, _)| {
            let g = p.grad();
            g.defined() && g.data_ptr() as usize == base + *off as usize * es
        })
    }

    /// Averages the gradients over all ranks: one in-place sum of the flat buffer, divided by
    /// the world size (Gloo has no average). Gradients that were replaced since [`Self::attach`]
    /// are copied in first and the views restored.
    pub fn all_reduce_mean(&mut self, pg: &mut ProcessGroup) -> Result<()> {
        if !self.intact() {
            let vars: Vec<(String, Tensor)> = self
                .params
                .iter()
                .map(|(n, p, _, _)| (n.clone(), p.shallow_clone()))
                .collect();
            *self = Self::attach(&vars)?;
        }
        pg.all_reduce_sum(&mut self.flat)?;
        if pg.world() > 1 {
            tch::no_grad(|| {
                let _ = self.flat.g_div_scalar_(pg.world() as f64);
            });
        }
        Ok(())
    }
}

/// True when `stride` lays `size` out densely without overlap in some dimension order
/// (contiguous, channels-last, any permutation): such a view spans exactly `numel` values.
fn dense(size: &[i64], stride: &[i64]) -> bool {
    let mut dims: Vec<(i64, i64)> = size
        .iter()
        .zip(stride)
        .filter(|(&n, _)| n != 1)
        .map(|(&n, &s)| (s, n))
        .collect();
    dims.sort_unstable();
    let mut expect = 1;
    for (s, n) in dims {
        if s != expect {
            return false;
        }
        expect *= n;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_layouts_are_recognised() {
        assert!(dense(&[4, 3, 2, 2], &[12, 4, 2, 1]));
        assert!(dense(&[4, 3, 2, 2], &[12, 1, 6, 3]));
        assert!(dense(&[5, 1], &[1, 7]));
        assert!(!dense(&[2, 2], &[1, 1]));
        assert!(!dense(&[2, 3], &[6, 1]));
    }

    #[test]
    fn gradients_keep_channels_last_strides_in_the_bucket() {
        let w = crate::util::amp::channels_last(&Tensor::ones(
            [4, 3, 2, 2],
            (Kind::Float, tch::Device::Cpu),
        ))
        .set_requires_grad(true);
        let b = Tensor::zeros([4], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let bucket = GradBucket::attach(&[
            ("w".into(), w.shallow_clone()),
            ("b".into(), b.shallow_clone()),
        ])
        .unwrap();
        assert_eq!(bucket.len(), 52);
        assert_eq!(w.grad().stride(), w.stride());
        let x = crate::util::amp::channels_last(&Tensor::ones(
            [1, 3, 2, 2],
            (Kind::Float, tch::Device::Cpu),
        ));
        x.conv2d(&w, Some(&b), [1, 1], [0, 0], [1, 1], 1)
            .sum(Kind::Float)
            .backward();
        assert!(bucket.intact());
        // d(sum)/dw = 1 per weight, d(sum)/db = 1 per output: all 52 bucket values are 1.
        assert_eq!(bucket.flat().sum(Kind::Float).double_value(&[]), 52.0);
    }
}
