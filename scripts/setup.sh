#!/usr/bin/env bash
# Installs what ryolo needs on a fresh machine: libtorch 2.11 from the PyPI torch wheel, in a
# project-local virtualenv (.venv, ignored by git), linked at .venv/libtorch for the build.
# Reuses the venv when it is already there. Set LIBTORCH to use your own libtorch instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${LIBTORCH:-}" ]; then
  echo "setup: using LIBTORCH=$LIBTORCH"; exit 0
fi
if [ ! -e .venv/libtorch/lib/libtorch_cpu.so ]; then
  echo "setup: installing torch==2.11.0 (libtorch) into .venv (about 4.6 GB, once)..."
  python3 -m venv .venv
  .venv/bin/pip install --quiet torch==2.11.0 numpy
  tdir=$(.venv/bin/python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
  ln -sfn "$tdir" .venv/libtorch
fi
# NCCL multi-GPU training compiles csrc/dist_nccl.cpp against CUDA headers the torch wheel lacks
# (crt/, nv/): the small nvidia-cuda-crt and nvidia-cuda-cccl wheels of torch's CUDA version.
cuda=$(.venv/bin/python -c 'import torch; print(torch.version.cuda or "")')
if [ -n "$cuda" ] && ! ls .venv/lib/python3*/site-packages/nvidia/cu*/include/nv/target >/dev/null 2>&1; then
  echo "setup: installing the CUDA $cuda headers NCCL training compiles against (nvidia-cuda-crt, nvidia-cuda-cccl)..."
  .venv/bin/pip install --quiet --no-deps "nvidia-cuda-crt==$cuda.*" "nvidia-cuda-cccl==$cuda.*"
fi
# ONNX Runtime runs `.onnx` models (loaded at run time from .venv/libonnxruntime.so) and checks
# our ONNX exports in the tests.
if ! .venv/bin/python -c "import onnxruntime" 2>/dev/null; then
  echo "setup: installing onnxruntime into .venv (runs .onnx models, checks exports)..."
  .venv/bin/pip install --quiet onnxruntime
fi
if [ ! -e .venv/libonnxruntime.so ]; then
  ortlib=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* | head -n1)
  ln -sfn "$(realpath "$ortlib")" .venv/libonnxruntime.so
fi
# TensorBoard's Python package reads back the event files training writes (the tests check them).
if ! .venv/bin/python -c "import tensorboard" 2>/dev/null; then
  echo "setup: installing tensorboard into .venv (the tests read back TensorBoard event files)..."
  .venv/bin/pip install --quiet tensorboard
fi
# ffmpeg decodes and encodes videos (a static build from the PyPI imageio-ffmpeg wheel, no root).
if [ ! -e .venv/ffmpeg ]; then
  if ! .venv/bin/python -c "import imageio_ffmpeg" 2>/dev/null; then
    echo "setup: installing imageio-ffmpeg (a static ffmpeg for videos) into .venv..."
    .venv/bin/pip install --quiet imageio-ffmpeg
  fi
  ln -sfn "$(.venv/bin/python -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" .venv/ffmpeg
fi
