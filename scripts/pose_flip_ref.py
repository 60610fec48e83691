"""Ultralytics 8.4.190's training pipeline on coco8-pose (train split) with only the flips active.

Writes crates/ryolo/tests/data/pose_flip_ref.json: per image (file name), the keypoints and boxes
of the augmented training sample (normalised, as Format gives them) with fliplr=0 and fliplr=1
(mosaic=0, every other augmentation 0), and the warning + the fliplr/flipud values when the
data.yaml has no flip_idx. Run: .venv/bin/python scripts/pose_flip_ref.py
"""

import json
import logging
import shutil
import tempfile
from pathlib import Path

from ultralytics.cfg import get_cfg
from ultralytics.data.build import build_yolo_dataset
from ultralytics.utils import LOGGER

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT.parent / "shared" / "datasets" / "coco8-pose"
if not SRC.exists():
    SRC = Path("/work/shared/datasets/coco8-pose")
IMGSZ = 160
FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def dataset(root, fliplr, flip_idx=True):
    data = {"path": str(root), "train": "images/train", "val": "images/val", "names": {0: "person"},
            "nc": 1, "kpt_shape": [17, 3], "channels": 3}
    if flip_idx:
        data["flip_idx"] = FLIP
    cfg = get_cfg(overrides=dict(task="pose", imgsz=IMGSZ, mosaic=0.0, fliplr=fliplr, flipud=0.0, hsv_h=0.0,
                                 hsv_s=0.0, hsv_v=0.0, translate=0.0, scale=0.0, degrees=0.0, shear=0.0,
                                 perspective=0.0, mixup=0.0, cutmix=0.0, copy_paste=0.0, erasing=0.0))
    ds = build_yolo_dataset(cfg, str(root / "images/train"), 2, data, mode="train")
    return ds, cfg


def samples(ds):
    out = {}
    for i in range(len(ds)):
        s = ds[i]
        out[Path(s["im_file"]).name] = {
            "keypoints": s["keypoints"].numpy().round(6).tolist(),
            "bboxes": s["bboxes"].numpy().round(6).tolist(),
            "shape": list(s["img"].shape[1:]),
        }
    return out


class Grab(logging.Handler):
    def __init__(self):
        super().__init__()
        self.msgs = []

    def emit(self, record):
        self.msgs.append(record.getMessage())


def main():
    tmp = Path(tempfile.mkdtemp())
    root = tmp / "coco8-pose"
    shutil.copytree(SRC / "images", root / "images")
    shutil.copytree(SRC / "labels", root / "labels")
    res = {"imgsz": IMGSZ, "flip_idx": FLIP}
    for p in (0.0, 1.0):
        ds, _ = dataset(root, p)
        res[f"fliplr_{p:g}"] = samples(ds)
    grab = Grab()
    LOGGER.addHandler(grab)
    ds, _ = dataset(root, 0.5, flip_idx=False)
    LOGGER.removeHandler(grab)
    flips = {t.direction: t.p for t in ds.transforms.transforms if type(t).__name__ == "RandomFlip"}
    res["no_flip_idx"] = {"warnings": [m for m in grab.msgs if "flip_idx" in m], "flip_p": flips}
    out = ROOT / "crates/ryolo/tests/data/pose_flip_ref.json"
    out.write_text(json.dumps(res, indent=None, separators=(",", ":")) + "\n")
    print(out, res["no_flip_idx"])
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
