"""A real S3-compatible object store on 127.0.0.1, started and stopped by the tests.

Two back ends:

``radosgw``
    A throw-away single-node Ceph cluster (one monitor, one memstore OSD, one RADOS
    gateway) from the Debian packages ``radosgw ceph-mon ceph-osd``
    (``scripts/system-deps.sh`` installs them). Everything lives in a fresh temporary
    directory, listens on 127.0.0.1 only, on ports picked at run time, and is killed and
    removed when the context exits.
``moto``
    moto's ``ThreadedMotoServer`` in this process: the fallback when the Ceph binaries
    are missing or the cluster does not come up.

``start_s3_server("auto")`` tries radosgw and falls back to moto, saying why on stderr.
The environment variable ``CHUNKWISE_S3_BACKEND`` (``auto``, ``radosgw`` or ``moto``)
overrides the argument.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

BACKENDS = ("auto", "radosgw", "moto")
ENV_VAR = "CHUNKWISE_S3_BACKEND"

#: The binaries the radosgw back end runs (all from the Debian packages named above).
CEPH_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")

#: How long "auto" waits for radosgw before falling back to moto (seconds).
RADOSGW_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class S3Server:
    """Where a running S3 server listens and how to log in to it.

    Attributes
    ----------
    endpoint_url : str
        ``http://127.0.0.1:<port>``.
    access_key, secret_key : str
        Credentials of a user allowed to create buckets.
    backend : str
        ``"radosgw"`` or ``"moto"``.
    region : str
        Region name to sign requests with (radosgw: its zonegroup, ``"default"``).
    state_dir : str or None
        radosgw only: the temporary directory holding all of the cluster's state; it
        appears in the command line of every process of the cluster.
    pids : tuple of int
        radosgw only: process ids of the cluster's daemons (monitor, OSD, gateway).
    startup_seconds : float
        How long the server took to become ready.
    """

    endpoint_url: str
    access_key: str
    secret_key: str
    backend: str
    region: str
    state_dir: str | None = None
    pids: tuple[int, ...] = ()
    startup_seconds: float = field(default=0.0, compare=False)

    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem(**opts)``.

        Returns
        -------
        dict
            ``key``, ``secret`` and ``client_kwargs`` (endpoint and region).
        """
        return {
            "key": self.access_key,
            "secret": self.secret_key,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }

    def bucket(self, name: str) -> str:
        """Create a bucket.

        Parameters
        ----------
        name : str
            Bucket name (3 to 63 lower-case letters, digits, dots and hyphens).

        Returns
        -------
        str
            ``name``, for chaining.
        """
        import s3fs

        fs = s3fs.S3FileSystem(**self.storage_options())
        fs.mkdir(name)  # sends the region as location constraint: never "us-east-1" here
        return name


@contextlib.contextmanager
def start_s3_server(backend: str = "auto") -> Iterator[S3Server]:
    """Start an S3-compatible server on 127.0.0.1; stop it and remove its state on exit.

    Parameters
    ----------
    backend : {"auto", "radosgw", "moto"}
        ``"auto"`` tries radosgw and falls back to moto (with the reason on stderr) when
        the Ceph binaries are missing or the cluster is not up within
        ``RADOSGW_START_TIMEOUT`` seconds. The environment variable
        ``CHUNKWISE_S3_BACKEND`` overrides this argument.

    Yields
    ------
    S3Server
        The running server.

    Raises
    ------
    ValueError
        For an unknown back end name.
    RuntimeError
        When the requested back end (not "auto") cannot be started.
    """
    backend = os.environ.get(ENV_VAR, "").strip().lower() or backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown S3 back end {backend!r} (choose from {', '.join(BACKENDS)})")
    if backend in ("auto", "radosgw"):
        missing = [name for name in CEPH_BINARIES if shutil.which(name) is None]
        if missing:
            reason = f"Ceph binaries not found: {', '.join(missing)}"
            if backend == "radosgw":
                raise RuntimeError(f"cannot start radosgw: {reason} (run scripts/system-deps.sh)")
            _say(f"radosgw unavailable ({reason}); using moto instead")
        else:
            with _RadosgwCluster() as cluster:
                try:
                    server = cluster.start(timeout=RADOSGW_START_TIMEOUT)
                except Exception as error:
                    if backend == "radosgw":
                        raise RuntimeError(f"radosgw did not start: {error}") from error
                    _say(f"radosgw did not start ({error}); using moto instead")
                else:
                    yield server
                    return
    with _moto_server() as server:
        yield server


def _say(message: str) -> None:
    """Tell the person running the tests something, on stderr."""
    print(f"[s3server] {message}", file=sys.stderr, flush=True)


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _random_key(length: int) -> str:
    """Random upper-case letters and digits, like an AWS access key id."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _http_status(url: str, timeout: float = 2.0) -> int | None:
    """Status of ``GET url``, or None when nothing answers."""
    host_port = url.removeprefix("http://").rstrip("/")
    host, port = host_port.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


@contextlib.contextmanager
def _moto_server() -> Iterator[S3Server]:
    """moto's threaded server on a free port of 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request to stderr unless its logger has a level of its own.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    started = time.perf_counter()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        yield S3Server(
            endpoint_url=f"http://{host}:{port}",
            access_key="testing",
            secret_key="testing",
            backend="moto",
            # Not us-east-1: s3fs's mkdir sends the region as location constraint, and
            # S3 (moto too) refuses "us-east-1" there.
            region="eu-west-1",
            startup_seconds=time.perf_counter() - started,
        )
    finally:
        moto.stop()


CEPH_CONF = """\
[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
mon initial members = a
public network = 127.0.0.1/32
ms bind ipv6 = false
# No cephx: nothing here is reachable from outside 127.0.0.1 and it lives for one test run.
auth cluster required = none
auth service required = none
auth client required = none
# ... and without cephx no connection can be "secure": radosgw asks for that by default.
ms mon client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms client mode = crc
ms cluster mode = crc
ms service mode = crc
# One OSD whose "disk" is memory.
osd objectstore = memstore
memstore device bytes = 1073741824
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 10000
# Do not shut the monitor down because the disk holding /tmp is rather full.
mon data avail crit = 0
mon data avail warn = 0
# Propose cluster map changes at once rather than batching them for a second.
paxos propose interval = 0.01
paxos min wait = 0.001
# New pools get their PGs created on the monitor's tick: tick every second, not every 5.
mon tick interval = 1
# The OSD would wait 5 s on shutdown to tell a monitor that is already gone.
osd mon shutdown timeout = 0.1
# Clients that find no OSD up yet look for a newer OSD map on every objecter tick (5 s).
objecter tick interval = 0.2
# All state inside this directory.
run dir = {root}/run
crash dir = {root}/crash
log file = {root}/log/$name.log
mon data = {root}/mon/$cluster-$id
osd data = {root}/osd/$cluster-$id
keyring = {root}/keyring
rgw data = {root}/rgw

[client.rgw]
# Without tcp_nodelay every small GET waits ~40 ms for delayed ACKs (Nagle).
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
"""


class _RadosgwCluster:
    """A single-node Ceph cluster with a RADOS gateway, in a temporary directory.

    Use as a context manager: leaving it kills every process it started (the whole
    process group) and removes the directory.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="chunkwise-rgw-"))
        self.conf = self.root / "ceph.conf"
        self.daemons: dict[str, subprocess.Popen[bytes]] = {}
        self.pgid: int | None = None
        self.env = {
            key: value
            for key, value in os.environ.items()
            # The `ceph` CLI is a system-Python script: keep this venv's Python out of it.
            if key not in ("PYTHONPATH", "PYTHONHOME", "CEPH_ARGS", "CEPH_CONF")
        }
        # Daemons get SIGTERM when the thread that started them dies (e.g. pytest killed).
        setpriv = shutil.which("setpriv")
        self.prefix: list[str] = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []

    def __enter__(self) -> _RadosgwCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- running things ---------------------------------------------------------------

    def _popen(self, name: str, args: Sequence[str]) -> None:
        """Start daemon ``name``: ``args`` in the cluster's process group.

        Its output goes to ``log/<name>.out`` (Ceph's own log to ``log/<ceph name>.log``).
        """
        with open(self.root / "log" / f"{name}.out", "ab") as out:
            proc = subprocess.Popen(
                [*self.prefix, *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.root,
                process_group=self.pgid if self.pgid is not None else 0,
            )
        if self.pgid is None:
            self.pgid = proc.pid
        self.daemons[name] = proc

    def _check_daemons(self) -> None:
        """Raise if a daemon has exited."""
        for name, proc in self.daemons.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with status {proc.returncode}: {self._log_tail(name)}"
                )

    def _log_tail(self, name: str, lines: int = 5) -> str:
        """The last lines a process wrote (its output, or Ceph's log), for error messages."""
        texts = []
        for path in (self.root / "log" / f"{name}.out", self.root / "log" / f"{name}.log"):
            with contextlib.suppress(OSError):
                texts.extend(path.read_text(errors="replace").strip().splitlines()[-lines:])
        return " | ".join(texts[-lines:]) or "(no output)"

    def _run(self, args: Sequence[str], deadline: float) -> str:
        """Run a command to completion; return its stdout.

        Gives up at ``deadline`` (``time.monotonic()``) or when a daemon dies meanwhile.
        """
        name = Path(args[0]).name
        out_path = self.root / "log" / f"{name}.stdout"
        with open(out_path, "wb") as out, open(self.root / "log" / f"{name}.out", "ab") as err:
            proc = subprocess.Popen(
                [*self.prefix, *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self.env,
                cwd=self.root,
                process_group=self.pgid if self.pgid is not None else 0,
            )
            try:
                while proc.poll() is None:
                    self._check_daemons()
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"timed out running {' '.join(args)}")
                    time.sleep(0.02)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed with status {proc.returncode}: {self._log_tail(name)}"
            )
        return out_path.read_text()

    # -- start and stop ---------------------------------------------------------------

    def start(self, timeout: float) -> S3Server:
        """Bring the cluster up.

        Parameters
        ----------
        timeout : float
            Seconds to allow for the whole start-up.

        Returns
        -------
        S3Server
            The gateway, with a user that may create buckets.
        """
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        conf = str(self.conf)
        for sub in ("run", "crash", "log", "mon", "osd/ceph-0", "rgw"):
            (self.root / sub).mkdir(parents=True)
        fsid = str(uuid.uuid4())
        mon_port, rgw_port = _free_port(), _free_port()
        while rgw_port == mon_port:
            rgw_port = _free_port()
        self.conf.write_text(
            CEPH_CONF.format(fsid=fsid, mon_port=mon_port, rgw_port=rgw_port, root=self.root)
        )
        monmap = str(self.root / "monmap")

        # Monitor.
        self._run(
            ["monmaptool", "--create", "--fsid", fsid,
             "--addv", "a", f"[v2:127.0.0.1:{mon_port}]", monmap],
            deadline,
        )  # fmt: skip
        self._run(["ceph-mon", "--mkfs", "-c", conf, "-i", "a", "--monmap", monmap], deadline)
        self._popen("mon.a", ["ceph-mon", "-f", "-c", conf, "-i", "a"])

        # OSD 0 on memstore. `ceph osd create` also waits for the monitor to be up.
        ceph = ["ceph", "-c", conf, "-n", "client.admin", "--connect-timeout", "20"]
        osd_id = self._run([*ceph, "osd", "create"], deadline).strip()
        if osd_id != "0":
            raise RuntimeError(f"expected OSD id 0, got {osd_id!r}")
        self._run(["ceph-osd", "--mkfs", "-c", conf, "-i", "0"], deadline)
        self._popen("osd.0", ["ceph-osd", "-f", "-c", conf, "-i", "0"])

        # The S3 user. This also creates the default realm/zone and the gateway's pools
        # (and so waits for the OSD), before the gateway starts, so that the two never
        # race to create them.
        access_key, secret_key = _random_key(20), secrets.token_hex(20)
        self._run(
            ["radosgw-admin", "-c", conf, "-n", "client.admin", "user", "create",
             "--uid=chunkwise", "--display-name=chunkwise",
             f"--access-key={access_key}", f"--secret={secret_key}"],
            deadline,
        )  # fmt: skip

        # The gateway.
        self._popen("client.rgw", ["radosgw", "-f", "-c", conf, "-n", "client.rgw"])
        endpoint = f"http://127.0.0.1:{rgw_port}"
        while _http_status(endpoint) != 200:
            self._check_daemons()
            if time.monotonic() > deadline:
                raise TimeoutError(f"radosgw did not answer on {endpoint} within {timeout:.0f} s")
            time.sleep(0.05)

        server = S3Server(
            endpoint_url=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            backend="radosgw",
            region="default",
            state_dir=str(self.root),
            pids=tuple(proc.pid for proc in self.daemons.values()),
            startup_seconds=time.perf_counter() - started,
        )
        # Ready when the user can create (and remove) a bucket.
        import s3fs

        probe = server.bucket(f"chunkwise-probe-{secrets.token_hex(4)}")
        s3fs.S3FileSystem(**server.storage_options(), skip_instance_cache=True).rmdir(probe)
        return replace(server, startup_seconds=time.perf_counter() - started)

    def _all_exited(self) -> bool:
        """Whether every daemon has exited (and been reaped)."""
        return all(proc.poll() is not None for proc in self.daemons.values())

    def stop(self, grace: float = 3.0) -> None:
        """Terminate every process of the cluster, then remove its directory.

        The gateway goes first, while it can still talk to the cluster (with the monitor
        and OSD gone it may hang on SIGTERM); then SIGTERM, and at last SIGKILL, to the
        whole process group.

        Parameters
        ----------
        grace : float
            Seconds to wait after each SIGTERM.
        """
        try:
            gateway = self.daemons.get("client.rgw")
            if gateway is not None and gateway.poll() is None:
                gateway.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    gateway.wait(grace)
            # Signal the group only while one of its members is still unreaped (alive or a
            # zombie): then the group id cannot have been reused by an unrelated process.
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if self.pgid is None or self._all_exited():
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pgid, sig)
                end = time.monotonic() + grace
                while time.monotonic() < end and not self._all_exited():
                    time.sleep(0.02)
            for proc in self.daemons.values():
                proc.wait()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
