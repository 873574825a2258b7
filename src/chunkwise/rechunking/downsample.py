"""Downsampling kernels: a block of one level to the block of the next, and a second,
independent formulation of each that verification recomputes sampled blocks with.

Windows start at index 0 of the level: window ``i`` along an axis halved by ``f`` covers
``[i*f, (i+1)*f)``, clipped to the axis (an odd size leaves a short last window). A block
handed to these functions starts on a window boundary, so its windows are the level's.

* ``mean``: the sum in float64 divided by the window's element count; integers round half
  to even (``numpy.rint``), floats round to their own precision; NaN propagates.
* ``nearest``: the first element of each window.
* ``mode``: the most frequent value of each window, ties to the smallest; values that no
  window holds never appear (labels are never blended).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["downsample", "recompute", "same_values"]

Array = np.ndarray[Any, Any]


def _out_shape(shape: Sequence[int], factors: Sequence[int]) -> tuple[int, ...]:
    return tuple(-(-n // f) for n, f in zip(shape, factors, strict=True))


def _finish_mean(total: Array, count: Array | int, dtype: np.dtype[Any]) -> Array:
    total /= count
    if dtype.kind in "iu":
        np.rint(total, out=total)
    return total.astype(dtype)


def _offsets(factors: Sequence[int]) -> Any:
    return itertools.product(*(range(f) for f in factors))


def _mean(block: Array, factors: Sequence[int]) -> Array:
    """Sum the window's elements one offset at a time (strided views, no copies)."""
    out = _out_shape(block.shape, factors)
    total = np.zeros(out, dtype=np.float64)
    count = np.zeros(out, dtype=np.float64)
    for offset in _offsets(factors):
        view = block[tuple(slice(o, None, f) for o, f in zip(offset, factors, strict=True))]
        if 0 in view.shape:
            continue
        region = tuple(slice(0, n) for n in view.shape)
        total[region] += view
        count[region] += 1
    return _finish_mean(total, count, block.dtype)


def _mode(block: Array, factors: Sequence[int]) -> Array:
    """Every window's values side by side, then for each candidate its count among the
    window's valid values: the most frequent wins, ties to the smallest."""
    out = _out_shape(block.shape, factors)
    width = int(np.prod(factors))
    values = np.zeros((width, *out), dtype=block.dtype)
    valid = np.zeros((width, *out), dtype=bool)
    for i, offset in enumerate(_offsets(factors)):
        view = block[tuple(slice(o, None, f) for o, f in zip(offset, factors, strict=True))]
        region: tuple[int | slice, ...] = (i, *(slice(0, n) for n in view.shape))
        values[region] = view
        valid[region] = True
    best = values[0].copy()
    best_count = np.full(out, -1, dtype=np.int64)
    for i in range(width):
        candidate = values[i]
        count = np.zeros(out, dtype=np.int64)
        for j in range(width):
            count += valid[j] & (values[j] == candidate)
        count[~valid[i]] = -1
        better = (count > best_count) | ((count == best_count) & (candidate < best))
        best = np.where(better, candidate, best)
        best_count = np.where(better, count, best_count)
    return np.asarray(best)


def downsample(block: Array, factors: Sequence[int], method: str) -> Array:
    """The next level's block of ``block`` (which starts on a window boundary).

    Parameters
    ----------
    block
        Values of one level.
    factors
        Window size per axis (1: the axis is kept).
    method
        ``"mean"``, ``"nearest"`` or ``"mode"``.
    """
    if method == "nearest":
        return np.ascontiguousarray(block[tuple(slice(None, None, f) for f in factors)])
    if method == "mean":
        return _mean(block, factors)
    if method == "mode":
        return _mode(block, factors)
    raise ValueError(f"unknown downsampling method {method!r}")


# ------------------------------------------------------------ the independent formulation


def _starts(n: int, f: int) -> Array:
    return np.arange(0, n, f)


def _mean_by_reduceat(block: Array, factors: Sequence[int]) -> Array:
    """Window sums axis by axis with ``numpy.add.reduceat`` (short last windows included),
    divided by the product of each axis's window lengths."""
    total = block.astype(np.float64)
    count: Array = np.ones((), dtype=np.float64)
    for axis, f in enumerate(factors):
        if f == 1:
            continue
        n = block.shape[axis]
        starts = _starts(n, f)
        total = np.add.reduceat(total, starts, axis=axis)
        lengths = np.minimum(starts + f, n) - starts
        shape = [1] * block.ndim
        shape[axis] = len(lengths)
        count = count * lengths.reshape(shape).astype(np.float64)
    return _finish_mean(total, np.broadcast_to(count, total.shape), block.dtype)


def _mode_by_unique(block: Array, factors: Sequence[int]) -> Array:
    """Window by window with ``numpy.unique`` (sorted, so the first of the most frequent
    is the smallest)."""
    out = np.empty(_out_shape(block.shape, factors), dtype=block.dtype)
    for index in np.ndindex(*out.shape):
        window = block[
            tuple(slice(i * f, (i + 1) * f) for i, f in zip(index, factors, strict=True))
        ]
        values, counts = np.unique(window, return_counts=True)
        out[index] = values[int(np.argmax(counts))]
    return out


def recompute(block: Array, factors: Sequence[int], method: str) -> Array:
    """:func:`downsample` computed another way, to check stored levels against."""
    if method == "nearest":
        index = np.ix_(*(_starts(n, f) for n, f in zip(block.shape, factors, strict=True)))
        return np.asarray(block[index])
    if method == "mean":
        return _mean_by_reduceat(block, factors)
    if method == "mode":
        return _mode_by_unique(block, factors)
    raise ValueError(f"unknown downsampling method {method!r}")


def same_values(want: Array, got: Array, method: str, magnitude: float = 0.0) -> Array:
    """Where ``got`` agrees with ``want``: exactly, except that a mean of floating-point
    values may differ in its last bits by the order of summation: 4 ulp of the dtype, or
    16 ulp of float64 times ``magnitude`` (the largest absolute value summed) where
    values cancel. NaN agrees with NaN."""
    if method != "mean" or want.dtype.kind != "f":
        if want.dtype.kind == "f":
            return np.asarray((want == got) | (np.isnan(want) & np.isnan(got)))
        return np.asarray(want == got)
    eps = np.finfo(want.dtype).eps
    w = want.astype(np.float64)
    g = got.astype(np.float64)
    slack = 16 * np.finfo(np.float64).eps * magnitude
    close = np.abs(w - g) <= 4 * eps * np.maximum(np.abs(w), np.abs(g)) + slack
    return np.asarray(close | (w == g) | (np.isnan(w) & np.isnan(g)))
