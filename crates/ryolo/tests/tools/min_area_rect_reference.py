#!/usr/bin/env python
"""Reference numbers for ryolo's OpenCV-exact `min_area_rect` and the canonical xywhr of Ultralytics 8.4.

Writes crates/ryolo/tests/data/min_area_rect_cv2.json: float32 point sets (random quadrilaterals, rotated
rectangles, rectangles resampled to 100 points as the OBB loader does, random point clouds, axis-aligned boxes,
squares, integer grids and degenerate sets), what `cv2.minAreaRect` returns for each
(centre, size, angle in degrees; every number the shortest decimal of a float32) and what `ultralytics.utils.ops.xyxyxyxy2xywhr` gives for a
float32 tensor of the same points (the `Format` path, float32 result). Deterministic (NumPy seed 0).

Run with the Ultralytics 8.4.190 environment (the one whose cv2 made the fixtures):
    /work/main/.venv/bin/python crates/ryolo/tests/tools/min_area_rect_reference.py
"""

import json
import math
from pathlib import Path

import cv2
import numpy as np
import torch
from ultralytics.utils.ops import resample_segments, xyxyxyxy2xywhr

OUT = Path(__file__).resolve().parents[1] / "data" / "min_area_rect_cv2.json"


def rect(cx, cy, w, h, t):
    c, s = math.cos(t), math.sin(t)
    v1, v2 = np.array([w / 2 * c, w / 2 * s]), np.array([-h / 2 * s, h / 2 * c])
    ctr = np.array([cx, cy])
    return np.stack([ctr + v1 + v2, ctr + v1 - v2, ctr - v1 - v2, ctr - v1 + v2])


def cases(rng):
    for _ in range(120):  # rotated rectangles of every angle, as OBB labels are
        yield "rotated_rect", rect(*rng.uniform(20, 300, 2), rng.uniform(2, 200), rng.uniform(2, 120),
                                   rng.uniform(-math.pi, math.pi))
    for _ in range(80):  # arbitrary quadrilaterals (annotations are rarely exact rectangles)
        yield "quad", rng.uniform(0, 400, (4, 2))
    for _ in range(40):  # point clouds of 5-12 points
        yield "cloud", rng.uniform(0, 300, (int(rng.integers(5, 13)), 2))
    for _ in range(20):  # axis-aligned boxes and squares, any corner order
        x, y, w = rng.uniform(0, 200, 3)
        h = w if rng.random() < 0.5 else rng.uniform(1, 200)
        yield "axis_aligned", np.roll(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]), int(rng.integers(4)), 0)
    for _ in range(60):  # small integer coordinates (duplicates, ties, collinear points)
        yield "integer", rng.integers(0, 6, (int(rng.integers(3, 10)), 2)).astype(np.float64)
    for _ in range(60):  # what the OBB loader feeds Format: corners resampled to 100 points (normalised, then pixels)
        w, h = [int(v) for v in rng.choice([256, 288, 320, 352, 384], 2)]
        r = rect(rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h, rng.uniform(8, 150), rng.uniform(4, 80),
                 rng.uniform(-math.pi, math.pi))
        norm = (r / [w, h]).astype(np.float32)
        seg = resample_segments([norm], n=100)[0]
        yield "resampled_100", (seg * np.array([w, h], np.float32)).astype(np.float32)
    yield "collinear", np.array([[0, 0], [1, 1], [2, 2], [3, 3]], np.float64)
    yield "two_points", np.array([[5, 5], [9, 2], [5, 5]], np.float64)
    yield "one_point", np.array([[3, 4], [3, 4], [3, 4]], np.float64)


def f32(v):
    """The shortest decimal that reads back as the same float32 (a float64 close enough for JSON)."""
    return float(str(np.float32(v)))


def main():
    rng = np.random.default_rng(0)
    rows = []
    for kind, pts in cases(rng):
        p = np.asarray(pts, np.float32)
        (cx, cy), (w, h), a = cv2.minAreaRect(p)
        xywhr = xyxyxyxy2xywhr(torch.from_numpy(p[None].copy())).numpy()[0]
        rows.append({"kind": kind, "points": [[f32(x), f32(y)] for x, y in p],
                     "rect": [f32(v) for v in (cx, cy, w, h, a)], "xywhr": [f32(v) for v in xywhr]})
    OUT.write_text(json.dumps({"opencv": cv2.__version__, "numpy_seed": 0, "cases": rows}, separators=(",", ":")))
    print(f"{len(rows)} cases -> {OUT} ({OUT.stat().st_size} bytes), OpenCV {cv2.__version__}")


if __name__ == "__main__":
    main()
