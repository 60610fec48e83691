#!/usr/bin/env python3
"""Runs every test binary of `cargo test --workspace` (and the Python package's pytest suite), a
few processes at a time instead of one after another; prints each binary's output when it ends
and fails when any test, binary or build fails.

The binaries and their harness are cargo's own: this only schedules them (longest first, from
the file below). `RYOLO_TEST_JOBS` sets how many run at once (default: the CPU count, 2 to 4).
Children get `OMP_WAIT_POLICY=PASSIVE` unless it is set (what the `yolo` launcher sets): with the
default, spinning OpenMP threads of processes side by side steal each other's cores and training
tests ran 5-10x slower instead of 2x.
"""
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Binaries measured slowest on a 2-core machine start first, so that none is left alone at the end.
SLOW_FIRST = [
    "ultralytics_interop", "val_e2e", "pose_train", "cli", "train_overfit", "obb_train",
    "segment_train", "onnx_backend", "fuzz_onnx", "pose_pt", "fuzz_readers", "fuzz_data",
]


def build():
    """Builds the test binaries; returns [(name, package dir, argv)]."""
    cmd = ["cargo", "test", "--workspace", "--no-run", "--message-format=json-render-diagnostics"]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"run_tests: `{' '.join(cmd)}` failed (exit {proc.returncode})")
    out = []
    for line in proc.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") != "compiler-artifact" or not msg.get("profile", {}).get("test"):
            continue
        if msg.get("executable"):
            target = msg["target"]
            name = target["name"] if "test" in target["kind"] else f"{target['name']} (unittests)"
            out.append((name, os.path.dirname(msg["manifest_path"]), [msg["executable"]]))
    return out


def order(jobs):
    rank = {n: i for i, n in enumerate(SLOW_FIRST)}
    return sorted(jobs, key=lambda j: rank.get(j[0], len(rank)))


def main():
    jobs = order(build())
    # The Python suite (its extension built beforehand by `scripts/test-python --build-only`).
    pytest = ("python package (pytest)", ROOT, ["bash", "scripts/test-python", "--no-build"])
    jobs.insert(len(SLOW_FIRST) // 2, pytest)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    n = int(os.environ.get("RYOLO_TEST_JOBS", "0")) or min(4, max(2, os.cpu_count() or 2))
    lock = threading.Lock()
    failed = []
    passed_total = [0]
    start = time.time()

    def run(job):
        name, cwd, argv = job
        t0 = time.time()
        p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, errors="replace")
        with lock:
            print(f"\n===== {name} ({' '.join(argv)}): exit {p.returncode} in {time.time() - t0:.1f}s",
                  flush=True)
            print(p.stdout, end="", flush=True)
            for line in p.stdout.splitlines():
                if line.startswith("test result:"):
                    passed_total[0] += int(line.split(" passed")[0].split()[-1])
            if p.returncode != 0:
                failed.append(name)

    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(run, jobs))
    # The doc tests, as `cargo test` runs them after the binaries.
    doc = subprocess.run(["cargo", "test", "--workspace", "--doc"], cwd=ROOT)
    if doc.returncode != 0:
        failed.append("doc tests")
    print(f"\nrun_tests: {len(jobs)} test processes ({n} at a time), {passed_total[0]} Rust tests "
          f"passed, {time.time() - start:.0f}s; failed: {', '.join(failed) or 'none'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
