"""Ultralytics' training dataloader throughput, to compare with `yolo bench loader`.

Usage (in a venv with `pip install ultralytics==8.4.190 torch==2.11.0`, not the project's own):
    python scripts/compare/ultralytics_loader.py False|ram path/to/data.yaml
Prints images/s over 640 images after 2 warm-up batches (imgsz 640, batch 16, workers 2, mosaic on),
the same protocol as `yolo bench loader ... imgsz=640 batch=16 workers=2 n=640`.
"""

import sys
import time

from ultralytics.cfg import get_cfg
from ultralytics.data.build import build_dataloader, build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.utils import DEFAULT_CFG

cache = sys.argv[1] if len(sys.argv) > 1 else "False"
data = check_det_dataset(sys.argv[2] if len(sys.argv) > 2 else "brain-tumor.yaml")
cfg = get_cfg(DEFAULT_CFG, dict(imgsz=640, cache=(cache if cache != "False" else False)))
ds = build_yolo_dataset(cfg, data["train"], 16, data, mode="train", stride=32)
dl = build_dataloader(ds, 16, 2, shuffle=True)
n, t0 = 0, None
for i, b in enumerate(dl):
    if i == 2:
        t0, n = time.time(), 0
    elif i > 2:
        n += b["img"].shape[0]
    if n >= 640:
        break
print(f"ultralytics loader cache={cache}: {n / (time.time() - t0):.1f} img/s")
