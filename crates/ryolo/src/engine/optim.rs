//! Optimizers with Ultralytics' three parameter groups, the LR schedule and warmup, gradient clipping
//! and the model EMA (spec/train.md §3-8). Written on tensors so they run on any device.

use std::collections::HashMap;
use tch::{Kind, Tensor};

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    /// SGD with Nesterov momentum and coupled weight decay.
    Sgd,
    /// Adam with decoupled weight decay.
    AdamW,
    /// Adam with L2 weight decay.
    Adam,
    /// RMSProp (alpha 0.99, eps 1e-8) with momentum.
    RmsProp,
}

impl OptKind {
    /// Parses an `optimizer=` name (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sgd" => Some(Self::Sgd),
            "adamw" => Some(Self::AdamW),
            "adam" | "adamax" | "nadam" | "radam" => Some(Self::Adam),
            "rmsprop" => Some(Self::RmsProp),
            _ => None,
        }
    }
    /// Whether warmup interpolates a momentum (SGD-like optimizers).
    pub fn has_momentum(self) -> bool {
        matches!(self, Self::Sgd | Self::RmsProp)
    }
}

/// A parameter group.
#[derive(Debug)]
pub struct Group {
    /// `weight`, `bn` or `bias`.
    pub name: &'static str,
    /// Parameters with their state-dict names.
    pub params: Vec<(String, Tensor)>,
    /// Current learning rate.
    pub lr: f64,
    /// Learning rate at construction (the schedule multiplies it).
    pub initial_lr: f64,
    /// Current momentum (SGD) or beta1 (Adam).
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
}

/// An optimizer over groups, with its per-parameter state.
#[derive(Debug)]
pub struct Optimizer {
    /// The rule.
    pub kind: OptKind,
    /// Groups in Ultralytics 8.4 order: weight (decay), bn, bias.
    pub groups: Vec<Group>,
    /// State buffers by `<param name>.<buffer>`.
    pub state: HashMap<String, Tensor>,
    /// Steps taken.
    pub steps: i64,
    /// Multi-tensor updates (one kernel per operation for all parameters; PyTorch's default on
    /// CUDA): on when the parameters are on a GPU.
    pub foreach: bool,
}

impl Optimizer {
    /// Splits trainable and frozen parameters into the three groups (bias; BatchNorm weight; other
    /// weights with decay `wd`).
    pub fn new(kind: OptKind, vars: &[(String, Tensor)], lr: f64, momentum: f64, wd: f64) -> Self {
        let mut groups = vec![
            Group {
                name: "weight",
                params: vec![],
                lr,
                initial_lr: lr,
                momentum,
                weight_decay: wd,
            },
            Group {
                name: "bn",
                params: vec![],
                lr,
                initial_lr: lr,
                momentum,
                weight_decay: 0.0,
            },
            Group {
                name: "bias",
                params: vec![],
                lr,
                initial_lr: lr,
                momentum,
                weight_decay: 0.0,
            },
        ];
        for (name, t) in vars {
            if name.ends_with("running_mean") || name.ends_with("running_var") {
                continue;
            }
            let g = if name.contains("bias") {
                2
            } else if name.contains(".bn.") {
                1
            } else {
                0
            };
            groups[g].params.push((name.clone(), t.shallow_clone()));
        }
        let foreach = vars.first().is_some_and(|(_, t)| t.device().is_cuda());
        Self {
            kind,
            groups,
            state: HashMap::new(),
            steps: 0,
            foreach,
        }
    }

    /// One update with the current group settings (parameters without gradients are skipped).
    pub fn step(&mut self) {
        self.steps += 1;
        if self.foreach && self.kind != OptKind::RmsProp {
            return tch::no_grad(|| self.step_foreach());
        }
        let t = self.steps as f64;
        tch::no_grad(|| {
            for g in &self.groups {
                for (name, p) in &g.params {
                    let grad = p.grad();
                    if !grad.defined() {
                        continue;
                    }
                    let mut p = p.shallow_clone();
                    match self.kind {
                        OptKind::Sgd => {
                            let d = if g.weight_decay != 0.0 {
                                &grad + &p * g.weight_decay
                            } else {
                                grad.shallow_clone()
                            };
                            let key = format!("{name}.momentum_buffer");
                            let buf = match self.state.get(&key) {
                                Some(b) => {
                                    let mut b = b.shallow_clone();
                                    let _ = b.g_mul_scalar_(g.momentum).g_add_(&d);
                                    b
                                }
                                None => d.copy(),
                            };
                            let upd = &d + &buf * g.momentum;
                            self.state.insert(key, buf);
                            let _ = p.g_add_(&(upd * -g.lr));
                        }
                        OptKind::AdamW | OptKind::Adam => {
                            let (b1, b2, eps) = (g.momentum, 0.999, 1e-8);
                            let grad = if self.kind == OptKind::Adam && g.weight_decay != 0.0 {
                                &grad + &p * g.weight_decay
                            } else {
                                grad.shallow_clone()
                            };
                            if self.kind == OptKind::AdamW && g.weight_decay != 0.0 {
                                let _ = p.g_mul_scalar_(1.0 - g.lr * g.weight_decay);
                            }
                            let (km, kv) =
                                (format!("{name}.exp_avg"), format!("{name}.exp_avg_sq"));
                            let mut m = self.state.remove(&km).unwrap_or_else(|| p.zeros_like());
                            let mut v = self.state.remove(&kv).unwrap_or_else(|| p.zeros_like());
                            let _ = m.lerp_(&grad, 1.0 - b1);
                            let _ = v.g_mul_scalar_(b2).g_add_(&(&grad * &grad * (1.0 - b2)));
                            let bc1 = 1.0 - b1.powf(t);
                            let bc2 = 1.0 - b2.powf(t);
                            let denom = v.sqrt() / bc2.sqrt() + eps;
                            let _ = p.g_add_(&(&m / denom * (-g.lr / bc1)));
                            self.state.insert(km, m);
                            self.state.insert(kv, v);
                        }
                        OptKind::RmsProp => {
                            let grad = if g.weight_decay != 0.0 {
                                &grad + &p * g.weight_decay
                            } else {
                                grad.shallow_clone()
                            };
                            let (ks, kb) = (
                                format!("{name}.square_avg"),
                                format!("{name}.momentum_buffer"),
                            );
                            let mut sq = self.state.remove(&ks).unwrap_or_else(|| p.zeros_like());
                            let _ = sq.g_mul_scalar_(0.99).g_add_(&(&grad * &grad * 0.01));
                            let avg = sq.sqrt() + 1e-8;
                            let mut buf = self.state.remove(&kb).unwrap_or_else(|| p.zeros_like());
                            let _ = buf.g_mul_scalar_(g.momentum).g_add_(&(&grad / avg));
                            let _ = p.g_add_(&(&buf * -g.lr));
                            self.state.insert(ks, sq);
                            self.state.insert(kb, buf);
                        }
                    }
                }
            }
        });
    }

    /// [`Self::step`] with multi-tensor operations, group by group (same rules and state keys;
    /// missing buffers start as zeros, which equals PyTorch's start).
    fn step_foreach(&mut self) {
        use crate::util::foreach;
        for g in &self.groups {
            let (mut names, mut ps, mut gs) = (Vec::new(), Vec::new(), Vec::new());
            for (name, p) in &g.params {
                let grad = p.grad();
                if grad.defined() {
                    names.push(name.as_str());
                    ps.push(p.shallow_clone());
                    gs.push(grad);
                }
            }
            if ps.is_empty() {
                continue;
            }
            let mut buffers = |suffix: &str| -> Vec<(String, Tensor)> {
                names
                    .iter()
                    .zip(&ps)
                    .map(|(n, p)| {
                        let k = format!("{n}.{suffix}");
                        let t = self.state.remove(&k).unwrap_or_else(|| p.zeros_like());
                        (k, t)
                    })
                    .collect()
            };
            let kept = match self.kind {
                OptKind::Sgd => {
                    let b = buffers("momentum_buffer");
                    let bt: Vec<Tensor> = b.iter().map(|(_, t)| t.shallow_clone()).collect();
                    foreach::sgd_(&ps, &gs, &bt, g.lr, g.momentum, g.weight_decay, true);
                    b
                }
                OptKind::AdamW | OptKind::Adam => {
                    let (m, v) = (buffers("exp_avg"), buffers("exp_avg_sq"));
                    let mt: Vec<Tensor> = m.iter().map(|(_, t)| t.shallow_clone()).collect();
                    let vt: Vec<Tensor> = v.iter().map(|(_, t)| t.shallow_clone()).collect();
                    let s = foreach::AdamStep {
                        lr: g.lr,
                        beta1: g.momentum,
                        beta2: 0.999,
                        eps: 1e-8,
                        weight_decay: g.weight_decay,
                        decoupled: self.kind == OptKind::AdamW,
                        step: self.steps,
                    };
                    foreach::adam_(&ps, &gs, &mt, &vt, s);
                    m.into_iter().chain(v).collect()
                }
                OptKind::RmsProp => unreachable!("RMSProp takes the per-tensor path"),
            };
            self.state.extend(kept);
        }
    }

    /// Clears all gradients.
    pub fn zero_grad(&mut self) {
        if self.foreach {
            let grads = self.grads();
            if !grads.is_empty() {
                crate::util::foreach::zero_(&grads);
            }
            return;
        }
        for g in &self.groups {
            for (_, p) in &g.params {
                let mut grad = p.grad();
                if grad.defined() {
                    let _ = grad.zero_();
                }
            }
        }
    }

    /// The defined gradients of all parameters.
    pub fn grads(&self) -> Vec<Tensor> {
        self.groups
            .iter()
            .flat_map(|g| g.params.iter())
            .map(|(_, p)| p.grad())
            .filter(|g| g.defined())
            .collect()
    }

    /// Scales gradients so their global L2 norm is at most `max_norm` (no host sync).
    pub fn clip_grad_norm(&self, max_norm: f64) {
        let grads = self.grads();
        if grads.is_empty() {
            return;
        }
        if self.foreach {
            return tch::no_grad(|| crate::util::foreach::clip_(&grads, max_norm));
        }
        tch::no_grad(|| {
            let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
            let total = Tensor::stack(&norms, 0).norm();
            let coef = (total + 1e-6)
                .reciprocal()
                .multiply_scalar(max_norm)
                .clamp_max(1.0);
            for g in &grads {
                let mut g = g.shallow_clone();
                let _ = g.g_mul_(&coef);
            }
        });
    }
}

/// PyTorch's `GradScaler` for mixed-precision training: the loss is multiplied by `scale` before
/// backward; gradients are divided by it before clipping; a step with non-finite gradients is
/// skipped and halves the scale; 2000 clean steps in a row double it. Disabled, it does nothing.
#[derive(Debug, Clone)]
pub struct GradScaler {
    /// Whether scaling is on (AMP on CUDA).
    pub enabled: bool,
    /// Current scale (2^16 at start).
    pub scale: f64,
    /// Clean steps since the last change.
    pub good_steps: usize,
}

impl GradScaler {
    /// A scaler (`enabled` for AMP).
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            scale: 65536.0,
            good_steps: 0,
        }
    }

    /// The loss to call `backward` on.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        if self.enabled {
            loss * self.scale
        } else {
            loss.shallow_clone()
        }
    }

    /// Unscales the optimizer's gradients in place; true when all are finite (one host sync).
    pub fn unscale(&self, opt: &Optimizer) -> bool {
        if !self.enabled {
            return true;
        }
        let grads = opt.grads();
        let Some(first) = grads.first() else {
            return true;
        };
        tch::no_grad(|| {
            let bad = Tensor::zeros([1], (tch::Kind::Float, first.device()));
            if opt.foreach {
                // GradScaler's own inverse: the float of the double reciprocal of the scale.
                let inv =
                    Tensor::from_slice(&[(1.0 / self.scale) as f32]).to_device(first.device());
                crate::util::foreach::unscale_(&grads, &bad, &inv);
                return bad.double_value(&[0]) == 0.0;
            }
            for g in &grads {
                let mut g = g.shallow_clone();
                let _ = g.g_mul_scalar_(1.0 / self.scale);
                let nonfinite = g.isfinite().logical_not().any().to_kind(tch::Kind::Float);
                let _ = bad.shallow_clone().g_add_(&nonfinite);
            }
            bad.double_value(&[0]) == 0.0
        })
    }

    /// Updates the scale after a step (`finite`: the gradients were usable).
    pub fn update(&mut self, finite: bool) {
        if !self.enabled {
            return;
        }
        if finite {
            self.good_steps += 1;
            if self.good_steps >= 2000 {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale *= 0.5;
            self.good_steps = 0;
        }
    }
}

/// `lf(epoch)`: linear `(1 - e/E)(1 - lrf) + lrf` or cosine `((1 - cos(e pi / E)) / 2)(lrf - 1) + 1`.
pub fn lr_factor(epoch: usize, epochs: usize, lrf: f64, cos: bool) -> f64 {
    let (e, n) = (epoch as f64, epochs as f64);
    if cos {
        ((1.0 - (e * std::f64::consts::PI / n).cos()) / 2.0) * (lrf - 1.0) + 1.0
    } else {
        (1.0 - e / n).max(0.0) * (1.0 - lrf) + lrf
    }
}

/// Linear interpolation of `x` between `(x0, y0)` and `(x1, y1)`, clamped at the ends.
pub fn interp(x: f64, x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
    if x <= x0 {
        y0
    } else if x >= x1 {
        y1
    } else {
        y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    }
}

/// Exponential moving average of the weights: `decay = 0.9999 (1 - exp(-updates / 2000))`.
#[derive(Debug)]
pub struct Ema {
    /// Updates so far.
    pub updates: i64,
}

impl Ema {
    /// The decay after `updates` updates.
    pub fn decay(updates: i64) -> f64 {
        0.9999 * (1.0 - (-(updates as f64) / 2000.0).exp())
    }

    /// `ema = d * ema + (1 - d) * model` for every floating variable (weights and BN statistics);
    /// on a GPU as one multi-tensor lerp (Ultralytics 8.4's own form).
    pub fn update(&mut self, ema: &[(String, Tensor)], model: &HashMap<String, Tensor>) {
        let foreach = ema.first().is_some_and(|(_, t)| t.device().is_cuda());
        self.update_with(ema, model, foreach)
    }

    /// [`Self::update`], with the multi-tensor lerp or per tensor as `foreach` says.
    pub fn update_with(
        &mut self,
        ema: &[(String, Tensor)],
        model: &HashMap<String, Tensor>,
        foreach: bool,
    ) {
        self.updates += 1;
        let d = Self::decay(self.updates);
        if foreach {
            let (mut es, mut ms) = (Vec::new(), Vec::new());
            for (name, e) in ema {
                if let Some(m) = model.get(name) {
                    if e.kind() == Kind::Float {
                        es.push(e.shallow_clone());
                        ms.push(m.detach());
                    }
                }
            }
            if !es.is_empty() {
                tch::no_grad(|| crate::util::foreach::lerp_(&es, &ms, 1.0 - d));
            }
            return;
        }
        tch::no_grad(|| {
            for (name, e) in ema {
                if let Some(m) = model.get(name) {
                    if e.kind() == Kind::Float {
                        let mut e = e.shallow_clone();
                        let _ = e.g_mul_scalar_(d).g_add_(&(m.detach() * (1.0 - d)));
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three parameters, one per group, with the same values in two copies.
    fn twin_params() -> [Vec<(String, Tensor)>; 2] {
        let names = [
            "model.0.conv.weight",
            "model.0.bn.weight",
            "model.0.conv.bias",
        ];
        let vals: Vec<Tensor> = (0..3)
            .map(|k| Tensor::randn([4 + k, 3], (tch::Kind::Float, tch::Device::Cpu)))
            .collect();
        [0, 1].map(|_| {
            names
                .iter()
                .zip(&vals)
                .map(|(n, v)| (n.to_string(), v.copy().set_requires_grad(true)))
                .collect()
        })
    }

    /// The largest difference between the two copies' values.
    fn max_diff(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
        a.iter()
            .zip(b)
            .map(|((_, x), (_, y))| (x - y).abs().max().double_value(&[]))
            .fold(0.0, f64::max)
    }

    #[test]
    fn multi_tensor_steps_equal_the_per_tensor_steps() {
        tch::manual_seed(3);
        for kind in [OptKind::Sgd, OptKind::AdamW, OptKind::Adam] {
            let [a, b] = twin_params();
            let mut per = Optimizer::new(kind, &a, 0.01, 0.9, 5e-4);
            let mut multi = Optimizer::new(kind, &b, 0.01, 0.9, 5e-4);
            assert!(
                !per.foreach && !multi.foreach,
                "CPU parameters take the per-tensor path"
            );
            multi.foreach = true;
            let mut scaler = (GradScaler::new(true), GradScaler::new(true));
            for step in 0..4 {
                let x = Tensor::randn([5, 3], (tch::Kind::Float, tch::Device::Cpu));
                for (vars, opt, sc) in [
                    (&a, &mut per, &mut scaler.0),
                    (&b, &mut multi, &mut scaler.1),
                ] {
                    let loss: Tensor = vars
                        .iter()
                        .map(|(_, p)| {
                            p.matmul(&x.tr())
                                .pow_tensor_scalar(2)
                                .mean(tch::Kind::Float)
                        })
                        .fold(Tensor::from(0f32), |s, l| s + l);
                    sc.scale_loss(&(loss * (step + 1) as f64)).backward();
                    assert!(sc.unscale(opt));
                    opt.clip_grad_norm(0.5 + step as f64);
                    opt.step();
                    opt.zero_grad();
                }
                let d = max_diff(&a, &b);
                assert!(d < 1e-6, "{kind:?} step {step}: {d}");
                assert!(b
                    .iter()
                    .all(|(_, p)| p.grad().abs().max().double_value(&[]) == 0.0));
            }
            assert_eq!(per.state.len(), multi.state.len(), "{kind:?}");
            for (k, v) in &per.state {
                let d = (v - &multi.state[k]).abs().max().double_value(&[]);
                assert!(d < 1e-6, "{kind:?} {k}: {d}");
            }
        }
        // The multi-tensor unscale flags a non-finite gradient as the per-tensor one does.
        let [_, b] = twin_params();
        let mut opt = Optimizer::new(OptKind::Sgd, &b, 0.01, 0.9, 0.0);
        opt.foreach = true;
        (&b[1].1 * f64::INFINITY).sum(tch::Kind::Float).backward();
        assert!(!GradScaler::new(true).unscale(&opt));
    }

    #[test]
    fn multi_tensor_ema_equals_the_per_tensor_ema() {
        tch::manual_seed(4);
        let [a, b] = twin_params();
        let model: HashMap<String, Tensor> = a
            .iter()
            .map(|(n, t)| (n.clone(), (t * 1.5 + 0.25).detach()))
            .collect();
        let (ea, eb): (Vec<_>, Vec<_>) = (
            a.iter()
                .map(|(n, t)| (n.clone(), t.detach().copy()))
                .collect(),
            b.iter()
                .map(|(n, t)| (n.clone(), t.detach().copy()))
                .collect(),
        );
        let (mut per, mut multi) = (Ema { updates: 0 }, Ema { updates: 0 });
        for _ in 0..5 {
            per.update_with(&ea, &model, false);
            multi.update_with(&eb, &model, true);
        }
        let d = max_diff(&ea, &eb);
        assert!(d < 1e-6, "{d}");
        assert!(max_diff(&ea, &a) > 0.1, "the EMA moved towards the model");
    }

    fn one_param_opt() -> (Optimizer, Tensor) {
        let w = Tensor::from_slice(&[1.5f32, -2.0, 0.25]).set_requires_grad(true);
        let opt = Optimizer::new(
            OptKind::Sgd,
            &[("m.0.conv.weight".into(), w.shallow_clone())],
            0.1,
            0.9,
            0.0,
        );
        (opt, w)
    }

    #[test]
    fn grad_scaler_gives_the_unscaled_gradients() {
        let (opt, w) = one_param_opt();
        let loss = (&w * &w * 3.0).sum(tch::Kind::Float);
        loss.backward();
        let plain: Vec<f32> = Vec::try_from(w.grad()).unwrap();
        let _ = w.grad().zero_();
        let sc = GradScaler::new(true);
        let loss = (&w * &w * 3.0).sum(tch::Kind::Float);
        sc.scale_loss(&loss).backward();
        assert!(sc.unscale(&opt));
        // A power-of-two scale is exact in floating point.
        assert_eq!(Vec::<f32>::try_from(w.grad()).unwrap(), plain);
    }

    #[test]
    fn grad_scaler_skips_non_finite_steps_and_adapts() {
        let (opt, w) = one_param_opt();
        let mut sc = GradScaler::new(true);
        let loss = (&w * f64::INFINITY).sum(tch::Kind::Float);
        sc.scale_loss(&loss).backward();
        assert!(!sc.unscale(&opt));
        sc.update(false);
        assert_eq!(sc.scale, 32768.0);
        for _ in 0..2000 {
            sc.update(true);
        }
        assert_eq!(sc.scale, 65536.0);
        let off = GradScaler::new(false);
        assert!(off.unscale(&opt), "a disabled scaler never skips");
        assert_eq!(
            off.scale_loss(&w.sum(tch::Kind::Float)).double_value(&[]),
            -0.25
        );
    }

    #[test]
    fn schedules() {
        assert_eq!(lr_factor(0, 100, 0.01, false), 1.0);
        assert!((lr_factor(99, 100, 0.01, false) - (0.01 + 0.99 / 100.0)).abs() < 1e-12);
        assert!((lr_factor(0, 10, 0.01, true) - 1.0).abs() < 1e-12);
        assert!((lr_factor(10, 10, 0.01, true) - 0.01).abs() < 1e-12);
        assert_eq!(interp(5.0, 0.0, 10.0, 0.0, 1.0), 0.5);
        assert!((Ema::decay(2000) - 0.9999 * (1.0 - (-1f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn sgd_nesterov_matches_pytorch_formula() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let mut opt = Optimizer::new(
            OptKind::Sgd,
            &[("w".into(), p.shallow_clone())],
            0.1,
            0.9,
            0.01,
        );
        for _ in 0..2 {
            opt.zero_grad();
            let loss = (&p * &p).sum(Kind::Float);
            loss.backward();
            opt.step();
        }
        // Step 1: g = 2p + 0.01p = 2.01p; buf = g; p -= 0.1 (g + 0.9 g) -> p (1 - 0.1 * 2.01 * 1.9).
        let f1 = 1.0 - 0.1 * 2.01 * 1.9;
        // Step 2: g2 = 2.01 p1; buf = 0.9 * 2.01 p0 + g2; p2 = p1 - 0.1 (g2 + 0.9 buf).
        let p0 = 1.0f64;
        let p1 = p0 * f1;
        let g2 = 2.01 * p1;
        let buf = 0.9 * 2.01 * p0 + g2;
        let p2 = p1 - 0.1 * (g2 + 0.9 * buf);
        assert!(
            (p.double_value(&[0]) - p2).abs() < 1e-6,
            "{} vs {p2}",
            p.double_value(&[0])
        );
    }

    #[test]
    fn clipping_bounds_the_norm() {
        let p = Tensor::from_slice(&[3.0f32, 4.0]).set_requires_grad(true);
        let opt = Optimizer::new(
            OptKind::Sgd,
            &[("w".into(), p.shallow_clone())],
            0.1,
            0.9,
            0.0,
        );
        (&p * 10.0).sum(Kind::Float).backward();
        opt.clip_grad_norm(1.0);
        let n = p.grad().norm().double_value(&[]);
        assert!((n - 1.0).abs() < 1e-5, "{n}");
    }
}
