"""OBB tracking and BoT-SORT ReID reference runs with Ultralytics 8.4.190 (CPU, no detector, no downloads).

Per-frame detections go through Ultralytics' own track callback (`on_predict_postprocess_end`) with a stub predictor
holding one `Results` per frame (video mode, persist=False), as `model.track()` does after NMS -- the approach of
/work/shared/fixtures/ultralytics/track/make_fixtures.py and make_tracktrack.py (not their files).

Needs `lap` (0.5.13; Ultralytics' matching imports it). Run:
    YOLO_OFFLINE=1 YOLO_CONFIG_DIR=/tmp/obbt/ycfg PYTHONPATH=/tmp/obbt/pylib \
        /work/main/.venv/bin/python scripts/make_track_obb_reid.py
Writes crates/ryolo/tests/data/track_obb_reid.json:
- `obb.inputs[f]`: frame f+1's OBB detections `[cx, cy, w, h, angle, conf, cls]` (float32, the Results.obb rows;
  angles in the detector's [-pi/4, 3pi/4), w < h on some objects, row order = idx);
- `obb.runs.{bytetrack,botsort,tracktrack}`: tracker output rows `[cx, cy, w, h, angle, id, score, cls, idx]`,
  the callback's `Results.obb` data (8 columns with ids, or the untouched 7 columns, or empty), `is_track`,
  `save_txt` lines (save_conf=True), tracked/lost state (id, state, activated, start, last, score, cls, angle, mean)
  and removed ids;
- `obb.runs.botsort_reid`: BoT-SORT with_reid (model auto) on the OBB sequence with per-row features `obb.feats`;
- `detect.inputs` / `detect.feats` / `detect.runs.botsort_reid`: BoT-SORT with_reid on detect rows
  `[x1, y1, x2, y2, conf, cls]` with per-row 8-d features given as `Results.feats` (as the Detect pre-hook does).
"""

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", "/tmp/obbt/ycfg")

import numpy as np
import torch

from ultralytics.engine.results import Results
from ultralytics.trackers import BOTSORT, BYTETracker
from ultralytics.trackers.basetrack import TrackState
from ultralytics.trackers.track import on_predict_postprocess_end
from ultralytics.trackers.track_tracker import TRACKTRACK
from ultralytics.utils import YAML, IterableSimpleNamespace
from ultralytics.utils.checks import check_yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "crates/ryolo/tests/data/track_obb_reid.json"
W, H = 1280, 720
NAMES = {0: "plane", 1: "ship", 2: "vehicle"}
STATE = {TrackState.New: "new", TrackState.Tracked: "tracked", TrackState.Lost: "lost", TrackState.Removed: "removed"}


def f32(a):
    """float32 values as the shortest decimals that read back to the same float32."""
    a = np.asarray(a, dtype=np.float32)
    return [float(str(v)) for v in a.ravel()] if a.ndim <= 1 else [f32(r) for r in a]


def cfg_of(name, **over):
    cfg = YAML.load(check_yaml(name))
    cfg.update(over)
    return IterableSimpleNamespace(**cfg)


def wrap_angle(a):
    """The detector's angle range [-pi/4, 3pi/4)."""
    return (a + math.pi / 4) % math.pi - math.pi / 4


def obb_sequence(n=70, seed=3):
    """Deterministic OBB detections [cx, cy, w, h, angle, conf, cls] per frame, plus the object label of every row."""
    g = np.random.default_rng(seed)
    # name: (first, last, cx0, cy0, vx, vy, w, h, a0, va, cls, score)
    objs = {
        "A_rotating_wraps_3pi4": (1, 70, 250, 200, 2.0, 0.5, 120, 50, 1.9, 0.04, 0, 0.85),
        "B_tall_rotating_down": (1, 70, 900, 450, -2.5, -1.0, 40, 100, -0.1, -0.035, 1, 0.80),
        "C_near_square": (3, 70, 600, 600, 1.0, -0.5, 70, 68, 0.3, 0.0, 2, 0.88),
        "D_enter_leave": (12, 50, 1300, 120, -14.0, 0.0, 110, 60, 0.7, 0.01, 2, 0.90),
        "E_cross": (20, 60, 420, 380, 7.0, 0.0, 90, 45, 0.2, 0.0, 2, 0.82),
        "F_cross": (20, 60, 820, 390, -7.0, 0.0, 92, 44, -0.2, 0.0, 2, 0.80),
        "G_low_dip": (5, 70, 1100, 650, -1.0, -1.5, 80, 60, 1.2, 0.0, 1, 0.80),
        "H_spurious": (15, 15, 640, 300, 0.0, 0.0, 50, 30, 0.5, 0.0, 0, 0.65),
        "I_occluded": (1, 70, 150, 550, 2.0, -1.0, 60, 130, 0.05, 0.01, 0, 0.78),
    }
    frames, labels = [], []
    for f in range(1, n + 1):
        dets, lab = [], []
        if f != 55:
            for name, (a, b, cx0, cy0, vx, vy, w, h, a0, va, c, s) in objs.items():
                if not a <= f <= b:
                    continue
                if name == "I_occluded" and 33 <= f <= 40:
                    continue
                t = f - a
                cx = cx0 + vx * t + g.normal(0, 1.5)
                cy = cy0 + vy * t + g.normal(0, 1.5)
                ww, hh = w + g.normal(0, 1.2), h + g.normal(0, 1.2)
                ang = wrap_angle(a0 + va * t + g.normal(0, 0.02))
                score = float(np.clip(s + g.normal(0, 0.04), 0.26, 0.99))
                if name == "G_low_dip" and 25 <= f <= 32:
                    score = float(g.uniform(0.12, 0.24))
                dets.append([cx, cy, ww, hh, ang, score, c])
                lab.append(name)
            if f % 7 == 0:
                for _ in range(2):
                    cx, cy = g.uniform(60, W - 60), g.uniform(60, H - 60)
                    dets.append([cx, cy, 36.0, 24.0, float(g.uniform(-0.7, 2.3)), float(g.uniform(0.11, 0.24)), 0])
                    lab.append("clutter")
            if f in (18, 19):
                dets.append([500.0, 100.0, 0.0, 40.0, 0.3, 0.2, 1])  # zero-width box: ignored by the trackers
                lab.append("zero")
        d = np.asarray(dets, np.float64).reshape(-1, 7)
        p = g.permutation(len(d))
        d, lab = d[p], [lab[i] for i in p]
        d[:, :4] = np.round(d[:, :4], 2)
        d[:, 4] = np.round(d[:, 4], 4)
        d[:, 5] = np.round(d[:, 5], 4)
        frames.append(d.astype(np.float32))
        labels.append(lab)
    return frames, labels


def detect_sequence(n=60, seed=4):
    """Detect rows [x1, y1, x2, y2, conf, cls] for the ReID run: two look-alike boxes crossing, an occlusion, clutter."""
    g = np.random.default_rng(seed)
    objs = {
        "P_cross": (1, 60, 300, 300, 8.0, 0.0, 60, 140, 0, 0.85),
        "Q_cross": (1, 60, 1180, 305, -8.0, 0.0, 62, 138, 0, 0.83),
        "R_occluded": (1, 60, 1100, 600, -6.0, -1.0, 90, 90, 2, 0.80),
        "S_steady": (5, 60, 150, 600, 1.0, 0.0, 70, 70, 2, 0.75),
        "Z_impostor": (35, 45, 300 + 8 * 34, 300, 8.0, 0.0, 60, 140, 0, 0.85),
    }
    # From these frames on an object is shifted by dx: P jumps 15 px (IoU ~0.6 with its track) while the impostor Z
    # appears where P was heading; R jumps 55 px (IoU ~0.24: matched only through ReID with proximity_thresh 0.2).
    jumps = {"P_cross": (35, 15.0), "R_occluded": (32, -55.0)}
    frames, labels = [], []
    for f in range(1, n + 1):
        dets, lab = [], []
        for name, (a, b, cx0, cy0, vx, vy, w, h, c, s) in objs.items():
            if not a <= f <= b or (name == "R_occluded" and 20 <= f <= 26):
                continue
            t = f - a
            cx, cy = cx0 + vx * t + g.normal(0, 1.0), cy0 + vy * t + g.normal(0, 1.0)
            if name in jumps and f >= jumps[name][0]:
                cx += jumps[name][1]
            ww, hh = w + g.normal(0, 1.0), h + g.normal(0, 1.0)
            score = float(np.clip(s + g.normal(0, 0.05), 0.26, 0.99))
            if name == "S_steady" and 40 <= f <= 45:
                score = float(g.uniform(0.12, 0.24))
            dets.append([cx - ww / 2, cy - hh / 2, cx + ww / 2, cy + hh / 2, score, c])
            lab.append(name)
        if f % 6 == 0:
            cx, cy = g.uniform(50, W - 50), g.uniform(50, H - 50)
            dets.append([cx - 25, cy - 25, cx + 25, cy + 25, float(g.uniform(0.3, 0.5)), 1])
            lab.append("clutter")
        d = np.asarray(dets, np.float64).reshape(-1, 6)
        p = g.permutation(len(d))
        d, lab = d[p], [lab[i] for i in p]
        d[:, [0, 2]] = d[:, [0, 2]].clip(0, W)
        d[:, [1, 3]] = d[:, [1, 3]].clip(0, H)
        d[:, :4] = np.round(d[:, :4], 2)
        d[:, 4] = np.round(d[:, 4], 4)
        frames.append(d.astype(np.float32))
        labels.append(lab)
    return frames, labels


def features(labels, dim=8, seed=5, zero=("P_cross", 30, 31)):
    """A fixed unit vector per object + N(0, 0.1) noise (clutter random); one object's feature zero on two frames."""
    g = np.random.default_rng(seed)
    names = sorted({n for lab in labels for n in lab})
    base = {n: g.normal(size=dim) for n in names}
    base = {n: v / np.linalg.norm(v) for n, v in base.items()}
    out = []
    for f, lab in enumerate(labels, 1):
        rows = []
        for n in lab:
            v = g.normal(size=dim) if n in ("clutter", "zero") else base[n] + g.normal(0, 0.1, dim)
            if n == zero[0] and zero[1] <= f <= zero[2]:
                v = np.zeros(dim)
            rows.append(np.round(v, 4))
        out.append(np.asarray(rows, np.float32).reshape(-1, dim))
    return out


def track_state(tracker, full):
    def one(t):
        d = {"id": int(t.track_id), "state": STATE[t.state], "activated": bool(t.is_activated),
             "start": int(t.start_frame), "last": int(t.frame_id), "score": float(t.score), "cls": float(t.cls)}
        if full:
            d["mean"] = f32(t.mean)
        if t.angle is not None:
            d["angle"] = float(t.angle)
        return d

    return {"tracked": [one(t) for t in tracker.tracked_stracks], "lost": [one(t) for t in tracker.lost_stracks],
            "removed_this_frame": [int(t.track_id) for t in getattr(tracker, "removed_stracks_frame", [])]}


def synthetic_warps(n, seed=6):
    """2x3 camera-motion warps per frame (identity first): small rotations (up to 0.02 rad), 0.99-1.01 scale and
    translations up to 6 px, so the OBB branch of multi_gmc (size by |R[:, 0]|, angle + atan2) is exercised."""
    g = np.random.default_rng(seed)
    out = [np.eye(2, 3)]
    for _ in range(n - 1):
        a, sc = g.uniform(-0.02, 0.02), g.uniform(0.99, 1.01)
        out.append(np.array([[sc * math.cos(a), -sc * math.sin(a), g.uniform(-6, 6)],
                             [sc * math.sin(a), sc * math.cos(a), g.uniform(-6, 6)]]))
    return out


def loose_sets(frames, seed=7):
    """Loose-NMS OBB rows per frame: the tight rows plus, every 3rd frame, shifted near-duplicates of some
    high-score rows (what an IoU-0.95 NMS keeps and the 0.7 one drops); plus one exact duplicate (deduplicated)."""
    g = np.random.default_rng(seed)
    out = []
    for f, d in enumerate(frames, 1):
        rows = [list(r) for r in d]
        if f % 3 == 0:
            for cx, cy, w, h, a, sc, c in d:
                if sc < 0.7 or w <= 0 or g.random() < 0.4:
                    continue
                dx, dy = g.uniform(0.05, 0.12) * w * g.choice([-1, 1]), g.uniform(0.05, 0.12) * h * g.choice([-1, 1])
                rows.append([cx + dx, cy + dy, w, h, a + g.uniform(-0.05, 0.05), round(float(sc - g.uniform(0.01, 0.1)), 4), c])
            if len(d):
                rows.append(list(d[0]))
        out.append(np.asarray(rows, np.float32).reshape(-1, 7))
    return out


def run(tracker, frames, task, feats=None, full=False, warps=None, loose=None):
    """Feed frames through Ultralytics' on_predict_postprocess_end exactly as mode=track does.

    full: also record the save_txt lines and the Kalman means (a few runs only, to keep the file small).
    """
    pred = SimpleNamespace(args=SimpleNamespace(mode="track", task=task), dataset=SimpleNamespace(mode="video", bs=1),
                           trackers=[tracker], vid_path=[None], results=None)
    blank = np.zeros((H, W, 3), np.uint8)
    captured = {}
    orig_update = tracker.update

    def update(*a, **k):
        out = orig_update(*a, **k)
        captured["raw"] = np.array(out, copy=True)
        return out

    tracker.update = update
    orig_update2 = tracker.update

    def update2(*a, **k):
        captured["dets_del"] = k.get("dets_del")
        return orig_update2(*a, **k)

    tracker.update = update2
    if warps is not None:  # replay the given warps instead of estimating them from the (blank) frames
        replay = iter(warps)
        tracker.gmc.apply = lambda *a, **k: np.asarray(next(replay), dtype=np.float64)
    ncol = 9 if task == "obb" else 8
    out = []
    tmp = Path(tempfile.mkdtemp())
    for f, d in enumerate(frames, 1):
        t = torch.from_numpy(np.asarray(d, np.float32).copy())
        r = (Results(blank, path="synthetic.mp4", names=NAMES, obb=t.reshape(-1, 7)) if task == "obb"
             else Results(blank, path="synthetic.mp4", names=NAMES, boxes=t.reshape(-1, 6)))
        if feats is not None:  # as DetectionPredictor.postprocess: (N, C) tensor, or [] for an empty frame
            r.feats = torch.from_numpy(np.asarray(feats[f - 1], np.float32).reshape(len(d), -1)) if len(d) else []
        pred.results = [r]
        if loose is not None:  # compute_dets_del re-runs the predictor's postprocess at IoU 0.95: serve the rows
            lf = torch.from_numpy(np.asarray(loose[f - 1], np.float32).reshape(-1, 7).copy())
            pred._orig_postprocess = lambda raw, im, im0s, iou=None, _l=lf: [
                Results(blank, path="synthetic.mp4", names=NAMES, obb=_l.clone())]
            pred._raw_preds, pred._postprocess_im, pred._postprocess_im0s = torch.zeros(1), None, [blank]
        on_predict_postprocess_end(pred, persist=False)
        res = pred.results[0]
        src = res.obb if task == "obb" else res.boxes
        txt = tmp / f"{f}.txt"
        if full:
            res.save_txt(txt, save_conf=True)
        out.append({
            "frame": f,
            "tracker_output": f32(np.asarray(captured["raw"], np.float32).reshape(-1, ncol)),
            "result": f32(src.data.numpy()),
            "result_is_track": bool(src.is_track),
            **({"dets_del": None if captured.get("dets_del") is None else f32(np.concatenate(
                [captured["dets_del"][0], captured["dets_del"][1][:, None], captured["dets_del"][2][:, None]], 1))}
               if loose is not None else {}),
            "txt": (txt.read_text().splitlines() if txt.exists() else []) if full else None,
            "state": track_state(tracker, full),
        })
    return out


def native_feats(shared=Path("/work/shared")):
    """`model: auto` features as Ultralytics' predictor takes them: a pre-hook on the Detect layer captures its input
    maps in mode track, DetectionPredictor.postprocess reduces them (`get_obj_feats`) and indexes the NMS kept anchors
    -> `Results.feats`. bt_yolo11n_best.pt on a brain-tumor image (written as tests/data/track_reid_bt.png), imgsz
    320, conf 0.1."""
    from ultralytics import YOLO

    import cv2

    model = YOLO(str(shared / "fixtures/ultralytics/bt_yolo11n_best.pt"))
    # A lossless copy of the (gray) JPEG, so both sides see the same pixels whatever their JPEG decoder.
    png = OUT.parent / "track_reid_bt.png"
    cv2.imwrite(str(png), cv2.imread(str(shared / "datasets/brain-tumor/train/images/00056_110.jpg"))[..., 0])
    src = str(png)
    model.predict(src, imgsz=320, conf=0.1, verbose=False, save=False)  # sets up the predictor
    p = model.predictor
    p.args.mode = "track"
    hook = p.model.model.model[-1].register_forward_pre_hook(lambda m, inp: setattr(p, "_feats", list(inp[0])))
    try:
        r = p(source=src)[0]
    finally:
        hook.remove()
    return {"model": "fixtures/ultralytics/bt_yolo11n_best.pt", "source": "tests/data/track_reid_bt.png", "imgsz": 320,
            "conf": 0.1, "boxes": f32(r.boxes.data.numpy()), "feats": f32(r.feats.numpy())}


def reid_encoder(shared=Path("/work/shared")):
    """`model: <file>` embeddings: Ultralytics' ReID(.pt) on crops (save_one_box gain 1.02, pad 10) of
    tests/data/track_reid_bus.png through a classify model's embed at its second-to-last layer."""
    import cv2

    from ultralytics.trackers.utils.reid import ReID

    model = "weights/yolo11n-cls-mnist160/best.pt"
    enc = ReID(str(shared / model), device="cpu")
    png = OUT.parent / "track_reid_bus.png"  # a lossless 200x200 cut of bus.jpg as OpenCV decodes it
    cv2.imwrite(str(png), cv2.imread(str(shared / "datasets/samples/bus.jpg"))[420:620, 40:240])
    img = cv2.imread(str(png))
    dets = np.array([[60.5, 86.6, 68.3, 48.7, 0], [10.2, 190.1, 50.0, 40.0, 1], [100.0, 100.0, 2.0, 150.0, 2],
                     [-100.0, 50.0, 40.0, 40.0, 3], [150.25, 40.75, 33.3, 77.7, 4]], np.float64)
    feats = enc(img, dets)
    return {"model": model, "source": "tests/data/track_reid_bus.png", "xywh": dets[:, :4].tolist(),
            "feats": [None if f is None else f32(f) for f in feats]}


def main():
    obb_frames, obb_labels = obb_sequence()
    obb_feats = features(obb_labels, zero=("A_rotating_wraps_3pi4", 40, 41))
    det_frames, det_labels = detect_sequence()
    det_feats = features(det_labels)
    no_gmc = {"gmc_method": "none"}
    runs = {}
    for name, cls, cfg in (
        ("bytetrack", BYTETracker, cfg_of("bytetrack.yaml")),
        ("botsort", BOTSORT, cfg_of("botsort.yaml", **no_gmc)),
        ("tracktrack", TRACKTRACK, cfg_of("tracktrack.yaml", **no_gmc)),
        ("botsort_reid", BOTSORT, cfg_of("botsort.yaml", with_reid=True, **no_gmc)),
    ):
        fe = obb_feats if name.endswith("reid") else None
        runs[name] = {"config": dict(vars(cfg)),
                      "frames": run(cls(args=cfg), obb_frames, "obb", fe, full=name == "bytetrack")}
    del runs["botsort_reid"]  # same output as botsort on this sequence (ReID is checked on the detect runs)
    warps = synthetic_warps(len(obb_frames))
    cfg = cfg_of("botsort.yaml")  # gmc_method sparseOptFlow, its apply replaced by the replayed warps
    runs["botsort_gmc_replay"] = {"config": dict(vars(cfg)), "warps": [w.tolist() for w in warps],
                                  "frames": run(BOTSORT(args=cfg), obb_frames, "obb", warps=warps)}
    for fr in runs["botsort_gmc_replay"]["frames"]:
        del fr["state"]
    loose = loose_sets(obb_frames)
    # The tight NMS also suppressed E on frames 30-33 (crossing F); the loose one kept it.
    tight = [d[[lab != "E_cross" for lab in labs]] if 30 <= f <= 33 else d
             for f, (d, labs) in enumerate(zip(obb_frames, obb_labels), 1)]
    cfg = cfg_of("tracktrack.yaml", **no_gmc)
    runs["tracktrack_dets_del"] = {"config": dict(vars(cfg)), "tight": {str(f): f32(tight[f - 1]) for f in range(30, 34)},
                                   "loose": [f32(x) for x in loose],
                                   "frames": run(TRACKTRACK(args=cfg), tight, "obb", loose=loose)}
    for fr in runs["tracktrack_dets_del"]["frames"]:
        del fr["state"]
    det_runs = {}
    for name, over in (("botsort_reid", {}), ("botsort_reid_loose", {"appearance_thresh": 0.5, "proximity_thresh": 0.2})):
        cfg = cfg_of("botsort.yaml", with_reid=True, **over, **no_gmc)
        det_runs[name] = {"config": dict(vars(cfg)),
                          "frames": run(BOTSORT(args=cfg), det_frames, "detect", det_feats, full=name == "botsort_reid")}
    # Diagnostics only (not stored): frames where ReID changed the output against the same config without it.
    for sec, frames, fe, rr in (("obb", obb_frames, obb_feats, runs), ("detect", det_frames, det_feats, det_runs)):
        for name, r in rr.items():
            if "reid" not in name:
                continue
            cfg = cfg_of("botsort.yaml", **{**r["config"], "with_reid": False})
            plain = run(BOTSORT(args=cfg), frames, sec)
            diff = [a["frame"] for a, b in zip(r["frames"], plain) if a["tracker_output"] != b["tracker_output"]]
            idd = [a["frame"] for a, b in zip(r["frames"], plain)
                   if [x[-4] for x in a["tracker_output"]] != [x[-4] for x in b["tracker_output"]]]
            print(f"{sec}/{name}: ReID changed the output on {len(diff)} frames, ids/rows on {idd[:20]}")
    doc = {
        "about": "Ultralytics 8.4.190 track callback on synthetic per-frame detections (scripts/make_track_obb_reid.py)",
        "image": [H, W],
        "names": NAMES,
        "obb": {"inputs": [f32(x) for x in obb_frames], "feats": [f32(x) for x in obb_feats],
                "runs": runs},
        "native_feats": native_feats(),
        "reid_encoder": reid_encoder(),
        "detect": {"inputs": [f32(x) for x in det_frames], "feats": [f32(x) for x in det_feats],
                   "runs": det_runs},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, separators=(",", ":")))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")
    for sec in ("obb", "detect"):
        for name, r in doc[sec]["runs"].items():
            ids = sorted({int(row[-4]) for fr in r["frames"] for row in fr["tracker_output"]})
            rows = sum(len(fr["tracker_output"]) for fr in r["frames"])
            print(f"{sec}/{name}: {rows} rows, ids {ids}")


if __name__ == "__main__":
    sys.exit(main())
