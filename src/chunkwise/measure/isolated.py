"""Time code in a fresh Python process, as the reader being timed would run.

A process that has run a rechunk is not the process a reader runs in. A rechunk fixes
glibc's mmap and trim thresholds for its plan (process-wide, and for good: glibc has
no call that gives back its dynamic threshold), and it may leave zarrs' thread pool,
zarr-python's configuration and a warm heap behind. Timed in such a process,
tensorstore's reads of 1 MiB chunks faulted their buffers in afresh on every read, and
its per-chunk CPU fitted to 0 in three calibrations of five, against 4.7-6.5 us in a
fresh process (``chunkwise calibrate --reader tensorstore --sample 2MiB``). So
calibration times its reads in a process of its own, started for the purpose, with
this interpreter and environment.

The child is started with ``sys.executable -c``, not through :mod:`multiprocessing`:
its ``spawn`` start re-runs the caller's main script, which breaks scripts without an
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["in_fresh_process"]

T = TypeVar("T")

_CHILD = "from chunkwise.measure.isolated import _serve; _serve()"


def in_fresh_process(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)``, called in a new Python process and returned here.

    ``func`` must be a module-level function and ``args`` and the result picklable.
    An exception ``func`` raises is raised here. Where no process can be started
    (``OSError``), ``func`` is called in this process.

    Raises
    ------
    RuntimeError
        When the child process dies without a result (killed, out of memory), with the
        end of what it wrote to stderr.
    """
    payload = pickle.dumps((func, args), protocol=pickle.HIGHEST_PROTOCOL)
    # The child imports what this process can: chunkwise and ``func``'s module, also
    # where a script put them on sys.path itself.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD], input=payload, capture_output=True, env=env,
            check=False,
        )  # fmt: skip
    except OSError:
        return func(*args)
    name = getattr(func, "__name__", repr(func))
    if done.returncode != 0 or not done.stdout:
        tail = done.stderr.decode(errors="replace").strip()[-2000:]
        raise RuntimeError(
            f"the process timing {name} ended with exit code {done.returncode} "
            f"and no result: {tail or 'it wrote nothing to stderr'}"
        )
    try:
        ok, value = pickle.loads(done.stdout)
    except Exception as error:  # what the child returned does not load here
        raise RuntimeError(
            f"the process timing {name} returned what this process cannot load: {error}"
        ) from None
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def _serve() -> None:
    """The child's side of :func:`in_fresh_process`: call what stdin holds and write
    ``(True, result)`` or ``(False, exception)`` to stdout. Anything else written to
    stdout (by Python or by a library's C code) goes to stderr instead."""
    request = sys.stdin.buffer.read()
    result_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        func, args = pickle.loads(request)
        answer: tuple[bool, Any] = (True, func(*args))
    except Exception as error:  # handed to the parent, which raises it
        answer = (False, error)
    try:
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:  # a result or exception that does not pickle
        data = pickle.dumps((False, RuntimeError(f"{type(error).__name__}: {error}")))
    with os.fdopen(result_fd, "wb") as out:
        out.write(data)
