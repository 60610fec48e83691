"""Generates tests/data/split_dota_fixture.json: Ultralytics 8.4.190's split_dota output on a small
synthetic DOTA-layout input (provenance of the obb_split_dota test).

Run from the repository root with the project's .venv python and shapely on the path, e.g.
    pip install --target /tmp/pyshp shapely==2.2.0
    PYTHONPATH=/tmp/pyshp .venv/bin/python crates/ryolo/tests/data/make_split_dota_fixture.py

The input (image sizes and YOLO OBB label texts) is stored in the fixture so that the Rust test
rebuilds the same dataset; split_dota reads only the sizes and pixels of the images, and the tiles'
pixels are compared by the test against its own source images (JPEG encoders differ).
"""

import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
from ultralytics.data.split_dota import split_test, split_trainval

CROP, GAP, RATES = 256, 64, (1.0, 0.5)
# (split, stem, width, height, number of objects; None = no label file, 0 = empty label file)
IMAGES = [
    ("train", "P0001", 700, 500, 14),
    ("train", "P0002", 256, 256, 5),
    ("train", "P0003", 200, 150, 4),
    ("train", "P0004", 1000, 300, 12),
    ("train", "P0005", 420, 420, None),
    ("val", "P0101", 600, 260, 10),
    ("val", "P0102", 333, 777, 9),
    ("val", "P0103", 300, 300, 0),
    ("test", "P0201", 650, 400, None),
    ("test", "P0202", 120, 90, None),
]


def rotated_box(rng, w, h):
    """Corners of a random rotated rectangle, sometimes crossing or leaving the image."""
    cx, cy = rng.uniform(-0.05, 1.05) * w, rng.uniform(-0.05, 1.05) * h
    bw, bh = rng.uniform(6, 160), rng.uniform(4, 80)
    t = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(t), np.sin(t)
    v1 = np.array([bw / 2 * c, bw / 2 * s])
    v2 = np.array([-bh / 2 * s, bh / 2 * c])
    ctr = np.array([cx, cy])
    pts = [ctr + v1 + v2, ctr + v1 - v2, ctr - v1 - v2, ctr - v1 + v2]
    return [p[0] / w if i == 0 else p[1] / h for p in pts for i in range(2)]


def main():
    rng = np.random.default_rng(0)
    inputs = []
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "src", Path(tmp) / "dst"
        for split, stem, w, h, n in IMAGES:
            (src / "images" / split).mkdir(parents=True, exist_ok=True)
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            cv2.imwrite(str(src / "images" / split / f"{stem}.png"), img)
            label = None
            if n is not None:
                rows = []
                for _ in range(n):
                    cls = int(rng.integers(0, 15))
                    rows.append(f"{cls} " + " ".join(f"{v:.6g}" for v in rotated_box(rng, w, h)))
                label = "".join(r + "\n" for r in rows)
                (src / "labels" / split).mkdir(parents=True, exist_ok=True)
                (src / "labels" / split / f"{stem}.txt").write_text(label)
            inputs.append({"split": split, "stem": stem, "w": w, "h": h, "label": label})
        split_trainval(str(src), str(dst), crop_size=CROP, gap=GAP, rates=RATES)
        split_test(str(src), str(dst), crop_size=CROP, gap=GAP, rates=RATES)
        images, labels = {}, {}
        for f in sorted((dst / "images").rglob("*.jpg")):
            im = cv2.imread(str(f))
            images[str(f.relative_to(dst))] = [im.shape[1], im.shape[0]]
        for f in sorted((dst / "labels").rglob("*.txt")):
            labels[str(f.relative_to(dst))] = f.read_text()
    out = {
        "source": "ultralytics 8.4.190 data/split_dota.py split_trainval + split_test, shapely 2.2.0",
        "crop_size": CROP,
        "gap": GAP,
        "rates": list(RATES),
        "inputs": inputs,
        "images": images,
        "labels": labels,
    }
    path = Path(__file__).parent / "split_dota_fixture.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{path}: {len(images)} tiles, {len(labels)} label files")


if __name__ == "__main__":
    main()
