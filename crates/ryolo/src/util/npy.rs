//! Minimal NumPy `.npy` (format 1.0) for 8-bit images: `(H, W)` grey or `(H, W, 3)` RGB, C order.

/// Encodes an 8-bit grey or RGB image; `None` for other pixel formats.
pub fn encode_u8(img: &image::DynamicImage) -> Option<Vec<u8>> {
    let (w, h) = (img.width(), img.height());
    let (shape, data) = match img {
        image::DynamicImage::ImageLuma8(g) => (format!("({h}, {w})"), g.as_raw().as_slice()),
        image::DynamicImage::ImageRgb8(c) => (format!("({h}, {w}, 3)"), c.as_raw().as_slice()),
        _ => return None,
    };
    let mut header = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64.
    let total = (10 + header.len() + 1).div_ceil(64) * 64;
    while 10 + header.len() + 1 < total {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(total + data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    Some(out)
}

/// Decodes what [`encode_u8`] writes (and NumPy's own `uint8` arrays of those shapes).
pub fn decode_u8(bytes: &[u8]) -> Option<image::DynamicImage> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" || bytes[6] != 1 {
        return None;
    }
    let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(bytes.get(10..10 + hl)?).ok()?;
    if !header.contains("'|u1'") || header.contains("'fortran_order': True") {
        return None;
    }
    let shape = header.split("'shape': (").nth(1)?.split(')').next()?;
    let dims: Vec<u32> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    let data = bytes[10 + hl..].to_vec();
    match dims[..] {
        [h, w] => image::GrayImage::from_raw(w, h, data).map(image::DynamicImage::ImageLuma8),
        [h, w, 3] => image::RgbImage::from_raw(w, h, data).map(image::DynamicImage::ImageRgb8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_grey_and_rgb() {
        let g = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(5, 3, |x, y| {
            image::Luma([(x * 10 + y) as u8])
        }));
        let c = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(4, 7, |x, y| {
            image::Rgb([x as u8, y as u8, 200])
        }));
        for img in [g, c] {
            let b = encode_u8(&img).unwrap();
            assert_eq!((10 + u16::from_le_bytes([b[8], b[9]]) as usize) % 64, 0);
            assert_eq!(decode_u8(&b).unwrap(), img);
        }
        assert!(decode_u8(b"\x93NUMPY\x01\x00garbage").is_none());
        assert!(decode_u8(b"").is_none());
    }
}
