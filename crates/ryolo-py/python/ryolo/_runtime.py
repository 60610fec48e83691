"""Finds the run-time helpers of an installed wheel: ONNX Runtime (``.onnx`` models) from the
``onnxruntime`` package and ffmpeg (videos) from ``imageio-ffmpeg``, unless ORT_DYLIB_PATH /
FFMPEG_BINARY already say where they are. A development build knows its own paths."""

import glob
import importlib.util
import os


def locate_runtimes() -> None:
    if "ORT_DYLIB_PATH" not in os.environ:
        spec = importlib.util.find_spec("onnxruntime")
        if spec is not None and spec.submodule_search_locations:
            capi = os.path.join(list(spec.submodule_search_locations)[0], "capi")
            libs = sorted(glob.glob(os.path.join(capi, "libonnxruntime.so*")))
            if libs:
                os.environ["ORT_DYLIB_PATH"] = libs[0]
    if "FFMPEG_BINARY" not in os.environ and importlib.util.find_spec("imageio_ffmpeg"):
        try:
            import imageio_ffmpeg

            os.environ["FFMPEG_BINARY"] = imageio_ffmpeg.get_ffmpeg_exe()
        except Exception:  # noqa: BLE001 - a missing binary only matters for videos
            pass
