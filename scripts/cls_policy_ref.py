"""torchvision references for ryolo's classification auto-augment policies (issue 13).

Writes crates/ryolo/tests/data/cls_policy_ref.json (cases, tables) and cls_policy_ref.bin (the
images, 8-bit RGB HWC, concatenated; each case names its byte offset):
- the input image (20x16, seeded noise on a gradient);
- every op of `_apply_op` on the PIL image (as AutoAugment and RandAugment run them) at the
  magnitudes those policies use, both signs;
- every AugMix op on the uint8 tensor (AugMix runs its ops on `pil_to_tensor`), severities 0-2,
  both signs;
- AutoAugment(IMAGENET, bilinear) with forced (policy, probs, signs) draws;
- AugMix(bilinear) forward calls with their recorded draws (Dirichlet weights, chain ops);
- the ImageNet policy table and the magnitude tables torchvision builds.
Run: /work/main/.venv/bin/python scripts/cls_policy_ref.py
"""

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import AugMix, AutoAugment, AutoAugmentPolicy, InterpolationMode, RandAugment
from torchvision.transforms import autoaugment as aa
from torchvision.transforms import functional as F

OUT = Path(__file__).resolve().parents[1] / "crates" / "ryolo" / "tests" / "data"
W, H = 20, 16
BIL = InterpolationMode.BILINEAR

blob = bytearray()


def put(arr):
    """Appends an HWC uint8 image to the blob, returns its offset."""
    a = np.ascontiguousarray(np.asarray(arr, dtype=np.uint8))
    assert a.shape == (H, W, 3), a.shape
    off = len(blob)
    blob.extend(a.tobytes())
    return off


def pil_out(img):
    return np.asarray(img)


def tensor_out(t):
    return t.reshape(3, H, W).permute(1, 2, 0).numpy()


rng = np.random.default_rng(13)
yy, xx = np.mgrid[0:H, 0:W]
base = np.stack([20 + 8 * xx + 3 * yy, 200 - 6 * yy - 2 * xx, 60 + 5 * xx + 4 * yy], -1)
src = np.clip(base + rng.integers(-25, 26, size=(H, W, 3)), 12, 236).astype(np.uint8)
pil = Image.fromarray(src)
ten = F.pil_to_tensor(pil).unsqueeze(0)  # AugMix runs on a 1x3xHxW batch
ref = {"w": W, "h": H, "image": put(src)}

# Magnitude tables as torchvision builds them (float32 values).
def table(meta):
    return {k: (v.tolist() if v.ndim > 0 else float(v)) for k, (v, _) in meta.items()}


auto = AutoAugment(AutoAugmentPolicy.IMAGENET, BIL)
mix = AugMix(interpolation=BIL)
ra = RandAugment(interpolation=BIL)
ref["autoaugment_space"] = table(auto._augmentation_space(10, (H, W)))
ref["augmix_space"] = table(mix._augmentation_space(mix._PARAMETER_MAX, (H, W)))
ref["augmix_ops"] = list(mix._augmentation_space(10, (H, W)).keys())
ref["randaugment_space"] = table(ra._augmentation_space(31, (H, W)))
ref["imagenet_policy"] = [[[n, p, m] for (n, p, m) in sub] for sub in auto.policies]

# PIL ops at the AutoAugment and RandAugment magnitudes.
pil_cases = set()
meta = auto._augmentation_space(10, (H, W))
for sub in auto.policies:
    for name, _, mid in sub:
        mags, signed = meta[name]
        m = float(mags[mid].item()) if mid is not None else 0.0
        for s in ([1.0, -1.0] if signed else [1.0]):
            pil_cases.add((name, m * s))
rmeta = ra._augmentation_space(31, (H, W))
for name, (mags, signed) in rmeta.items():
    m = float(mags[9].item()) if mags.ndim > 0 else 0.0
    for s in ([1.0, -1.0] if signed else [1.0]):
        pil_cases.add((name, m * s))
ref["pil_ops"] = [
    {"op": n, "mag": m, "out": put(pil_out(aa._apply_op(pil, n, m, BIL, None)))}
    for n, m in sorted(pil_cases)
]

# Tensor ops at AugMix's magnitudes (severity 3: bins 0..2).
mmeta = mix._augmentation_space(10, (H, W))
tcases = []
for name, (mags, signed) in mmeta.items():
    for k in range(3) if mags.ndim > 0 else [None]:
        m = float(mags[k].item()) if k is not None else 0.0
        for s in ([1.0, -1.0] if signed and m != 0.0 else [1.0]):
            out = aa._apply_op(ten, name, m * s, BIL, None)
            tcases.append({"op": name, "mag": m * s, "out": put(tensor_out(out))})
ref["tensor_ops"] = tcases

# AutoAugment with forced draws.
cases = []
g = torch.Generator().manual_seed(7)
forced = [(i, [0.0, 0.0], [i % 2, (i // 2) % 2]) for i in range(25)]
for _ in range(12):
    pid = int(torch.randint(25, (1,), generator=g))
    forced.append((pid, torch.rand(2, generator=g).tolist(), torch.randint(2, (2,), generator=g).tolist()))
orig_get_params = AutoAugment.get_params
for pid, probs, signs in forced:
    AutoAugment.get_params = staticmethod(lambda n, a=(pid, torch.tensor(probs), torch.tensor(signs)): a)
    out = auto(pil)
    cases.append({"policy": pid, "probs": probs, "signs": signs, "out": put(pil_out(out))})
AutoAugment.get_params = orig_get_params
ref["autoaugment_cases"] = cases

# AugMix forward calls with recorded draws.
class Recording(AugMix):
    def _sample_dirichlet(self, params):
        out = torch._sample_dirichlet(params)
        self.draws.append(out.reshape(-1).tolist())
        return out


rec = Recording(interpolation=BIL)
orig_apply = aa._apply_op
cases = []
for seed in range(10):
    torch.manual_seed(seed)
    rec.draws, chains, first = [], [], [None]

    def spy(img, op_name, magnitude, interpolation, fill):
        if first[0] is None:
            first[0] = img
        if img is first[0]:
            chains.append([])
        chains[-1].append([op_name, magnitude])
        return orig_apply(img, op_name, magnitude, interpolation, fill)

    aa._apply_op = spy
    out = rec(pil)
    aa._apply_op = orig_apply
    assert len(chains) == 3, chains
    cases.append({"m": rec.draws[0], "w": rec.draws[1], "chains": chains, "out": put(pil_out(out))})
ref["augmix_cases"] = cases

OUT.mkdir(parents=True, exist_ok=True)
(OUT / "cls_policy_ref.bin").write_bytes(bytes(blob))
(OUT / "cls_policy_ref.json").write_text(json.dumps(ref, indent=None, separators=(",", ":")) + "\n")
print(f"{len(ref['pil_ops'])} PIL ops, {len(tcases)} tensor ops, {len(ref['autoaugment_cases'])} AutoAugment, "
      f"{len(cases)} AugMix cases; {len(blob)} bytes")
