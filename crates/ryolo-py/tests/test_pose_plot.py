"""Results.plot()/save() keypoint styling: `kpt_radius` and `kpt_line` as Ultralytics'
Results.plot (radius 5 and the COCO skeleton by default, None = the line width)."""

import numpy as np
import pytest

from conftest import SHARED
from ryolo import YOLO

BUS = SHARED / "datasets" / "samples" / "bus.jpg"


@pytest.fixture(scope="module")
def pose_result():
    model = YOLO("yolo11n-pose.yaml")
    r = model.predict(str(BUS), imgsz=64, conf=0.0, max_det=3, verbose=False)[0]
    assert len(r) > 0
    return r


def drawn(r, **kw):
    """Pixels the keypoint drawing changed (boxes and labels off)."""
    img = r.plot(boxes=False, labels=False, conf=False, **kw)
    return np.any(img != r.orig_img, axis=2)


def test_kpt_radius_and_kpt_line_are_honoured(pose_result, capfd):
    r = pose_result
    capfd.readouterr()
    dots = drawn(r, kpt_radius=1, kpt_line=False)
    big = drawn(r, kpt_radius=9, kpt_line=False)
    limbs = drawn(r, kpt_radius=1, kpt_line=True)
    assert "not supported" not in capfd.readouterr().err, "kpt_radius/kpt_line fell into **kwargs"
    h, w = r.orig_shape
    k = r.keypoints.data.reshape(-1, 3)
    shown = [(x, y) for x, y, c in k if c >= 0.25 and 1 <= x < w - 1 and 1 <= y < h - 1]
    assert shown, "no keypoint to draw"
    for x, y in shown:  # every shown keypoint leaves a mark (3x3 box: OpenCV truncates, ours rounds)
        yi, xi = int(y), int(x)
        assert dots[yi - 1 : yi + 2, xi - 1 : xi + 2].any(), (x, y)
    assert big.sum() > 4 * dots.sum() > 0
    assert not (dots & ~big).any(), "a radius-1 dot lies inside the radius-9 circle"
    assert (limbs & ~dots).sum() > 0, "kpt_line=True draws the skeleton"
    # Defaults are Ultralytics' kpt_radius=5, kpt_line=True; None takes the line width.
    np.testing.assert_array_equal(drawn(r), drawn(r, kpt_radius=5, kpt_line=True))
    lw = max(round((h + w) / 2 * 0.003), 2)
    np.testing.assert_array_equal(drawn(r, kpt_radius=None, kpt_line=False), drawn(r, kpt_radius=lw, kpt_line=False))
    with pytest.raises(ValueError, match="kpt_radius"):
        r.plot(kpt_radius=-1)


def test_save_takes_the_keypoint_style(pose_result, tmp_path, capfd):
    r = pose_result
    capfd.readouterr()
    a = r.save(tmp_path / "r9.png", boxes=False, kpt_radius=9, kpt_line=False)
    b = r.save(tmp_path / "r1.png", boxes=False, kpt_radius=1, kpt_line=False)
    assert "not supported" not in capfd.readouterr().err
    assert (tmp_path / "r9.png").read_bytes() != (tmp_path / "r1.png").read_bytes(), (a, b)
    r.plot(kpt_radius=3, unknown_thing=1)
    assert "unknown_thing" in capfd.readouterr().err
