"""Shared fixtures: the built `yolo` binary, sample images, a brain-tumor subset for the
Ultralytics-trained detect model, and one run of examples/quickstart.py (train, val, predict,
export) whose artifacts the tests compare with the CLI."""

import json
import os
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CRATE = HERE.parent
REPO = CRATE.parent.parent
SHARED = Path(os.environ.get("RYOLO_SHARED", REPO.parent / "shared"))
if not SHARED.exists():
    SHARED = Path("/work/shared")
BT_MODEL = SHARED / "fixtures" / "ultralytics" / "bt_yolo11n_best.pt"
BT_DATA = SHARED / "datasets" / "brain-tumor"
CLS_MODEL = SHARED / "weights" / "yolo11n-cls-mnist160" / "best.pt"
MNIST = SHARED / "datasets" / "mnist160"


@pytest.fixture(scope="session")
def yolo_bin():
    b = os.environ.get("RYOLO_YOLO_BIN") or str(REPO / "target" / "debug" / "yolo")
    if not Path(b).exists():
        pytest.fail(f"the yolo binary {b} is missing: run scripts/test-python (it builds it)")
    return b


def run_cli(yolo_bin, *args, cwd=None):
    """Runs `yolo ARGS`; returns (returncode, stdout, stderr)."""
    p = subprocess.run([yolo_bin, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)
    return p.returncode, p.stdout, p.stderr


def cli_json(yolo_bin, *args, cwd=None):
    """`yolo predict ... format=json`: one JSON record per image, by image path."""
    rc, out, err = run_cli(yolo_bin, *args, "format=json", cwd=cwd)
    assert rc == 0, err
    recs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["image"]: r for r in recs}


@pytest.fixture(scope="session")
def bt_images(tmp_path_factory):
    """Three brain-tumor val images with labels, and a data.yaml over them (val = train = them)."""
    if not BT_MODEL.exists():
        pytest.skip(f"{BT_MODEL} missing")
    root = tmp_path_factory.mktemp("bt")
    imgs = sorted((BT_DATA / "valid" / "images").iterdir())[:3]
    (root / "images").mkdir()
    (root / "labels").mkdir()
    for f in imgs:
        shutil.copy(f, root / "images" / f.name)
        lab = BT_DATA / "valid" / "labels" / (f.stem + ".txt")
        if lab.exists():
            shutil.copy(lab, root / "labels" / lab.name)
    (root / "data.yaml").write_text("train: images\nval: images\nnames:\n  0: negative\n  1: positive\n")
    model = root / "bt.pt"
    shutil.copy(BT_MODEL, model)
    return root


@pytest.fixture(scope="session")
def quickstart(tmp_path_factory):
    """examples/quickstart.py run once (1 epoch at imgsz 64): its globals."""
    work = tmp_path_factory.mktemp("quickstart")
    os.environ["RYOLO_QUICKSTART_DIR"] = str(work)
    os.environ["RYOLO_QUICKSTART_EPOCHS"] = "1"
    os.environ["RYOLO_QUICKSTART_IMGSZ"] = "64"
    os.environ["RYOLO_QUICKSTART_N"] = "8"
    cwd = os.getcwd()
    os.chdir(work)
    try:
        g = runpy.run_path(str(CRATE / "examples" / "quickstart.py"), run_name="__main__")
    finally:
        os.chdir(cwd)
    g["work"] = work
    return g
