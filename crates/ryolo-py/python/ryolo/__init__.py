"""ryolo: Ultralytics YOLO (detect, segment, classify, pose, obb) rebuilt in Rust on libtorch.

``from ryolo import YOLO`` gives the Ultralytics ``Model`` API (``predict``/``__call__``, ``track``,
``val``, ``train``, ``export``, ``info``, ``add_callback``) over the compiled engine.
"""

# torch first: its libtorch (the one the extension links against) is then already loaded, so the
# extension finds it whatever the rpath says and no second copy is ever loaded.
import torch  # noqa: F401

from ._runtime import locate_runtimes  # noqa: E402

locate_runtimes()

from ._ryolo import (  # noqa: E402
    EVENTS,
    OBB,
    Boxes,
    Keypoints,
    Masks,
    Metric,
    Metrics,
    Probs,
    Results,
    ResultsStream,
    YOLO,
    __version__,
    synth_dataset,
)
from ._notebook import forward_output  # noqa: E402

forward_output()

__all__ = [
    "YOLO",
    "Results",
    "ResultsStream",
    "Boxes",
    "Masks",
    "Keypoints",
    "Probs",
    "OBB",
    "Metric",
    "Metrics",
    "EVENTS",
    "synth_dataset",
    "__version__",
]
