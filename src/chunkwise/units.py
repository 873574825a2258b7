"""Parse and format quantities: bytes, durations, rates.

This is the only module where strings become numbers. Quantities inside chunkwise
are plain floats/ints named with their unit (``latency_s``, ``chunk_bytes``,
``bandwidth_Bps``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from chunkwise.errors import SpecError

__all__ = [
    "compare_speed",
    "format_bytes",
    "format_count",
    "format_duration",
    "format_rate",
    "format_shape",
    "parse_bytes",
    "parse_duration",
    "parse_rate",
    "spec_duration",
    "spec_rate",
]

_BYTE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "pb": 10**15,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "pib": 2**50,
    "k": 2**10,
    "m": 2**20,
    "g": 2**30,
    "t": 2**40,
}

_TIME_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
}

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_QUANTITY = re.compile(r"^\s*" + _NUMBER + r"\s*([a-zA-Zµ]*)\s*$")


def _split(text: str, what: str, example: str) -> tuple[float, str]:
    match = _QUANTITY.match(text)
    if match is None:
        raise SpecError(f"{what} {text!r} is not a number with a unit; write it like {example!r}.")
    return float(match.group(1)), match.group(2).lower()


def parse_bytes(value: str | int | float, *, what: str = "byte size") -> int:
    """Parse a byte quantity such as ``"512MiB"``, ``"10 MB"`` or ``4096``.

    Decimal (kB, MB, GB) and binary (KiB, MiB, GiB) prefixes are both understood;
    bare ``K``/``M``/``G`` are binary.

    Parameters
    ----------
    value
        The quantity; numbers are taken as bytes.
    what
        What the quantity is, for the error message.

    Returns
    -------
    int
        Bytes.
    """
    if isinstance(value, bool):
        raise SpecError(f"{what} {value!r} is not a byte size; write it like '64MiB'.")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        number, unit = _split(value, what, "64MiB")
    if unit not in _BYTE_UNITS:
        raise SpecError(
            f"{what} {value!r} has unknown unit {unit!r}; use one of B, kB, MB, GB, KiB, MiB, GiB."
        )
    result = number * _BYTE_UNITS[unit]
    if result < 0 or not math.isfinite(result):
        raise SpecError(f"{what} {value!r} must be a finite, non-negative size.")
    return round(result)


def parse_duration(value: str | int | float, *, what: str = "duration") -> float:
    """Parse a duration such as ``"20ms"``, ``"150us"`` or ``0.02`` (seconds).

    Returns
    -------
    float
        Seconds.
    """
    if isinstance(value, bool):
        raise SpecError(f"{what} {value!r} is not a duration; write it like '20ms'.")
    if isinstance(value, int | float):
        number, unit = float(value), "s"
    else:
        number, unit = _split(value, what, "20ms")
        unit = unit or "s"
    if unit not in _TIME_UNITS:
        raise SpecError(f"{what} {value!r} has unknown unit {unit!r}; use one of ns, us, ms, s.")
    result = number * _TIME_UNITS[unit]
    if result < 0 or not math.isfinite(result):
        raise SpecError(f"{what} {value!r} must be a finite, non-negative duration.")
    return result


def parse_rate(value: str | int | float, *, what: str = "bandwidth") -> float:
    """Parse a byte rate such as ``"200MB/s"``, ``"1 GiB/s"`` or ``2e8`` (bytes/s).

    Returns
    -------
    float
        Bytes per second.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text.lower().endswith("/s"):
            raise SpecError(f"{what} {value!r} is not a rate; write it like '200MB/s'.")
        try:
            rate = float(parse_bytes(text[:-2], what=what))
        except SpecError:
            raise SpecError(f"{what} {value!r} is not a rate; write it like '200MB/s'.") from None
    else:
        rate = float(parse_bytes(value, what=what))
    if rate <= 0:
        raise SpecError(f"{what} {value!r} must be positive; write it like '200MB/s'.")
    return rate


def format_bytes(n_bytes: float) -> str:
    """Format bytes with a binary prefix: ``1536 -> '1.5 KiB'``."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            if unit == "B":
                return f"{value:.0f} B"
            return f"{value:.3g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_duration(seconds: float) -> str:
    """Format seconds with a readable unit: ``0.0123 -> '12.3 ms'``."""
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def format_rate(bytes_per_s: float) -> str:
    """Format a byte rate: ``2e8 -> '191 MiB/s'``."""
    return f"{format_bytes(bytes_per_s)}/s"


def spec_duration(seconds: float) -> str:
    """A duration for a spec file, four significant digits, read back by :func:`parse_duration`:
    ``0.020314 -> '20.31ms'``."""
    if seconds >= 1:
        return f"{seconds:.4g}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.4g}ms"
    return f"{seconds * 1e6:.4g}us"


def spec_rate(bytes_per_s: float) -> str:
    """A byte rate for a spec file, four significant digits, read back by :func:`parse_rate`:
    ``1.987e8 -> '198.7MB/s'``."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if bytes_per_s >= scale:
            return f"{bytes_per_s / scale:.4g}{unit}/s"
    return f"{max(bytes_per_s, 1.0):.4g}B/s"


def compare_speed(mine: float, theirs: float) -> str:
    """How ``mine`` seconds compare with ``theirs``: ``'1.25x faster than'``, ``'2x slower
    than'``, or ``'about as fast as'`` within 5%."""
    if mine <= 0 or theirs <= 0:
        return "as fast as"
    ratio = theirs / mine
    if ratio >= 1.05:
        return f"{ratio:.3g}x faster than"
    if ratio <= 1 / 1.05:
        return f"{1 / ratio:.3g}x slower than"
    return "about as fast as"


def format_shape(values: Sequence[int] | None, *, empty: str = "") -> str:
    """A shape, chunk or region as ``64x32x32``; ``empty`` when it has no dims."""
    return "x".join(map(str, values or ())) or empty


def format_count(n: float) -> str:
    """Format a count with thousands separators, rounding non-integers."""
    return f"{round(n):,}"
