#!/usr/bin/env python3
"""Ultralytics-side helpers for tests/pose_pt.rs (needs Ultralytics 8.4.190 + torch).

  data MAKE_FIXTURES.py OUT_DIR
      The synthetic pose dataset of shared/fixtures/ultralytics/pose/make_fixtures.py (stick figures,
      COCO 17x3 keypoints, 12 train / 6 val images) written to OUT_DIR (data.yaml inside).
  train DATA.yaml OUT_DIR [--imgsz N]
      A real Ultralytics pose training of yolo11n-pose.yaml (1 epoch, CPU, no plots); its
      OUT_DIR/train/weights/best.pt is the structural reference.
  check OURS.pt OUT_DIR --input X.npy [--trained UL.pt] [--data DATA.yaml] [--imgsz N]
      Ultralytics on a pose .pt we wrote: YOLO() task and model/head classes, kpt_shape / kpt_names /
      kpt_oks_sigmas, the module tree against what Ultralytics itself saves for the same weights
      (built here as its trainer does: PoseModel from its own YAML, trainer attributes, one eval
      forward, save_model + strip_optimizer; classes, attribute names and all non-cache values) and
      against UL.pt (attribute order, non-tensor values, top-level key order), a restricted
      (weights_only) load, a rebuild from model.yaml, the eval forward of X.npy (saved as
      OUT_DIR/output0.npy) and, with --data, YOLO().val() of ours and of UL.pt. Writes
      OUT_DIR/pose.json; exits non-zero on any mismatch.
"""

import argparse
import importlib.util
import io
import json
import os
import sys
import tempfile
from copy import deepcopy
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="ul_pose_cfg_"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ul_interop import module_tree_diffs  # noqa: E402


def data(args):
    spec = importlib.util.spec_from_file_location("pose_fixtures", args.make_fixtures)
    mf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mf)
    mf.make_pose_dataset(Path(args.out_dir))
    print(f"dataset written: {args.out_dir}/data.yaml")


def train(args):
    from ultralytics import YOLO

    YOLO("yolo11n-pose.yaml").train(data=args.data, epochs=1, imgsz=args.imgsz, batch=4, workers=0, device="cpu",
                                    plots=False, amp=False, project=args.out_dir, name="train", exist_ok=True,
                                    verbose=False)
    print(f"trained: {args.out_dir}/train/weights/best.pt")


def reference_of(ours_ckpt, path, imgsz):
    """What Ultralytics' trainer saves (then strips) for the weights and attributes of our file."""
    from ultralytics import __version__
    from ultralytics.nn.tasks import PoseModel, yaml_model_load
    from ultralytics.utils import DEFAULT_CFG_DICT, DEFAULT_CFG_KEYS
    from ultralytics.utils.torch_utils import strip_optimizer

    mo = ours_ckpt.get("ema") or ours_ckpt.get("model")
    cfg = yaml_model_load(mo.yaml.get("yaml_file", "yolo11n-pose.yaml"))  # Ultralytics' own YAML
    model = PoseModel(cfg, nc=len(mo.names), data_kpt_shape=list(mo.kpt_shape), verbose=False)
    model.load_state_dict({k: v.float() for k, v in mo.state_dict().items()}, strict=True)
    run = ours_ckpt.get("train_args") or {}
    train_args = {**DEFAULT_CFG_DICT, **{k: v for k, v in run.items() if k in DEFAULT_CFG_KEYS}}
    model.names = dict(mo.names)
    model.nc = len(mo.names)
    model.args = {**train_args, "save_dir": getattr(mo, "args", {}).get("save_dir")}
    model.kpt_shape = list(mo.kpt_shape)
    model.kpt_oks_sigmas = mo.kpt_oks_sigmas
    model.kpt_names = mo.kpt_names
    model.criterion = None
    model.set_head_attr(max_det=train_args["max_det"])
    model.end2end = train_args["nms"] is False
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, imgsz, imgsz))
    for p in model.parameters():
        p.requires_grad = False
    ema = deepcopy(model).half()
    ckpt = {
        "epoch": 0, "best_fitness": 0.0, "stopper": {"best_fitness": 0.0, "best_epoch": 1}, "model": None,
        "ema": ema, "updates": 1, "modelopt": None, "optimizer": {}, "scaler": {},
        "train_args": {**train_args, "save_dir": None}, "train_metrics": {}, "train_results": {},
        "date": "2026-01-01T00:00:00+00:00", "version": __version__,
        "git": {"root": "None", "branch": None, "commit": None, "message": None, "origin": None},
        "license": "AGPL-3.0 (https://ultralytics.com/license)", "docs": "https://docs.ultralytics.com",
    }
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    Path(path).write_bytes(buf.getvalue())
    strip_optimizer(path)


def check(args):
    from ultralytics import YOLO
    from ultralytics.nn.tasks import PoseModel, load_checkpoint, torch_safe_load

    out, report, bad = Path(args.out_dir), {}, []
    out.mkdir(parents=True, exist_ok=True)
    y = YOLO(args.ours)
    m, head = y.model, y.model.model[-1]
    report.update(task=y.task, model_class=type(m).__name__, head_class=type(head).__name__,
                  kpt_shape=list(m.kpt_shape), head_kpt_shape=list(head.kpt_shape), nk=head.nk,
                  kpt_names={str(k): v for k, v in (m.kpt_names or {}).items()},
                  kpt_oks_sigmas=m.kpt_oks_sigmas, names={str(k): v for k, v in m.names.items()})
    if (y.task, report["model_class"], report["head_class"]) != ("pose", "PoseModel", "Pose"):
        bad.append(f"task/classes {y.task} {report['model_class']} {report['head_class']}")
    ck_o, _ = torch_safe_load(args.ours)
    mo = ck_o.get("ema") or ck_o.get("model")
    ref = str(out / "reference.pt")
    reference_of(ck_o, ref, args.imgsz)
    ck_r, _ = torch_safe_load(ref)
    diffs = module_tree_diffs(mo, ck_r.get("ema") or ck_r.get("model"))
    if set(ck_o) != set(ck_r):
        diffs.append(f"top-level keys {sorted(set(ck_o) ^ set(ck_r))}")
    if args.trained:
        ck_t, _ = torch_safe_load(args.trained)
        mt = ck_t.get("ema") or ck_t.get("model")
        diffs += [f"vs Ultralytics-trained: {d}" for d in module_tree_diffs(mo, mt, order=True, values=False)]
        if list(ck_o) != list(ck_t):
            diffs.append(f"top-level key order {list(ck_o)} vs {list(ck_t)}")
        if list(ck_o["train_args"]) != list(ck_t["train_args"]):
            diffs.append("train_args keys differ from Ultralytics'")
    report["structure_diffs"] = diffs
    bad += diffs[:5]
    safe, _ = torch_safe_load(args.ours, safe_only=True)
    report["safe_load"] = type(safe.get("ema") or safe.get("model")).__name__
    weights, _ = load_checkpoint(args.ours)
    rebuilt = PoseModel(weights.yaml, nc=weights.yaml.get("nc"), verbose=False)
    rsd = rebuilt.state_dict()
    n_ok = sum(1 for k, v in weights.state_dict().items() if k in rsd and v.shape == rsd[k].shape)
    report["rebuild_transfer"] = [n_ok, len(rsd)]
    if n_ok != len(rsd):
        bad.append(f"rebuild from model.yaml transfers {n_ok}/{len(rsd)} tensors")
    model = weights.float().eval()
    x = torch.from_numpy(np.load(args.input))
    with torch.no_grad():
        y0 = model(x)[0]
    np.save(out / "output0.npy", y0.numpy())
    report["forward"] = list(y0.shape)
    if args.data:
        vals = {}
        for tag, f in (("ours", args.ours), ("trained", args.trained)):
            if f:
                v = YOLO(f).val(data=args.data, imgsz=args.imgsz, batch=4, device="cpu", workers=0, plots=False,
                                verbose=False, project=tempfile.mkdtemp(prefix="ul_pose_val_"))
                vals[tag] = {k: float(t) for k, t in v.results_dict.items()}
        report["val"] = vals
        if not any("(P)" in k for k in vals.get("ours", {})):
            bad.append(f"val gave no pose metrics: {vals}")
    report["failures"] = bad
    json.dump(report, open(out / "pose.json", "w"), indent=1)
    print(json.dumps(report, indent=1))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("make_fixtures")
    d.add_argument("out_dir")
    t = sub.add_parser("train")
    t.add_argument("data")
    t.add_argument("out_dir")
    t.add_argument("--imgsz", type=int, default=64)
    c = sub.add_parser("check")
    c.add_argument("ours")
    c.add_argument("out_dir")
    c.add_argument("--input", required=True)
    c.add_argument("--trained", default=None)
    c.add_argument("--data", default=None)
    c.add_argument("--imgsz", type=int, default=64)
    a = ap.parse_args()
    return {"data": data, "train": train, "check": check}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
