#!/usr/bin/env python3
"""Ultralytics-side helpers for tests/ultralytics_interop.rs (needs Ultralytics 8.4.190 + torch).

  reference OURS.safetensors OUT.pt [--imgsz N]
      What Ultralytics itself would save for the weights in one of our checkpoints: it builds
      DetectionModel from *its own* model YAML (the stem our checkpoint names, e.g. yolo11n.yaml),
      loads our fp32 tensors, sets names/args as its trainer does, runs one eval forward (as the
      trainer's validation does), saves the training-time checkpoint with torch.save the way
      BaseTrainer.save_model does, then strips it with ultralytics' own strip_optimizer.
  onnx MODEL.onnx OUT.json --imgsz N --data DATA.yaml --images IMG...
      YOLO(MODEL.onnx).predict on each image (conf 0.25) and .val(data=...), written as JSON.
  png DATA_DIR OUT_DIR [--size N] [--split valid]
      The split's images decoded by OpenCV and saved as PNG (stretched to N x N when --size is given;
      normalised labels stay valid) with their labels and a data.yaml, so that two pipelines see the
      same pixels whatever their JPEG decoders do.
"""

import argparse
import io
import json
import os
import struct
import sys
import tempfile
from copy import deepcopy

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="ul_interop_cfg_"))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def read_safetensors(path):
    """Our checkpoint: (ryolo metadata dict, {name: float32 tensor}) without the safetensors package."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    meta = json.loads(header.pop("__metadata__")["ryolo"])
    base = 8 + n
    tensors = {}
    for k, v in header.items():
        assert v["dtype"] == "F32", (k, v["dtype"])
        a, b = v["data_offsets"]
        arr = np.frombuffer(raw[base + a : base + b], dtype="<f4").reshape(v["shape"])
        tensors[k] = torch.from_numpy(arr.copy())
    return meta, tensors


def reference(args):
    from ultralytics import __version__
    from ultralytics.utils import DEFAULT_CFG_DICT, DEFAULT_CFG_KEYS
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import strip_optimizer

    meta, tensors = read_safetensors(args.ours)
    names = meta["names"]
    model = DetectionModel(f"{meta['stem']}.yaml", nc=len(names), verbose=False)
    sd = model.state_dict()
    missing = [k for k in sd if k not in tensors and not k.endswith("num_batches_tracked")]
    assert not missing, f"our checkpoint lacks {missing[:5]}"
    model.load_state_dict({k: tensors.get(k, v) for k, v in sd.items()}, strict=True)
    run_args = meta.get("args") or {}
    train_args = {**DEFAULT_CFG_DICT, **{k: v for k, v in run_args.items() if k in DEFAULT_CFG_KEYS}}
    model.names = dict(enumerate(names))
    model.args = {**train_args, "save_dir": run_args.get("save_dir")}
    model.nc = len(names)  # the trainer's set_model_attributes
    model.criterion = None  # set by the first loss, cleared by strip_optimizer
    model.set_head_attr(max_det=train_args["max_det"])  # DetectionTrainer._build_train_pipeline
    model.end2end = train_args["nms"] is False  # the validator during training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, args.imgsz, args.imgsz))
    for p in model.parameters():
        p.requires_grad = False
    ema = deepcopy(model).half()
    for v in ema.state_dict().values():
        if v.is_floating_point():
            torch.nan_to_num_(v)
    ckpt = {
        "epoch": 0,
        "best_fitness": 0.0,
        "stopper": {"best_fitness": 0.0, "best_epoch": 1},
        "model": None,
        "ema": ema,
        "updates": 1,
        "modelopt": None,
        "optimizer": {},
        "scaler": {},
        "train_args": {**train_args, "save_dir": run_args.get("save_dir")},
        "train_metrics": {},
        "train_results": {},
        "date": "2026-01-01T00:00:00+00:00",
        "version": __version__,
        "git": {"root": "None", "branch": None, "commit": None, "message": None, "origin": None},
        "license": "AGPL-3.0 (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
    }
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    with open(args.out, "wb") as f:
        f.write(buf.getvalue())
    strip_optimizer(args.out)
    print(f"reference written: {args.out}")


def onnx(args):
    from ultralytics import YOLO

    out = {"predict": {}, "val": None}
    m = YOLO(args.model, task="detect")
    for img in args.images:
        r = m.predict(img, imgsz=args.imgsz, conf=0.25, device="cpu", verbose=False, save=False)[0]
        b = r.boxes
        rows = np.concatenate([b.xyxy.numpy(), b.conf.numpy()[:, None], b.cls.numpy()[:, None]], 1)
        out["predict"][img] = rows.astype(float).tolist()
    if args.data:
        v = YOLO(args.model, task="detect").val(
            data=args.data, imgsz=args.imgsz, device="cpu", workers=0, plots=False, verbose=False,
            project=tempfile.mkdtemp(prefix="ul_interop_val_"),
        )
        out["val"] = {k: float(x) for k, x in v.results_dict.items()}
    json.dump(out, open(args.out, "w"), indent=1)
    print(f"predictions and metrics written: {args.out}")


def png(args):
    import shutil
    from pathlib import Path

    import cv2
    import yaml

    src, out = Path(args.data_dir), Path(args.out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    n = 0
    for f in sorted((src / args.split / "images").iterdir()):
        im = cv2.imread(str(f))
        if im is None:
            continue
        if args.size:
            im = cv2.resize(im, (args.size, args.size), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / "images" / (f.stem + ".png")), im)
        lab = src / args.split / "labels" / (f.stem + ".txt")
        if lab.exists():
            shutil.copy(lab, out / "labels" / lab.name)
        n += 1
    names = yaml.safe_load(open(next(src.glob("*.yaml"))))["names"]
    yaml.safe_dump({"path": str(out.resolve()), "train": "images", "val": "images", "names": names}, open(out / "data.yaml", "w"))
    print(f"{n} images written to {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reference")
    r.add_argument("ours")
    r.add_argument("out")
    r.add_argument("--imgsz", type=int, default=64)
    o = sub.add_parser("onnx")
    o.add_argument("model")
    o.add_argument("out")
    o.add_argument("--imgsz", type=int, required=True)
    o.add_argument("--data", default=None)
    o.add_argument("--images", nargs="+", default=[])
    s = sub.add_parser("png")
    s.add_argument("data_dir")
    s.add_argument("out_dir")
    s.add_argument("--size", type=int, default=0)
    s.add_argument("--split", default="valid")
    a = ap.parse_args()
    {"reference": reference, "onnx": onnx, "png": png}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
