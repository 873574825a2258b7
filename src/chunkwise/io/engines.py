"""Which library moves a rechunk's bytes: zarr-python's own codec pipeline, or zarrs.

Every engine reads and writes through zarr-python's arrays and stores, so the tasks,
markers, leases and verification are the same whatever the engine; what changes is who
decodes, encodes and does the file I/O of each chunk:

* ``zarr``: zarr-python's ``BatchedCodecPipeline`` (numcodecs codecs on asyncio's threads).
* ``zarrs``: the `zarrs <https://github.com/zarrs/zarrs-python>`_ codec pipeline, Rust
  codecs and I/O behind zarr-python's API (``pip install 'chunkwise[zarrs]'``). It serves
  local directories (``LocalStore``); for any other store, and for data types or codecs it
  does not know, zarr-python gives that array its own pipeline, so the output is the same
  standard Zarr either way.

``auto`` (the default) takes zarrs when it is installed and the target is a local
directory, else zarr (:func:`choose_engine`). On the 1 GiB map -> time-series job of
``benchmarks/bench_rechunk.py`` zarrs is the faster (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal

from chunkwise.errors import MissingDependencyError, SpecError

__all__ = [
    "ENGINE_CHOICES",
    "Engine",
    "ZarrsWherePossible",
    "choose_engine",
    "engine_of",
    "os_error_of",
    "using_engine",
]

EngineName = Literal["zarr", "zarrs"]

#: What ``--engine`` accepts, default first.
ENGINE_CHOICES: tuple[str, ...] = ("auto", "zarr", "zarrs")


@dataclass(frozen=True, slots=True)
class Engine:
    """The library that encodes, decodes and stores a run's chunks.

    Attributes
    ----------
    name
        ``"zarr"`` or ``"zarrs"``.
    version
        The installed version of that library.
    """

    name: EngineName
    version: str

    @property
    def pipeline(self) -> str | None:
        """zarr-python's ``codec_pipeline.path`` for this engine (``None``: its default)."""
        return f"{__name__}.ZarrsWherePossible" if self.name == "zarrs" else None

    def describe(self) -> str:
        """``zarrs 0.2.3``."""
        return f"{self.name} {self.version}"


@functools.cache
def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _local_directory(target: str) -> bool:
    """Whether ``target`` names a local directory (not ``s3://``, ``memory://``, a zip)."""
    scheme, _, rest = target.partition("://")
    path = rest if scheme == "file" else (target if not rest else None)
    return path is not None and not path.rstrip("/").endswith(".zip")


def choose_engine(asked: str = "auto", target: str = "", dask: str | None = None) -> Engine:
    """The engine for ``--engine asked`` writing ``target``, on ``--dask dask`` if given.

    ``auto`` takes zarrs when it is installed, the target is a local directory (the only
    store zarrs writes) and the tasks run here or on a ``local:N`` cluster (workers of a
    remote scheduler may not have zarrs); otherwise zarr.

    Raises
    ------
    SpecError
        For a name other than :data:`ENGINE_CHOICES`, or ``zarrs`` for a target it cannot
        write.
    MissingDependencyError
        For ``zarrs`` when zarrs is not installed.
    """
    name = asked.strip().lower()
    if name not in ENGINE_CHOICES:
        raise SpecError(
            f"--engine {asked!r} is not an engine; use one of {', '.join(ENGINE_CHOICES)}."
        )
    zarrs = _version("zarrs")
    local = _local_directory(target)
    if name == "zarrs" and zarrs is None:
        raise MissingDependencyError(
            "--engine zarrs needs the zarrs codec pipeline; install it with: "
            "pip install 'chunkwise[zarrs]' (or use --engine zarr)."
        )
    if name == "zarrs" and not local:
        raise SpecError(
            f"--engine zarrs writes local directories only, not {target!r}; use --engine "
            "zarr (or auto) for this target."
        )
    remote_workers = dask is not None and not dask.strip().startswith("local:")
    if name != "zarr" and zarrs is not None and local and (name == "zarrs" or not remote_workers):
        return Engine("zarrs", zarrs)
    return Engine("zarr", _version("zarr") or "?")


class ZarrsWherePossible:
    """The codec pipeline of ``--engine zarrs``: zarrs' for every array it reads and writes
    right, zarr-python's own for the others. zarr-python asks it for each array it opens;
    it is never instantiated itself.

    zarrs refuses a byte order other than the machine's (``>f4`` in Zarr v2) when reading,
    after it has taken the array on; such arrays get zarr-python's pipeline from the start.
    Stores zarrs does not serve (``s3://`` through fsspec, memory) make zarrs raise
    ``NotImplementedError``, on which zarr-python falls back by itself."""

    @classmethod
    def from_array_metadata_and_store(cls, array_metadata: Any, store: Any) -> Any:
        if not _native_byte_order(array_metadata):
            raise NotImplementedError("zarrs reads native byte order only")
        from zarrs import ZarrsCodecPipeline

        return ZarrsCodecPipeline.from_array_metadata_and_store(array_metadata, store)

    @classmethod
    def from_codecs(cls, codecs: Any) -> Any:
        from zarr.core.codec_pipeline import BatchedCodecPipeline

        return BatchedCodecPipeline.from_codecs(codecs)


def _native_byte_order(metadata: Any) -> bool:
    dtype = getattr(metadata, "dtype", None)
    native = getattr(dtype, "to_native_dtype", None)
    try:
        return bool(native().isnative) if callable(native) else bool(dtype.isnative)  # type: ignore[union-attr]
    except (AttributeError, TypeError, ValueError):
        return False


def _register() -> None:
    """Let zarr-python find :class:`ZarrsWherePossible` by its path (once)."""
    from zarr.registry import register_pipeline

    register_pipeline(ZarrsWherePossible)  # type: ignore[arg-type]


#: One run at a time per process: zarr-python's configuration, which picks the codec
#: pipeline of every array opened, is process-wide, and so are the allocator's trim limit
#: and the warnings filter. Runs in other threads of the process wait for the lock.
_RUN_LOCK = threading.RLock()


@contextlib.contextmanager
def using_engine(engine: Engine) -> Iterator[None]:
    """Arrays opened inside this block use ``engine``'s codec pipeline. Holds the
    process's run lock throughout: a second run in another thread waits, rather than
    opening its arrays with this run's pipeline (or leaving it set when both end)."""
    import zarr

    with _RUN_LOCK:
        if engine.pipeline is None:
            yield
            return
        _register()
        with (
            zarr.config.set({"codec_pipeline.path": engine.pipeline}),
            warnings.catch_warnings(),
        ):
            # zarrs hands arrays it cannot serve to zarr-python's pipeline, with a warning
            # per array; the output is the same, so say nothing.
            warnings.filterwarnings("ignore", message="Array is unsupported by ZarrsCodecPipeline")
            yield


def engine_of(array: Any) -> EngineName:
    """The engine that really serves ``array`` (a zarr array): ``"zarrs"`` only when its
    codec pipeline is zarrs' and zarrs took the array on."""
    inner = getattr(array, "async_array", array)
    pipeline = getattr(inner, "codec_pipeline", None)
    if type(pipeline).__name__ == "ZarrsCodecPipeline" and getattr(pipeline, "impl", None):
        return "zarrs"
    return "zarr"


#: How Rust's I/O errors read once zarrs raises them in Python: ``... (os error 28)``.
_OS_ERROR = re.compile(r"(.*?)\s*\(os error (\d+)\)")


def os_error_of(exc: BaseException) -> OSError | None:
    """The operating system's error behind ``exc``: itself when it is an ``OSError``; for
    zarrs' ``RuntimeError('No space left on device (os error 28)')`` an ``OSError`` with
    that number; else ``None``."""
    if isinstance(exc, OSError):
        return exc
    found = _OS_ERROR.search(str(exc)) if isinstance(exc, RuntimeError) else None
    if found is None:
        return None
    return OSError(int(found[2]), found[1].strip() or str(exc))
