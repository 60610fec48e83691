//! Classification predictions (spec/classify.md §7): the eval transform per image, the softmax
//! vector as [`Probs`], its console text, `save_txt` lines and the annotated image.

use crate::data::classify::{eval_image, eval_image_hw, to_chw};
use crate::metrics::classify::topk;
use image::{Rgb, RgbImage};
use std::sync::Arc;

/// The class probabilities of one image (Ultralytics' `Results.probs`).
#[derive(Debug, Clone)]
pub struct Probs {
    /// Softmax probabilities, one per class.
    pub data: Vec<f32>,
    /// Class names, by id (shared by the images of a run).
    pub names: Arc<[String]>,
}

impl Probs {
    /// Wraps a probability vector and the class names.
    pub fn new(data: Vec<f32>, names: Arc<[String]>) -> Self {
        Self { data, names }
    }

    /// The most probable class (the first on ties).
    pub fn top1(&self) -> usize {
        topk(&self.data, 1).first().copied().unwrap_or(0)
    }

    /// The (up to) five most probable classes, in descending order.
    pub fn top5(&self) -> Vec<usize> {
        topk(&self.data, 5)
    }

    /// The probability of [`Probs::top1`].
    pub fn top1conf(&self) -> f32 {
        self.data.get(self.top1()).copied().unwrap_or(0.0)
    }

    /// The probabilities of [`Probs::top5`].
    pub fn top5conf(&self) -> Vec<f32> {
        self.top5().into_iter().map(|i| self.data[i]).collect()
    }

    /// The name of class `i` (`"?"` when unknown).
    pub fn name(&self, i: usize) -> &str {
        self.names.get(i).map(String::as_str).unwrap_or("?")
    }

    /// `(class, name, probability)` of the top five, descending.
    pub fn top5_items(&self) -> Vec<(usize, &str, f32)> {
        self.top5()
            .into_iter()
            .map(|i| (i, self.name(i), self.data[i]))
            .collect()
    }

    /// Ultralytics' `Results.verbose()` text: `"chair 0.72, person 0.23, bowl 0.05, "`.
    pub fn verbose(&self) -> String {
        self.top5_items()
            .iter()
            .map(|(_, n, p)| format!("{n} {p:.2}, "))
            .collect()
    }

    /// The `save_txt` text: one `"{prob:.2f} {name}"` line per top-5 class, descending.
    pub fn txt(&self) -> String {
        self.top5_items()
            .iter()
            .map(|(_, n, p)| format!("{p:.2} {n}\n"))
            .collect()
    }
}

/// The classify input of one image at `imgsz = (h, w)`: shortest edge resized and center-cropped
/// when square, resized to exactly `(h, w)` otherwise (spec/classify.md §2.1).
pub fn preprocess(img: &RgbImage, (h, w): (usize, usize)) -> Vec<f32> {
    let out = if h == w {
        eval_image(img, h)
    } else {
        eval_image_hw(img, (h, w))
    };
    to_chw(&out)
}

/// Draws the top-5 lines `"{name} {prob:.2f}"` at the top left (x = y = 3% of the height), white
/// text on a half-transparent grey box per line.
pub fn draw_probs(canvas: &mut RgbImage, probs: &Probs) {
    let (w, h) = (canvas.width(), canvas.height());
    let size = (((w + h) as f32 / 2.0 * 0.035).round()).max(12.0);
    let font = crate::plot::font();
    let scale = ab_glyph::PxScale::from(size);
    let x0 = (0.03 * h as f32).round() as i32;
    let mut y = x0;
    let pad = (size * 0.15).round().max(1.0) as i32;
    for (_, name, p) in probs.top5_items() {
        let text = format!("{name} {p:.2}");
        let (tw, th) = imageproc::drawing::text_size(scale, &font, &text);
        let lh = th.max(size as u32) as i32 + 2 * pad;
        let bw = tw as i32 + 2 * pad;
        // Blend RGBA (64, 64, 64, 128) over the box.
        for yy in y.max(0)..(y + lh).min(h as i32) {
            for xx in x0.max(0)..(x0 + bw).min(w as i32) {
                let px = canvas.get_pixel_mut(xx as u32, yy as u32);
                for c in px.0.iter_mut() {
                    *c = ((*c as u16 + 64) / 2) as u8;
                }
            }
        }
        imageproc::drawing::draw_text_mut(
            canvas,
            Rgb([255, 255, 255]),
            x0 + pad,
            y + pad,
            scale,
            &font,
            &text,
        );
        y += lh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probs() -> Probs {
        let names: Arc<[String]> = ["bowl", "chair", "person"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Probs::new(vec![0.052456, 0.717902, 0.229642], names)
    }

    #[test]
    fn top_and_text() {
        let p = probs();
        assert_eq!(p.top1(), 1);
        assert_eq!(p.top5(), vec![1, 2, 0]);
        assert_eq!(p.top1conf(), 0.717902);
        assert_eq!(p.top5conf(), vec![0.717902, 0.229642, 0.052456]);
        assert_eq!(p.verbose(), "chair 0.72, person 0.23, bowl 0.05, ");
        assert_eq!(p.txt(), "0.72 chair\n0.23 person\n0.05 bowl\n");
    }

    #[test]
    fn draws_inside_small_images() {
        let mut img = RgbImage::from_pixel(8, 6, Rgb([200, 10, 10]));
        draw_probs(&mut img, &probs());
        assert_ne!(img.get_pixel(0, 0), &Rgb([200, 10, 10]));
    }
}
