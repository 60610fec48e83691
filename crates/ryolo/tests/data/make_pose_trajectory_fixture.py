"""Generates tests/data/pose_trajectory_fixture.json: Ultralytics 8.4.190's results.csv rows for
short pose trainings from the seed-0 fixture checkpoint without augmentation (provenance of the
pose_trajectory test).

Run from the repository root, on the CPU, after making the data with ryolo's generator:
    yolo data synth out=/tmp/ptraj n=16 imgsz=256 seed=0 task=pose
    OMP_NUM_THREADS=2 .venv/bin/python crates/ryolo/tests/data/make_pose_trajectory_fixture.py \
        /tmp/ptraj ../shared/fixtures/ultralytics/pose/yolo11n-pose_seed0.pt

One batch of all 16 training images per epoch (nbs=16: an optimizer step every iteration), no
mosaic, flips, HSV, translation or scaling; one run with optimizer=SGD (bias warmup from 0.1,
Nesterov momentum) and one with the default optimizer=auto (AdamW, lr 0.002 for nc=1).
"""

import csv
import json
import sys
import tempfile
from pathlib import Path

from ultralytics import YOLO

RECIPE = dict(
    epochs=4, imgsz=256, batch=16, nbs=16, workers=0, mosaic=0.0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0,
    translate=0.0, scale=0.0, fliplr=0.0, amp=False, plots=False, seed=0, deterministic=True,
    device="cpu", exist_ok=True,
)


def main(data: Path, pt: Path) -> None:
    out = {"recipe": RECIPE, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for opt in ("SGD", "auto"):
            YOLO(str(pt)).train(data=str(data / "data.yaml"), optimizer=opt, project=tmp, name=opt, **RECIPE)
            with open(Path(tmp) / opt / "results.csv") as f:
                rows = list(csv.reader(f))
            cols = [c.strip() for c in rows[0]]
            out["runs"][opt] = {"columns": cols, "rows": [[float(v) for v in r] for r in rows[1:]]}
    dst = Path(__file__).with_name("pose_trajectory_fixture.json")
    dst.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", dst)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
