"""A local HTTP server with an emulated remote link's costs, for readers that cannot call Python.

tensorstore and zarrs read through their own I/O layers (C++ and Rust), so they cannot
be handed chunkwise's :class:`~chunkwise.io.stores.EmulatedStore`. To measure them
on the same emulated link, :class:`EmulatedHTTPServer` serves a local directory over
HTTP on ``127.0.0.1`` and charges every request exactly what the emulated store charges:
the same :class:`~chunkwise.io.stores.Emulation` settings and the same
:class:`~chunkwise.io.stores._Link` schedule (per-request latency, per-request stream
bandwidth, an aggregate bandwidth booked first come first served), at most
``concurrency`` requests served at once. It answers ``GET`` and ``HEAD``, single HTTP
``Range`` requests (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``: how shard indexes and
inner chunks are read), answers 404 for keys that do not exist (a missing chunk is the
fill value), and counts requests and bytes sent in a
:class:`~chunkwise.io.stores.RequestCounts`.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from chunkwise.io.stores import Emulation, RequestCounts, _Link

__all__ = ["EmulatedHTTPServer", "ThreadSafeLink"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class ThreadSafeLink:
    """:class:`~chunkwise.io.stores._Link`'s schedule for requests served on threads.

    The link's bookings are made under a lock, at most ``concurrency`` requests hold the
    link at once, and each request sleeps on its own thread until the schedule says its
    last byte arrived.
    """

    def __init__(self, emulation: Emulation) -> None:
        self.emulation = emulation
        self._link = _Link(emulation)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(emulation.concurrency)

    @contextlib.contextmanager
    def request(self, nbytes: int) -> Any:
        """Hold one of the link's slots for as long as a request moving ``nbytes`` takes."""
        with self._slots:
            start = time.perf_counter()
            with self._lock:
                end = self._link.schedule(start, nbytes)
            delay = end - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            yield


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections alive, as HTTP clients expect
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and
    # the client's delayed ACK hold the body back 40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a benchmark sends thousands of requests."""

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _file(self) -> Path | None:
        root = self.server.root
        relative = unquote(urlsplit(self.path).path).lstrip("/")
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def _answer(self, *, body: bool) -> None:
        path = self._file()
        if path is None:
            self._send(HTTPStatus.NOT_FOUND, b"", {}, body=body)
            return
        size = path.stat().st_size
        start, stop = 0, size
        status = HTTPStatus.OK
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{path.stat().st_mtime_ns:x}-{size:x}"'}
        wanted = self.headers.get("Range")
        if wanted is not None:
            parsed = _byte_range(wanted, size)
            if parsed is None:
                headers["Content-Range"] = f"bytes */{size}"
                self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", headers, body=body)
                return
            start, stop = parsed
            status = HTTPStatus.PARTIAL_CONTENT
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        data = b""
        if body:
            with path.open("rb") as f:
                f.seek(start)
                data = f.read(stop - start)
        self._send(status, data, headers, body=body, length=stop - start)

    def _send(
        self,
        status: HTTPStatus,
        data: bytes,
        headers: dict[str, str],
        *,
        body: bool,
        length: int | None = None,
    ) -> None:
        sent = len(data) if body else 0
        self.server.count(sent)  # before answering: the client may move on once answered
        with self.server.link.request(sent):
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data) if length is None else length))
            self.end_headers()
            if body and data:
                self.wfile.write(data)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` of one ``Range: bytes=...`` header, or ``None`` when it cannot be
    served (several ranges, or past the end)."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last n bytes
        n = int(last)
        return (max(size - n, 0), size) if n > 0 else None
    start = int(first)
    stop = size if last == "" else min(int(last) + 1, size)
    return (start, stop) if start < stop else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Readers open dozens of connections at once; the default backlog of 5 refuses some.
    request_queue_size = 256

    def __init__(self, root: Path, link: ThreadSafeLink, counts: RequestCounts) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.link = link
        self.counts = counts
        self._lock = threading.Lock()

    def count(self, nbytes: int) -> None:
        with self._lock:
            self.counts.gets += 1
            self.counts.bytes_read += nbytes


class EmulatedHTTPServer:
    """Serve ``root`` on ``http://127.0.0.1:<port>/`` behind an emulated link.

    Parameters
    ----------
    root
        The directory served (a key ``a/b`` is ``<base_url>a/b``).
    emulation
        The link's latency, bandwidths and concurrency (no costs by default: it only
        counts).

    Use it as a context manager, or call :meth:`close`. :attr:`counts` tallies every
    request answered (``gets``, including 404s and ``HEAD``) and the bytes sent.
    """

    def __init__(self, root: str | Path, emulation: Emulation | None = None) -> None:
        self.root = Path(root).resolve()
        self.emulation = emulation or Emulation()
        self.counts = RequestCounts()
        self._server = _Server(self.root, ThreadSafeLink(self.emulation), self.counts)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="chunkwise-emulated-http",
            daemon=True,
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def url(self, key: str) -> str:
        """The URL of ``key`` (a path below :attr:`root`)."""
        return self.base_url + key.lstrip("/")

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> EmulatedHTTPServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
