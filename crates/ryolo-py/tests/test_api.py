"""The Python API surface: keyword validation as the CLI, errors as Python exceptions, sources
(paths, arrays, PIL, lists, stream=True), task fields with Ultralytics' shapes and dtypes, track."""

import types
from pathlib import Path

import numpy as np
import pytest

from conftest import CLS_MODEL, MNIST, SHARED, run_cli
from ryolo import EVENTS, YOLO

BUS = SHARED / "datasets" / "samples" / "bus.jpg"


@pytest.fixture(scope="module")
def bt(bt_images):
    return YOLO(bt_images / "bt.pt")


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"cnf": 0.3}, "cnf"),
        ({"conf": 2}, "conf"),
        ({"imgsz": [640, 0]}, "imgsz"),
        ({"save_txt": "maybe"}, "save_txt"),
    ],
)
def test_bad_kwargs_raise_value_error_with_the_cli_message(bt, yolo_bin, kwargs, key):
    with pytest.raises(ValueError) as e:
        bt.predict(BUS, **kwargs)
    msg = str(e.value)
    assert f"'{key}" in msg
    k, v = next(iter(kwargs.items()))
    v = "[" + ",".join(map(str, v)) + "]" if isinstance(v, list) else v
    rc, _, err = run_cli(yolo_bin, "predict", f"model={bt.ckpt_path}", f"source={BUS}", f"{k}={v}")
    assert rc != 0
    assert f"Error: {msg}\n" in err


def test_bad_train_and_val_kwargs_name_the_key(bt):
    with pytest.raises(ValueError, match="'epochs=1.5'"):
        bt.train(epochs=1.5)
    with pytest.raises(ValueError, match="'lr0=3'"):
        bt.train(lr0=3)
    with pytest.raises(ValueError, match="'splt' is not a valid YOLO argument"):
        bt.val(splt="val")
    with pytest.raises(ValueError, match="'max_det=0'"):
        bt.predict(BUS, max_det=0)
    with pytest.raises(ValueError, match="'batch=abc'"):
        bt.predict(BUS, batch="abc")
    with pytest.raises(ValueError, match="format=torchscript"):
        bt.export(format="torchscript")


def test_errors_are_python_exceptions(bt, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        YOLO("nope.pt")
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        bt.predict(tmp_path / "does-not-exist.jpg")
    with pytest.raises(TypeError, match="not supported"):
        bt.predict(42)
    with pytest.raises(ValueError, match="uint8"):
        bt.predict(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="not a valid callback event"):
        bt.add_callback("on_epoch_end", lambda t: None)
    assert "on_train_epoch_end" in EVENTS


def test_sources_path_array_pil_list_and_stream(bt):
    from PIL import Image
    import cv2

    path = sorted((Path(bt.ckpt_path).parent / "images").iterdir())[0]
    by_path = bt.predict(path, imgsz=320, conf=0.1, verbose=False)
    assert len(by_path[0]) > 0
    # The decoded pixels as OpenCV holds them (BGR) and as PIL holds them (RGB): the same result.
    bgr = by_path[0].orig_img
    by_array = bt.predict(bgr, imgsz=320, conf=0.1, verbose=False)
    by_pil = bt.predict(Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])), imgsz=320, conf=0.1, verbose=False)
    both = bt.predict([bgr, str(path)], imgsz=320, conf=0.1, verbose=False)
    assert len(both) == 2 and both[0].path == "image0.jpg" and both[1].path == str(path)
    for r in (by_array[0], by_pil[0], both[0], both[1]):
        np.testing.assert_array_equal(r.boxes.data, by_path[0].boxes.data)
    np.testing.assert_array_equal(by_array[0].orig_img, bgr)
    # cv2.imread decodes the JPEG with another decoder: nearly the same pixels, nearly the same boxes.
    by_cv2 = bt.predict(cv2.imread(str(path)), imgsz=320, conf=0.1, verbose=False)[0]
    assert len(by_cv2) == len(by_path[0])
    np.testing.assert_allclose(by_cv2.boxes.xyxy, by_path[0].boxes.xyxy, atol=1.0)
    stream = bt.predict(Path(bt.ckpt_path).parent / "images", stream=True, imgsz=320, conf=0.1, verbose=False)
    assert not isinstance(stream, list) and iter(stream) is stream
    streamed = list(stream)
    listed = bt(Path(bt.ckpt_path).parent / "images", imgsz=320, conf=0.1, verbose=False)
    assert [r.path for r in streamed] == [r.path for r in listed]
    for a, b in zip(streamed, listed):
        np.testing.assert_array_equal(a.boxes.data, b.boxes.data)


def test_detect_results_shapes_dtypes_and_methods(bt, tmp_path):
    images = sorted((Path(bt.ckpt_path).parent / "images").iterdir())
    res = [r for r in bt.predict(images, imgsz=320, conf=0.1, verbose=False) if len(r)]
    assert res, "no detections to check"
    r = res[0]
    n = len(r)
    b = r.boxes
    for name, shape in [("xyxy", (n, 4)), ("xywh", (n, 4)), ("xyxyn", (n, 4)), ("xywhn", (n, 4)),
                        ("conf", (n,)), ("cls", (n,)), ("data", (n, 6))]:
        a = getattr(b, name)
        assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == shape, name
    assert b.id is None and not b.is_track and len(b) == n
    h, w = r.orig_shape
    np.testing.assert_allclose(b.xyxyn * [w, h, w, h], b.xyxy, rtol=1e-5)
    np.testing.assert_allclose(b.xywh[:, :2], (b.xyxy[:, :2] + b.xyxy[:, 2:]) / 2, rtol=1e-5)
    np.testing.assert_array_equal(b.data[:, 4], b.conf)
    assert set(r.speed) == {"preprocess", "inference", "postprocess"}
    assert r.names == {0: "negative", 1: "positive"}
    assert r.masks is None and r.keypoints is None and r.probs is None and r.obb is None
    s = r.summary()
    assert len(s) == n and s[0]["name"] in r.names.values() and set(s[0]["box"]) == {"x1", "y1", "x2", "y2"}
    assert abs(s[0]["confidence"] - float(b.conf[0])) < 1e-5
    import json

    assert json.loads(r.to_json()) == s
    img = r.plot()
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    assert not np.array_equal(img, r.orig_img)  # boxes were drawn
    out = r.save(tmp_path / "annotated.jpg")
    assert Path(out).exists()
    assert r.verbose().endswith(", ")


@pytest.mark.parametrize("yaml,field", [("yolo11n-seg.yaml", "masks"), ("yolo11n-pose.yaml", "keypoints"), ("yolo11n-obb.yaml", "obb")])
def test_task_fields_of_fresh_models(yaml, field):
    model = YOLO(yaml)
    assert model.task == {"masks": "segment", "keypoints": "pose", "obb": "obb"}[field]
    r = model.predict(str(BUS), imgsz=64, conf=0.0, max_det=5, verbose=False)[0]
    n = len(r)
    assert 0 < n <= 5
    if field == "masks":
        m = r.masks
        assert m.data.dtype == np.float32 and m.data.ndim == 3 and m.data.shape[0] == n
        assert set(np.unique(m.data)) <= {0.0, 1.0}
        assert len(m.xy) == n and all(p.dtype == np.float32 and p.ndim == 2 and p.shape[1] == 2 for p in m.xy)
        assert len(m.xyn) == n and r.boxes.data.shape == (n, 6)
    elif field == "keypoints":
        k = r.keypoints
        assert k.data.shape == (n, 17, 3) and k.data.dtype == np.float32
        assert k.xy.shape == (n, 17, 2) and k.xyn.shape == (n, 17, 2) and k.conf.shape == (n, 17)
        np.testing.assert_array_equal(k.xy, k.data[..., :2])
        h, w = r.orig_shape
        np.testing.assert_allclose(k.xyn * [w, h], k.xy, rtol=1e-5)
        assert "keypoints" in r.summary()[0]
    else:
        o = r.obb
        assert r.boxes is None
        assert o.data.shape == (n, 7) and o.xywhr.shape == (n, 5) and o.xyxyxyxy.shape == (n, 4, 2)
        assert o.xyxyxyxyn.shape == (n, 4, 2) and o.xyxy.shape == (n, 4) and o.conf.shape == (n,)
        assert o.cls.dtype == np.float32 and o.id is None
        np.testing.assert_allclose(o.xyxy[:, 0], o.xyxyxyxy[:, :, 0].min(1), rtol=1e-6)
        assert set(r.summary()[0]["box"]) == {f"{a}{i}" for a in "xy" for i in range(1, 5)}
    assert r.plot().shape == (*r.orig_shape, 3)
    # Other arguments rebuild the predictor: a YAML model keeps the same (seeded) fresh weights.
    again = model.predict(str(BUS), imgsz=64, conf=0.0, max_det=3, verbose=False)[0]
    first = r.obb.data[:3] if field == "obb" else r.boxes.data[:3]
    np.testing.assert_array_equal(again.obb.data if field == "obb" else again.boxes.data, first)


def test_classify_probs():
    if not CLS_MODEL.exists():
        pytest.skip(f"{CLS_MODEL} missing")
    model = YOLO(CLS_MODEL)
    assert model.task == "classify"
    img = next(p for p in sorted((MNIST / "test").rglob("*")) if p.suffix in (".png", ".jpg"))
    r = model(img, verbose=False)[0]
    p = r.probs
    assert r.boxes is None and p.data.dtype == np.float32 and p.data.shape == (len(model.names),)
    assert abs(float(p.data.sum()) - 1.0) < 1e-4
    assert p.top1 == int(np.argmax(p.data)) and p.top1conf == pytest.approx(float(p.data.max()))
    assert p.top5 == [int(i) for i in np.argsort(-p.data, kind="stable")[:5]]
    np.testing.assert_allclose(p.top5conf, p.data[p.top5])
    assert [s["class"] for s in r.summary()] == p.top5


def test_track_gives_ids_and_persists(bt):
    img = sorted((Path(bt.ckpt_path).parent / "images").iterdir())
    frame = bt.predict(img[0], imgsz=320, verbose=False)[0].orig_img
    ids = []
    for _ in range(3):
        t = bt.track(frame, persist=True, imgsz=320, tracker="bytetrack.yaml", verbose=False)[0]
        assert t.boxes.is_track and t.boxes.data.shape == (len(t), 7)
        np.testing.assert_array_equal(t.boxes.data[:, 4], t.boxes.id)
        ids.append(t.boxes.id.tolist())
    assert ids[0] == ids[1] == ids[2] and len(ids[0]) > 0, ids
    # Without persist every call starts a fresh tracker: ids restart from 1.
    fresh = bt.track(frame, imgsz=320, tracker="bytetrack.yaml", verbose=False)[0]
    assert fresh.boxes.id.tolist() == list(range(1, len(fresh) + 1))
    assert "track_id" in fresh.summary()[0]


def test_info_names_task_and_val_callbacks(bt, bt_images):
    layers, params, grads, gflops = bt.info(verbose=False)
    assert layers > 0 and params > 2_000_000 and gflops > 0
    seen = []
    bt.add_callback("on_val_start", lambda v: seen.append(("start", v.args.data)))
    bt.add_callback("on_val_end", lambda v: seen.append(("end", v.metrics.box.map)))
    m = bt.val(data=str(bt_images / "data.yaml"), imgsz=320, batch=6, plots=False, verbose=False)
    bt.reset_callbacks()
    assert seen == [("start", str(bt_images / "data.yaml")), ("end", m.box.map)]
    assert m.box.map > 0 and m.fitness == m.results_dict["fitness"]
    assert isinstance(m.box.maps, list) and len(m.box.maps) == 2


def test_engine_output_is_forwarded_to_sys_stdout_in_notebooks(tmp_path):
    """In a Jupyter kernel the engine's prints (fd 1) reach the cell through sys.stdout."""
    import subprocess
    import sys

    out = tmp_path / "captured.txt"
    code = (
        "import io, sys, time\n"
        "import ryolo\n"
        "from ryolo._notebook import forward_output\n"
        "assert forward_output(force=True)\n"
        "buf = io.StringIO(); real = sys.stdout; sys.stdout = buf\n"
        "ryolo.YOLO('yolo11n.yaml').info()\n"
        "time.sleep(0.5)\n"
        "sys.stdout = real\n"
        f"open({str(out)!r}, 'w').write(buf.getvalue())\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "YOLO11n summary" in out.read_text()
