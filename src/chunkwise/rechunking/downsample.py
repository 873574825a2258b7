"""Downsampling kernels: a block of one level to the block of the next, and a second,
independent formulation of each that verification recomputes sampled blocks with.

Windows start at index 0 of the level: window ``i`` along an axis halved by ``f`` covers
``[i*f, (i+1)*f)``, clipped to the axis (an odd size leaves a short last window). A block
handed to these functions starts on a window boundary, so its windows are the level's.

* ``mean``: the sum in float64 divided by the window's element count; integers round half
  to even (``numpy.rint``), floats round to their own precision; NaN propagates. Counts are
  powers of two, so float64 values are divided before they are summed (exactly, and the
  sum cannot overflow). 64-bit integers are not averaged (float64 cannot hold their sums;
  :func:`~chunkwise.plan.pyramid.plan_pyramid` refuses them).
* ``nearest``: the first element of each window.
* ``mode``: the most frequent value of each window, ties to the smallest; values that no
  window holds never appear (labels are never blended).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["downsample", "recompute", "same_values", "window_magnitude"]

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


def _prescaled(dtype: np.dtype[Any]) -> bool:
    """Values divided by their window's count before summing: float64, whose sums could
    overflow (the division by a power of two is exact)."""
    return dtype.kind == "f" and dtype.itemsize >= 8


def _mean(block: Array, factors: Sequence[int]) -> Array:
    """Sum the window's elements one offset at a time (strided views, no copies)."""
    out = _out_shape(block.shape, factors)
    total = np.zeros(out, dtype=np.float64)
    count = np.zeros(out, dtype=np.float64)
    views = []
    for offset in _offsets(factors):
        view = block[tuple(slice(o, None, f) for o, f in zip(offset, factors, strict=True))]
        if 0 in view.shape:
            continue
        region = tuple(slice(0, n) for n in view.shape)
        count[region] += 1
        views.append((region, view))
    prescale = _prescaled(block.dtype)
    for region, view in views:
        total[region] += view / count[region] if prescale else view
    return _finish_mean(total, 1 if prescale else count, block.dtype)


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


def _window_lengths(n: int, f: int) -> Array:
    starts = _starts(n, f)
    return np.asarray(np.minimum(starts + f, n) - starts, dtype=np.float64)


def _mean_by_reduceat(block: Array, factors: Sequence[int]) -> Array:
    """Window sums axis by axis with ``numpy.add.reduceat`` (short last windows included),
    divided by the product of each axis's window lengths (float64: each element divided
    by its window's count first, as the kernel does)."""
    total = block.astype(np.float64)
    count: Array = np.ones((), dtype=np.float64)
    for axis, f in enumerate(factors):
        lengths = _window_lengths(block.shape[axis], f)
        shape = [1] * block.ndim
        shape[axis] = len(lengths)
        count = count * lengths.reshape(shape)
    if _prescaled(block.dtype):  # each element's own window count
        for axis, f in enumerate(factors):
            per = np.repeat(_window_lengths(block.shape[axis], f), f)[: block.shape[axis]]
            shape = [1] * block.ndim
            shape[axis] = block.shape[axis]
            total /= per.reshape(shape)
    for axis, f in enumerate(factors):
        if f > 1:
            total = np.add.reduceat(total, _starts(block.shape[axis], f), axis=axis)
    divide = np.ones((), np.float64) if _prescaled(block.dtype) else count
    return _finish_mean(total, np.broadcast_to(divide, total.shape), block.dtype)


def _mode_by_sorting(block: Array, factors: Sequence[int]) -> Array:
    """Each window's values sorted (the window's own first, by value), then the longest
    run of equal values; a run must be strictly longer to win, so ties go to the
    smallest."""
    out = _out_shape(block.shape, factors)
    padded = [(0, o * f - n) for o, f, n in zip(out, factors, block.shape, strict=True)]
    values = np.pad(block, padded)
    valid = np.pad(np.ones(block.shape, bool), padded)
    # windows onto a leading axis: (o0, f0, o1, f1, ...) -> (f0, f1, ..., o0, o1, ...)
    split = [n for o, f in zip(out, factors, strict=True) for n in (o, f)]
    order = [2 * i + 1 for i in range(len(out))] + [2 * i for i in range(len(out))]
    width = int(np.prod(factors))
    values = values.reshape(split).transpose(order).reshape(width, *out)
    valid = valid.reshape(split).transpose(order).reshape(width, *out)
    sort = np.lexsort((values, ~valid), axis=0)
    values = np.take_along_axis(values, sort, axis=0)
    valid = np.take_along_axis(valid, sort, axis=0)
    best, best_run = values[0].copy(), np.ones(out, np.int64)
    run = np.ones(out, np.int64)
    for j in range(1, width):
        same = valid[j] & (values[j] == values[j - 1])
        run = np.where(same, run + 1, 1)
        better = valid[j] & (run > best_run)
        best = np.where(better, values[j], best)
        best_run = np.where(better, run, best_run)
    return np.asarray(best)


def recompute(block: Array, factors: Sequence[int], method: str) -> Array:
    """:func:`downsample` computed another way, to check stored levels against."""
    if method == "nearest":
        index = np.ix_(*(_starts(n, f) for n, f in zip(block.shape, factors, strict=True)))
        return np.asarray(block[index])
    if method == "mean":
        return _mean_by_reduceat(block, factors)
    if method == "mode":
        return _mode_by_sorting(block, factors)
    raise ValueError(f"unknown downsampling method {method!r}")


def window_magnitude(block: Array, factors: Sequence[int]) -> Array:
    """The largest absolute finite value of each window (0 where there is none): how far
    summation order can move a mean of floats that cancel."""
    magnitude = np.abs(block.astype(np.float64))
    magnitude[~np.isfinite(magnitude)] = 0.0
    for axis, f in enumerate(factors):
        if f > 1:
            magnitude = np.maximum.reduceat(magnitude, _starts(block.shape[axis], f), axis=axis)
    return magnitude


def same_values(want: Array, got: Array, method: str, magnitude: Array | float = 0.0) -> Array:
    """Where ``got`` agrees with ``want``: exactly, except that a mean of floating-point
    values may differ in its last bits by the order of summation: 4 ulp of the dtype, or
    16 ulp of float64 times ``magnitude`` (per window: :func:`window_magnitude`) where
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
