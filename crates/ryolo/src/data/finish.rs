//! The last augmentation steps (spec/augment.md §7-8: random HSV, up-down and left-right flips,
//! BGR order): drawn first, labels flipped at once, pixels finished row by row as they are
//! written to their batch slot (one pass instead of colour, flip and copy passes).

use super::augment::mirror_rgb;
use super::hsv::HsvDraw;
use super::instances::Instances;
use rand::Rng;

/// The flips of a dataset: probabilities (both 0 for keypoints without `flip_idx`) and the
/// keypoint order after a flip.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flips<'a> {
    /// Up-down probability.
    pub ud: f64,
    /// Left-right probability.
    pub lr: f64,
    /// `flip_idx`, when known.
    pub idx: Option<&'a [usize]>,
    /// Probability of a BGR (red-blue swapped) sample.
    pub bgr: f64,
}

/// Pixels a finish reads: interleaved RGB or one grey channel, `h` rows of `w` pixels.
#[derive(Clone, Copy)]
pub(crate) enum Pixels<'a> {
    /// `h * w * 3` bytes.
    Rgb(&'a [u8]),
    /// `h * w` bytes (the same value on the three channels).
    Grey(&'a [u8]),
}

/// One sample's last-step draws.
pub(crate) struct Finish {
    hsv: Option<HsvDraw>,
    ud: bool,
    lr: bool,
    bgr: bool,
}

impl Finish {
    /// Draws HSV, up-down, left-right and BGR in Ultralytics' order (each draw made whatever its
    /// probability) and flips `inst` (a `w x h` image's labels in pixels). `grey`: the pixels are
    /// grey, where BGR changes nothing (still drawn, keeping the streams aligned).
    pub(crate) fn draw(
        inst: &mut Instances,
        (w, h): (usize, usize),
        grey: bool,
        hsv: [f64; 3],
        f: Flips,
        rng: &mut impl Rng,
    ) -> Self {
        let hsv = HsvDraw::draw(hsv, rng);
        let ud = rng.gen::<f64>() < f.ud;
        if ud {
            inst.flip_ud(h as f32, f.idx);
        }
        let lr = rng.gen::<f64>() < f.lr;
        if lr {
            inst.flip_lr(w as f32, f.idx);
        }
        let bgr = f.bgr > 0.0 && rng.gen::<f64>() < f.bgr && !grey;
        Self { hsv, ud, lr, bgr }
    }

    /// Writes the finished `w x h` RGB pixels of `src` to `dst` (`h * w * 3` bytes).
    pub(crate) fn write(&self, src: Pixels, (w, h): (usize, usize), dst: &mut [u8]) {
        let row = w * 3;
        assert_eq!(dst.len(), row * h, "batch slot size");
        let mut tmp = vec![0u8; row + 16];
        for (y, out) in dst.chunks_exact_mut(row.max(1)).enumerate() {
            let sy = if self.ud { h - 1 - y } else { y };
            match src {
                Pixels::Rgb(px) => {
                    let line = &px[sy * row..(sy + 1) * row];
                    if self.lr {
                        mirror_rgb(line, &mut tmp);
                        out.copy_from_slice(&tmp[..row]);
                    } else {
                        out.copy_from_slice(line);
                    }
                    if let Some(d) = &self.hsv {
                        d.apply(out);
                    }
                    if self.bgr {
                        for p in out.as_chunks_mut::<3>().0 {
                            p.swap(0, 2);
                        }
                    }
                }
                Pixels::Grey(px) => {
                    let line = &px[sy * w..(sy + 1) * w];
                    let lut = self.hsv.as_ref().map(HsvDraw::lut_v);
                    for (x, p) in out.as_chunks_mut::<3>().0.iter_mut().enumerate() {
                        let v = line[if self.lr { w - 1 - x } else { x }];
                        let v = lut.map_or(v, |l| l[v as usize]);
                        *p = [v, v, v];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::{fliplr, flipud, random_hsv, GreySample, Sample};
    use crate::ops::Rgb;
    use rand::SeedableRng;

    fn labels(w: usize, h: usize) -> Instances {
        Instances {
            cls: vec![0, 3],
            boxes: vec![[1.0, 2.0, 5.0, 9.0], [0.0, 0.0, w as f32, h as f32 / 2.0]],
            ..Default::default()
        }
    }

    /// Finishing row by row into a slot gives the bytes and labels of the in-place steps in
    /// Ultralytics' order (HSV, up-down, left-right, BGR), for RGB and grey pixels, odd widths,
    /// every flip combination and no HSV draw.
    #[test]
    fn finishing_into_a_slot_equals_colour_then_flips_in_place() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(9);
        let mut seen = std::collections::HashSet::new();
        for case in 0..96 {
            let (w, h) = [(37, 23), (64, 16), (5, 7), (48, 1)][case % 4];
            let gains = if case % 5 == 4 {
                [0.0; 3]
            } else {
                [0.015, 0.7, 0.4]
            };
            let flips = Flips {
                ud: 0.5,
                lr: 0.5,
                idx: None,
                bgr: 0.5,
            };
            let grey = case % 3 == 2;
            let px: Vec<u8> = (0..w * h * if grey { 1 } else { 3 })
                .map(|k| if k % 7 == 0 { 114 } else { rng.gen() })
                .collect();
            let draws = rng.clone();
            // Ours: draws first, then the pixels written into a slot.
            let mut inst = labels(w, h);
            let fin = Finish::draw(&mut inst, (w, h), grey, gains, flips, &mut rng);
            seen.insert((fin.ud, fin.lr, fin.bgr, grey));
            let mut slot = vec![0u8; w * h * 3];
            let src = if grey {
                Pixels::Grey(&px)
            } else {
                Pixels::Rgb(&px)
            };
            fin.write(src, (w, h), &mut slot);
            // The reference: each step on the whole image, in place.
            let mut r = draws;
            let want = if grey {
                let mut g = GreySample {
                    w,
                    h,
                    data: px.clone(),
                    instances: labels(w, h),
                };
                g.random_hsv(gains, &mut r);
                if r.gen::<f64>() < flips.ud {
                    g.flipud(None);
                }
                if r.gen::<f64>() < flips.lr {
                    g.fliplr(None);
                }
                let _ = r.gen::<f64>() < flips.bgr;
                g.into_rgb()
            } else {
                let mut s = Sample {
                    img: Rgb {
                        w,
                        h,
                        data: px.clone(),
                    },
                    instances: labels(w, h),
                };
                random_hsv(&mut s.img, gains, &mut r);
                if r.gen::<f64>() < flips.ud {
                    flipud(&mut s, None);
                }
                if r.gen::<f64>() < flips.lr {
                    fliplr(&mut s, None);
                }
                if r.gen::<f64>() < flips.bgr {
                    for p in s.img.data.as_chunks_mut::<3>().0 {
                        p.swap(0, 2);
                    }
                }
                s
            };
            assert_eq!(slot, want.img.data, "case {case} ({w}x{h}, grey {grey})");
            assert_eq!(inst, want.instances, "case {case}");
            // Both streams end at the same place.
            assert_eq!(rng.gen::<u64>(), r.gen::<u64>(), "case {case}");
        }
        assert_eq!(
            seen.len(),
            12,
            "every flip combination (BGR off for grey) was tried"
        );
    }
}
