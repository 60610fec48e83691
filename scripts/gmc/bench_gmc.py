"""Time Ultralytics' GMC (OpenCV) per frame on frames 160-259 of the car video, several runs with the load.

`/work/main/.venv/bin/python scripts/gmc/bench_gmc.py [sparseOptFlow|ecc|orb|sift]` (our side: the
`timing_of_our_sparse_gmc` test in crates/ryolo/tests/track_gmc.rs and `timing_of_our_feature_gmc` in
crates/ryolo/tests/track_gmc_features.rs print the same figure). orb/sift get the boxes BoT-SORT hands them.
"""
import json
import os
import sys
import time

import numpy as np

from reference import GMC, SHARED, cv2_frames
from reference_features import gmc_dets


def main():
    method = sys.argv[1] if len(sys.argv) > 1 else "sparseOptFlow"
    frames = cv2_frames()
    fx = json.loads((SHARED / "fixtures/ultralytics/track/track_video.json").read_text())
    dets = [np.asarray(d, np.float32).reshape(-1, 4) for d in gmc_dets(fx["inputs"])]
    for run in range(3):
        g = GMC(method=method, downscale=2)
        t, c = time.perf_counter(), time.process_time()
        for f, d in zip(frames, dets):
            g.apply(f, d)
        ms = (time.perf_counter() - t) * 1000 / len(frames)
        cpu = (time.process_time() - c) * 1000 / len(frames)
        print(f"run {run}: {method} {ms:.2f} ms/frame wall, {cpu:.2f} ms/frame CPU "
              f"(load {os.getloadavg()}, cv2 threads {__import__('cv2').getNumThreads()})")


if __name__ == "__main__":
    main()
