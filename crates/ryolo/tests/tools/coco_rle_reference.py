"""Writes tests/data/instances_rle.json and prints what Ultralytics 8.4.190
`convert_coco(use_segments=True)` makes of it (the RLE_REFERENCE of tests/segment_data.rs).

Usage: YOLO_OFFLINE=1 python coco_rle_reference.py WORKDIR
faster-coco-eval is replaced by a minimal RLE decoder (`_Mask` below) so that no download is needed.
"""
import json, sys, types
from pathlib import Path
import numpy as np

work = Path(sys.argv[1]); (work / "ann").mkdir(parents=True, exist_ok=True)


def _from_string(s):  # pycocotools rleFrString
    cnts, p = [], 0
    while p < len(s):
        x = k = 0
        more = 1
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << 5 * k
            more = c & 0x20
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << 5 * k
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    return cnts


def _decode(rle):
    h, w = rle["size"]
    c = rle["counts"]
    c = _from_string(c) if isinstance(c, str) else c
    flat, at, v = np.zeros(h * w, np.uint8), 0, 0
    for n in c:
        flat[at : at + n] = v
        at += n
        v ^= 1
    return np.asfortranarray(flat.reshape(w, h).T)


_Mask = types.ModuleType("faster_coco_eval.core.mask")
_Mask.decode, _Mask.segmToRle = _decode, lambda seg, w, h: seg
for name, mod in [("faster_coco_eval", types.ModuleType("faster_coco_eval")),
                  ("faster_coco_eval.core", types.ModuleType("faster_coco_eval.core")),
                  ("faster_coco_eval.core.mask", _Mask)]:
    sys.modules[name] = mod


def rle_counts(m):
    f = m.T.reshape(-1); counts=[]; prev=0; run=0
    for v in f:
        if v != prev: counts.append(run); run=0; prev=v
        run += 1
    counts.append(run); return counts
def to_string(cnts):
    s=''
    for i,c in enumerate(cnts):
        x = c - (cnts[i-2] if i > 2 else 0)
        more=1
        while more:
            ch = x & 0x1f; x >>= 5
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more: ch |= 0x20
            s += chr(ch + 48)
    return s
H, W = 30, 40
m1 = np.zeros((H, W), np.uint8); m1[3:12, 4:15] = 1; m1[20:27, 25:37] = 1; m1[22:25, 28:31] = 0  # two blobs, one with a hole
m2 = np.zeros((H, W), np.uint8); m2[5:25, 10:30] = 1; m2[0, 39] = 1   # a blob and a single pixel (1-point contour dropped)
m3 = np.zeros((H, W), np.uint8); m3[10:14, 2:6] = 1
anns = [
  dict(id=1, image_id=1, category_id=1, iscrowd=0, bbox=[4, 3, 33, 24], segmentation=dict(size=[H, W], counts=rle_counts(m1))),
  dict(id=2, image_id=1, category_id=18, iscrowd=0, bbox=[10, 5, 30, 20], segmentation=dict(size=[H, W], counts=to_string(rle_counts(m2)))),
  dict(id=3, image_id=1, category_id=3, iscrowd=0, bbox=[2, 10, 4, 4], segmentation=dict(size=[W, H], counts=rle_counts(m3))),   # wrong size: box rectangle
  dict(id=4, image_id=1, category_id=3, iscrowd=0, bbox=[1.5, 2.25, 10, 7.5]),   # no segmentation: box rectangle
  dict(id=5, image_id=1, category_id=3, iscrowd=0, bbox=[1.5, 2.25, 10, 7.5], segmentation=[]),  # duplicate row, written once
  dict(id=6, image_id=1, category_id=90, iscrowd=0, bbox=[1, 1, 5, 5], segmentation=[[1, 1, 6, 1, 6], [1, 1, 6, 1, 6, 6, 1.5, 6.25], [2, 2, 3, 3]]),  # only the valid part
  dict(id=7, image_id=1, category_id=90, iscrowd=1, bbox=[1, 1, 5, 5], segmentation=[[1, 1, 6, 1, 6, 6]]),  # crowd: skipped
  dict(id=8, image_id=1, category_id=44, iscrowd=0, bbox=[1, 1, 0, 5], segmentation=[[1, 1, 6, 1, 6, 6]]),  # zero width: skipped
  dict(id=9, image_id=1, category_id=44, iscrowd=0, bbox=[0, 0, 40, 30], segmentation=[[0, 0, 1e-5, 0, 39.9999, 29.99999], [20, 20, 21, 20, 21, 22], [5, 25, 7, 25, 7, 29]]),
]
cats = [dict(id=i, name=f"c{i}", supercategory="x") for i in (1, 3, 18, 44, 90)]
(work / 'ann/instances_rle.json').write_text(json.dumps(dict(images=[dict(id=1, file_name='a.png', width=W, height=H)], annotations=anns, categories=cats), separators=(',', ':')))
import ultralytics.data.converter as cv
cv.check_requirements = lambda *a, **k: None
cv.convert_coco(work / 'ann', work / 'out', use_segments=True)
print((work / 'out/labels/rle/a.txt').read_text(), end='')
