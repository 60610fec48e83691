"""Reference numbers for our feature-based GMC (orb, sift): OpenCV through Ultralytics' own GMC class.

Run from the repo root with the project's venv: `/work/main/.venv/bin/python scripts/gmc/reference_features.py`.
Writes crates/ryolo/tests/data/gmc_features_reference.json:
- `dets[f]`: the boxes BoT-SORT hands to GMC on frame f (fixture inputs with conf >= track_high_thresh 0.25);
- `orb_warps` / `sift_warps`: Ultralytics' GMC(method) warps on frames 160-259 of the car video as our ffmpeg
  reader decodes them, with those boxes; `sift_frame_stats`: per frame the SIFT keypoints and the point pairs
  Ultralytics hands to estimateAffinePartial2D (0 when it is not called);
- `orb_stage` (frame 160): the mask rectangle, FAST(20) keypoints after the mask (x, y, response), the keypoints
  ORB keeps (border 31), the 7x7 sigma-2 blur checksums; per frame the FAST and ORB keypoint counts;
- `sift_pyramid` (frame 160): checksums of the bits of SIFT's first two float pyramid images;
- `sift_stage` (frame 160): the SIFT keypoints (x, y, size, angle, response, octave) and descriptors;
  `sift_counts`: detected / described keypoints on the first SIFT_FRAMES frames;
- `shift_6_m4`: both methods' warp from frame 200 to itself moved by (+6, -4) px (edges repeated), no boxes.
"""
import json
import sys

import cv2
import numpy as np

from reference import GMC, ROOT, SHARED, ffmpeg_frames

SIFT_FRAMES = 12  # stage counts; the warps cover all 100 frames


def gmc_dets(inputs, thr=0.25):
    return [[r[:4] for r in rows if r[4] >= thr] for rows in inputs]


def run(frames, dets, method, stats=None):
    """Ultralytics' GMC warps; `stats` (a list) receives per frame (keypoints, point pairs given to RANSAC)."""
    g = GMC(method=method, downscale=2)
    out = []
    if stats is not None:  # spy on the estimator's input and the keypoints kept
        seen = {}
        real_est, real_compute = cv2.estimateAffinePartial2D, g.extractor.compute

        class Spy:
            def compute(self, img, kps):
                k, d = real_compute(img, kps)
                seen["kp"] = len(k)
                return k, d

        def est(p, c, *a, **kw):
            seen["pairs"] = len(p)
            return real_est(p, c, *a, **kw)
        g.extractor = Spy()
        cv2.estimateAffinePartial2D = est
    for f, d in zip(frames, dets):
        a = np.asarray(d, np.float32).reshape(-1, 4)
        if stats is not None:
            seen.clear()
        out.append([[repr(float(v)) for v in row] for row in np.asarray(g.apply(f, a), np.float64)])
        if stats is not None:
            stats.append([seen.get("kp", 0), seen.get("pairs", 0)])
    if stats is not None:
        cv2.estimateAffinePartial2D = real_est
    return out


def small_and_mask(frame, det):
    h, w = frame.shape[:2]
    g = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (w // 2, h // 2))
    hh, ww = h // 2, w // 2
    m = np.zeros_like(g)
    m[int(0.02 * hh):int(0.98 * hh), int(0.02 * ww):int(0.98 * ww)] = 255
    for b in np.asarray(det, np.float32).reshape(-1, 4):
        t = (b / 2).astype(np.int_)
        m[t[1]:t[3], t[0]:t[2]] = 0
    rect = [int(0.02 * ww), int(0.02 * hh), int(0.98 * ww), int(0.98 * hh)]
    return g, m, rect


def wsum(a):
    a = a.ravel().astype(np.int64)
    return int((a * (np.arange(a.size) % 9973 + 1)).sum())


def main():
    fx = json.loads((SHARED / "fixtures/ultralytics/track/track_video.json").read_text())
    w, h = fx["image_wh"]
    ff = ffmpeg_frames(w, h)
    dets = gmc_dets(fx["inputs"])
    out = {"opencv": cv2.__version__, "video": "samples/car-detection.mp4", "frames_0based": [160, 259],
           "dets": dets}
    out["orb_warps"] = run(ff, dets, "orb")

    fast = cv2.FastFeatureDetector_create(20)
    orb = cv2.ORB_create()
    counts = []
    for i, f in enumerate(ff):
        g, m, rect = small_and_mask(f, dets[i])
        kp = fast.detect(g, m)
        kp2, desc = orb.compute(g, kp)
        counts.append([len(fast.detect(g, None)), len(kp), len(kp2)])
        if i == 0:
            blur = cv2.GaussianBlur(g, (7, 7), 2, 2, borderType=cv2.BORDER_REFLECT_101)
            out["orb_stage"] = {
                "small_sum": int(g.astype(np.int64).sum()), "mask_rect": rect,
                "mask_zero": int((m == 0).sum()),
                "fast": [[k.pt[0], k.pt[1], k.response] for k in kp],
                "fast_angles": sorted({float(k.angle) for k in kp}),
                "orb_kept": [[k.pt[0], k.pt[1], k.angle] for k in kp2],
                "orb_desc": [bytes(r).hex() for r in desc],
                "blur7_sum": int(blur.astype(np.int64).sum()), "blur7_wsum": wsum(blur),
            }
    out["orb_counts"] = counts  # per frame: FAST unmasked, FAST masked, ORB kept

    sift_stats = []
    out["sift_warps"] = run(ff, dets, "sift", sift_stats)
    out["sift_frame_stats"] = sift_stats  # per frame: keypoints described, pairs given to RANSAC (0: none)
    sift = cv2.SIFT_create(nOctaveLayers=3, contrastThreshold=0.02, edgeThreshold=20)
    scounts = []
    for i in range(SIFT_FRAMES):
        g, m, _ = small_and_mask(ff[i], dets[i])
        kp = sift.detect(g, m)
        kp2, desc = sift.compute(g, kp)
        scounts.append([len(kp), len(kp2)])
        if i == 0:
            # OpenCV SIFT's first pyramid images as cv2 computes them on float images (upsample 2x linear,
            # blur to sigma 1.6; then the first layer step): checksums of the float32 values
            base = cv2.resize(g.astype(np.float32), (g.shape[1] * 2, g.shape[0] * 2), interpolation=cv2.INTER_LINEAR)
            f = np.float32  # OpenCV: sqrtf(max(sigma*sigma - 0.5*0.5*4, 0.01f)) in float
            s0 = float(np.sqrt(max(f(1.6) * f(1.6) - f(0.5) * f(0.5) * f(4), f(0.01))))
            base = cv2.GaussianBlur(base, (0, 0), s0, sigmaY=s0)
            k = 2 ** (1 / 3)
            s1 = float(np.sqrt((1.6 * k) ** 2 - 1.6 ** 2))
            lay1 = cv2.GaussianBlur(base, (0, 0), s1, sigmaY=s1)
            fsum = lambda a: wsum(np.ascontiguousarray(a).view(np.uint32))  # exact: weighted sum of the bits
            out["sift_pyramid"] = {"base_sum": fsum(base), "base_first": [repr(float(v)) for v in base[0, :8]],
                                   "base_mid": [repr(float(v)) for v in base[200, 300:308]],
                                   "layer1_sum": fsum(lay1),
                                   "layer1_mid": [repr(float(v)) for v in lay1[200, 300:308]]}
            out["sift_stage"] = {
                "keypoints": [[k.pt[0], k.pt[1], k.size, k.angle, k.response, k.octave] for k in kp2],
                "desc_sums": desc.sum(axis=1).astype(float).tolist(),
                "desc": desc.astype(int).tolist(),
                "unmasked": len(sift.detect(g, None)),
            }
    out["sift_counts"] = scounts

    # frame 200 and the same frame moved by (+6, -4) px (edge pixels repeated), no boxes
    a = ff[40]
    ys = np.clip(np.arange(h) + 4, 0, h - 1)
    xs = np.clip(np.arange(w) - 6, 0, w - 1)
    b = a[ys][:, xs]
    none = [[], []]
    out["shift_6_m4"] = {m: run([a, b], none, m)[1] for m in ("orb", "sift")}
    dst = ROOT / "crates/ryolo/tests/data/gmc_features_reference.json"
    dst.write_text(json.dumps(out))
    print("wrote", dst, dst.stat().st_size, "bytes;", "orb counts frame 0", counts[0], "sift", scounts[0])


if __name__ == "__main__":
    sys.exit(main())
