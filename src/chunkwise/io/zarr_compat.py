"""What differs between the two zarr-python lines chunkwise runs on, in one place.

chunkwise supports zarr-python 3.1 (the last line for Python 3.11) and 3.4 (Python >=
3.12). Only what must differ, or must be made the same on both, lives here:

* :func:`checked_reads`: zarr arrays opened inside it decode Blosc through
  :class:`CheckedBloscCodec`, which refuses a stored object shorter than its Blosc
  header says. Blosc itself decodes such an object by reading past the end of the
  buffer, so whether it fails depends on the memory behind it (a copy of a region with
  one truncated object failed on zarr 3.1 and decoded garbage without an error on zarr
  3.4). With the check, both lines fail on that object, every time.

Wrapper stores that must see every request on zarr 3.4 use
:class:`chunkwise.io.stores.SeesEveryRequest`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import zarr
from zarr.codecs import BloscCodec

__all__ = ["CheckedBloscCodec", "blosc_shortfall", "checked_reads"]

#: Bytes of a Blosc (1.x) header; bytes 12-16 hold the compressed size, little-endian.
BLOSC_HEADER = 16


def blosc_shortfall(size: int, head: bytes) -> str | None:
    """Why an object of ``size`` bytes starting with ``head`` cannot be a whole
    Blosc-compressed object, or ``None`` when its header agrees with its length."""
    if size < BLOSC_HEADER:
        return f"{size} bytes, shorter than a Blosc header ({BLOSC_HEADER}): truncated"
    said = int.from_bytes(head[12:16], "little")
    if said > size:
        return f"{size} bytes where its Blosc header says {said}: truncated"
    return None


class CheckedBloscCodec(BloscCodec):
    """zarr's Blosc codec, refusing an object shorter than its header says before Blosc
    reads past its end. Encodes and serializes exactly as :class:`BloscCodec`."""

    def _decode_sync(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
        # Both lines' BloscCodec._decode_single run this in a thread; zarr 3.4's
        # synchronous pipeline calls it directly.
        raw = chunk_bytes.as_numpy_array()
        why = blosc_shortfall(len(raw), raw[:BLOSC_HEADER].tobytes())
        if why is not None:
            raise ValueError(why)
        return super()._decode_sync(chunk_bytes, chunk_spec)


_CHECKED = f"{CheckedBloscCodec.__module__}.{CheckedBloscCodec.__qualname__}"
_lock = threading.RLock()
_registered = False


@contextmanager
def checked_reads() -> Iterator[None]:
    """Arrays opened (their metadata read) inside this block decode Blosc with
    :class:`CheckedBloscCodec`. zarr picks a codec's class when it reads the metadata,
    so only the opening needs to be inside; the arrays keep the checked codec after.
    zarr's configuration is process-wide: the block holds a lock so that two threads
    opening at once cannot leave it set."""
    global _registered
    with _lock:
        if not _registered:
            zarr.registry.register_codec("blosc", CheckedBloscCodec)
            _registered = True
        with zarr.config.set({"codecs.blosc": _CHECKED}):
            yield
