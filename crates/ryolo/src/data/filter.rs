//! Label filters applied to a whole split: `classes=` keeps the labels of some classes only.

use super::LabelEntry;

/// Keeps only the labels of `classes` (Ultralytics' `classes=` for train and val datasets).
pub fn keep_classes(entries: &mut [LabelEntry], classes: &[usize]) {
    for e in entries {
        let keep: Vec<bool> = e
            .cls
            .iter()
            .map(|c| classes.contains(&(*c as usize)))
            .collect();
        let mut k = keep.iter();
        e.cls.retain(|_| *k.next().unwrap_or(&false));
        let mut k = keep.iter();
        e.boxes.retain(|_| *k.next().unwrap_or(&false));
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
        }];
        keep_classes(&mut e, &[1]);
        assert_eq!(e[0].cls, vec![1, 1]);
        assert_eq!(e[0].boxes, vec![[0.2; 4], [0.4; 4]]);
    }
}
