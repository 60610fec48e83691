"""The notebook quickstart (examples/quickstart.py): train, val, predict on a path and on an
array, export ONNX, predict with it; callbacks; and the same numbers as the CLI."""

import csv
import re
from pathlib import Path

import numpy as np

from conftest import cli_json, run_cli

DETECT_KEYS = [
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "fitness",
]


def test_training_made_a_run_and_the_model_is_its_best(quickstart):
    model = quickstart["model"]
    run = Path(quickstart["work"]) / "runs" / "train"
    assert (run / "weights" / "best.pt").exists()
    assert (run / "weights" / "last.safetensors").exists()
    assert model.ckpt_path == str(run / "weights" / "best.pt")
    assert model.task == "detect"
    assert model.names == {0: "square", 1: "circle", 2: "triangle"}
    tm = quickstart["train_metrics"]
    assert list(tm.results_dict) == DETECT_KEYS
    assert all(0.0 <= v <= 1.0 for v in tm.results_dict.values())


def test_callbacks_fired_with_ultralytics_fields(quickstart):
    ev = quickstart["events"]
    assert [e[0] for e in ev] == ["on_fit_epoch_end", "on_train_end"]
    _, epoch, metrics = ev[0]
    assert epoch == 0  # Ultralytics' trainer.epoch is 0-based
    for k in DETECT_KEYS[:-1] + ["val/box_loss", "val/cls_loss", "val/dfl_loss"]:
        assert k in metrics, k
    run = Path(quickstart["work"]) / "runs" / "train"
    assert ev[1][1] == str(run / "weights" / "best.pt")
    # The epoch's metrics are the results.csv row the trainer wrote.
    row = next(csv.DictReader(open(run / "results.csv")))
    row = {k.strip(): float(v) for k, v in row.items()}
    for k in DETECT_KEYS[:-1]:
        assert abs(metrics[k] - row[k]) < 1e-5, k


def test_training_equals_the_cli(quickstart, yolo_bin, tmp_path):
    """The same training through `yolo train`: the same results.csv (losses and metrics)."""
    data = quickstart["data"]
    rc, _, err = run_cli(
        yolo_bin, "train", "model=yolo11n.yaml", f"data={data}", "epochs=1", "imgsz=64", "batch=8",
        "workers=0", "plots=False", f"project={tmp_path}", "name=cli", "exist_ok=True",
    )
    assert rc == 0, err
    py_run = Path(quickstart["work"]) / "runs" / "train"

    def rows(d):
        r = list(csv.DictReader(open(d / "results.csv")))
        return [{k.strip(): v for k, v in x.items() if k.strip() != "time"} for x in r]

    assert rows(py_run) == rows(tmp_path / "cli")


def test_val_equals_the_cli(quickstart, yolo_bin):
    m = quickstart["metrics"]
    assert list(m.results_dict) == DETECT_KEYS
    assert m.box.map == m.results_dict["metrics/mAP50-95(B)"]
    model = quickstart["model"]
    rc, out, err = run_cli(
        yolo_bin, "val", f"model={model.ckpt_path}", f"data={quickstart['data']}", "imgsz=64", "batch=8",
        "plots=False",
    )
    assert rc == 0, err
    row = next(line for line in out.splitlines() if re.match(r"^\s+all\s", line)).split()
    p, r, map50, map_ = (float(x) for x in row[3:7])
    assert abs(m.box.mp - p) < 6e-4 and abs(m.box.mr - r) < 6e-4
    assert abs(m.box.map50 - map50) < 6e-4 and abs(m.box.map - map_) < 6e-4


def test_predictions_on_path_and_array_agree(quickstart):
    a = quickstart["results"][0]
    b = quickstart["results_array"][0]
    assert b.path == "image0.jpg"
    assert a.orig_shape == b.orig_shape
    np.testing.assert_array_equal(a.boxes.data, b.boxes.data)
    img = quickstart["annotated"]
    assert img.dtype == np.uint8 and img.shape == (*a.orig_shape, 3)


def test_onnx_export_predicts_like_the_torch_model(quickstart):
    onnx = quickstart["onnx_path"]
    assert onnx.endswith(".onnx") and Path(onnx).exists()
    assert quickstart["onnx_model"].task == "detect"
    a = quickstart["results"][0].boxes
    o = quickstart["results_onnx"][0].boxes
    assert len(a) == len(o)
    np.testing.assert_allclose(a.xyxy, o.xyxy, atol=0.05)
    np.testing.assert_array_equal(a.cls, o.cls)


def test_bt_predict_and_save_txt_equal_the_cli(bt_images, yolo_bin, tmp_path):
    """An Ultralytics-trained detect model: Python predict == `yolo predict format=json`, and
    `Results.save_txt` == the CLI's `save_txt` label files."""
    from ryolo import YOLO

    model = YOLO(bt_images / "bt.pt")
    src = bt_images / "images"
    cli = cli_json(
        yolo_bin, "predict", f"model={bt_images / 'bt.pt'}", f"source={src}", "imgsz=320", "conf=0.1", "save=False",
        "save_txt=True", "save_conf=True", f"project={tmp_path}", "name=cli",
    )
    res = model.predict(src, imgsz=320, conf=0.1)
    assert len(res) == len(cli) == 3
    total = 0
    for r in res:
        dets = cli[r.path]["detections"]
        assert len(r) == len(dets)
        total += len(dets)
        if dets:
            np.testing.assert_allclose(r.boxes.xyxy, np.array([d["xyxy"] for d in dets], np.float32), rtol=0, atol=1e-4)
            np.testing.assert_allclose(r.boxes.conf, np.array([d["conf"] for d in dets], np.float32), atol=1e-6)
            np.testing.assert_array_equal(r.boxes.cls, np.array([d["cls"] for d in dets], np.float32))
            np.testing.assert_allclose(r.boxes.xywhn, np.array([d["xywhn"] for d in dets], np.float32), atol=1e-6)
        stem = Path(r.path).stem
        mine = tmp_path / "py" / f"{stem}.txt"
        r.save_txt(mine, save_conf=True)
        theirs = tmp_path / "cli" / "labels" / f"{stem}.txt"
        assert mine.exists() == theirs.exists()
        if theirs.exists():
            assert mine.read_text() == theirs.read_text()
    assert total > 0, "the brain-tumor model finds nothing: the comparison would be empty"


def test_bt_onnx_export_equals_the_cli_and_the_torch_model(bt_images, yolo_bin, tmp_path):
    import shutil

    from ryolo import YOLO

    pt = tmp_path / "bt.pt"
    shutil.copy(bt_images / "bt.pt", pt)
    onnx = YOLO(pt).export(format="onnx", imgsz=320)
    assert onnx == str(tmp_path / "bt.onnx") and Path(onnx).exists()
    src = bt_images / "images"
    om = YOLO(onnx)
    assert om.task == "detect" and om.names == {0: "negative", 1: "positive"}
    res = om.predict(src, imgsz=320, conf=0.1, verbose=False)
    cli = cli_json(yolo_bin, "predict", f"model={onnx}", f"source={src}", "imgsz=320", "conf=0.1", "save=False")
    torch_res = {r.path: r for r in YOLO(pt).predict(src, imgsz=320, conf=0.1, verbose=False)}
    n = 0
    for r in res:
        dets = cli[r.path]["detections"]
        assert len(r) == len(dets)
        if dets:
            n += 1
            np.testing.assert_allclose(r.boxes.xyxy, np.array([d["xyxy"] for d in dets], np.float32), atol=1e-4)
            t = torch_res[r.path].boxes
            if len(t) == len(r):
                np.testing.assert_allclose(r.boxes.xyxy, t.xyxy, atol=0.5)
    assert n > 0


def test_ctrl_c_stops_training_cleanly(quickstart, tmp_path):
    """SIGINT while training: the epoch finishes, checkpoints are written, then KeyboardInterrupt."""
    import os
    import signal

    import pytest

    from ryolo import YOLO

    model = YOLO("yolo11n.yaml")
    seen = []

    def batch_end(trainer):
        # Ctrl-C in the middle of the first epoch (sent from inside training, not by a timer that
        # a fast machine could outrun).
        if trainer.epoch == 0 and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    sent = []
    model.add_callback("on_train_batch_end", batch_end)
    model.add_callback("on_model_save", lambda t: seen.append(t.epoch))
    with pytest.raises(KeyboardInterrupt):
        model.train(data=quickstart["data"], epochs=3, imgsz=64, batch=8, workers=0, plots=False, val=False,
                    project=str(tmp_path), name="int")
    run = tmp_path / "int"
    assert seen == [0]
    assert (run / "weights" / "last.safetensors").exists()
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert [int(r["epoch"]) for r in rows] == [1]


def test_gil_is_released_while_predicting(bt_images):
    import threading

    from ryolo import YOLO

    model = YOLO(bt_images / "bt.pt")
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        before = count[0]
        model.predict(bt_images / "images", imgsz=320, verbose=False)
        during = count[0] - before
    finally:
        stop.set()
        t.join()
    assert during > 10_000, during
