"""Notebook output: the engine prints to the process's file descriptors 1 and 2, which an older
Jupyter kernel does not show in cells (ipykernel >= 6 forwards them itself); inside such a kernel
they are piped to ``sys.stdout`` / ``sys.stderr``.
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


def _pump(read_fd: int, fd: int, original: int, stream_name: str) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as f:
        while True:
            chunk = f.read(4096)
            if not chunk:
                return
            stream = getattr(sys, stream_name)
            try:
                same = stream.fileno() == fd
            except (AttributeError, OSError, ValueError):
                same = False
            if same:
                # sys.stdout writes to the forwarded fd itself: writing there would loop.
                os.write(original, chunk)
            else:
                stream.write(chunk.decode("utf-8", "replace"))
                stream.flush()


def _kernel_captures_fds() -> bool:
    """ipykernel >= 6 already forwards fd 1/2 output to the cell."""
    return any(
        getattr(getattr(sys, n, None), a, None)
        for n in ("stdout", "stderr")
        for a in ("_should_watch", "watch_fd_thread")
    )


def forward_output(force: bool = False) -> bool:
    """Forwards fd 1 and 2 to ``sys.stdout`` / ``sys.stderr`` when running in a Jupyter kernel
    (or when ``force``); returns whether forwarding is on. Set RYOLO_NO_FORWARD=1 to disable."""
    global _started
    if _started:
        return True
    if os.environ.get("RYOLO_NO_FORWARD"):
        return False
    if not force and (not _in_notebook() or _kernel_captures_fds()):
        return False
    for fd, name in ((1, "stdout"), (2, "stderr")):
        original = os.dup(fd)
        r, w = os.pipe()
        os.dup2(w, fd)
        os.close(w)
        threading.Thread(target=_pump, args=(r, fd, original, name), daemon=True).start()
    _started = True
    return True
