#!/usr/bin/env python3
"""Ultralytics-side helpers for tests/ultralytics_interop.rs (needs Ultralytics 8.4.190 + torch).

  reference OURS.safetensors OUT.pt [--imgsz N]
      What Ultralytics itself would save for the weights in one of our checkpoints: it builds
      DetectionModel (SegmentationModel for a segment checkpoint) from *its own* model YAML (the
      stem our checkpoint names, e.g. yolo11n.yaml),
      loads our fp32 tensors, sets names/args as its trainer does, runs one eval forward (as the
      trainer's validation does), saves the training-time checkpoint with torch.save the way
      BaseTrainer.save_model does, then strips it with ultralytics' own strip_optimizer.
  train MODEL.yaml DATA.yaml OUT_DIR [--imgsz N]
      A real Ultralytics training (1 epoch, CPU, no plots); its weights/best.pt is the structural
      reference of `segment --trained`.
  segment OURS.pt REFERENCE.pt OUT_DIR --input X.npy [--keys KEYS.tsv] [--trained UL.pt]
          [--data DATA.yaml] [--imgsz N]
      Ultralytics on a segment .pt we wrote: YOLO() task and model/head classes, state-dict keys
      (and shapes, in order) against spec KEYS.tsv, the module tree against REFERENCE.pt (classes,
      instance-attribute names, all non-cache values) and against UL.pt (attribute order and
      non-tensor values, top-level key order), a restricted (weights_only) load, a rebuild from model.yaml, the eval
      forward of X.npy (both outputs saved as OUT_DIR/output0.npy, OUT_DIR/proto.npy) and, with
      --data, YOLO().val(). Writes OUT_DIR/segment.json; exits non-zero on any mismatch.
  classify OURS.pt REFERENCE.pt OUT_DIR --input X.npy [--image IMG]
      Ultralytics on a classify .pt we wrote: YOLO() task and model/head classes, state-dict keys,
      shapes and values against REFERENCE.pt (an Ultralytics-written file of the same weights), the
      module tree against it (attribute order and values; `transforms`, which we do not write, is
      reported on its own), a restricted (weights_only) load, a rebuild from model.yaml, the eval
      forward of X.npy (probabilities saved as OUT_DIR/probs.npy) and, with --image, predict() on
      both files. Writes OUT_DIR/classify.json; exits non-zero on any mismatch.
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
    from ultralytics.nn.tasks import DetectionModel, SegmentationModel
    from ultralytics.utils.torch_utils import strip_optimizer

    meta, tensors = read_safetensors(args.ours)
    names = meta["names"]
    cls = SegmentationModel if meta.get("task") == "segment" else DetectionModel
    model = cls(f"{meta['stem']}.yaml", nc=len(names), verbose=False)
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


def module_tree_diffs(a, b, order=False, values=True):
    """Differences between two models' module trees: classes, instance-attribute names (in pickled
    order with `order`), non-tensor values, tensor dtype/shape (and tensor attribute values with
    `values`), Parameter vs Tensor. Detect's runtime caches (anchors, strides, shape) and the values
    of the model's train `args` are not compared."""
    cache, diffs = {"anchors", "strides", "shape"}, []
    la, lb = list(a.named_modules(remove_duplicate=False)), list(b.named_modules(remove_duplicate=False))
    if [n for n, _ in la] != [n for n, _ in lb]:
        return [f"module names differ ({len(la)} vs {len(lb)})"]
    for (name, x), (_, y) in zip(la, lb):
        where = name or "<model>"
        if type(x) is not type(y):
            diffs.append(f"{where}: {type(x).__name__} vs {type(y).__name__}")
            continue
        dx, dy = vars(x), vars(y)
        if set(dx) != set(dy):
            diffs.append(f"{where}: attributes missing {sorted(set(dy) - set(dx))}, extra {sorted(set(dx) - set(dy))}")
        elif order and list(dx) != list(dy):
            diffs.append(f"{where}: attribute order {list(dx)} vs {list(dy)}")
        for k in set(dx) & set(dy):
            u, v = dx[k], dy[k]
            if k in cache or k in ("_modules",):
                continue
            if k == "args":
                u, v = (vars(t) if not isinstance(t, dict) else t for t in (u, v))
                if set(u) != set(v):
                    diffs.append(f"{where}.args keys differ")
            elif k in ("_parameters", "_buffers"):
                if list(u) != list(v):
                    diffs.append(f"{where}.{k}: {list(u)} vs {list(v)}")
                for n in set(u) & set(v):
                    p, q = u[n], v[n]
                    if (p is None) != (q is None):
                        diffs.append(f"{where}.{k}[{n}]: None vs tensor")
                    elif p is not None and (type(p) is not type(q) or p.dtype != q.dtype or p.shape != q.shape
                                            or p.requires_grad != q.requires_grad):
                        diffs.append(f"{where}.{k}[{n}]: {type(p).__name__} {p.dtype} {tuple(p.shape)} vs "
                                     f"{type(q).__name__} {q.dtype} {tuple(q.shape)}")
            elif isinstance(v, torch.Tensor):
                if not isinstance(u, torch.Tensor) or u.dtype != v.dtype or (values and not torch.equal(u, v)):
                    diffs.append(f"{where}.{k}: tensor differs")
            elif type(u) is not type(v) or u != v:
                diffs.append(f"{where}.{k}: {u!r} vs {v!r}"[:200])
    if len(list(a.modules())) != len(list(b.modules())):
        diffs.append("distinct module objects differ (shared SiLU)")
    return diffs


def segment(args):
    from pathlib import Path

    from ultralytics import YOLO
    from ultralytics.nn.tasks import SegmentationModel, load_checkpoint, torch_safe_load

    out, report, bad = Path(args.out_dir), {}, []
    out.mkdir(parents=True, exist_ok=True)
    y = YOLO(args.ours)
    head = y.model.model[-1]
    report.update(task=y.task, model_class=type(y.model).__name__, head_class=type(head).__name__,
                  nm=getattr(head, "nm", None), npr=getattr(head, "npr", None))
    if (y.task, report["model_class"], report["head_class"]) != ("segment", "SegmentationModel", "Segment"):
        bad.append(f"task/classes {y.task} {report['model_class']} {report['head_class']}")
    sd = y.model.state_dict()
    if args.keys:
        rows = [ln.split("\t") for ln in open(args.keys).read().splitlines() if ln.strip()]
        want = [(r[0], json.loads(r[1])) for r in rows]
        got = [(k, list(v.shape)) for k, v in sd.items()]
        report["keys"] = len(got)
        if got != want:
            first = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
            bad.append(f"state-dict keys/shapes differ from {args.keys} at {first}: "
                       f"{got[first:first + 1]} vs {want[first:first + 1]} ({len(got)} vs {len(want)})")
    ck_o, _ = torch_safe_load(args.ours)
    ck_r, _ = torch_safe_load(args.reference)
    mo, mr = ck_o.get("ema") or ck_o.get("model"), ck_r.get("ema") or ck_r.get("model")
    diffs = module_tree_diffs(mo, mr)
    if set(ck_o) != set(ck_r):
        diffs.append(f"top-level keys {sorted(set(ck_o) ^ set(ck_r))}")
    if args.trained:  # a real Ultralytics training's file: attribute order and non-tensor values
        ck_t, _ = torch_safe_load(args.trained)
        diffs += [f"vs Ultralytics-trained: {d}" for d in module_tree_diffs(mo, ck_t.get("ema") or ck_t.get("model"),
                                                                           order=True, values=False)]
        if list(ck_o) != list(ck_t):
            diffs.append(f"top-level key order {list(ck_o)} vs {list(ck_t)}")
    report["structure_diffs"] = diffs
    bad += diffs[:5]
    safe, _ = torch_safe_load(args.ours, safe_only=True)
    report["safe_load"] = type(safe.get("ema") or safe.get("model")).__name__
    weights, _ = load_checkpoint(args.ours)
    rebuilt = SegmentationModel(weights.yaml, nc=weights.yaml.get("nc"), verbose=False)
    rsd = rebuilt.state_dict()
    n_ok = sum(1 for k, v in weights.state_dict().items() if k in rsd and v.shape == rsd[k].shape)
    report["rebuild_transfer"] = [n_ok, len(rsd)]
    if n_ok != len(rsd):
        bad.append(f"rebuild from model.yaml transfers {n_ok}/{len(rsd)} tensors")
    model = weights.float().eval()
    x = torch.from_numpy(np.load(args.input))
    with torch.no_grad():
        y0, proto = model(x)[0]
    np.save(out / "output0.npy", y0.numpy())
    np.save(out / "proto.npy", proto.numpy())
    report["forward"] = [list(y0.shape), list(proto.shape)]
    if args.data:
        v = YOLO(args.ours).val(data=args.data, imgsz=args.imgsz, batch=4, device="cpu", workers=0, plots=False,
                                verbose=False, project=tempfile.mkdtemp(prefix="ul_interop_val_"))
        report["val"] = {k: float(t) for k, t in v.results_dict.items()}
        if not any("(M)" in k for k in report["val"]):
            bad.append(f"val gave no mask metrics: {list(report['val'])}")
    report["failures"] = bad
    json.dump(report, open(out / "segment.json", "w"), indent=1)
    print(json.dumps(report, indent=1))
    return 1 if bad else 0


def classify(args):
    from pathlib import Path

    from ultralytics import YOLO
    from ultralytics.nn.tasks import ClassificationModel, load_checkpoint, torch_safe_load

    out, report, bad = Path(args.out_dir), {}, []
    out.mkdir(parents=True, exist_ok=True)
    y = YOLO(args.ours)
    report.update(task=y.task, model_class=type(y.model).__name__, head_class=type(y.model.model[-1]).__name__,
                  imgsz=y.overrides.get("imgsz"))
    if (y.task, report["model_class"], report["head_class"]) != ("classify", "ClassificationModel", "Classify"):
        bad.append(f"task/classes {y.task} {report['model_class']} {report['head_class']}")
    r = YOLO(args.reference)
    sa, sb = y.model.state_dict(), r.model.state_dict()
    report["keys"] = len(sa)
    if [(k, v.shape, v.dtype) for k, v in sa.items()] != [(k, v.shape, v.dtype) for k, v in sb.items()]:
        bad.append("state-dict keys/shapes/dtypes differ from the reference")
    else:
        report["max_weight_diff"] = max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa)
    ck_o, _ = torch_safe_load(args.ours)
    ck_r, _ = torch_safe_load(args.reference)
    mo, mr = ck_o.get("ema") or ck_o.get("model"), ck_r.get("ema") or ck_r.get("model")
    report["reference_only_attributes"] = sorted(set(vars(mr)) - set(vars(mo)))
    if hasattr(mr, "transforms"):  # torchvision objects we do not write; Ultralytics rebuilds them from imgsz
        mr = deepcopy(mr)
        del mr.transforms
    diffs = module_tree_diffs(mo, mr, order=True)
    if list(ck_o) != list(ck_r):
        diffs.append(f"top-level key order {list(ck_o)} vs {list(ck_r)}")
    report["structure_diffs"] = diffs
    bad += diffs[:5]
    safe, _ = torch_safe_load(args.ours, safe_only=True)
    report["safe_load"] = type(safe.get("ema") or safe.get("model")).__name__
    report["train_args_task"] = ck_o["train_args"]["task"]
    weights, _ = load_checkpoint(args.ours)
    rebuilt = ClassificationModel(weights.yaml, nc=weights.yaml.get("nc"), verbose=False)
    rsd = rebuilt.state_dict()
    n_ok = sum(1 for k, v in weights.state_dict().items() if k in rsd and v.shape == rsd[k].shape)
    report["rebuild_transfer"] = [n_ok, len(rsd)]
    if n_ok != len(rsd):
        bad.append(f"rebuild from model.yaml transfers {n_ok}/{len(rsd)} tensors")
    model = weights.float().eval()
    x = torch.from_numpy(np.load(args.input))
    with torch.no_grad():
        p = model(x)
    p = p[0] if isinstance(p, (tuple, list)) else p
    np.save(out / "probs.npy", p.numpy())
    report["forward"] = list(p.shape)
    if args.image:
        pa = y.predict(args.image, device="cpu", verbose=False, save=False)[0]
        pb = r.predict(args.image, device="cpu", verbose=False, save=False)[0]
        report["predict"] = {"probs": pa.probs.data.tolist(), "top1": pa.probs.top1,
                             "name": pa.names[pa.probs.top1], "reference_probs": pb.probs.data.tolist(),
                             "max_diff": float((pa.probs.data - pb.probs.data).abs().max())}
    report["failures"] = bad
    json.dump(report, open(out / "classify.json", "w"), indent=1)
    print(json.dumps(report, indent=1))
    return 1 if bad else 0


def train(args):
    from ultralytics import YOLO

    YOLO(args.model).train(data=args.data, epochs=1, imgsz=args.imgsz, batch=4, workers=0, device="cpu",
                           plots=False, amp=False, project=args.out_dir, name="train", exist_ok=True, verbose=False)
    print(f"trained: {args.out_dir}/train/weights/best.pt")


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
    t = sub.add_parser("train")
    t.add_argument("model")
    t.add_argument("data")
    t.add_argument("out_dir")
    t.add_argument("--imgsz", type=int, default=64)
    g = sub.add_parser("segment")
    g.add_argument("ours")
    g.add_argument("reference")
    g.add_argument("out_dir")
    g.add_argument("--input", required=True)
    g.add_argument("--keys", default=None)
    g.add_argument("--trained", default=None)
    g.add_argument("--data", default=None)
    g.add_argument("--imgsz", type=int, default=64)
    c = sub.add_parser("classify")
    c.add_argument("ours")
    c.add_argument("reference")
    c.add_argument("out_dir")
    c.add_argument("--input", required=True)
    c.add_argument("--image", default=None)
    s = sub.add_parser("png")
    s.add_argument("data_dir")
    s.add_argument("out_dir")
    s.add_argument("--size", type=int, default=0)
    s.add_argument("--split", default="valid")
    a = ap.parse_args()
    cmds = {"reference": reference, "train": train, "segment": segment, "classify": classify, "onnx": onnx, "png": png}
    return cmds[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
