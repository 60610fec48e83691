//! Label filters applied to a whole split: `classes=` keeps the labels of some classes only.

use super::LabelEntry;

/// Keeps the items of `v` whose flag in `keep` is set.
fn retain_by<T>(v: &mut Vec<T>, keep: &[bool]) {
    let mut k = keep.iter();
    v.retain(|_| *k.next().unwrap_or(&false));
}

/// Keeps only the labels of `classes` (Ultralytics' `classes=` for train and val datasets), with
/// their polygons, keypoints and corners.
pub fn keep_classes(entries: &mut [LabelEntry], classes: &[usize]) {
    for e in entries {
        let keep: Vec<bool> = e
            .cls
            .iter()
            .map(|c| classes.contains(&(*c as usize)))
            .collect();
        retain_by(&mut e.cls, &keep);
        retain_by(&mut e.boxes, &keep);
        if let Some(s) = e.segments.as_mut() {
            retain_by(s, &keep);
        }
        if let Some(k) = e.keypoints.as_mut() {
            retain_by(k, &keep);
        }
        if let Some(c) = e.corners.as_mut() {
            retain_by(c, &keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_asked_classes() {
        let mut e = vec![LabelEntry {
            im_file: "a.jpg".into(),
            shape: (10, 10),
            cls: vec![0, 1, 2, 1],
            boxes: vec![[0.1; 4], [0.2; 4], [0.3; 4], [0.4; 4]],
            segments: Some(vec![
                vec![[0.1, 0.1]],
                vec![[0.2, 0.2]],
                vec![],
                vec![[0.4, 0.4]],
            ]),
            keypoints: None,
            corners: None,
        }];
        keep_classes(&mut e, &[1]);
        assert_eq!(e[0].cls, vec![1, 1]);
        assert_eq!(e[0].boxes, vec![[0.2; 4], [0.4; 4]]);
        assert_eq!(
            e[0].segments,
            Some(vec![vec![[0.2, 0.2]], vec![[0.4, 0.4]]])
        );
    }
}
