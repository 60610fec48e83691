"""Time Ultralytics' GMC (OpenCV) per frame on frames 160-259 of the car video, several runs with the load.

`/work/main/.venv/bin/python scripts/gmc/bench_gmc.py [sparseOptFlow|ecc]` (our side: the
`timing_of_our_sparse_gmc` test in crates/ryolo/tests/track_gmc.rs prints the same figure).
"""
import os
import sys
import time

from reference import GMC, cv2_frames


def main():
    method = sys.argv[1] if len(sys.argv) > 1 else "sparseOptFlow"
    frames = cv2_frames()
    for run in range(3):
        g = GMC(method=method, downscale=2)
        t, c = time.perf_counter(), time.process_time()
        for f in frames:
            g.apply(f)
        ms = (time.perf_counter() - t) * 1000 / len(frames)
        cpu = (time.process_time() - c) * 1000 / len(frames)
        print(f"run {run}: {method} {ms:.2f} ms/frame wall, {cpu:.2f} ms/frame CPU "
              f"(load {os.getloadavg()}, cv2 threads {__import__('cv2').getNumThreads()})")


if __name__ == "__main__":
    main()
