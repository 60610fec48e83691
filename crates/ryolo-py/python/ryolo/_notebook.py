"""Notebook output: the engine prints to the process's file descriptors 1 and 2, which a Jupyter
kernel does not show in cells; inside a kernel they are piped to ``sys.stdout`` / ``sys.stderr``.
Progress bars draw only on a terminal, so a notebook gets the plain per-epoch lines."""

import os
import sys
import threading

_started = False


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or not hasattr(shell, "get_ipython"):
        return False
    ip = shell.get_ipython()
    return ip is not None and "ipykernel" in type(ip).__module__ + str(type(ip))


def _pump(read_fd: int, stream_name: str) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as f:
        while True:
            chunk = f.read(4096)
            if not chunk:
                return
            stream = getattr(sys, stream_name)
            stream.write(chunk.decode("utf-8", "replace"))
            stream.flush()


def forward_output(force: bool = False) -> bool:
    """Forwards fd 1 and 2 to ``sys.stdout`` / ``sys.stderr`` when running in a Jupyter kernel
    (or when ``force``); returns whether forwarding is on. Set RYOLO_NO_FORWARD=1 to disable."""
    global _started
    if _started:
        return True
    if os.environ.get("RYOLO_NO_FORWARD") or not (force or _in_notebook()):
        return False
    for fd, name in ((1, "stdout"), (2, "stderr")):
        r, w = os.pipe()
        os.dup2(w, fd)
        os.close(w)
        threading.Thread(target=_pump, args=(r, name), daemon=True).start()
    _started = True
    return True
