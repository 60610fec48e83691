"""Reference MOT metrics for crates/ryolo/tests/mot_metrics.rs (provenance; not run in CI).

Builds the same synthetic trackers as the Rust test from ../shared/datasets/mot17-mini GT, then evaluates them with
  * TrackEval (MotChallenge2DBox, BENCHMARK MOT17, preprocessing on, sequence lengths = images in img1/):
    HOTA, CLEAR and Identity metrics;
  * py-motmetrics 1.4 on TrackEval's *preprocessed* per-frame data (MOTAccumulator + iou_matrix at 0.5, boxes
    shifted by -1 as motmetrics.io.loadtxt does), per sequence and OVERALL.
Prints one JSON object. Also prints py-motmetrics' TUD numbers (mot-metrics-tud) with idtp/idfp/idfn.

Environment used (scratch venv, never the project's .venv):
    python3 -m venv /tmp/teval && /tmp/teval/bin/pip install trackeval motmetrics numpy scipy
    /tmp/teval/bin/python scripts/mot_reference.py
(trackeval 1.3.0, motmetrics 1.4.0, numpy 2.4, pandas 3.1; np.asfarray, gone in NumPy 2, is patched back for motmetrics.)
"""

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

if not hasattr(np, "asfarray"):
    np.asfarray = lambda a: np.asarray(a, dtype=float)

import motmetrics as mm  # noqa: E402
import trackeval  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RYOLO_SHARED", ROOT.parent / "shared")) / "datasets"
MOT17 = SHARED / "mot17-mini" / "train"


def read_gt(seq):
    rows = []
    for line in (MOT17 / seq / "gt" / "gt.txt").read_text().splitlines():
        if line.strip():
            v = [float(x) for x in line.split(",")]
            rows.append(v)
    return rows


def trackers(seq):
    """The synthetic trackers of the Rust test (same rules, same float64 arithmetic)."""
    gt = read_gt(seq)
    out = {"gt_all": [], "perturbed": []}
    for f, i, x, y, w, h, cons, cls, vis in gt:
        out["gt_all"].append((int(f), int(i), x, y, w, h))
    frames = sorted({int(r[0]) for r in gt})
    for f, i, x, y, w, h, cons, cls, vis in gt:
        f, i, cls = int(f), int(i), int(cls)
        if cls == 1 and cons != 0:
            if (f * 7 + i) % 11 == 0:
                continue  # a miss
            tid = i + 1000 if (i % 4 == 0 and f >= 3) else i  # an id switch from frame 3
            k = 5 if i % 13 == 0 else i % 3  # shift 0, 0.1, 0.2 (or 0.5: no longer a match) of the width
            out["perturbed"].append((f, tid, x + w * 0.1 * k, y, w, h))
        elif cls in (2, 7, 8, 12):
            out["perturbed"].append((f, i + 50000, x, y + 1.0, w, h))  # distractors: removed by preprocessing
    for f in frames:
        out["perturbed"].append((f, 99999, 5.0, 5.0, 20.0, 40.0))  # one false positive per frame
    for v in out.values():
        v.sort(key=lambda r: (r[0], r[1]))
    return out


def main():
    seqs = sorted(p.name for p in MOT17.iterdir() if p.is_dir())
    lengths = {s: len(list((MOT17 / s / "img1").glob("*.jpg"))) for s in seqs}
    report = {"lengths": lengths}
    with tempfile.TemporaryDirectory() as tmp:
        names = ["gt_all", "perturbed"]
        for s in seqs:
            for name, rows in trackers(s).items():
                d = Path(tmp) / name / "data"
                d.mkdir(parents=True, exist_ok=True)
                with open(d / f"{s}.txt", "w") as fh:
                    for f, i, x, y, w, h in rows:
                        fh.write(f"{f},{i},{x!r},{y!r},{w!r},{h!r},1,-1,-1,-1\n")
        cfg = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
        cfg.update(
            GT_FOLDER=str(MOT17), TRACKERS_FOLDER=tmp, OUTPUT_FOLDER=tmp + "/out", TRACKERS_TO_EVAL=names,
            BENCHMARK="MOT17", SPLIT_TO_EVAL="train", SKIP_SPLIT_FOL=True, SEQ_INFO=lengths, PRINT_CONFIG=False,
        )
        ecfg = trackeval.Evaluator.get_default_eval_config()
        ecfg.update(USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_CONFIG=False, TIME_PROGRESS=False,
                    OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False, PLOT_CURVES=False, PRINT_ONLY_COMBINED=True)
        with contextlib.redirect_stdout(sys.stderr):  # TrackEval prints its progress
            ds = trackeval.datasets.MotChallenge2DBox(cfg)
            res, _ = trackeval.Evaluator(ecfg).evaluate(
                [ds], [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
            )
        for name in names:
            te = {}
            for s in seqs + ["COMBINED_SEQ"]:
                r = res["MotChallenge2DBox"][name][s]["pedestrian"]
                te[s] = {
                    "HOTA": float(np.mean(r["HOTA"]["HOTA"])), "DetA": float(np.mean(r["HOTA"]["DetA"])),
                    "AssA": float(np.mean(r["HOTA"]["AssA"])), "LocA": float(np.mean(r["HOTA"]["LocA"])),
                    **{k: float(r["CLEAR"][k]) for k in ["MOTA", "MOTP", "CLR_TP", "CLR_FN", "CLR_FP", "IDSW",
                                                        "MT", "PT", "ML", "Frag"]},
                    **{k: float(r["Identity"][k]) for k in ["IDF1", "IDP", "IDR", "IDTP", "IDFP", "IDFN"]},
                }
            # py-motmetrics on TrackEval's preprocessed data.
            accs = []
            for s in seqs:
                raw = ds.get_raw_seq_data(name, s)
                data = ds.get_preprocessed_seq_data(raw, "pedestrian")
                acc = mm.MOTAccumulator()
                for t in range(data["num_timesteps"]):
                    g = np.asarray(data["gt_dets"][t], float).reshape(-1, 4).copy()
                    h = np.asarray(data["tracker_dets"][t], float).reshape(-1, 4).copy()
                    g[:, :2] -= 1
                    h[:, :2] -= 1
                    gid, hid = data["gt_ids"][t], data["tracker_ids"][t]
                    if len(gid) == 0 and len(hid) == 0:
                        continue
                    d = mm.distances.iou_matrix(g, h, max_iou=0.5) if len(gid) and len(hid) else np.empty((0, 0))
                    # TrackEval renumbers ids 0..n-1 per sequence; identity of ids is all that matters.
                    acc.update(list(gid), list(hid), d, frameid=t + 1)
                accs.append(acc)
            mh = mm.metrics.create()
            cols = ["idf1", "idp", "idr", "recall", "precision", "num_unique_objects", "mostly_tracked",
                    "partially_tracked", "mostly_lost", "num_false_positives", "num_misses", "num_switches",
                    "num_fragmentations", "mota", "motp", "idtp", "idfp", "idfn"]
            summ = mh.compute_many(accs, metrics=cols, names=seqs, generate_overall=True)
            mmres = {idx: {c: float(summ.loc[idx, c]) for c in cols} for idx in summ.index}
            report[name] = {"trackeval": te, "motmetrics": mmres}
    report["tud_trackeval"] = tud_trackeval()
    print(json.dumps(report, indent=1, sort_keys=True))


def tud_trackeval():
    """TrackEval (BENCHMARK MOT15: no class rules, GT rows with consider 0 dropped) on mot-metrics-tud."""
    tud = SHARED / "mot-metrics-tud"
    seqs = ["TUD-Campus", "TUD-Stadtmitte"]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "tud" / "data"
        d.mkdir(parents=True)
        lengths = {}
        for s in seqs:
            (d / f"{s}.txt").write_text((tud / s / "test.txt").read_text())
            frames = [int(x.split(",")[0]) for x in (tud / s / "gt.txt").read_text().split()]
            lengths[s] = max(frames)
        cfg = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
        cfg.update(GT_FOLDER=str(tud), TRACKERS_FOLDER=tmp, OUTPUT_FOLDER=tmp + "/out", TRACKERS_TO_EVAL=["tud"],
                   BENCHMARK="MOT15", SPLIT_TO_EVAL="train", SKIP_SPLIT_FOL=True, SEQ_INFO=lengths,
                   GT_LOC_FORMAT="{gt_folder}/{seq}/gt.txt", PRINT_CONFIG=False)
        ecfg = trackeval.Evaluator.get_default_eval_config()
        ecfg.update(USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_CONFIG=False, TIME_PROGRESS=False,
                    OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False, PLOT_CURVES=False)
        with contextlib.redirect_stdout(sys.stderr):
            res, _ = trackeval.Evaluator(ecfg).evaluate(
                [trackeval.datasets.MotChallenge2DBox(cfg)],
                [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()])
        for s in seqs + ["COMBINED_SEQ"]:
            r = res["MotChallenge2DBox"]["tud"][s]["pedestrian"]
            out[s] = {k: float(np.mean(r["HOTA"][k])) for k in ["HOTA", "DetA", "AssA", "LocA"]}
            out[s].update({k: float(r["CLEAR"][k]) for k in ["MOTA", "IDSW", "CLR_FP", "CLR_FN"]})
            out[s].update({k: float(r["Identity"][k]) for k in ["IDF1"]})
    return out


if __name__ == "__main__":
    sys.exit(main())
