"""Produces the pycocotools reference numbers recorded in tests/coco_eval.rs.

Run once (pycocotools 2.0.x, numpy 2.x) from the repository root:
    .venv/bin/pip install pycocotools opencv-python-headless
    .venv/bin/python crates/ryolo/tests/tools/coco_reference.py
Ground truth: brain-tumor val YOLO labels converted to COCO boxes in pixels (category = class + 1,
area = w * h, iscrowd 0); detections: ../shared/fixtures/ultralytics/bt_val_predictions.json.
"""
import glob, json, os
import cv2
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

root = "../shared/datasets/brain-tumor/valid"
images, anns = [], []
for f in sorted(glob.glob(f"{root}/images/*.jpg")):
    stem = os.path.splitext(os.path.basename(f))[0]
    h, w = cv2.imread(f).shape[:2]
    images.append({"id": stem, "width": w, "height": h, "file_name": os.path.basename(f)})
    lf = f"{root}/labels/{stem}.txt"
    if not os.path.exists(lf):
        continue
    for line in open(lf).read().splitlines():
        if not line.strip():
            continue
        c, cx, cy, bw, bh = line.split()
        cx, cy, bw, bh = float(cx), float(cy), float(bw), float(bh)
        box = [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]
        anns.append({"id": len(anns) + 1, "image_id": stem, "category_id": int(c) + 1, "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
gt = COCO()
gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "negative"}, {"id": 2, "name": "positive"}]}
gt.createIndex()
dt = gt.loadRes("../shared/fixtures/ultralytics/bt_val_predictions.json")
ev = COCOeval(gt, dt, "bbox")
ev.evaluate(); ev.accumulate(); ev.summarize()
print(json.dumps([float(x) for x in ev.stats]))
