"""Measure the 256 point pairs of OpenCV's ORB descriptor by probing `cv2.ORB_create().compute` (black box).

Each descriptor bit i compares two smoothed pixels, `I(p_i) < I(q_i)`, at offsets from the keypoint (rotated by
its angle; angle 0 here). Probing with step images `255 where u >= t` (and `u < t`) for u = x, y, x + 2y and
2x + y over a range of t, the set of t that turn a bit on depends only on u(p_i) and u(q_i) (the blurred step is
a function of u alone); we find the unique (u(p), u(q)) that predict the observed set, combine the four
families into (p, q), and check the result on random images (including FAST keypoints with angle -1).

`/work/main/.venv/bin/python scripts/gmc/orb_pattern.py` writes crates/ryolo/src/track/gmc/orb_pattern.rs.
"""
import itertools
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
N, C = 121, 60  # probe image size and keypoint position
TS = np.arange(-60, 61)
US = np.arange(-45, 46)
FAMILIES = {"x": (1, 0), "y": (0, 1), "x+2y": (1, 2), "2x+y": (2, 1)}
ORB = cv2.ORB_create()


def describe(img, angle=0.0, pts=((C, C),)):
    kps = [cv2.KeyPoint(float(x), float(y), 31.0, angle) for x, y in pts]
    kp2, d = ORB.compute(img, kps)
    assert len(kp2) == len(kps)
    return np.unpackbits(d, axis=1, bitorder="little")  # bit i of byte j -> column 8j + i


def step(a, b, t, ge):
    yy, xx = np.mgrid[0:N, 0:N]
    u = a * (xx - C) + b * (yy - C)
    return (((u >= t) if ge else (u < t)) * 255).astype(np.uint8)


def blurred_profile(a, b, t, ge):
    """The smoothed step as ORB sees it, as a function of u (OpenCV's own blur)."""
    blur = cv2.GaussianBlur(step(a, b, t, ge), (7, 7), 2, 2, borderType=cv2.BORDER_REFLECT_101)
    prof = {}
    for y in range(C - 45, C + 46):
        for x in range(C - 45, C + 46):
            u = a * (x - C) + b * (y - C)
            v = int(blur[y, x])
            assert prof.setdefault(u, v) == v, "profile not a function of u"
    return prof


def main():
    obs, cand = {}, {}
    for name, (a, b) in FAMILIES.items():
        for ge in (True, False):
            o = np.stack([describe(step(a, b, t, ge))[0] for t in TS])  # (T, 256)
            # predicted bit for every (u_p, u_q) and t
            pred = np.zeros((len(US), len(US), len(TS)), bool)
            for k, t in enumerate(TS):
                prof = blurred_profile(a, b, t, ge)
                v = np.array([prof.get(int(u), -1) for u in US])
                assert (v >= 0).all()
                pred[:, :, k] = v[:, None] < v[None, :]
            for bit in range(256):
                ok = (pred == o[:, bit][None, None, :]).all(axis=2)
                s = {(int(US[i]), int(US[j])) for i, j in zip(*np.nonzero(ok))}
                key = (name, bit)
                cand[key] = s if key not in cand else cand[key] & s
    pattern = []
    for bit in range(256):
        sols = []
        sx, sy = cand[("x", bit)], cand[("y", bit)]
        for (px, qx), (py, qy) in itertools.product(sx, sy):
            if (px + 2 * py, qx + 2 * qy) in cand[("x+2y", bit)] and (2 * px + py, 2 * qx + qy) in cand[("2x+y", bit)]:
                sols.append((px, py, qx, qy))
        assert len(sols) == 1, f"bit {bit}: {len(sols)} solutions"
        pattern.append(sols[0])

    # check: our model of the descriptor against ORB on random smooth images, angles 0, -1 and 37. ORB's
    # smoothing (7x7, sigma 2) equals a separable floating-point convolution rounded to nearest, not the
    # 8-bit fixed-point cv2.GaussianBlur (which differs by 1 on ~7 % of pixels and breaks ties differently).
    rng = np.random.default_rng(0)
    pts = [(x, y) for y in range(40, 81, 8) for x in range(40, 81, 8)]
    k64 = cv2.getGaussianKernel(7, 2).ravel()
    bad = {"f64": 0, "f32": 0, "fixed": 0}
    checked = 0
    for trial in range(12):
        img = cv2.resize(rng.integers(0, 256, (31, 31), dtype=np.uint8), (N, N), interpolation=cv2.INTER_CUBIC)
        blurs = {
            "f64": np.rint(cv2.sepFilter2D(img.astype(np.float64), -1, k64, k64,
                                           borderType=cv2.BORDER_REFLECT_101)).astype(int),
            "f32": np.rint(cv2.sepFilter2D(img.astype(np.float32), -1, k64.astype(np.float32),
                                           k64.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)).astype(int),
            "fixed": cv2.GaussianBlur(img, (7, 7), 2, 2, borderType=cv2.BORDER_REFLECT_101).astype(int),
        }
        for angle in (0.0, -1.0, 37.0):
            got = describe(img, angle, pts)
            ang = np.float32(angle) * np.float32(np.pi / 180.0)
            ca, sa = np.float32(np.cos(ang)), np.float32(np.sin(ang))
            for bit, (px, py, qx, qy) in enumerate(pattern):
                o = []
                for x, y in ((px, py), (qx, qy)):
                    rx = np.float32(np.float32(x) * ca - np.float32(y) * sa)
                    ry = np.float32(np.float32(x) * sa + np.float32(y) * ca)
                    o.append((int(np.rint(rx)), int(np.rint(ry))))
                for k, (cx, cy) in enumerate(pts):
                    checked += 1
                    for name, bl in blurs.items():
                        want = bl[cy + o[0][1], cx + o[0][0]] < bl[cy + o[1][1], cx + o[1][0]]
                        bad[name] += int(got[k, bit] != want)
    print("pattern checked on", checked, "bits; mismatches by smoothing model:", bad)
    assert bad["f64"] == 0

    rows = "\n".join(f"    [{px}, {py}, {qx}, {qy}]," for px, py, qx, qy in pattern)
    src = f"""//! The 256 point pairs (x0, y0, x1, y1) of OpenCV's ORB descriptor, measured by scripts/gmc/orb_pattern.py.

// Generated by scripts/gmc/orb_pattern.py (probing cv2.ORB_create().compute with step images); do not edit.

/// Bit i of a descriptor is `I(p) < I(q)` for `[p.x, p.y, q.x, q.y] = ORB_PATTERN[i]` (offsets from the
/// keypoint before rotation, bit i in byte i / 8 at position i % 8).
pub const ORB_PATTERN: [[i8; 4]; 256] = [
{rows}
];
"""
    dst = ROOT / "crates/ryolo/src/track/gmc/orb_pattern.rs"
    dst.write_text(src)
    print("wrote", dst)


if __name__ == "__main__":
    sys.exit(main())
