"""Generates tests/data/obb_json_fixture.json: what Ultralytics 8.4.190's OBBValidator writes for
`save_json` on DOTA data (provenance of the obb_json test).

Run from the repository root: .venv/bin/python crates/ryolo/tests/data/make_obb_json_fixture.py

Synthetic rotated detections (float32, original pixels) on DOTA tiles `{stem}__{size}__{x}___{y}`
and untiled images go through OBBValidator.pred_to_json (rows with score, rbox, poly) and
eval_json (predictions_txt/Task1_*.txt and the merged predictions_merged_txt/Task1_*.txt);
objects seen by two overlapping tiles make the merge's rotated NMS suppress.
"""

import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from ultralytics.models.yolo.obb.val import OBBValidator

NAMES = [
    "plane", "ship", "storage tank", "baseball diamond", "tennis court", "basketball court",
    "ground track field", "harbor", "bridge", "large vehicle", "small vehicle", "helicopter",
    "roundabout", "soccer ball field", "swimming pool",
]
TILES = [("P0001", 1024, 0, 0), ("P0001", 1024, 824, 0), ("P0001", 1024, 0, 824), ("P0001", 1024, 824, 824),
         ("P0002", 512, 0, 0), ("P0002", 512, 312, 0)]


def main():
    rng = np.random.default_rng(0)
    preds = {}  # image name -> list of (xywhr, conf, cls)
    # Objects of the original images, seen by every tile whose window holds their centre.
    for stem, size in (("P0001", 1848), ("P0002", 824)):
        for _ in range(60 if stem == "P0001" else 20):
            g = [rng.uniform(0, size), rng.uniform(0, 512 if stem == "P0002" else size),
                 rng.uniform(8, 120), rng.uniform(4, 60), rng.uniform(-np.pi / 4, 3 * np.pi / 4)]
            cls, conf = int(rng.integers(0, 15)), rng.uniform(0.01, 1)
            for s, n, x, y in TILES:
                if s == stem and x <= g[0] < x + n and y <= g[1] < y + n:
                    b = [g[0] - x + rng.normal(0, 1.5), g[1] - y + rng.normal(0, 1.5), g[2] + rng.normal(0, 2),
                         g[3] + rng.normal(0, 1), g[4] + rng.normal(0, 0.02)]
                    name = f"{s}__{n}__{x}___{y}"
                    preds.setdefault(name, []).append((b, min(1.0, conf + rng.normal(0, 0.05)), cls))
    for name in ("0042", "P0003"):  # untiled (a numeric stem becomes an int image_id)
        preds[name] = [([rng.uniform(0, 900), rng.uniform(0, 700), rng.uniform(8, 200), rng.uniform(4, 80),
                         rng.uniform(-np.pi / 4, 3 * np.pi / 4)], rng.uniform(0.01, 1), int(rng.integers(0, 15)))
                       for _ in range(12)]
    # One tie in the rounding of a corner and the 5-decimal score.
    preds["P0003"].append(([100.0625, 50.5, 40.0, 20.0, 0.0], 0.5, 3))

    v = OBBValidator.__new__(OBBValidator)
    v.jdict, v.class_map, v.names = [], list(range(1, 16)), dict(enumerate(NAMES))
    stored = []
    for name, ps in preds.items():
        bboxes = torch.tensor([p[0] for p in ps], dtype=torch.float32)
        conf = torch.tensor([p[1] for p in ps], dtype=torch.float32)
        cls = torch.tensor([p[2] for p in ps], dtype=torch.float32)
        v.pred_to_json({"bboxes": bboxes, "conf": conf, "cls": cls}, {"im_file": f"/data/DOTA/images/val/{name}.jpg"})
        for b, c, k in zip(bboxes.tolist(), conf.tolist(), cls.tolist()):
            stored.append({"name": name, "xywhr": b, "conf": c, "cls": int(k)})
    with tempfile.TemporaryDirectory() as tmp:
        v.save_dir = Path(tmp)
        v.args = SimpleNamespace(save_json=True)
        v.is_dota = True
        with open(v.save_dir / "predictions.json", "w") as f:
            json.dump(v.jdict, f)
        v.eval_json({})
        files = {str(p.relative_to(tmp)): p.read_text() for p in sorted(Path(tmp).glob("predictions*_txt/*.txt"))}
    out = {
        "source": "ultralytics 8.4.190 OBBValidator.pred_to_json + eval_json (is_dota)",
        "names": NAMES,
        "preds": stored,
        "rows": v.jdict,
        "files": files,
    }
    path = Path(__file__).parent / "obb_json_fixture.json"
    path.write_text(json.dumps(out) + "\n")
    merged = sum(t.count("\n") for k, t in files.items() if "merged" in k)
    print(f"{path}: {len(stored)} detections, {len(files)} files, {merged} merged rows")


if __name__ == "__main__":
    main()
