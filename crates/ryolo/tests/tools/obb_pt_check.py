#!/usr/bin/env python3
"""Loads a ryolo-written OBB checkpoint in Ultralytics 8.4.190 and compares it with the fixture model.

Usage: python obb_pt_check.py CANDIDATE.pt FIXTURE_DIR OUT.json
The fixture's yolo11n-obb_seed0.pt gets the calibrated BatchNorm buffers (bn_calibration.npz), as the
candidate was written from that model; both run eval forwards on input.npy. Writes a JSON report.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from ultralytics import YOLO
from ultralytics.nn.tasks import load_checkpoint

cand, fx, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
m, ck = load_checkpoint(cand)
ref, _ = load_checkpoint(str(fx / "yolo11n-obb_seed0.pt"))
z = np.load(fx / "bn_calibration.npz")
sd = ref.state_dict()
for k in z.files:
    sd[k].copy_(torch.from_numpy(z[k]))
x = torch.from_numpy(np.load(fx / "input.npy"))
with torch.no_grad():
    y, raw = m(x)
    y_ref = ref(x)[0]
csd, rsd = m.state_dict(), ref.state_dict()
mods = lambda mm: [(n, type(v).__name__) for n, v in mm.named_modules()]
head = m.model[-1]
report = {
    "model_class": type(m).__name__,
    "head_class": type(head).__name__,
    "ne": getattr(head, "ne", None),
    "task": YOLO(cand).task,
    "names": [m.names[i] for i in sorted(m.names)],
    "same_keys": sorted(csd) == sorted(rsd),
    "same_shapes": all(csd[k].shape == rsd[k].shape for k in csd if k in rsd),
    "max_tensor_diff": max(float((csd[k].float() - rsd[k].float()).abs().max()) for k in csd if k in rsd and csd[k].numel()),
    "same_modules": mods(m) == mods(ref),
    "output_shape": list(y.shape),
    "raw_keys": sorted(raw),
    "max_output_diff": float((y - y_ref).abs().max()),
}
Path(out).write_text(json.dumps(report))
print(json.dumps(report))
