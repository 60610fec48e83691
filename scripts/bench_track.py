"""Anchor for `yolo bench track`: Ultralytics' own Python trackers timed on the same detection streams.

Times `tracker.update(boxes)` per frame (association + Kalman; no detector, no GMC: gmc_method none, img None) for
BYTETracker (bytetrack.yaml), BOTSORT (botsort.yaml) and TRACKTRACK (tracktrack.yaml). The per-frame `Boxes`
objects are built before timing, so only the tracker is measured (as on the Rust side).

Streams (JSON, `inputs[f]` = frame f+1's rows [x1, y1, x2, y2, conf, cls], float32 values):
  * the 200-frame scripted sequence of ../shared/fixtures/ultralytics/track/track_synthetic.json (~10 objects);
  * a synthetic crowded scene written by `--make-crowd PATH` (numpy seed 0): 200 objects moving in a
    1920x1080 frame for 200 frames, 5 % missed per frame, score noise, 10 false positives per frame.

Usage (the project's .venv has ultralytics 8.4.190):
    .venv/bin/python scripts/bench_track.py --make-crowd /tmp/crowd200.json
    .venv/bin/python scripts/bench_track.py --runs 5 ../shared/fixtures/ultralytics/track/track_synthetic.json \
        /tmp/crowd200.json
and on the Rust side, in the same sitting:
    yolo bench track source=/tmp/crowd200.json tracker=bytetrack.yaml n=5
"""

import argparse
import json
import statistics
import time

import numpy as np
import torch

from ultralytics.engine.results import Boxes
from ultralytics.trackers import BOTSORT, BYTETracker
from ultralytics.trackers.track_tracker import TRACKTRACK
from ultralytics.utils import YAML, IterableSimpleNamespace
from ultralytics.utils.checks import check_yaml

TRACKERS = {"bytetrack.yaml": BYTETracker, "botsort.yaml": BOTSORT, "tracktrack.yaml": TRACKTRACK}


def make_crowd(path, n_obj=200, n_frames=200, w=1920, h=1080, seed=0):
    rng = np.random.default_rng(seed)
    bw = rng.uniform(20, 60, n_obj)
    bh = bw * rng.uniform(2.0, 3.0, n_obj)
    cx = rng.uniform(bw / 2, w - bw / 2)
    cy = rng.uniform(bh / 2, h - bh / 2)
    vx = rng.uniform(-3, 3, n_obj)
    vy = rng.uniform(-1.5, 1.5, n_obj)
    base = rng.uniform(0.3, 0.95, n_obj)
    frames = []
    for _ in range(n_frames):
        cx += vx
        cy += vy
        for v, c, lo, hi in ((vx, cx, bw / 2, w - bw / 2), (vy, cy, bh / 2, h - bh / 2)):
            out = (c < lo) | (c > hi)
            v[out] *= -1
            np.clip(c, lo, hi, out=c)
        seen = rng.random(n_obj) >= 0.05
        jit = rng.normal(0, 1.5, (n_obj, 4))
        rows = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) + jit
        conf = np.clip(base + rng.normal(0, 0.05, n_obj), 0.05, 0.99)
        d = np.concatenate([rows, conf[:, None], np.zeros((n_obj, 1))], 1)[seen]
        fx = rng.uniform(0, w - 60, 10)
        fy = rng.uniform(0, h - 150, 10)
        fp = np.stack([fx, fy, fx + rng.uniform(20, 60, 10), fy + rng.uniform(40, 150, 10),
                       rng.uniform(0.1, 0.5, 10), np.zeros(10)], 1)
        d = np.concatenate([d, fp])[rng.permutation(len(d) + 10)]
        d[:, [0, 2]] = d[:, [0, 2]].clip(0, w)
        d[:, [1, 3]] = d[:, [1, 3]].clip(0, h)
        frames.append(d.astype(np.float32).tolist())
    with open(path, "w") as fh:
        json.dump({"note": f"crowd: {n_obj} objects, {n_frames} frames, {w}x{h}, numpy seed {seed} "
                           "(scripts/bench_track.py)", "width": w, "height": h, "inputs": frames}, fh)


def time_stream(path, name, runs):
    inputs = json.load(open(path))["inputs"]
    boxes = [Boxes(torch.from_numpy(np.asarray(d, np.float32).reshape(-1, 6)), (1080, 1920)).cpu().numpy()
             for d in inputs]
    cfg = YAML.load(check_yaml(name))
    cfg["gmc_method"] = "none"
    means, allt, rows = [], [], 0
    for _ in range(runs):
        tr = TRACKERS[name](args=IterableSimpleNamespace(**cfg))
        s, rows = 0.0, 0
        for b in boxes:
            t0 = time.perf_counter()
            out = tr.update(b, None)
            dt = (time.perf_counter() - t0) * 1e3
            rows += len(out)
            s += dt
            allt.append(dt)
        means.append(s / len(boxes))
    return means, statistics.median(allt), rows, sum(len(d) for d in inputs) / len(inputs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("streams", nargs="*")
    ap.add_argument("--make-crowd")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--trackers", default="bytetrack.yaml,botsort.yaml,tracktrack.yaml")
    a = ap.parse_args()
    if a.make_crowd:
        make_crowd(a.make_crowd)
        print(f"wrote {a.make_crowd}")
    torch.set_num_threads(1)
    for s in a.streams:
        for name in a.trackers.split(","):
            means, med, rows, dpf = time_stream(s, name, a.runs)
            print(f"ultralytics {name:16s} {s.split('/')[-1]:24s} {dpf:6.1f} dets/frame  per-frame mean "
                  f"{statistics.median(means):8.3f} ms (median of {a.runs} runs; runs "
                  f"{' '.join(f'{m:.3f}' for m in means)})  frame median {med:.3f} ms  rows out {rows}")


if __name__ == "__main__":
    main()
