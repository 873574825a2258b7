"""An exclusive lease on a target, so that two runs never write the same target at once.

A run takes the lease before it reads its run record or deletes anything, keeps it while
it writes, and gives it back when it has finished (or failed). A second run on the same
target is refused with one sentence naming the holder (host, process, start, last
heartbeat).

**Local directories** lock ``<target>/.chunkwise-rechunk/lock`` with ``flock``: the
kernel releases the lock the instant its process dies (``SIGKILL`` included), so a dead
holder's lease is free without any guess, and a live holder's is never taken. The file
also names its holder for the message.

**Object stores** (``s3://``) create the lock object with a conditional put
(``If-None-Match: *``), so of two runs racing to create it exactly one succeeds, and the
holder rewrites it every :data:`HEARTBEAT_S` seconds. A lease whose holder is *provably*
dead, a process of this same machine and boot that no longer runs, is taken over; any
other is refused, with the key to delete once the user knows the holder is gone.

In-process stores (``memory://``) cannot be shared between runs and need no lease.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from chunkwise.errors import StoreError

__all__ = [
    "HEARTBEAT_S",
    "LEASE_NAME",
    "Holder",
    "Lease",
    "TargetBusyError",
    "acquire_lease",
]

#: The lock's name under the target's state prefix.
LEASE_NAME = "lock"
#: Seconds between the holder's rewrites of the lock (its heartbeat).
HEARTBEAT_S = 10.0


class TargetBusyError(StoreError):
    """Another run holds the target's lease."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a lease.

    Attributes
    ----------
    host
        The holder's host name.
    boot_id
        The holder machine's boot id (Linux), so a reboot ends every lease of the machine.
    pid, pid_start
        The holder's process id and that process's start time (clock ticks after boot),
        so a recycled process id is not mistaken for the holder.
    token
        Unique per lease.
    started, heartbeat
        When the lease was taken and last renewed, seconds since the epoch.
    command
        The holder's command line.
    """

    host: str
    boot_id: str
    pid: int
    pid_start: str
    token: str
    started: float
    heartbeat: float
    command: str

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Holder | None:
        """The holder a lock names, or ``None`` when it is empty or unreadable (a holder
        killed while writing it)."""
        try:
            fields = json.loads(data)
            return cls(**fields)
        except (ValueError, TypeError):
            return None

    def describe(self, now: float) -> str:
        """``pid 4242 on host h1, started 2026-12-03 22:50:01 UTC, last heartbeat 3 s ago``."""
        started = dt.datetime.fromtimestamp(self.started, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        return (
            f"pid {self.pid} on host {self.host}, started {started} UTC, last heartbeat "
            f"{max(0, round(now - self.heartbeat))} s ago"
        )

    def provably_dead(self) -> bool:
        """Whether the holder certainly no longer runs: a process of this machine and boot
        that is gone, or whose id now belongs to a process started at another time."""
        if self.host != socket.gethostname() or self.boot_id != _boot_id() or not self.boot_id:
            return False
        if self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return _process_start(self.pid) not in ("", self.pid_start)


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def _process_start(pid: int) -> str:
    """A process's start time in clock ticks after boot (Linux), or ``""``."""
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    return ""


def _me(token: str) -> Holder:
    now = time.time()
    return Holder(
        host=socket.gethostname(),
        boot_id=_boot_id(),
        pid=os.getpid(),
        pid_start=_process_start(os.getpid()),
        token=token,
        started=now,
        heartbeat=now,
        command=" ".join(sys.argv)[:500],
    )


class Lease(Protocol):
    """A held lease; :meth:`release` gives it back (calling it again does nothing)."""

    def release(self) -> None: ...


def _busy(url: str, holder: Holder | None, where: str, dead_note: str) -> TargetBusyError:
    who = holder.describe(time.time()) if holder is not None else "holder unknown"
    return TargetBusyError(
        f"target {url!r} is being written by another chunkwise run ({who}); wait for it to "
        f"finish, or stop it and run this command again to resume{dead_note.format(where)}."
    )


class _Heartbeat:
    """Calls ``beat`` every :data:`HEARTBEAT_S` seconds on a daemon thread until stopped."""

    def __init__(self, beat: Any) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(beat,), daemon=True)
        self._thread.start()

    def _run(self, beat: Any) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a missed beat only ages the lock
                beat()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _FileLease:
    """``flock`` on a local lock file (see the module docstring)."""

    def __init__(self, path: Path, fd: int, holder: Holder) -> None:
        self.path = path
        self._fd: int | None = fd
        self._holder = holder
        self._write()
        self._heart = _Heartbeat(self._beat)

    def _write(self) -> None:
        assert self._fd is not None
        data = self._holder.to_bytes()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def _beat(self) -> None:
        self._holder = _replace_heartbeat(self._holder)
        self._write()

    def release(self) -> None:
        if self._fd is None:
            return
        self._heart.stop()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still locked: a waiting run then locks a new file
        os.close(self._fd)
        self._fd = None


def _replace_heartbeat(holder: Holder) -> Holder:
    fields = asdict(holder)
    fields["heartbeat"] = time.time()
    return Holder(**fields)


def _file_lease(url: str, path: Path) -> _FileLease:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Holder.from_bytes(os.pread(fd, 65536, 0))
            os.close(fd)
            raise _busy(url, holder, str(path), "") from None
        except BaseException:
            os.close(fd)
            raise
        # The holder before us may have removed the file between our open and our lock:
        # then we locked a file nobody else can see. Start again on the current one.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return _FileLease(path, fd, _me(uuid.uuid4().hex))
        os.close(fd)
    raise StoreError(
        f"the lock {str(path)!r} of target {url!r} keeps changing hands; another program is "
        "creating and removing it: stop it and run this command again."
    )


class _ObjectLease:
    """A lock object created with a conditional put, renewed by a heartbeat."""

    def __init__(self, fs: Any, key: str, holder: Holder) -> None:
        self._fs = fs
        self.key = key
        self._holder: Holder | None = holder
        self._heart = _Heartbeat(self._beat)

    def _beat(self) -> None:
        from zarr.core.sync import sync

        assert self._holder is not None
        self._holder = _replace_heartbeat(self._holder)
        sync(self._fs._pipe_file(self.key, self._holder.to_bytes()))

    def release(self) -> None:
        from zarr.core.sync import sync

        if self._holder is None:
            return
        self._heart.stop()
        self._holder = None
        with contextlib.suppress(FileNotFoundError):
            sync(self._fs._rm_file(self.key))


def _precondition_failed(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return isinstance(exc, FileExistsError) or "PreconditionFailed" in text or "412" in text


def _object_lease(url: str, fs: Any, key: str, shown: str) -> _ObjectLease:
    from zarr.core.sync import sync

    async def read() -> Holder | None:
        try:
            return Holder.from_bytes(await fs._cat_file(key))
        except FileNotFoundError:
            return None

    note = (
        "; if that run is gone for good (another machine, or one that rebooted), delete {} "
        "and run this command again"
    )
    for _ in range(3):
        current = sync(read())
        if current is not None:
            if not current.provably_dead():
                raise _busy(url, current, shown, note)
            with contextlib.suppress(FileNotFoundError):
                sync(fs._rm_file(key))
        mine = _me(uuid.uuid4().hex)
        try:
            sync(fs._pipe_file(key, mine.to_bytes(), mode="create"))
        except Exception as exc:
            if _precondition_failed(exc):
                continue  # another run created it first: look at who
            raise
        # A store that ignores the condition lets a racing run overwrite us: read it back.
        if (found := sync(read())) is not None and found.token == mine.token:
            return _ObjectLease(fs, key, mine)
    raise _busy(url, sync(read()), shown, note)


class _NoLease:
    def release(self) -> None:
        return None


def acquire_lease(store: Any, url: str, key: str) -> Lease:
    """Take the exclusive lease on the target ``store`` (given as ``url``).

    Parameters
    ----------
    store
        The target's zarr store (local, fsspec or memory).
    url
        The target as the user gave it, for messages.
    key
        The lock's key in the store.

    Raises
    ------
    TargetBusyError
        When another run holds it.
    """
    from zarr.storage import FsspecStore, LocalStore

    if isinstance(store, LocalStore):
        return _file_lease(url, Path(store.root) / key)
    if isinstance(store, FsspecStore):
        shown = f"{url.rstrip('/')}/{key}"
        return _object_lease(url, store.fs, f"{store.path.rstrip('/')}/{key}", shown)
    return _NoLease()
