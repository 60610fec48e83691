"""Reference numbers for our GMC (crates/ryolo/src/track/gmc): OpenCV through Ultralytics' own GMC class.

Run from the repo root with the project's venv: `/work/main/.venv/bin/python scripts/gmc/reference.py`.
Writes crates/ryolo/tests/data/gmc_reference.json:
- `decode`: how the frames our ffmpeg reader gives (rgb24) differ from cv2.VideoCapture's (BGR) on frames
  160-259 (0-based) of shared/datasets/samples/car-detection.mp4;
- `warps_cv2_frames` / `warps_ffmpeg_frames`: Ultralytics' sparseOptFlow GMC on either decoding
  (the first should equal the fixture's `gmc_warps`);
- `stages`: for the first frames of the ffmpeg decoding, gray-downscaled checksums, goodFeaturesToTrack corners,
  calcOpticalFlowPyrLK points + status (stage-by-stage comparison);
- `synthetic`: corners / LK on a synthetic image our test rebuilds bit-identically;
- `ecc`: Ultralytics' ECC warps on the first 10 frames of the ffmpeg decoding.
"""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import importlib.util

import ultralytics

# the trackers package imports `lap` (not installed here); load gmc.py on its own
_spec = importlib.util.spec_from_file_location(
    "ul_gmc", Path(ultralytics.__file__).parent / "trackers" / "utils" / "gmc.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
GMC = _mod.GMC

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".." / "shared"
if not SHARED.exists():
    SHARED = Path("/work/shared")
VIDEO = SHARED / "datasets" / "samples" / "car-detection.mp4"
FFMPEG = "/work/main/.venv/ffmpeg"
FIRST, LAST = 160, 259


def cv2_frames():
    cap = cv2.VideoCapture(str(VIDEO))
    out = []
    for i in range(LAST + 1):
        ok, im = cap.read()
        assert ok
        if i >= FIRST:
            out.append(im)
    return out


def ffmpeg_frames(w, h):
    raw = subprocess.run([FFMPEG, "-loglevel", "error", "-i", str(VIDEO), "-map", "0:v:0", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    n = len(raw) // (w * h * 3)
    arr = np.frombuffer(raw, np.uint8).reshape(n, h, w, 3)
    return [np.ascontiguousarray(arr[i, :, :, ::-1]) for i in range(FIRST, LAST + 1)]  # RGB -> BGR


def synthetic(w=160, h=120):
    """Integer-only image: blocks, a disc and a hashed texture (few equal responses; rebuilt by the Rust test)."""
    img = np.zeros((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            v = (((x * 73856093) ^ (y * 19349663)) & 0xFFFF) % 61
            if (x // 20 + y // 15) % 2 == 0:
                v += 120
            if (x - 100) ** 2 + (y - 60) ** 2 < 400:
                v = 230
            img[y, x] = v
    return img


def shifted(img, dx, dy):
    """img moved by (dx, dy) pixels (bilinear, border replicate), as uint8."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def run_gmc(frames, method="sparseOptFlow"):
    g = GMC(method=method, downscale=2)
    return [np.asarray(g.apply(f), np.float64).tolist() for f in frames]


def main():
    fx = json.loads((SHARED / "fixtures/ultralytics/track/track_video.json").read_text())
    cf = cv2_frames()
    h, w = cf[0].shape[:2]
    ff = ffmpeg_frames(w, h)
    d = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(cf, ff)]
    decode = {"max_abs": int(max(x.max() for x in d)), "mean_abs": float(np.mean([x.mean() for x in d])),
              "frac_pixels_differing": float(np.mean([(x.max(axis=2) > 0).mean() for x in d]))}
    print("decode cv2 vs ffmpeg rgb24:", decode)
    wc = run_gmc(cf)
    err = max(np.abs(np.array(a) - np.array(b)).max() for a, b in zip(wc, fx["gmc_warps"]))
    print("cv2-frame warps vs fixture: max |diff|", err)
    wf = run_gmc(ff)
    errf = max(np.abs(np.array(a) - np.array(b)).max() for a, b in zip(wf, fx["gmc_warps"]))
    print("ffmpeg-frame warps vs fixture: max |diff|", errf)

    stages = []
    prev = None
    for i in range(3):
        g = cv2.cvtColor(ff[i], cv2.COLOR_BGR2GRAY)
        s = cv2.resize(g, (w // 2, h // 2))
        c = cv2.goodFeaturesToTrack(s, maxCorners=400, qualityLevel=0.01, minDistance=0, blockSize=3,
                                    useHarrisDetector=False, k=0.04)
        eig = cv2.cornerMinEigenVal(s, 3, 3)
        st = {"frame": FIRST + i, "gray_sum": int(g.astype(np.int64).sum()), "small_sum": int(s.astype(np.int64).sum()),
              "gray_first_row": g[0, :16].tolist(), "small_first_row": s[0, :16].tolist(),
              "eig_max": float(eig.max()), "eig_sum": float(eig.astype(np.float64).sum()),
              "corners": c.reshape(-1, 2).tolist()}
        if prev is not None:
            nxt, status, e = cv2.calcOpticalFlowPyrLK(prev[0], s, prev[1], None)
            st["lk_next"] = nxt.reshape(-1, 2).tolist()
            st["lk_status"] = status.ravel().tolist()
            good = status.ravel().astype(bool)
            H, inl = cv2.estimateAffinePartial2D(prev[1][good], nxt[good], cv2.RANSAC)
            st["affine"] = H.tolist()
            st["inliers"] = inl.ravel().tolist()
        stages.append(st)
        prev = (s, c)

    syn = synthetic()
    sc = cv2.goodFeaturesToTrack(syn, maxCorners=400, qualityLevel=0.01, minDistance=0, blockSize=3,
                                 useHarrisDetector=False, k=0.04)
    # LK on an exact integer shift (3, -2) so the truth is known; OpenCV's result is stored too
    syn2 = shifted(syn, 3, -2)
    sn, ss, _ = cv2.calcOpticalFlowPyrLK(syn, syn2, sc, None)
    synth = {"w": 160, "h": 120, "corners": sc.reshape(-1, 2).tolist(), "shift": [3, -2],
             "lk_next": sn.reshape(-1, 2).tolist(), "lk_status": ss.ravel().tolist(),
             "eig_max": float(cv2.cornerMinEigenVal(syn, 3, 3).max())}

    # per frame pair: LK input size, inliers, the RANSAC model before and after the LM refinement
    per_frame = []
    prev = None
    for i in range(len(ff)):
        sm = cv2.resize(cv2.cvtColor(ff[i], cv2.COLOR_BGR2GRAY), (w // 2, h // 2))
        c = cv2.goodFeaturesToTrack(sm, maxCorners=400, qualityLevel=0.01, minDistance=0, blockSize=3,
                                    useHarrisDetector=False, k=0.04)
        rec = {}
        if prev is not None and prev[1] is not None:
            nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev[0], sm, prev[1], None)
            good = status.ravel().astype(bool)
            rec["n_good"] = int(good.sum())
            acc = 0.0
            for q in nxt[good].reshape(-1, 2):  # sequential, the order our test sums in
                acc += float(q[0]) + float(q[1])
            rec["lk_sum"] = repr(acc)  # strings: read back exactly (serde_json rounds floats)
            if good.sum() > 4:
                h0, inl = cv2.estimateAffinePartial2D(prev[1][good], nxt[good], cv2.RANSAC, refineIters=0)
                h1, _ = cv2.estimateAffinePartial2D(prev[1][good], nxt[good], cv2.RANSAC)
                rec["inliers"] = int(inl.sum())
                rec["inlier_mask"] = "".join(str(int(v)) for v in inl.ravel())
                rec["ransac"] = [[repr(float(v)) for v in row] for row in h0]
                rec["refined"] = [[repr(float(v)) for v in row] for row in h1]
        per_frame.append(rec)
        prev = (sm, c)

    # BGR->gray over all 2^24 colours: the weights our Gray::from_rgb uses (Q15: 3735, 19235, 9798)
    v = np.arange(256, dtype=np.uint8)
    cube = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(4096, 4096, 3)
    cb, cg, cr = [cube[..., i].astype(np.int64) for i in range(3)]
    ref = cv2.cvtColor(cube, cv2.COLOR_BGR2GRAY).astype(np.int64)
    gray_q15 = int((((cb * 3735 + cg * 19235 + cr * 9798 + (1 << 14)) >> 15) != ref).sum())
    gray_q14 = int((((cb * 1868 + cg * 9617 + cr * 4899 + (1 << 13)) >> 14) != ref).sum())
    print("BGR2GRAY mismatches over all colours: Q15 weights", gray_q15, "Q14 weights", gray_q14)

    # cv2.resize (INTER_LINEAR) of odd-sized images: the general fixed-point path, not the 2x2 mean
    odd = []
    for (ow, oh) in [(161, 121), (160, 121), (77, 40)]:
        img = synthetic(ow, oh)
        odd.append({"w": ow, "h": oh, "data": cv2.resize(img, (ow // 2, oh // 2)).ravel().tolist()})

    ecc = run_gmc(ff[:10], "ecc")
    blur_small = cv2.resize(cv2.GaussianBlur(cv2.cvtColor(ff[0], cv2.COLOR_BGR2GRAY), (3, 3), 1.5), (w // 2, h // 2))
    out = {"opencv": cv2.__version__, "video": "samples/car-detection.mp4", "frames_0based": [FIRST, LAST],
           "decode": decode, "warps_cv2_vs_fixture_max_abs": float(err),
           "warps_ffmpeg_vs_fixture_max_abs": float(errf), "warps_ffmpeg_frames": wf,
           "gray_mismatches_all_colours": {"q15_3735_19235_9798": gray_q15, "q14_1868_9617_4899": gray_q14},
           "odd_resize": odd, "stages": stages, "per_frame": per_frame, "synthetic": synth, "ecc_warps": ecc,
           "ecc_blur_small_sum": int(blur_small.astype(np.int64).sum()),
           # position-weighted checksum: sum(v_i * (i % 9973 + 1)) over the row-major pixels
           "ecc_blur_small_wsum": int((blur_small.ravel().astype(np.int64)
                                       * (np.arange(blur_small.size) % 9973 + 1)).sum())}
    dst = ROOT / "crates/ryolo/tests/data/gmc_reference.json"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(out))
    print("wrote", dst, dst.stat().st_size, "bytes")


if __name__ == "__main__":
    sys.exit(main())
