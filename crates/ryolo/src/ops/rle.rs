//! COCO run-length encoding of masks for `save_json` (spec/segment.md §7.6): pycocotools'
//! `mask.encode` runs and its compressed `counts` string. Free of libtorch types.

/// Run lengths of an `h x w` row-major mask read in column-major (Fortran) order, starting with a
/// run of zeros (possibly empty), like pycocotools' `rleEncode`: a new run starts wherever the byte
/// value changes (masks are expected to hold 0/1). Empty when the mask is shorter than `h * w`.
pub fn rle_counts(mask: &[u8], h: usize, w: usize) -> Vec<u32> {
    if mask.len() < h * w {
        return Vec::new();
    }
    let mut counts = Vec::new();
    let (mut prev, mut run) = (0u8, 0u32);
    for x in 0..w {
        for y in 0..h {
            let v = mask[y * w + x];
            if v != prev {
                counts.push(run);
                run = 0;
                prev = v;
            }
            run += 1;
        }
    }
    counts.push(run);
    counts
}

/// pycocotools' `rleToString`: each count (minus the count two places back, from the fourth on)
/// as little-endian 5-bit groups with a continuation bit, each char offset by 48.
pub fn rle_string(counts: &[u32]) -> String {
    let mut s = String::with_capacity(counts.len() * 2);
    for (i, &c) in counts.iter().enumerate() {
        let mut x = c as i64;
        if i > 2 {
            x -= counts[i - 2] as i64;
        }
        loop {
            let mut ch = (x & 0x1f) as u8;
            x >>= 5;
            let more = if ch & 0x10 != 0 { x != -1 } else { x != 0 };
            if more {
                ch |= 0x20;
            }
            s.push((ch + 48) as char);
            if !more {
                break;
            }
        }
    }
    s
}

/// The COCO compressed RLE `counts` string of an `h x w` row-major 0/1 mask (what
/// `pycocotools.mask.encode(np.asfortranarray(mask))["counts"]` gives).
pub fn rle_encode(mask: &[u8], h: usize, w: usize) -> String {
    rle_string(&rle_counts(mask, h, w))
}

/// pycocotools' `rleFrString`: the run lengths of a compressed `counts` string (the inverse of
/// [`rle_string`]). `None` when a character is outside the code range or the string ends inside a
/// number.
pub fn rle_from_string(s: &str) -> Option<Vec<u32>> {
    let bytes = s.as_bytes();
    let mut counts: Vec<u32> = Vec::with_capacity(bytes.len());
    let mut p = 0;
    while p < bytes.len() {
        let (mut x, mut k, mut more) = (0i64, 0u32, true);
        while more {
            let c = i64::from(*bytes.get(p)?) - 48;
            if !(0..64).contains(&c) || k > 12 {
                return None;
            }
            x |= (c & 0x1f) << (5 * k);
            more = c & 0x20 != 0;
            p += 1;
            k += 1;
            if !more && c & 0x10 != 0 {
                x |= -1i64 << (5 * k);
            }
        }
        if counts.len() > 2 {
            x += i64::from(counts[counts.len() - 2]);
        }
        counts.push(x as u32);
    }
    Some(counts)
}

/// pycocotools' `rleDecode`: the row-major `h x w` 0/1 mask of column-major runs (zeros first).
/// Runs past the end are cut; a mask the runs do not fill is zero at the end.
pub fn rle_decode(counts: &[u32], h: usize, w: usize) -> Vec<u8> {
    let n = h * w;
    let mut mask = vec![0u8; n];
    let (mut at, mut v) = (0usize, 0u8);
    for &c in counts {
        let end = at.saturating_add(c as usize).min(n);
        if v == 1 {
            for i in at..end {
                // Column-major index i is row i % h, column i / h.
                mask[(i % h) * w + i / h] = 1;
            }
        }
        at = end;
        v ^= 1;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn matches_pycocotools() {
        // Reference strings printed by pycocotools 2.0.11 `mask.encode`.
        assert_eq!(
            rle_encode(&bits("100000001110001110001110000000"), 5, 6),
            "01:2H0004"
        );
        assert_eq!(rle_encode(&[1; 9], 3, 3), "09");
        assert_eq!(rle_encode(&[0; 9], 3, 3), "9");
        // Runs split on any byte change, as in pycocotools.
        assert_eq!(rle_encode(&[2, 1, 0, 255], 2, 2), "01100");
        let mut m = vec![0u8; 40 * 30];
        for y in 3..37 {
            for x in 4..29 {
                m[y * 30 + x] = !((10..20).contains(&y) && (10..12).contains(&x)) as u8;
            }
        }
        assert_eq!(
            rle_encode(&m, 40, 30),
            "S5R160000000000UO4:LF4:La000000000000000000000000000000000U1"
        );
    }

    #[test]
    fn empty_and_short_inputs() {
        assert_eq!(rle_counts(&[], 0, 0), vec![0]);
        assert_eq!(rle_encode(&[], 0, 0), "0");
        assert!(rle_counts(&[1, 0], 2, 2).is_empty());
        assert_eq!(rle_encode(&[1, 0], 2, 2), "");
    }

    #[test]
    fn decode_inverts_encode() {
        let mut m = vec![0u8; 23 * 17];
        for (i, v) in m.iter_mut().enumerate() {
            *v = ((i * 7919) % 13 < 5) as u8;
        }
        let counts = rle_counts(&m, 23, 17);
        let s = rle_string(&counts);
        assert_eq!(rle_from_string(&s).unwrap(), counts);
        assert_eq!(rle_decode(&counts, 23, 17), m);
        let m = bits("100000001110001110001110000000");
        assert_eq!(rle_from_string("01:2H0004").unwrap(), rle_counts(&m, 5, 6));
        // Hostile strings: out of range, cut inside a number; runs past the end are cut.
        assert!(rle_from_string("0\u{7f}").is_none());
        assert!(rle_from_string("0P").is_none());
        assert_eq!(rle_decode(&[1, 100], 2, 2), [0, 1, 1, 1]);
        assert_eq!(rle_decode(&[], 2, 2), [0; 4]);
    }
}
