//! Classification auto-augment policies beyond RandAugment: torchvision's `AutoAugment` (ImageNet
//! policy, run on the PIL image) and `AugMix` (run on the uint8 tensor), both bilinear, fill 0.

use super::classify::pil_op;
use super::classify_tensor_ops::tensor_op;
use rand::Rng;

/// One image operation of torchvision's augmentation spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// No change.
    Identity,
    /// Shear along x by a factor (pivot: top-left corner).
    ShearX,
    /// Shear along y by a factor (pivot: top-left corner).
    ShearY,
    /// Translate along x by `int(magnitude)` pixels.
    TranslateX,
    /// Translate along y by `int(magnitude)` pixels.
    TranslateY,
    /// Rotate by degrees (counter-clockwise) about the centre.
    Rotate,
    /// Brightness factor `1 + magnitude`.
    Brightness,
    /// Saturation factor `1 + magnitude`.
    Color,
    /// Contrast factor `1 + magnitude`.
    Contrast,
    /// Sharpness factor `1 + magnitude`.
    Sharpness,
    /// Keep `int(magnitude)` bits.
    Posterize,
    /// Invert values at or above the threshold.
    Solarize,
    /// Stretch each channel to 0..255.
    AutoContrast,
    /// Flatten each channel's histogram.
    Equalize,
    /// `255 - v`.
    Invert,
}

impl Op {
    /// torchvision's name of the op.
    pub fn name(self) -> &'static str {
        match self {
            Op::Identity => "Identity",
            Op::ShearX => "ShearX",
            Op::ShearY => "ShearY",
            Op::TranslateX => "TranslateX",
            Op::TranslateY => "TranslateY",
            Op::Rotate => "Rotate",
            Op::Brightness => "Brightness",
            Op::Color => "Color",
            Op::Contrast => "Contrast",
            Op::Sharpness => "Sharpness",
            Op::Posterize => "Posterize",
            Op::Solarize => "Solarize",
            Op::AutoContrast => "AutoContrast",
            Op::Equalize => "Equalize",
            Op::Invert => "Invert",
        }
    }

    /// Whether the policies draw a random sign for the magnitude.
    pub fn signed(self) -> bool {
        matches!(
            self,
            Op::ShearX
                | Op::ShearY
                | Op::TranslateX
                | Op::TranslateY
                | Op::Rotate
                | Op::Brightness
                | Op::Color
                | Op::Contrast
                | Op::Sharpness
        )
    }
}

/// Element `idx` of `torch.linspace(start, end, steps)` in float32 (libtorch's CPU kernel as
/// compiled for AVX2: `start + step * i` in the first half, `end - step * (steps - 1 - i)` in
/// the second, each a fused multiply-add).
pub fn linspace_f32(start: f64, end: f64, steps: usize, idx: usize) -> f32 {
    let (a, b) = (start as f32, end as f32);
    if steps <= 1 {
        return a;
    }
    let step = (b - a) / (steps - 1) as f32;
    if idx < steps / 2 {
        step.mul_add(idx as f32, a)
    } else {
        (-step).mul_add((steps - 1 - idx) as f32, b)
    }
}

/// Number of magnitude bins of AutoAugment and AugMix.
pub const BINS: usize = 10;

/// The unsigned magnitude of `op` at `bin` of torchvision's 10-bin spaces for an `(w, h)` image;
/// `augmix` selects AugMix's translate range (a third of the side) and posterize base (4 bits).
pub fn magnitude(op: Op, bin: usize, (w, h): (usize, usize), augmix: bool) -> f64 {
    let lin = |end: f64| linspace_f32(0.0, end, BINS, bin) as f64;
    let bits =
        |base: f64| base - ((bin as f32) / ((BINS - 1) as f32 / 4.0)).round_ties_even() as f64;
    match op {
        Op::ShearX | Op::ShearY => lin(0.3),
        Op::TranslateX if augmix => lin(w as f64 / 3.0),
        Op::TranslateY if augmix => lin(h as f64 / 3.0),
        Op::TranslateX => lin(150.0 / 331.0 * w as f64),
        Op::TranslateY => lin(150.0 / 331.0 * h as f64),
        Op::Rotate => lin(30.0),
        Op::Brightness | Op::Color | Op::Contrast | Op::Sharpness => lin(0.9),
        Op::Posterize => bits(if augmix { 4.0 } else { 8.0 }),
        Op::Solarize => linspace_f32(255.0, 0.0, BINS, bin) as f64,
        Op::Identity | Op::AutoContrast | Op::Equalize | Op::Invert => 0.0,
    }
}

// ---------------------------------------------------------------------------------------------
// AutoAugment (ImageNet policy)
// ---------------------------------------------------------------------------------------------

/// One half of a sub-policy: the op, its probability and its magnitude bin.
pub type PolicyOp = (Op, f64, Option<usize>);

/// torchvision's `AutoAugmentPolicy.IMAGENET`: 25 sub-policies of two ops.
pub const IMAGENET_POLICY: [[PolicyOp; 2]; 25] = {
    use Op::*;
    [
        [(Posterize, 0.4, Some(8)), (Rotate, 0.6, Some(9))],
        [(Solarize, 0.6, Some(5)), (AutoContrast, 0.6, None)],
        [(Equalize, 0.8, None), (Equalize, 0.6, None)],
        [(Posterize, 0.6, Some(7)), (Posterize, 0.6, Some(6))],
        [(Equalize, 0.4, None), (Solarize, 0.2, Some(4))],
        [(Equalize, 0.4, None), (Rotate, 0.8, Some(8))],
        [(Solarize, 0.6, Some(3)), (Equalize, 0.6, None)],
        [(Posterize, 0.8, Some(5)), (Equalize, 1.0, None)],
        [(Rotate, 0.2, Some(3)), (Solarize, 0.6, Some(8))],
        [(Equalize, 0.6, None), (Posterize, 0.4, Some(6))],
        [(Rotate, 0.8, Some(8)), (Color, 0.4, Some(0))],
        [(Rotate, 0.4, Some(9)), (Equalize, 0.6, None)],
        [(Equalize, 0.0, None), (Equalize, 0.8, None)],
        [(Invert, 0.6, None), (Equalize, 1.0, None)],
        [(Color, 0.6, Some(4)), (Contrast, 1.0, Some(8))],
        [(Rotate, 0.8, Some(8)), (Color, 1.0, Some(2))],
        [(Color, 0.8, Some(8)), (Solarize, 0.8, Some(7))],
        [(Sharpness, 0.4, Some(7)), (Invert, 0.6, None)],
        [(ShearX, 0.6, Some(5)), (Equalize, 1.0, None)],
        [(Color, 0.4, Some(0)), (Equalize, 0.6, None)],
        [(Equalize, 0.4, None), (Solarize, 0.2, Some(4))],
        [(Solarize, 0.6, Some(5)), (AutoContrast, 0.6, None)],
        [(Invert, 0.6, None), (Equalize, 1.0, None)],
        [(Color, 0.6, Some(4)), (Contrast, 1.0, Some(8))],
        [(Equalize, 0.8, None), (Equalize, 0.6, None)],
    ]
};

/// The random draws of one AutoAugment call (`get_params`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoAugmentDraw {
    /// The sub-policy index.
    pub policy: usize,
    /// Per op: applied when `probs[i] <= p`.
    pub probs: [f32; 2],
    /// Per op: the sign bit (0 negates a signed magnitude).
    pub signs: [u8; 2],
}

impl AutoAugmentDraw {
    /// Draws as torchvision's `get_params`: a uniform sub-policy, two uniform floats, two bits.
    pub fn sample(rng: &mut impl Rng) -> Self {
        Self {
            policy: rng.gen_range(0..IMAGENET_POLICY.len()),
            probs: [rng.gen(), rng.gen()],
            signs: [rng.gen_range(0..2), rng.gen_range(0..2)],
        }
    }
}

/// AutoAugment's sub-policy `draw.policy` applied to `img` (`w x h` RGB bytes) with the PIL ops.
pub fn autoaugment_apply(img: &mut Vec<u8>, size: (usize, usize), draw: &AutoAugmentDraw) {
    let sub = IMAGENET_POLICY[draw.policy % IMAGENET_POLICY.len()];
    for (i, (op, p, bin)) in sub.into_iter().enumerate() {
        if draw.probs[i] <= p as f32 {
            let mut m = bin.map_or(0.0, |b| magnitude(op, b, size, false));
            if op.signed() && draw.signs[i] == 0 {
                m = -m;
            }
            pil_op(img, size, op, m);
        }
    }
}

/// `AutoAugment(AutoAugmentPolicy.IMAGENET, interpolation=bilinear)` on `img` in place.
pub fn autoaugment(img: &mut Vec<u8>, size: (usize, usize), rng: &mut impl Rng) {
    let draw = AutoAugmentDraw::sample(rng);
    autoaugment_apply(img, size, &draw);
}

// ---------------------------------------------------------------------------------------------
// AugMix
// ---------------------------------------------------------------------------------------------

/// AugMix's ops with `all_ops=True`, in torchvision's order.
pub const AUGMIX_OPS: [Op; 13] = [
    Op::ShearX,
    Op::ShearY,
    Op::TranslateX,
    Op::TranslateY,
    Op::Rotate,
    Op::Posterize,
    Op::Solarize,
    Op::AutoContrast,
    Op::Equalize,
    Op::Brightness,
    Op::Color,
    Op::Contrast,
    Op::Sharpness,
];

/// AugMix's severity (magnitude bins 0..severity), mixture width and Dirichlet alpha.
pub const AUGMIX_SEVERITY: usize = 3;
/// Number of augmentation chains.
pub const AUGMIX_WIDTH: usize = 3;
/// Dirichlet concentration of both weight draws.
pub const AUGMIX_ALPHA: f64 = 1.0;

/// The random draws of one AugMix call.
#[derive(Debug, Clone, PartialEq)]
pub struct AugMixDraw {
    /// Beta weights `(original, augmented)` (a 2-way Dirichlet).
    pub m: [f32; 2],
    /// Chain weights (a Dirichlet), before scaling by `m[1]`.
    pub w: Vec<f32>,
    /// Per chain, its ops and signed magnitudes.
    pub chains: Vec<Vec<(Op, f64)>>,
}

/// A symmetric Dirichlet(`alpha`) draw of `k` weights in float32 (normalised Gamma draws).
fn dirichlet(k: usize, alpha: f64, rng: &mut impl Rng) -> Vec<f32> {
    let g = rand_distr::Gamma::new(alpha, 1.0).expect("positive alpha");
    let x: Vec<f64> = (0..k)
        .map(|_| rng.sample(g).max(f64::MIN_POSITIVE))
        .collect();
    let s: f64 = x.iter().sum();
    x.iter().map(|v| (v / s) as f32).collect()
}

impl AugMixDraw {
    /// Draws as torchvision's forward: the Beta and chain Dirichlet weights, then per chain a
    /// depth in 1..=3 and per step an op, a magnitude bin below the severity and a sign.
    pub fn sample((w, h): (usize, usize), rng: &mut impl Rng) -> Self {
        let m = dirichlet(2, AUGMIX_ALPHA, rng);
        let wts = dirichlet(AUGMIX_WIDTH, AUGMIX_ALPHA, rng);
        let chains = (0..AUGMIX_WIDTH)
            .map(|_| {
                let depth = rng.gen_range(1..=3);
                (0..depth)
                    .map(|_| {
                        let op = AUGMIX_OPS[rng.gen_range(0..AUGMIX_OPS.len())];
                        let has_bins = !matches!(op, Op::AutoContrast | Op::Equalize);
                        let mut mag = if has_bins {
                            magnitude(op, rng.gen_range(0..AUGMIX_SEVERITY), (w, h), true)
                        } else {
                            0.0
                        };
                        if op.signed() && rng.gen::<bool>() {
                            mag = -mag;
                        }
                        (op, mag)
                    })
                    .collect()
            })
            .collect();
        Self {
            m: [m[0], m[1]],
            w: wts,
            chains,
        }
    }
}

/// AugMix with fixed draws on `img` (`w x h` RGB bytes): `m0 x + sum_i (w_i m1) chain_i(x)` in
/// float32, truncated to bytes.
pub fn augmix_apply(img: &[u8], size: (usize, usize), draw: &AugMixDraw) -> Vec<u8> {
    let mut mix: Vec<f32> = img.iter().map(|&v| draw.m[0] * v as f32).collect();
    for (chain, &wi) in draw.chains.iter().zip(&draw.w) {
        let c = wi * draw.m[1];
        let mut aug = img.to_vec();
        for &(op, mag) in chain {
            tensor_op(&mut aug, size, op, mag);
        }
        for (m, &a) in mix.iter_mut().zip(&aug) {
            *m += c * a as f32;
        }
    }
    mix.into_iter().map(|v| v as u8).collect()
}

/// `AugMix(interpolation=bilinear)` (severity 3, width 3, depth 1-3, alpha 1, all ops) of `img`.
pub fn augmix(img: &[u8], size: (usize, usize), rng: &mut impl Rng) -> Vec<u8> {
    let draw = AugMixDraw::sample(size, rng);
    augmix_apply(img, size, &draw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The torchvision references written by `scripts/cls_policy_ref.py`.
    struct Ref {
        json: Value,
        bin: Vec<u8>,
        size: (usize, usize),
    }

    impl Ref {
        fn load() -> Self {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
            let text = std::fs::read_to_string(dir.join("cls_policy_ref.json")).unwrap();
            let json: Value = serde_json::from_str(&text).unwrap();
            let bin = std::fs::read(dir.join("cls_policy_ref.bin")).unwrap();
            let size = (
                json["w"].as_u64().unwrap() as usize,
                json["h"].as_u64().unwrap() as usize,
            );
            Self { json, bin, size }
        }

        /// The image at byte offset `v`.
        fn img(&self, v: &Value) -> Vec<u8> {
            let off = v.as_u64().unwrap() as usize;
            self.bin[off..off + self.size.0 * self.size.1 * 3].to_vec()
        }
    }

    fn op_named(s: &str) -> Op {
        crate::data::classify::RANDAUGMENT_OPS
            .into_iter()
            .chain([Op::Invert])
            .find(|o| o.name() == s)
            .unwrap_or_else(|| panic!("unknown op {s}"))
    }

    /// A float32 value torchvision wrote (serde_json's parse may be one f64 ulp off; every
    /// magnitude torchvision makes is a float32).
    fn f32_value(v: &Value) -> f64 {
        v.as_f64().unwrap() as f32 as f64
    }

    /// Bytes that differ and the largest difference.
    fn diff(a: &[u8], b: &[u8]) -> (usize, i32) {
        a.iter().zip(b).fold((0, 0), |(n, m), (&x, &y)| {
            let d = (x as i32 - y as i32).abs();
            (n + (d > 0) as usize, m.max(d))
        })
    }

    /// Runs every case of `key` through `apply` and asserts the bytes equal torchvision's.
    fn assert_ops_exact(key: &str, apply: fn(&mut Vec<u8>, (usize, usize), Op, f64)) {
        let r = Ref::load();
        let src = r.img(&r.json["image"]);
        let cases = r.json[key].as_array().unwrap();
        assert!(cases.len() > 40, "{key}: {} cases", cases.len());
        for c in cases {
            let op = op_named(c["op"].as_str().unwrap());
            let mag = f32_value(&c["mag"]);
            let mut img = src.clone();
            apply(&mut img, r.size, op, mag);
            assert_eq!(img.len(), src.len());
            let (n, max) = diff(&img, &r.img(&c["out"]));
            assert_eq!(
                (n, max),
                (0, 0),
                "{key} {op:?} {mag}: {n} bytes differ, max {max}"
            );
        }
    }

    /// Exact: every op of `_apply_op` on a PIL image (AutoAugment's magnitudes and RandAugment's
    /// magnitude 9 of 31, both signs) equals torchvision 0.26 / Pillow byte for byte.
    #[test]
    fn classify_pil_ops_equal_torchvision() {
        assert_ops_exact("pil_ops", pil_op);
    }

    /// Exact: every AugMix op on the uint8 tensor (severities 0-2, both signs) equals torchvision
    /// byte for byte (warps: libtorch's FMA CPU kernel; a CPU without FMA may differ by 1 level).
    #[test]
    fn classify_tensor_ops_equal_torchvision() {
        assert_ops_exact("tensor_ops", tensor_op);
    }

    /// Exact: the 10-bin magnitude tables (float32 linspace, posterize rounding) of AutoAugment
    /// and AugMix, and RandAugment's bin 9 of 31, equal torchvision's for a 20x16 image.
    #[test]
    fn classify_magnitude_tables_equal_torchvision() {
        let r = Ref::load();
        for (key, augmix) in [("autoaugment_space", false), ("augmix_space", true)] {
            let space = r.json[key].as_object().unwrap();
            for (name, vals) in space {
                let op = op_named(name);
                match vals {
                    Value::Array(v) => {
                        assert_eq!(v.len(), BINS);
                        for (bin, want) in v.iter().enumerate() {
                            let got = magnitude(op, bin, r.size, augmix);
                            assert_eq!(got, f32_value(want), "{key} {name} bin {bin}");
                        }
                    }
                    v => assert_eq!(magnitude(op, 0, r.size, augmix), f32_value(v)),
                }
            }
        }
        for (name, vals) in r.json["randaugment_space"].as_object().unwrap() {
            let want = match vals {
                Value::Array(v) => f32_value(&v[9]),
                v => f32_value(v),
            };
            let got = super::super::classify::randaugment_magnitude(op_named(name), r.size);
            assert_eq!(got, want, "randaugment {name}");
        }
        let ops: Vec<&str> = r.json["augmix_ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(ops, AUGMIX_OPS.map(Op::name));
    }

    /// Exact: the 25 ImageNet sub-policies (op, probability, magnitude bin) equal torchvision's.
    #[test]
    fn classify_imagenet_policy_table_equals_torchvision() {
        let r = Ref::load();
        let table = r.json["imagenet_policy"].as_array().unwrap();
        assert_eq!(table.len(), IMAGENET_POLICY.len());
        for (i, (sub, ours)) in table.iter().zip(IMAGENET_POLICY).enumerate() {
            for (j, (t, (op, p, bin))) in sub.as_array().unwrap().iter().zip(ours).enumerate() {
                assert_eq!(t[0].as_str().unwrap(), op.name(), "sub-policy {i} op {j}");
                assert_eq!(t[1].as_f64().unwrap(), p, "sub-policy {i} op {j}");
                assert_eq!(
                    t[2].as_u64().map(|b| b as usize),
                    bin,
                    "sub-policy {i} op {j}"
                );
            }
        }
    }

    /// Exact: AutoAugment with torchvision's draws forced (every sub-policy with both ops on,
    /// plus seeded draws where some ops are skipped) equals torchvision's output.
    #[test]
    fn classify_autoaugment_equals_torchvision_on_forced_draws() {
        let r = Ref::load();
        let src = r.img(&r.json["image"]);
        let cases = r.json["autoaugment_cases"].as_array().unwrap();
        let f = |v: &Value, i: usize| v[i].as_f64().unwrap();
        let mut seen = std::collections::HashSet::new();
        for c in cases {
            let draw = AutoAugmentDraw {
                policy: c["policy"].as_u64().unwrap() as usize,
                probs: [f(&c["probs"], 0) as f32, f(&c["probs"], 1) as f32],
                signs: [f(&c["signs"], 0) as u8, f(&c["signs"], 1) as u8],
            };
            seen.insert(draw.policy);
            let mut img = src.clone();
            autoaugment_apply(&mut img, r.size, &draw);
            assert_eq!(diff(&img, &r.img(&c["out"])), (0, 0), "{draw:?}");
        }
        assert_eq!(seen.len(), 25);
    }

    /// Exact: AugMix with the draws torchvision made (its Dirichlet weights and chain ops,
    /// recorded from 10 seeded calls) equals torchvision's output, mixing included.
    #[test]
    fn classify_augmix_equals_torchvision_on_recorded_draws() {
        let r = Ref::load();
        let src = r.img(&r.json["image"]);
        let floats = |v: &Value| -> Vec<f32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        };
        for (k, c) in r.json["augmix_cases"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let m = floats(&c["m"]);
            let chains = c["chains"]
                .as_array()
                .unwrap()
                .iter()
                .map(|ch| {
                    ch.as_array()
                        .unwrap()
                        .iter()
                        .map(|s| (op_named(s[0].as_str().unwrap()), f32_value(&s[1])))
                        .collect()
                })
                .collect();
            let draw = AugMixDraw {
                m: [m[0], m[1]],
                w: floats(&c["w"]),
                chains,
            };
            let out = augmix_apply(&src, r.size, &draw);
            assert_eq!(diff(&out, &r.img(&c["out"])), (0, 0), "case {k}: {draw:?}");
        }
    }

    /// Exact: the mixing formula on a forced chain (Invert only), computed here in float32 as
    /// torchvision writes it: `trunc(m0 x + (w0 m1) (255 - x) + (w1 m1) x + (w2 m1) x)`.
    #[test]
    fn classify_augmix_mixing_formula() {
        let size = (4, 3);
        let img: Vec<u8> = (0..36).map(|i| (i * 7 + 3) as u8).collect();
        let draw = AugMixDraw {
            m: [0.3, 0.7],
            w: vec![0.5, 0.25, 0.25],
            chains: vec![vec![(Op::Invert, 0.0)], vec![], vec![(Op::Identity, 0.0)]],
        };
        let out = augmix_apply(&img, size, &draw);
        for (i, &x) in img.iter().enumerate() {
            let xf = x as f32;
            let mut v = 0.3f32 * xf;
            v += (0.5f32 * 0.7f32) * (255.0 - xf);
            v += (0.25f32 * 0.7f32) * xf;
            v += (0.25f32 * 0.7f32) * xf;
            assert_eq!(out[i], v as u8, "byte {i}");
        }
    }

    /// Statistical (within a few percent of the expected rates over 20 000 draws): AutoAugment
    /// draws every sub-policy uniformly and applies each op at its probability; AugMix draws every
    /// op, depths 1-3, bins 0-2 and both signs, with Beta/Dirichlet weights of mean 1/2 and 1/3.
    #[test]
    fn classify_policy_draws_cover_the_ops() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(13);
        let n = 20_000;
        let mut per_policy = [0usize; 25];
        let mut applied = [[0usize; 2]; 25];
        for _ in 0..n {
            let d = AutoAugmentDraw::sample(&mut rng);
            per_policy[d.policy] += 1;
            for i in 0..2 {
                applied[d.policy][i] +=
                    (d.probs[i] <= IMAGENET_POLICY[d.policy][i].1 as f32) as usize;
            }
        }
        for (k, &c) in per_policy.iter().enumerate() {
            assert!((c as f64 / n as f64 - 0.04).abs() < 0.01, "policy {k}: {c}");
            for i in 0..2 {
                let rate = applied[k][i] as f64 / c as f64;
                let p = IMAGENET_POLICY[k][i].1;
                assert!((rate - p).abs() < 0.06, "policy {k} op {i}: {rate} vs {p}");
            }
        }
        let size = (224, 224);
        let mut ops = std::collections::HashMap::new();
        let (mut depths, mut mags) = ([0usize; 4], std::collections::HashSet::new());
        let (mut m0, mut w0, mut neg) = (0.0f64, 0.0f64, 0usize);
        let draws = 5_000;
        for _ in 0..draws {
            let d = AugMixDraw::sample(size, &mut rng);
            assert!((d.m[0] + d.m[1] - 1.0).abs() < 1e-6);
            assert!((d.w.iter().sum::<f32>() - 1.0).abs() < 1e-6 && d.w.len() == 3);
            m0 += d.m[0] as f64;
            w0 += d.w[0] as f64;
            for ch in &d.chains {
                depths[ch.len()] += 1;
                for &(op, mag) in ch {
                    *ops.entry(op).or_insert(0usize) += 1;
                    mags.insert((op, mag.abs().to_bits()));
                    neg += (mag < 0.0) as usize;
                }
            }
        }
        assert!((m0 / draws as f64 - 0.5).abs() < 0.02, "{m0}");
        assert!((w0 / draws as f64 - 1.0 / 3.0).abs() < 0.02, "{w0}");
        assert_eq!(depths[0], 0);
        for (d, &count) in depths.iter().enumerate().skip(1) {
            let share = count as f64 / (3 * draws) as f64;
            assert!((share - 1.0 / 3.0).abs() < 0.03, "depth {d}: {share}");
        }
        let total: usize = ops.values().sum();
        for op in AUGMIX_OPS {
            let share = ops.get(&op).copied().unwrap_or(0) as f64 / total as f64;
            assert!((share - 1.0 / 13.0).abs() < 0.015, "{op:?}: {share}");
            let want = match op {
                Op::AutoContrast | Op::Equalize => 1,
                Op::Posterize => 2, // bins 0 and 1 both keep 4 bits
                _ => 3,
            };
            let got = mags.iter().filter(|(o, _)| *o == op).count();
            assert_eq!(got, want, "{op:?} magnitudes");
        }
        assert!(neg > total / 5, "{neg} negative of {total}");
    }
}
