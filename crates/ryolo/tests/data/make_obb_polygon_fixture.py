"""Generates tests/data/obb_polygon_fixture.json: Ultralytics 8.4.190's OBB targets for label rows with
other than 4 points (provenance of the obb_polygon_rows test).

Run from the repository root: .venv/bin/python crates/ryolo/tests/data/make_obb_polygon_fixture.py

One 200 x 100 image whose label file holds a 4-corner row, a 6-point polygon, a 3-point polygon
and an 8-point polygon; Ultralytics' YOLODataset (task obb, no augmentation, imgsz 200: no resize,
letterboxed to 200 x 200 with 50 px above and below) gives the canonical xywhr targets (minAreaRect
of the resampled polygon, normalised by 200).
"""

import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
from ultralytics.cfg import get_cfg
from ultralytics.data.dataset import YOLODataset

W, H = 200, 100
LABEL = (
    "0 0.1 0.2 0.4 0.2 0.4 0.6 0.1 0.6\n"
    "1 0.5 0.1 0.7 0.15 0.8 0.5 0.72 0.9 0.55 0.85 0.45 0.4\n"
    "2 0.2 0.7 0.45 0.75 0.3 0.95\n"
    "1 0.6 0.3 0.65 0.32 0.7 0.3 0.72 0.45 0.7 0.6 0.65 0.62 0.6 0.6 0.58 0.45\n"
)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "labels").mkdir()
        cv2.imwrite(str(root / "images" / "a.png"), np.full((H, W, 3), 114, np.uint8))
        (root / "labels" / "a.txt").write_text(LABEL)
        hyp = get_cfg()
        ds = YOLODataset(
            img_path=str(root / "images"),
            imgsz=200,
            augment=False,
            rect=False,
            hyp=hyp,
            batch_size=1,
            data={"names": {0: "a", 1: "b", 2: "c"}, "nc": 3, "channels": 3},
            task="obb",
        )
        item = ds[0]
    out = {
        "source": "ultralytics 8.4.190 YOLODataset(task='obb', augment=False, imgsz=200)[0]",
        "w": W,
        "h": H,
        "imgsz": 200,
        "label": LABEL,
        "img_shape": list(item["img"].shape),
        "cls": item["cls"].view(-1).tolist(),
        "bboxes": item["bboxes"].tolist(),
    }
    path = Path(__file__).parent / "obb_polygon_fixture.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(path, out["img_shape"], out["cls"])


if __name__ == "__main__":
    main()
