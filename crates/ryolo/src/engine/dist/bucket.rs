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
    /// and makes each `.grad` a view of its slice.
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
            let view = flat.narrow(0, off, n).view(p.size().as_slice());
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
