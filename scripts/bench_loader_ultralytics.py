#!/usr/bin/env python3
# Anchor for `yolo bench loader`: usage `.venv/bin/python scripts/bench_loader_ultralytics.py DATA.yaml IMGSZ BATCH WORKERS N`
# (the dataset copied somewhere writable: Ultralytics writes its label cache next to the labels).
# Ultralytics' train loader throughput on a dataset (mosaic on, cache off), images/s and CPU ms per image
# (main process + workers) after 2 warm batches.
import sys, time, psutil
from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset, build_dataloader
from ultralytics.data.utils import check_det_dataset
data, imgsz, batch, workers, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cfg = get_cfg(overrides=dict(imgsz=imgsz, batch=batch, workers=workers, data=data))
d = check_det_dataset(data)
ds = build_yolo_dataset(cfg, d["train"], batch, d, mode="train", stride=32)
dl = build_dataloader(ds, batch, workers, shuffle=True, rank=-1)
me = psutil.Process()
def cpu():
    t = 0.0
    for p in [me] + me.children(recursive=True):
        try:
            c = p.cpu_times(); t += c.user + c.system
        except psutil.Error:
            pass
    return t
seen, warm, t0, c0 = 0, 0, None, None
while seen < n:
    for b in dl:
        if warm < 2:
            warm += 1
            if warm == 2: t0, c0 = time.time(), cpu()
            continue
        seen += b["img"].shape[0]
        if seen >= n: break
print(f"ultralytics loader: {seen/(time.time()-t0):.1f} images/s, {(cpu()-c0)*1e3/seen:.1f} CPU ms/image (imgsz={imgsz} batch={batch} workers={workers})")
