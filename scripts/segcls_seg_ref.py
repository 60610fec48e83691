"""Reference outputs for the segment val save_json/save_txt test (crates/yolo-cli/tests/segcls_cli.rs).

The seed-0 yolo11n-seg fixture detects nothing (untrained), so this builds a segment model that does: a
yolo11n-seg (nc 2, torch seed 0) whose backbone, neck and Detect branches are copied from the trained
brain-tumour detector fixtures/ultralytics/bt_yolo11n_best.pt (same layer names); Proto and the mask-coefficient
branch stay seed-0 random, so the masks are arbitrary but not empty. Saved with Ultralytics' Model.save as
scripts/segcls_out/seg_bt.pt (fp16). The data: the 4 coco8-seg val images (halved, as PNG) with their polygons, classes mod 2.
Ultralytics 8.4.190 val at imgsz 320, save_json=True, save_txt=True; predictions.json is copied, and the
FNV-1a 64 hash of each line of each labels/*.txt file (seg_label_lines.json; the polygons are large).

Run: /work/main/.venv/bin/python scripts/segcls_seg_ref.py
"""

import json
import os
import shutil
from pathlib import Path

os.environ["YOLO_OFFLINE"] = "1"
import torch
from ultralytics import YOLO

root = Path(__file__).resolve().parents[1]
shared = (root / ".." / "shared").resolve()
out = root / "scripts" / "segcls_out"
shutil.rmtree(out, ignore_errors=True)
out.mkdir(parents=True)
work = Path("/tmp/segcls_ref")
shutil.rmtree(work, ignore_errors=True)
work.mkdir(parents=True)

torch.manual_seed(0)
seg = YOLO("yolo11n-seg.yaml")
det = YOLO(str(shared / "fixtures/ultralytics/bt_yolo11n_best.pt"))
seg.model = seg.model.__class__("yolo11n-seg.yaml", nc=2, verbose=False)
sd = {k: v.float() for k, v in det.model.state_dict().items()}
own = seg.model.state_dict()
copied = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
seg.model.load_state_dict(copied, strict=False)
print(f"copied {len(copied)} of {len(own)} tensors")
seg.model.names = {0: "negative", 1: "positive"}
seg.model.args = {"task": "segment", "imgsz": 320}
seg.model.task = "segment"
seg.save(str(out / "seg_bt.pt"))

data = work / "data"
(data / "images").mkdir(parents=True)
(data / "labels").mkdir(parents=True)
src = shared / "datasets/coco8-seg"
import cv2

# Lossless inputs: JPEG decoders differ by a few 1/255 (cv2's libjpeg vs ryolo's), which moves scores by
# up to ~5% on this weak model; the PNGs (each image halved with INTER_AREA) are stored for the test.
(out / "images").mkdir()
for im in sorted((src / "images/val").glob("*.jpg")):
    a = cv2.imread(str(im))
    a = cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(out / "images" / (im.stem + ".png")), a)
    shutil.copy(out / "images" / (im.stem + ".png"), data / "images" / (im.stem + ".png"))
    lines = (src / "labels/val" / (im.stem + ".txt")).read_text().splitlines()
    fixed = [" ".join([str(int(l.split()[0]) % 2)] + l.split()[1:]) for l in lines if l.strip()]
    (data / "labels" / (im.stem + ".txt")).write_text("\n".join(fixed) + "\n")
(data / "data.yaml").write_text(f"path: {data}\ntrain: images\nval: images\nnames:\n  0: negative\n  1: positive\n")
r = YOLO(str(out / "seg_bt.pt"), task="segment").val(
    data=str(data / "data.yaml"), imgsz=320, batch=4, save_json=True, save_txt=True, plots=False,
    project=str(work / "runs"), name="val", device="cpu", max_det=10,
)
sdir = Path(r.save_dir)
shutil.copy(sdir / "predictions.json", out / "seg_predictions.json")
def fnv1a64(b):
    h = 0xCBF29CE484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


counts = {
    f.name: [fnv1a64(l.encode()) for l in f.read_text().splitlines()]
    for f in sorted((sdir / "labels").glob("*.txt"))
}
(out / "seg_label_lines.json").write_text(json.dumps(counts, indent=1))
(out / "seg_val_metrics.json").write_text(json.dumps({k: float(v) for k, v in r.results_dict.items()}, indent=1))
p = json.load(open(out / "seg_predictions.json"))
print(len(p), "predictions; top scores", sorted((x["score"] for x in p), reverse=True)[:5])

# predict save_crop: crops/<class>/<stem>.jpg (then <stem>2.jpg, ...) and their sizes, for the segment model
# above (conf 0.05 on the 4 images) and the brain-tumour detector (default conf on val_1 (1).jpg).
def crops(model, source, task, **kw):
    r = YOLO(str(model), task=task).predict(
        source=str(source), save_crop=True, save=False, project=str(work / "runs"), name=f"crop_{task}", **kw
    )
    root = Path(r[0].save_dir) / "crops"
    import cv2

    return {
        str(p.relative_to(root)): list(cv2.imread(str(p)).shape[:2]) for p in sorted(root.rglob("*.jpg"))
    }


ref = {
    "segment": crops(out / "seg_bt.pt", data / "images", "segment", conf=0.05, imgsz=320),
    "detect": crops(shared / "fixtures/ultralytics/bt_yolo11n_best.pt",
                    shared / "datasets/brain-tumor/valid/images/val_1 (1).jpg", "detect"),
}
(out / "crops.json").write_text(json.dumps(ref, indent=1))
print(ref)
