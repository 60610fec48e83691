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
    let font = font();
    let scale = PxScale::from((lw as f32 * 6.0).max(11.0));
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
    }
}
