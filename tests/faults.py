"""Fault injection for chunkwise runs: child processes that kill themselves, pause or fail
at the k-th operation that changes a store, and the checks the fault tests share.

**The children.** A child runs the ``chunkwise`` CLI after patching, in itself, zarr's
``LocalStore.set``, ``set_if_not_exists``, ``delete`` and ``delete_dir`` and the
``os.rmdir`` and ``os.unlink`` calls made outside them (the lease's lock file, folders
left empty): the *mutating operations*. It numbers them from 0 in the order they begin,
appends ``"<n> <op> <path>"`` to an operation log before each one (written straight to
the file, so the log survives ``SIGKILL``), and acts on its :class:`Fault`:

* ``kill-before`` / ``kill-after``: ``SIGKILL`` itself right before operation ``at`` or
  right after it completes (or fails);
* ``kill-during``: ``SIGKILL`` itself while operation ``at``, a ``set``, has written its
  temporary ``*.partial`` file but not yet renamed it into place;
* ``kill-at-exit``: ``SIGKILL`` itself after the command returned, before the process
  exits;
* ``pause``: write ``<signal_dir>/paused`` and wait for ``<signal_dir>/go`` right before
  operation ``at``, or before the lease's lock file is removed if the run ends sooner
  (so a paused run always holds its lease);
* ``enospc``: raise ``OSError(ENOSPC)`` from the first ``set`` numbered ``at`` or later.

It writes ``fired`` into its output folder when the fault was reached.

**The fork server.** Starting Python and importing chunkwise, zarr and numpy costs more
than a whole run on these small arrays, and the tests run hundreds of children. So
:class:`ForkServer` starts one interpreter (``python faults.py serve``) that imports them
once, starts no thread, and forks a child per run: each child is a fresh process as far as
chunkwise can tell (its own zarr event loop, thread pool, lease and allocator), with the
imports already done. :func:`run_fresh` runs the same child code in a new interpreter
(``python faults.py child REQUEST``) for the checks that the fork server is faithful.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

#: Where chunkwise keeps a run's state inside its target.
STATE = ".chunkwise-rechunk"
#: Seconds a child may take before it is considered hung.
CHILD_TIMEOUT_S = 120.0
#: Environment of the children: one BLAS thread, so the fork server starts no thread.
CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: Drops the capabilities that let root ignore file modes (``chmod 000`` then denies it).
NO_DAC = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
]

FaultKind = Literal["kill-before", "kill-during", "kill-after", "kill-at-exit", "pause", "enospc"]


@dataclass(frozen=True)
class Fault:
    """What a child does at its operation number ``at`` (see the module docstring).

    Attributes
    ----------
    kind
        ``"kill-before"``, ``"kill-during"``, ``"kill-after"``, ``"kill-at-exit"``,
        ``"pause"`` or ``"enospc"``.
    at
        The operation number (from 0); unused for ``kill-at-exit``.
    signal_dir
        For ``pause``: where the child writes ``paused`` and waits for ``go``.
    """

    kind: FaultKind
    at: int = 0
    signal_dir: str = ""


@dataclass(frozen=True)
class Outcome:
    """How a child ended.

    Attributes
    ----------
    status
        Exit status, or minus the signal that ended it.
    stdout, stderr
        What it printed.
    ops
        The operation log: ``"<n> <op> <path>"`` for every mutating operation it began.
    fired
        Whether its fault was reached.
    """

    status: int
    stdout: str
    stderr: str
    ops: tuple[str, ...]
    fired: bool

    @property
    def killed(self) -> bool:
        return self.status == -signal.SIGKILL

    def describe(self) -> str:
        """For assertion messages."""
        return (
            f"status {self.status}, fired {self.fired}, {len(self.ops)} ops\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


# ----------------------------------------------------------------------------- child side


class _Injector:
    """Counts a child's mutating operations and applies its fault."""

    def __init__(self, fault: Fault | None, out: Path) -> None:
        import threading

        self.fault = fault
        self.out = out
        self.count = 0
        self.paused = False
        self.fired = False
        self._lock = threading.Lock()
        self._log = os.open(out / "ops", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        # The number of the store operation running (asyncio.to_thread copies it into the
        # worker thread): the os.unlink/os.rmdir a store operation makes are not counted
        # again, and its rename into place is where ``kill-during`` strikes.
        self._inside: contextvars.ContextVar[int | None] = contextvars.ContextVar(
            "inside", default=None
        )

    def _fire(self) -> None:
        self.fired = True
        (self.out / "fired").write_text("1")

    def _kill(self) -> None:
        self._fire()
        os.kill(os.getpid(), signal.SIGKILL)

    def _pause(self) -> None:
        assert self.fault is not None
        self.paused = True
        self._fire()
        where = Path(self.fault.signal_dir)
        (where / "paused").write_text(str(os.getpid()))
        while not (where / "go").exists():
            time.sleep(0.01)

    def begin(self, op: str, path: str) -> int:
        """Number, log and maybe act on an operation about to begin; returns its number."""
        with self._lock:
            n = self.count
            self.count += 1
            os.write(self._log, f"{n} {op} {path}\n".encode())
        fault = self.fault
        if fault is None:
            return n
        if fault.kind == "kill-before" and n == fault.at:
            self._kill()
        if fault.kind == "pause" and not self.paused:
            lock = path.endswith(f"/{STATE}/lock") and op == "unlink"
            if n >= fault.at or lock:
                self._pause()
        if fault.kind == "enospc" and n >= fault.at and op.startswith("set") and not self.fired:
            self._fire()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return n

    def end(self, n: int) -> None:
        fault = self.fault
        if fault is not None and fault.kind == "kill-after" and n == fault.at:
            self._kill()

    def at_exit(self) -> None:
        if self.fault is not None and self.fault.kind == "kill-at-exit":
            self._kill()

    def install(self) -> None:
        from zarr.storage import LocalStore

        injector = self

        def wrap_store(name: str) -> None:
            original = getattr(LocalStore, name)

            async def patched(self: Any, key: str, *args: Any, **kwargs: Any) -> Any:
                n = injector.begin(name, f"{self.root}/{key}")
                token = injector._inside.set(n)
                try:
                    return await original(self, key, *args, **kwargs)
                finally:
                    injector._inside.reset(token)
                    injector.end(n)

            setattr(LocalStore, name, patched)

        for name in ("set", "set_if_not_exists", "delete", "delete_dir"):
            wrap_store(name)

        def wrap_os(name: str) -> None:
            original: Callable[..., Any] = getattr(os, name)

            def patched(path: Any, *args: Any, **kwargs: Any) -> Any:
                if injector._inside.get() is not None:
                    return original(path, *args, **kwargs)
                n = injector.begin(name, os.fspath(path))
                try:
                    return original(path, *args, **kwargs)
                finally:
                    injector.end(n)

            setattr(os, name, patched)

        wrap_os("rmdir")
        wrap_os("unlink")

        def wrap_rename(name: str) -> None:
            original: Callable[..., Any] = getattr(os, name)

            def patched(*args: Any, **kwargs: Any) -> Any:
                fault = injector.fault
                during = fault is not None and fault.kind == "kill-during"
                if during and injector._inside.get() == fault.at:  # type: ignore[union-attr]
                    injector._kill()
                return original(*args, **kwargs)

            setattr(os, name, patched)

        wrap_rename("replace")  # how LocalStore.set puts a written file in place
        wrap_rename("link")  # ... and set_if_not_exists


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def child_main(request: Mapping[str, Any]) -> int:
    """Run one ``chunkwise`` command as ``request`` says (``argv``, ``cwd``, ``out``,
    ``fault``), with its output in ``out/stdout`` and ``out/stderr``; returns the exit
    status (the caller exits with it)."""
    out = Path(request["out"])
    for fd, name in ((1, "stdout"), (2, "stderr")):
        handle = os.open(out / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(request["cwd"])
    argv = [str(a) for a in request["argv"]]
    sys.argv = ["chunkwise", *argv]
    fault = Fault(**request["fault"]) if request.get("fault") else None
    injector = _Injector(fault, out)
    injector.install()
    from chunkwise.cli.main import cli

    try:
        cli.main(args=argv, prog_name="chunkwise")
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    injector.at_exit()
    return code


#: Modules a run imports, loaded by the fork server before it forks.
PRELOAD = (
    "numcodecs",
    "zarr.codecs",
    "zarr.storage",
    "chunkwise.api",
    "chunkwise.cli.main",
    "chunkwise.rechunking.convert",
    "chunkwise.rechunking.lease",
    "chunkwise.io.locations",
    "chunkwise.io.sources.readers",
    "chunkwise.rechunking.executor",
    "chunkwise.io.stores",
    "chunkwise.rechunking.target",
)


def serve() -> None:
    """The fork server: JSON requests on stdin, one reply line each on stdout.

    ``{"op": "start", "argv", "cwd", "out", "fault"}`` forks a child and replies
    ``{"pid"}``; ``{"op": "wait", "pid"}`` waits for it and replies ``{"status"}``.
    """
    import threading

    reply_fd = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    for module in PRELOAD:  # no thread, no event loop: only imports
        importlib.import_module(module)
    threads = len(os.listdir("/proc/self/task")) if Path("/proc/self/task").is_dir() else 1
    ready = {"ready": True, "threads": max(threads, threading.active_count())}
    os.write(reply_fd, (json.dumps(ready) + "\n").encode())
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "start":
            pid = os.fork()
            if pid == 0:
                os.close(reply_fd)
                code = 70
                try:
                    code = child_main(request)
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            reply: dict[str, Any] = {"pid": pid}
        else:
            _, status = os.waitpid(request["pid"], 0)
            reply = {"status": os.waitstatus_to_exitcode(status)}
        os.write(reply_fd, (json.dumps(reply) + "\n").encode())


# ----------------------------------------------------------------------------- test side


@dataclass(frozen=True)
class Child:
    """A child the fork server started."""

    pid: int
    out: Path


def _outcome(out: Path, status: int) -> Outcome:
    def text(name: str) -> str:
        path = out / name
        return path.read_text(errors="replace") if path.exists() else ""

    return Outcome(
        status=status,
        stdout=text("stdout"),
        stderr=text("stderr"),
        ops=tuple(text("ops").splitlines()),
        fired=(out / "fired").exists(),
    )


class ForkServer:
    """Runs ``chunkwise`` commands in forked children of one preloaded interpreter.

    Parameters
    ----------
    workdir
        Where each run's output folder is made.
    prefix
        A command to run the server under (``NO_DAC``: without the permission bypass).
    """

    def __init__(self, workdir: Path, prefix: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.runs = 0
        workdir.mkdir(parents=True, exist_ok=True)
        self._errors = (workdir / "server-stderr").open("wb")
        self._process = subprocess.Popen(
            [*prefix, sys.executable, __file__, "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            env={**os.environ, **CHILD_ENV},
        )
        ready = self._read(CHILD_TIMEOUT_S)
        if ready.get("threads") != 1:
            raise RuntimeError(f"the fork server started threads before forking: {ready}")

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self._process.stdout is not None
        readable, _, _ = select.select([self._process.stdout], [], [], timeout)
        if not readable:
            raise TimeoutError
        line = self._process.stdout.readline()
        if not line:
            errors = (self.workdir / "server-stderr").read_text(errors="replace")
            raise RuntimeError(f"the fork server died:\n{errors}")
        found: dict[str, Any] = json.loads(line)
        return found

    def _send(self, request: Mapping[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write((json.dumps(request) + "\n").encode())
        self._process.stdin.flush()

    def start(self, argv: Sequence[str], cwd: Path, fault: Fault | None = None) -> Child:
        """Start ``chunkwise ARGV`` in ``cwd``; returns at once."""
        self.runs += 1
        out = self.workdir / f"run-{self.runs}"
        out.mkdir()
        self._send(
            {
                "op": "start",
                "argv": list(argv),
                "cwd": str(cwd),
                "out": str(out),
                "fault": asdict(fault) if fault is not None else None,
            }
        )
        return Child(int(self._read(CHILD_TIMEOUT_S)["pid"]), out)

    def wait(self, child: Child, timeout: float = CHILD_TIMEOUT_S) -> Outcome:
        """Wait for ``child``; one that takes longer than ``timeout`` is killed and the
        test fails."""
        self._send({"op": "wait", "pid": child.pid})
        try:
            reply = self._read(timeout)
        except TimeoutError:
            os.kill(child.pid, signal.SIGKILL)
            reply = self._read(CHILD_TIMEOUT_S)
            outcome = _outcome(child.out, int(reply["status"]))
            raise AssertionError(f"a child hung for {timeout} s:\n{outcome.describe()}") from None
        return _outcome(child.out, int(reply["status"]))

    def run(self, argv: Sequence[str], cwd: Path, fault: Fault | None = None) -> Outcome:
        """Run ``chunkwise ARGV`` in ``cwd`` to its end."""
        return self.wait(self.start(argv, cwd, fault))

    def run_all(
        self, jobs: Sequence[tuple[Sequence[str], Path, Fault | None]], parallel: int = 2
    ) -> list[Outcome]:
        """Run independent commands, ``parallel`` at a time; outcomes in order."""
        outcomes: list[Outcome] = []
        for first in range(0, len(jobs), parallel):
            children = [self.start(*job) for job in jobs[first : first + parallel]]
            outcomes.extend(self.wait(child) for child in children)
        return outcomes

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._errors.close()


def run_fresh(argv: Sequence[str], cwd: Path, out: Path, fault: Fault | None = None) -> Outcome:
    """Run ``chunkwise ARGV`` with ``fault`` in a new interpreter (no fork server)."""
    out.mkdir(parents=True)
    request = {
        "argv": list(argv),
        "cwd": str(cwd),
        "out": str(out),
        "fault": asdict(fault) if fault is not None else None,
    }
    done = subprocess.run(
        [sys.executable, __file__, "child", json.dumps(request)],
        env={**os.environ, **CHILD_ENV},
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    return _outcome(out, done.returncode)


# ----------------------------------------------------------------------------- checks


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (symlinks not followed) by relative path, with its bytes."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def stamps(root: Path) -> dict[str, tuple[int, int]]:
    """``(inode, mtime_ns)`` of every file under ``root``: a rewrite changes both (zarr
    writes a new file and renames it into place)."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            info = Path(folder, name).stat()
            found[Path(folder, name).relative_to(root).as_posix()] = (
                info.st_ino,
                info.st_mtime_ns,
            )
    return found


def leftovers(target: Path) -> list[str]:
    """Run state or temporary files a finished run must not leave in ``target``."""
    found = [p.relative_to(target).as_posix() for p in target.rglob("*.partial")]
    if (target / STATE).exists():
        found.append(STATE)
    return found


def same_bits(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    """Same dtype, shape and bytes."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def read_zarr(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Every array of the Zarr store at ``path`` (``""`` for a lone array), read whole."""
    import zarr

    node = zarr.open(path, mode="r")
    if isinstance(node, zarr.Array):
        return {"": np.asarray(node[...])}
    return {name: np.asarray(array[...]) for name, array in node.arrays()}


def error_line(outcome: Outcome) -> str:
    """The one line a refused run prints; fails unless it printed exactly one line,
    starting ``Error:``, with no traceback, and exited 2."""
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert outcome.status == 2, outcome.describe()
    assert "Traceback" not in outcome.stderr, outcome.describe()
    assert len(lines) == 1 and lines[0].startswith("Error: "), outcome.describe()
    return lines[0]


def kill_points(total: int, *, sample: int = 25, head: int = 3, tail: int = 10) -> list[int]:
    """Operation numbers to kill at: all of ``0..total-1`` when there are at most
    ``sample``, else the first ``head``, the last ``tail`` (the clean-up) and evenly
    spaced ones between, ``sample`` in all."""
    if total <= sample:
        return list(range(total))
    ends = set(range(head)) | set(range(total - tail, total))
    middle = np.linspace(head, total - tail - 1, sample - len(ends)).round().astype(int)
    return sorted(ends | {int(k) for k in middle})


def op_index(ops: Sequence[str], predicate: Callable[[str, str], bool]) -> list[int]:
    """Numbers of the logged operations ``predicate(op, path)`` accepts."""
    found = []
    for line in ops:
        n, op, path = line.split(" ", 2)
        if predicate(op, path):
            found.append(int(n))
    return found


# ----------------------------------------------------------------------------- mounts


def exited(pid: int) -> bool:
    """Whether the process ``pid`` (a child of the fork server) has ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def tmpfs(where: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` (``"512k"``) mounted at ``where`` (root only)."""
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    _sh("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where))
    try:
        yield where
    finally:
        _sh("umount", "-l", str(where))


@contextlib.contextmanager
def ext4(where: Path, image: Path, hash_seed: str, size_mib: int = 64) -> Iterator[Path]:
    """An ext4 filesystem with directory hash seed ``hash_seed`` in the sparse file
    ``image``, loop-mounted at ``where`` (root only)."""
    where.mkdir(parents=True, exist_ok=True)
    with image.open("wb") as handle:
        handle.truncate(size_mib * 2**20)
    _sh("mkfs.ext4", "-q", "-F", "-E", f"hash_seed={hash_seed}", str(image))
    _sh("mount", "-o", "loop", str(image), str(where))
    try:
        yield where
    finally:
        _sh("umount", "-d", str(where))  # -d frees the loop device too


@contextlib.contextmanager
def bind_mount(source: Path, where: Path) -> Iterator[Path]:
    """``source`` bind-mounted at ``where`` (root only)."""
    where.mkdir(parents=True, exist_ok=True)
    _sh("mount", "--bind", str(source), str(where))
    try:
        yield where
    finally:
        _sh("umount", "-l", str(where))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    else:
        status = 70
        try:
            status = child_main(json.loads(sys.argv[2]))
        finally:
            os._exit(status)
