#!/usr/bin/env bash
# What the tests need beyond scripts/setup.sh: Ultralytics 8.4.190 itself in the project's .venv
# (reusing its torch), so that the interop tests load ryolo's .pt and .onnx files in Ultralytics.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import ultralytics, torchvision, cv2" 2>/dev/null; then
  echo "setup-tests: installing ultralytics==8.4.190 (+ torchvision 0.26.0 for torch 2.11) into .venv..."
  .venv/bin/pip install --quiet --no-deps ultralytics==8.4.190 torchvision==0.26.0 ultralytics-thop
  # OpenCV pinned: the pose/OBB data-parity tests regenerate the fixtures' synthetic images with it
  # and compare pixels, and the minAreaRect reference was made with this version.
  .venv/bin/pip install --quiet opencv-python-headless==5.1.0.95 pyyaml pillow matplotlib scipy polars \
    polars-runtime-32 psutil requests onnx ml_dtypes
fi
# The Python package's tests (scripts/test-python) and wheel build (maturin).
if ! .venv/bin/python -c "import pytest, maturin" 2>/dev/null; then
  echo "setup-tests: installing pytest and maturin into .venv..."
  .venv/bin/pip install --quiet pytest==8.4.2 maturin==1.9.4
fi
