//! Oriented boxes drawn as Ultralytics does: a closed polyline through the four corners with the
//! label box at the first corner (spec/obb.md §9).

use image::RgbImage;

/// A rotated box to draw: its four corners (pixels), class and optional label.
pub type RotatedBox = ([[f32; 2]; 4], usize, Option<String>);

/// Draws rotated boxes: `(corners in pixels, class, label)`; `line_width` None picks Ultralytics'
/// `max(round((h + w) / 2 * 0.003), 2)`.
pub fn draw_rotated_boxes(img: &mut RgbImage, boxes: &[RotatedBox], line_width: Option<u32>) {
    let lw = line_width.unwrap_or_else(|| {
        ((((img.width() + img.height()) as f32) / 2.0 * 0.003).round() as u32).max(2)
    });
    for (c, cls, label) in boxes {
        let col = super::class_color(*cls);
        for i in 0..4 {
            let (a, b) = (c[i], c[(i + 1) % 4]);
            super::pose::thick_line(img, (a[0], a[1]), (b[0], b[1]), lw as f32, col);
        }
        if let Some(text) = label {
            // The label box hangs from the first corner, drawn as a zero-size box there.
            let p = c[0];
            super::draw_label(img, (p[0], p[1]), *cls, text, lw);
        }
    }
}

/// Rotated boxes of one image in a batch plot: `[cx, cy, w, h, θ]` in the image's pixels, class,
/// confidence (None for ground truth).
pub type RotatedBatchBoxes = Vec<([f32; 5], usize, Option<f32>)>;

/// `train_batch*.jpg` / `val_batch*_{labels,pred}.jpg` of an OBB run, as Ultralytics'
/// `plot_images` draws `xywhr` boxes: each box scaled into its tile, corners truncated to whole
/// pixels, the closed outline with the label at the first corner (predictions above 0.25).
pub fn plot_batch_rotated(
    items: &[(&crate::ops::Rgb, RotatedBatchBoxes)],
    names: &[String],
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let imgs: Vec<&crate::ops::Rgb> = items.iter().map(|(im, _)| *im).collect();
    super::plot_grid(&imgs, out, |canvas, k, s, (ox, oy)| {
        let drawn: Vec<RotatedBox> = items[k]
            .1
            .iter()
            .filter(|(_, _, c)| c.is_none_or(|c| c > 0.25))
            .map(|(b, c, conf)| {
                let b = [b[0] * s + ox, b[1] * s + oy, b[2] * s, b[3] * s, b[4]];
                let corners = crate::ops::obb::xywhr_to_corners(&b).map(|p| p.map(f32::trunc));
                (corners, *c, Some(super::batch_label(names, *c, *conf)))
            })
            .collect();
        draw_rotated_boxes(canvas, &drawn, Some(1));
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn outline_is_drawn_and_inside_is_left() {
        let mut img = RgbImage::new(64, 64);
        let c = [[10.0, 10.0], [50.0, 10.0], [50.0, 50.0], [10.0, 50.0]];
        draw_rotated_boxes(&mut img, &[(c, 3, None)], Some(2));
        assert_eq!(img.get_pixel(30, 10), &crate::plot::class_color(3));
        assert_eq!(img.get_pixel(30, 30), &Rgb([0, 0, 0]));
    }
}
