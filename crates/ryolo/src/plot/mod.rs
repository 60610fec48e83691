//! Drawing: boxes with class names and confidences on images (Ultralytics' annotator look).

use ab_glyph::{FontRef, PxScale};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_text_mut, text_size};
use imageproc::rect::Rect;

static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The embedded font (DejaVu Sans, free licence).
pub fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT_BYTES).expect("embedded font is valid")
}

/// Ultralytics' 20-colour palette (hex RGB), indexed by class id modulo 20.
const PALETTE: [u32; 20] = [
    0x042AFF, 0x0BDBEB, 0xF3F3F3, 0x00DFB7, 0x111F68, 0xFF6FDD, 0xFF444F, 0xCCED00, 0x00F344,
    0xBD00FF, 0x00B4FF, 0xDD00BA, 0x00FFFF, 0x26C000, 0x01FFB3, 0x7D24FF, 0x7B0068, 0xFF1B6C,
    0xFC6D2F, 0xA2FF0B,
];

/// The colour of a class.
pub fn class_color(cls: usize) -> Rgb<u8> {
    let c = PALETTE[cls % PALETTE.len()];
    Rgb([(c >> 16) as u8, (c >> 8) as u8, c as u8])
}

/// Draws labelled boxes; `line_width` None picks Ultralytics' `max(round((h + w) / 2 * 0.003), 2)`.
pub fn draw_boxes(
    img: &mut RgbImage,
    boxes: &[([f32; 4], usize, Option<String>)],
    line_width: Option<u32>,
) {
    let lw = line_width.unwrap_or_else(|| {
        ((((img.width() + img.height()) as f32) / 2.0 * 0.003).round() as u32).max(2)
    });
    for (b, cls, label) in boxes {
        let color = class_color(*cls);
        let (x1, y1, x2, y2) = (
            b[0].round() as i32,
            b[1].round() as i32,
            b[2].round() as i32,
            b[3].round() as i32,
        );
        for t in 0..lw as i32 {
            let (w, h) = (
                (x2 - x1 - 2 * t).max(1) as u32,
                (y2 - y1 - 2 * t).max(1) as u32,
            );
            imageproc::drawing::draw_hollow_rect_mut(
                img,
                Rect::at(x1 + t, y1 + t).of_size(w, h),
                color,
            );
        }
        if let Some(text) = label {
            draw_label(img, (b[0], b[1]), *cls, text, lw);
        }
    }
}

/// Draws a filled label box with `text` whose bottom-left (or top-left when there is no room
/// above) sits at `at`, in the class colour with black or white text by luminance.
pub fn draw_label(img: &mut RgbImage, at: (f32, f32), cls: usize, text: &str, lw: u32) {
    let font = font();
    let scale = PxScale::from((lw as f32 * 6.0).max(11.0));
    let color = class_color(cls);
    let (x1, y1) = (at.0.round() as i32, at.1.round() as i32);
    let (tw, th) = text_size(scale, &font, text);
    let pad = lw as i32;
    let outside = y1 - th as i32 - 2 * pad >= 0;
    let ty = if outside {
        y1 - th as i32 - 2 * pad
    } else {
        y1
    };
    draw_filled_rect_mut(
        img,
        Rect::at(x1, ty).of_size(tw + 2 * pad as u32, th + 2 * pad as u32),
        color,
    );
    let luma = 0.299 * color[0] as f32 + 0.587 * color[1] as f32 + 0.114 * color[2] as f32;
    let txt = if luma > 160.0 {
        Rgb([0, 0, 0])
    } else {
        Rgb([255, 255, 255])
    };
    draw_text_mut(img, txt, x1 + pad, ty + pad, scale, &font, text);
}

pub mod charts;
pub mod obb;
pub mod pose;

/// Boxes of one image in a batch plot: `xyxy` pixels, class, confidence (None for ground truth).
pub type BatchBoxes = Vec<([f32; 4], usize, Option<f32>)>;

/// Paints instance masks onto an image as the batch plots do (`0.4 * pixel + 0.6 * class colour`):
/// `masks` holds `n` binary `mh x mw` masks (any grid; mapped to the image by nearest pixel).
pub fn blend_masks(
    img: &mut crate::ops::Rgb,
    masks: &[u8],
    (mh, mw): (usize, usize),
    cls: &[usize],
) {
    let npix = mh * mw;
    if npix == 0 || img.w == 0 || img.h == 0 {
        return;
    }
    for (m, &c) in masks.chunks(npix).zip(cls) {
        let col = class_color(c).0;
        for y in 0..img.h {
            let my = (y * mh / img.h).min(mh - 1);
            for x in 0..img.w {
                if m[my * mw + (x * mw / img.w).min(mw - 1)] == 0 {
                    continue;
                }
                let p = &mut img.data[(y * img.w + x) * 3..(y * img.w + x) * 3 + 3];
                for k in 0..3 {
                    p[k] = (p[k] as f32 * 0.4 + col[k] as f32 * 0.6) as u8;
                }
            }
        }
    }
}

/// A grid of up to 16 images with their boxes (`train_batch*.jpg`), at most 1920 px wide.
/// Each item: the image and boxes `(xyxy pixels, class, optional confidence)`.
pub fn plot_batch(
    items: &[(&crate::ops::Rgb, BatchBoxes)],
    names: &[String],
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let imgs: Vec<&crate::ops::Rgb> = items.iter().map(|(im, _)| *im).collect();
    plot_grid(&imgs, out, |canvas, k, s, (ox, oy)| {
        let drawn: Vec<([f32; 4], usize, Option<String>)> = items[k]
            .1
            .iter()
            .filter(|(_, _, c)| c.is_none_or(|c| c > 0.25))
            .map(|(b, c, conf)| {
                (
                    [b[0] * s + ox, b[1] * s + oy, b[2] * s + ox, b[3] * s + oy],
                    *c,
                    Some(batch_label(names, *c, *conf)),
                )
            })
            .collect();
        draw_boxes(canvas, &drawn, Some(1));
    })
}

/// A batch plot's label: the class name, with the confidence (`{:.1}`) for predictions.
pub fn batch_label(names: &[String], cls: usize, conf: Option<f32>) -> String {
    let name = names.get(cls).cloned().unwrap_or_else(|| cls.to_string());
    match conf {
        Some(p) => format!("{name} {p:.1}"),
        None => name,
    }
}

/// The grid of a batch plot: up to 16 images resized into tiles, `draw(canvas, k, scale, origin)`
/// annotating tile k, white tile borders; saved to `out`.
pub fn plot_grid(
    imgs: &[&crate::ops::Rgb],
    out: &std::path::Path,
    mut draw: impl FnMut(&mut RgbImage, usize, f32, (f32, f32)),
) -> anyhow::Result<()> {
    let imgs = &imgs[..imgs.len().min(16)];
    if imgs.is_empty() {
        return Ok(());
    }
    let ns = (imgs.len() as f64).sqrt().ceil() as usize;
    let (h, w) = (imgs[0].h, imgs[0].w);
    let scale = (1920.0 / (ns.max(1) * h.max(w)) as f64).min(1.0);
    let (th, tw) = (((h as f64) * scale) as usize, ((w as f64) * scale) as usize);
    let mut canvas = RgbImage::from_pixel((tw * ns) as u32, (th * ns) as u32, Rgb([255, 255, 255]));
    for (k, img) in imgs.iter().enumerate() {
        let tile = crate::ops::resize_linear(img, tw, th);
        // Column-major blocks, as Ultralytics' plot_images: x = w·(k // ns), y = h·(k % ns).
        let (ox, oy) = ((k / ns) * tw, (k % ns) * th);
        for y in 0..th {
            for x in 0..tw {
                let p = &tile.data[(y * tw + x) * 3..(y * tw + x) * 3 + 3];
                canvas.put_pixel((ox + x) as u32, (oy + y) as u32, Rgb([p[0], p[1], p[2]]));
            }
        }
        draw(&mut canvas, k, scale as f32, (ox as f32, oy as f32));
        imageproc::drawing::draw_hollow_rect_mut(
            &mut canvas,
            Rect::at(ox as i32, oy as i32).of_size(tw as u32, th as u32),
            Rgb([255, 255, 255]),
        );
    }
    crate::util::fsio::save_rgb(&canvas, out)
}
