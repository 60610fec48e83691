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
