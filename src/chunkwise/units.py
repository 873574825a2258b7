"""Parse and format quantities: bytes, durations, rates.

This is the only module where strings become numbers. Quantities inside chunkwise
are plain floats/ints named with their unit (``latency_s``, ``chunk_bytes``,
``bandwidth_Bps``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from chunkwise.errors import SpecError, shown

__all__ = [
    "MAX_INT64",
    "compare_speed",
    "finite_float",
    "format_bytes",
    "format_count",
    "format_duration",
    "format_rate",
    "format_shape",
    "parse_bytes",
    "parse_count",
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

#: The largest size, count or byte total chunkwise accepts: NumPy and zarr index with int64.
MAX_INT64 = 2**63 - 1

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_QUANTITY = re.compile(r"^\s*" + _NUMBER + r"\s*([a-zA-Zµ]*)\s*$")


def _split(text: str, what: str, example: str) -> tuple[float, str]:
    match = _QUANTITY.match(text)
    if match is None:
        raise SpecError(
            f"{what} {shown(text)} is not a number with a unit; write it like {example!r}."
        )
    return float(match.group(1)), match.group(2).lower()


def _quantity(value: object, what: str, noun: str, example: str) -> str | float:
    """``value`` if it is text or a plain number (an int too big for a float becomes inf);
    anything else (null, a list, a mapping, true/false) is not a quantity."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(f"{what} {shown(value)} is not {noun}; write it like {example!r}.")
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    return value


def finite_float(value: object) -> float | None:
    """``value`` as a float if it is a finite plain number (not true/false, not an int too
    big for a float, not NaN or infinity), else ``None``; callers name the problem."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_count(value: object, *, what: str) -> int:
    """Validate a count or size written in a spec: a whole number from 1 to 2**63 - 1.

    Parameters
    ----------
    value
        The value as written (YAML/JSON integer); true/false, floats and text are refused.
    what
        What the value is, for the error message.

    Returns
    -------
    int
        The count.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{what} {shown(value)} must be a positive integer.")
    if value > MAX_INT64:
        raise SpecError(
            f"{what} {shown(value)} is larger than 2**63 - 1, the largest count NumPy and zarr "
            "can index; use a smaller value."
        )
    return value


def parse_bytes(value: object, *, what: str = "byte size") -> int:
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
    quantity = _quantity(value, what, "a byte size", "64MiB")
    if isinstance(quantity, float):
        number, unit = quantity, ""
    else:
        number, unit = _split(quantity, what, "64MiB")
    if unit not in _BYTE_UNITS:
        raise SpecError(
            f"{what} {shown(value)} has unknown unit {unit!r}; use one of B, kB, MB, GB, KiB, MiB, GiB."
        )
    result = number * _BYTE_UNITS[unit]
    if result < 0 or not math.isfinite(result):
        raise SpecError(f"{what} {shown(value)} must be a finite, non-negative size.")
    return round(result)


def parse_duration(value: object, *, what: str = "duration") -> float:
    """Parse a duration such as ``"20ms"``, ``"150us"`` or ``0.02`` (seconds).

    Returns
    -------
    float
        Seconds.
    """
    quantity = _quantity(value, what, "a duration", "20ms")
    if isinstance(quantity, float):
        number, unit = quantity, "s"
    else:
        number, unit = _split(quantity, what, "20ms")
        unit = unit or "s"
    if unit not in _TIME_UNITS:
        raise SpecError(
            f"{what} {shown(value)} has unknown unit {unit!r}; use one of ns, us, ms, s."
        )
    result = number * _TIME_UNITS[unit]
    if result < 0 or not math.isfinite(result):
        raise SpecError(f"{what} {shown(value)} must be a finite, non-negative duration.")
    return result


def parse_rate(value: object, *, what: str = "bandwidth") -> float:
    """Parse a byte rate such as ``"200MB/s"``, ``"1 GiB/s"`` or ``2e8`` (bytes/s).

    Returns
    -------
    float
        Bytes per second.
    """
    quantity = _quantity(value, what, "a rate", "200MB/s")
    if isinstance(quantity, str):
        text = quantity.strip()
        if not text.lower().endswith("/s"):
            raise SpecError(f"{what} {shown(value)} is not a rate; write it like '200MB/s'.")
        try:
            rate = float(parse_bytes(text[:-2], what=what))
        except SpecError:
            raise SpecError(
                f"{what} {shown(value)} is not a rate; write it like '200MB/s'."
            ) from None
    else:
        rate = float(parse_bytes(value, what=what))
    if rate <= 0:
        raise SpecError(f"{what} {shown(value)} must be positive; write it like '200MB/s'.")
    return rate


def format_bytes(n_bytes: float) -> str:
    """Format bytes with a binary prefix: ``1536 -> '1.5 KiB'``."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(value) < 1024 or unit == "EiB":
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


def html_lines(lines: Sequence[str]) -> str:
    """Plain-text report lines as HTML for notebooks (``_repr_html_``): preformatted,
    escaped."""
    import html

    return "<pre>" + html.escape("\n".join(lines)) + "</pre>"
