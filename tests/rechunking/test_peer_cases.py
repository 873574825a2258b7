"""Rechunk cases taken from the peers' own test suites, run through chunkwise.

Independent evidence: the shapes, source chunks, target chunks and budgets below were
written by the authors of rechunker and dask to exercise *their* rechunkers; here each one
is copied into a Zarr store and rechunked by :func:`chunkwise.api.rechunk`, then checked:

* the target's chunks are the requested ones, clipped to the array (``-1`` is the whole
  dim; a dim of length 0 gets chunk 1, Zarr's smallest);
* its values are bit-identical to the source's (NaN and -0.0 included);
* the source store is byte-for-byte unchanged;
* no ``.chunkwise-rechunk`` working folder is left behind;
* and, when a shard of twice the chunk fits the array in every dim, once more into a
  sharded target (from a source of the other Zarr format).

Three dask cases are also compared with dask itself: ``dask.array.from_zarr(source)
.rechunk(chunks)`` gives the same values, and its first block per dim is the Zarr chunk.

Sources (read at these commits; only the cases are taken, as data):

* ``RA``: pangeo-data/rechunker ``tests/test_algorithm.py`` (c553655a, 2025-03-20)
* ``RR``: pangeo-data/rechunker ``tests/test_rechunk.py`` (same commit)
* ``DA``: dask/dask ``dask/array/tests/test_rechunk.py`` (817e5ffc)

How the cases were adapted (each group's comment says which rule it uses):

* **Irregular dask chunks** (e.g. ``((1, 2, 3, 4), (5,) * 6)``) cannot be a Zarr chunk
  grid. Each irregular tuple is mapped to the regular grid of its *first block size*
  (``(1, 2, 3, 4) -> 1``); a tuple that is regular but for a smaller last block
  (``(3, 3, 3, 1)``) is exactly the Zarr grid of its first block, so it maps without loss.
  Zero-sized placeholder blocks (``(24, 0)``, ``(4, 0, 0, 4)``) are dropped; a chunk of 0
  on a dim of length 0 becomes 1. Unknown (NaN) dask chunks become the known chunks the
  test built the array from.
* **Budgets**: rechunker's ``max_mem`` and dask's ``block_size_limit`` are bytes. When the
  peer's case is about a tight budget (rechunker's plan tests, its two-stage group test,
  dask's memory-limited plans) that budget is passed as is; everywhere else the budget is
  ``max(peer budget, 32 MiB)`` because chunkwise's projected minimum includes a fixed
  overhead of several MiB. Either way, when chunkwise refuses with ``ConstraintError``
  naming a minimum ``--max-mem X``, the case checks nothing was written, retries once
  with ``X`` and records ``max_mem_retry`` in the test's user properties.
* **Size**: large peer arrays are scaled down (noted per group) to keep the module fast
  (each run costs tens of milliseconds plus a few per chunk written); where keeping every chunk-to-shape ratio would still mean
  hundreds of tiny chunks, a ratio is relaxed and the comment says which.
* **Dtypes**: rechunker's tests use float32 (``itemsize=1`` plans: uint8); dask's
  ``da.ones`` / random arrays are float64, ``np.arange`` sources int64, ``itemsize=1``
  plans uint8, ``np.int8`` for ``normalize_chunks(dtype=np.int8)``.

Peer cases left out, and why:

* rechunker ``test_calculate_stage_chunks`` with ``(1_000_000, 1) -> (1, 1_000_000)``:
  the same transpose as its ``(100, 1) -> (1, 100)`` case (kept), only larger; its
  intermediate grids are fractions of 10**6 that have no small equivalent.
* Cases that differ from a kept case only in a budget below chunkwise's minimum (e.g.
  rechunker's ``max_mem`` 16 vs 17, dask's ``block_size_limit`` 399 vs 400 and the
  ``itemsize=10`` variant): chunkwise would run them identically, at its minimum.
* dask tests of ``"auto"`` chunking, ``balance=True``, dict/None chunk syntax and unknown
  chunks are taken only through their *resulting* chunk shapes (the syntax itself is
  dask's API, not a rechunk case); ``test_balance_different_inputs`` (``"10MB"`` chunks)
  and ``test_rechunk_internals_1`` (chunk tuples whose sums disagree) give no array case.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zarr

from chunkwise.api import rechunk
from chunkwise.errors import ConstraintError
from chunkwise.units import parse_bytes

MiB = 2**20
#: The smallest budget given when the peer's case is not about a tight budget.
MIN_BUDGET = 32 * MiB
MARKER = ".chunkwise-rechunk"


@dataclass(frozen=True)
class Case:
    """One rechunk: a peer's array, its source and target chunks, and its budget."""

    group: str  # "<peer file>-<peer test>", for the id
    shape: tuple[int, ...]
    source_chunks: tuple[int, ...]
    target_chunks: tuple[int, ...]  # -1: the whole dim
    dtype: str = "float32"
    max_mem: int | None = None  # the peer's budget in bytes (scaled with the case), if any
    tight: bool = False  # the case is about that budget: pass it as is

    @property
    def budget(self) -> int:
        if self.tight:
            assert self.max_mem is not None
            return self.max_mem
        return max(self.max_mem or 0, MIN_BUDGET)

    @property
    def expected_chunks(self) -> tuple[int, ...]:
        return expected_chunks(self.shape, self.target_chunks)

    @property
    def id(self) -> str:
        def fmt(t: tuple[int, ...]) -> str:
            return "x".join("all" if n == -1 else str(n) for n in t) or "0d"

        tail = f"-{self.dtype}" if self.dtype != "float32" else ""
        tail += f"-maxmem{self.max_mem}" if self.tight else ""
        return (
            f"{self.group}-{fmt(self.shape)}-{fmt(self.source_chunks)}"
            f"-to-{fmt(self.target_chunks)}{tail}"
        )


def expected_chunks(shape: tuple[int, ...], chunks: tuple[int, ...]) -> tuple[int, ...]:
    """Requested chunks clipped to the array: -1 is the whole dim, never below 1."""
    return tuple(max(1, n if c == -1 else min(c, n)) for n, c in zip(shape, chunks, strict=True))


def C(
    group: str,
    shape: tuple[int, ...],
    source: tuple[int, ...],
    target: tuple[int, ...],
    dtype: str = "float32",
    max_mem: int | None = None,
    tight: bool = False,
) -> Case:
    return Case(group, tuple(shape), tuple(source), tuple(target), dtype, max_mem, tight)


f8, i8, u1 = "float64", "int64", "uint8"

# --------------------------------------------------------------------------------------
# RA: pangeo-data/rechunker tests/test_algorithm.py
# --------------------------------------------------------------------------------------
RA: list[Case] = [
    # test_consolidate_chunks: shape (8, 8), chunks (1, 2); the consolidated chunks rechunker
    # expects become our targets, with its max_mem (itemsize 8 -> float64). Tight budgets.
    C("ra-consolidate", (8, 8), (1, 2), (1, 2), max_mem=8, tight=True),
    C("ra-consolidate", (8, 8), (1, 2), (1, 4), max_mem=16, tight=True),
    C("ra-consolidate", (8, 8), (1, 2), (2, 8), max_mem=64, tight=True),
    C("ra-consolidate", (8, 8), (1, 2), (8, 8), max_mem=256, tight=True),
    C("ra-consolidate", (8, 8), (1, 2), (4, 8), f8, max_mem=256, tight=True),
    # test_consolidate_chunks_w_limits: the expected chunks of each chunk_limits row.
    C("ra-consolidate-limits", (8, 8), (1, 2), (2, 2), max_mem=16, tight=True),
    C("ra-consolidate-limits", (8, 8), (1, 2), (1, 8), max_mem=32, tight=True),
    C("ra-consolidate-limits", (8, 8), (1, 2), (2, 4), max_mem=32, tight=True),
    C("ra-consolidate-limits", (8, 8), (1, 2), (4, 2), max_mem=32, tight=True),
    C("ra-consolidate-limits", (8, 8), (1, 2), (8, 2), max_mem=128, tight=True),
    # test_consolidate_chunks_4D: (1000, 50, 1800, 3600) chunks (1, 5, 1800, 3600) scaled
    # to (10, 50, 18, 36) (dims 0, 2, 3 / 100; chunk sizes on dims 0-1 kept).
    C("ra-consolidate-4d", (10, 50, 18, 36), (1, 5, 18, 36), (1, 35, 18, 36)),
    C("ra-consolidate-4d", (10, 50, 18, 36), (1, 5, 18, 36), (2, 50, 18, 36)),
    # test_calculate_stage_chunks: read (100, 1) / write (1, 100), and the intermediate
    # grids rechunker finds, (10, 10), (21, 4), (4, 21); and (10, 10) -> (1, 100) with its
    # intermediate (3, 31). The shape is not given: the whole-dim chunks say 100; shrunk
    # to 40 (whole-dim chunks stay whole, the other chunk sizes are kept).
    C("ra-stage-chunks", (40, 40), (40, 1), (1, 40)),
    C("ra-stage-chunks", (40, 40), (40, 1), (10, 10)),
    C("ra-stage-chunks", (40, 40), (40, 1), (21, 4)),
    C("ra-stage-chunks", (40, 40), (40, 1), (4, 21)),
    C("ra-stage-chunks", (40, 40), (10, 10), (1, -1)),
    C("ra-stage-chunks", (40, 40), (10, 10), (3, 31)),
    # test_calculate_single_stage_io_ops: all 15 rows (no budget); the (100, 100)
    # (1, 100) -> (100, 1) and (1, 10) -> (10, 1) rows shrunk to 40 and 20 per dim.
    C("ra-io-ops", (6,), (1,), (6,)),
    C("ra-io-ops", (10,), (1,), (6,)),
    C("ra-io-ops", (6,), (2,), (3,)),
    C("ra-io-ops", (24,), (2,), (3,)),
    C("ra-io-ops", (10,), (4,), (5,)),
    C("ra-io-ops", (100,), (4,), (5,)),
    C("ra-io-ops", (40, 40), (1, 40), (40, 1)),
    C("ra-io-ops", (20, 20), (1, 10), (10, 1)),
    C("ra-io-ops", (100, 100), (20, 20), (25, 25)),
    C("ra-io-ops", (50, 50), (20, 20), (25, 25)),
    C("ra-io-ops", (100,), (43,), (100,)),
    C("ra-io-ops", (100,), (43,), (51,)),
    C("ra-io-ops", (100,), (43,), (40,)),
    C("ra-io-ops", (100,), (43,), (10,)),
    C("ra-io-ops", (100,), (43,), (1,)),
    # test_rechunking_plan_1D: distinct (shape, source, target) rows with their max_mem.
    C("ra-plan-1d", (8,), (1,), (1,), max_mem=4, tight=True),
    C("ra-plan-1d", (8,), (1,), (2,), max_mem=8, tight=True),
    C("ra-plan-1d", (16,), (3,), (7,), max_mem=32, tight=True),
    # test_rechunking_plan_2d: (8, 8) (1, 8) -> (8, 1) at its smallest max_mem.
    C("ra-plan-2d", (8, 8), (1, 8), (8, 1), max_mem=32, tight=True),
    # test_multistage_rechunking_plan: (100, 100) (100, 1) -> (1, 100), itemsize 1,
    # max_mem 100 (multi-stage); shrunk to 40 per dim (whole-dim chunks stay whole).
    C("ra-multistage", (40, 40), (40, 1), (1, 40), u1, max_mem=100, tight=True),
    # test_intermediate_to_target_memory (rechunker#115): (175320, 721, 1440)
    # (24, 721, 1440) -> (21915, 103, 10), 12 GB. Scaled to (64, 21, 20): source two
    # whole maps per chunk, target 1/8 of time and 1/7 of lat as in the peer; the lon
    # ratio 1/144 relaxed to 1/2 to keep the chunk count small.
    C("ra-issue115", (64, 21, 20), (2, 21, 20), (8, 3, 10), max_mem=12_000_000_000),
]

# --------------------------------------------------------------------------------------
# RR: pangeo-data/rechunker tests/test_rechunk.py
# --------------------------------------------------------------------------------------
RR: list[Case] = [
    # test_rechunk_dataset: variables a (100, 50) float32, b (100,) and c (50,) float64,
    # source chunks (10, 50); max_mem "10MB". c is not in target_chunks: kept as is.
    C("rr-dataset", (100, 50), (10, 50), (20, 10), max_mem=10_000_000),
    C("rr-dataset", (100,), (10,), (20,), f8, max_mem=10_000_000),
    C("rr-dataset", (50,), (50,), (50,), f8, max_mem=10_000_000),
    # test_rechunk_dataset_dimchunks: a with sources (10, 50) and (100, 5) and targets
    # {x: 20} (y kept), {x: 20, y: 100_000} (larger than the dim), {x: 20, y: -1};
    # b from a (100,) source, c (50,) from a (5,) source with the y targets.
    C("rr-dimchunks", (100, 50), (10, 50), (20, 50), max_mem=10_000_000),
    C("rr-dimchunks", (100, 50), (10, 50), (20, 100_000), max_mem=10_000_000),
    C("rr-dimchunks", (100, 50), (10, 50), (20, -1), max_mem=10_000_000),
    C("rr-dimchunks", (100, 50), (100, 5), (20, 5), max_mem=10_000_000),
    C("rr-dimchunks", (100, 50), (100, 5), (20, 100_000), max_mem=10_000_000),
    C("rr-dimchunks", (100, 50), (100, 5), (20, -1), max_mem=10_000_000),
    C("rr-dimchunks", (100,), (100,), (20,), f8, max_mem=10_000_000),
    C("rr-dimchunks", (50,), (5,), (100_000,), f8, max_mem=10_000_000),
    C("rr-dimchunks", (50,), (5,), (-1,), f8, max_mem=10_000_000),
    # test_parse_target_chunks_from_dim_chunks and test_get_dim_chunk: chunk_ds, an int64
    # (lon 360, lat 180, time 365) numpy-backed array (one source chunk; {time: 1} for the
    # dask-chunked row). Shape shrunk to (40, 30, 41); the peer's chunk sizes (10, 20, 30,
    # 400, 1000, -1) kept, so "larger than the dim" stays larger.
    C("rr-dimchunk-ds", (40, 30, 41), (40, 30, 41), (10, 30, 41), i8),
    C("rr-dimchunk-ds", (40, 30, 41), (40, 30, 41), (40, 10, 41), i8),
    C("rr-dimchunk-ds", (40, 30, 41), (40, 30, 41), (40, 30, 10), i8),
    C("rr-dimchunk-ds", (40, 30, 41), (40, 30, 41), (10, 10, 10), i8),
    C("rr-dimchunk-ds", (40, 30, 41), (40, 30, 41), (10, 20, 30), i8),
    C("rr-dimchunk-ds", (40, 30, 41), (40, 30, 41), (1000, 30, 41), i8),
    C("rr-dimchunk-ds", (40, 30, 41), (40, 30, 41), (40, 1000, 41), i8),
    C("rr-dimchunk-ds", (40, 30, 41), (40, 30, 41), (40, 30, 1000), i8),
    C("rr-dimchunk-ds", (40, 30, 41), (40, 30, 41), (1000, 1000, 1000), i8),
    C("rr-dimchunk-ds", (40, 30, 41), (40, 30, 41), (40, 30, 400), i8),
    C("rr-dimchunk-ds", (40, 30, 41), (40, 30, 1), (40, 30, -1), i8),
    # test_rechunk_array: (8000, 8000) float32 (200, 8000) -> (8000, 200) and the xfailed
    # (-1, 200), max_mem 25.6 MB (four source chunks: about the budget). Scaled by 1/40
    # per dim to (200, 200); the budget by 1/1600 to 16_000 B.
    C("rr-array", (200, 200), (5, 200), (200, 5), max_mem=16_000, tight=True),
    C("rr-array", (200, 200), (5, 200), (-1, 5), max_mem=16_000, tight=True),
    # test_rechunk_dask_array: sources (200, 8000) and (800, 8000), targets (200, 8000),
    # (800, 8000), (8000, 200), (400, 8000); scaled by 1/40 as above, budget not tight.
    C("rr-dask-array", (200, 200), (5, 200), (5, 200), max_mem=16_000),
    C("rr-dask-array", (200, 200), (5, 200), (20, 200), max_mem=16_000),
    C("rr-dask-array", (200, 200), (5, 200), (200, 5), max_mem=16_000),
    C("rr-dask-array", (200, 200), (5, 200), (10, 200), max_mem=16_000),
    C("rr-dask-array", (200, 200), (20, 200), (5, 200), max_mem=16_000),
    C("rr-dask-array", (200, 200), (20, 200), (20, 200), max_mem=16_000),
    C("rr-dask-array", (200, 200), (20, 200), (200, 5), max_mem=16_000),
    C("rr-dask-array", (200, 200), (20, 200), (10, 200), max_mem=16_000),
    # test_rechunk_group: a (5, 10, 20) (1, 10, 20) -> (5, 10, 4) and b (20,) (10,) ->
    # (20,), max_mem 1600 ("should force a two-step plan").
    C("rr-group", (5, 10, 20), (1, 10, 20), (5, 10, 4), max_mem=1600, tight=True),
    C("rr-group", (20,), (10,), (20,), max_mem=1600, tight=True),
    # rechunk_args fixture (sample_zarr_group): a (10, 20, 40) (5, 10, 4) -> (10, 5, 4),
    # b (8000,) (200,) -> (100,), max_mem 1600.
    C("rr-args", (10, 20, 40), (5, 10, 4), (10, 5, 4), max_mem=1600, tight=True),
    C("rr-args", (8000,), (200,), (100,), max_mem=1600, tight=True),
    # test_no_intermediate: zarr.ones (4, 4) float64 (2, 2) -> (4, 1).
    C("rr-no-intermediate", (4, 4), (2, 2), (4, 1), f8),
    # test_no_intermediate_fused: (8000, 8000) (200, 8000) -> (400, 8000), 25.6 MB;
    # scaled by 1/40 per dim, budget by 1/1600.
    C("rr-fused", (200, 200), (5, 200), (10, 200), max_mem=16_000, tight=True),
    # test_no_intermediate_store: (1000, 2000, 2000) (1, 2000, 2000) -> (1000, 4, 4),
    # 20 GB. Scaled to (20, 40, 40); the target's 1/500 lon/lat ratio relaxed to 1/5.
    C("rr-no-int-store", (20, 40, 40), (1, 40, 40), (20, 8, 8), max_mem=20_000_000_000),
]

# --------------------------------------------------------------------------------------
# DA: dask/dask dask/array/tests/test_rechunk.py
# --------------------------------------------------------------------------------------
DA: list[Case] = [
    # test_intersect_1 / test_old_to_new_known: (10,)*5 -> (25, 5, 20), mapped to 25.
    C("da-intersect-1", (50,), (10,), (25,), f8),
    # test_intersect_2: (20,)*5 -> (58, 4, 20, 18), mapped to 58.
    C("da-intersect-2", (100,), (20,), (58,), f8),
    # test_rechunk_1d, test_rechunk_2d ((1, 2, 3, 4) mapped to 1), test_rechunk_4d.
    C("da-1d", (30,), (10,), (5,), f8),
    C("da-2d", (10, 30), (1, 5), (5, 15), f8),
    C("da-4d", (10, 10, 10, 10), (5, 5, 5, 5), (10, 10, 10, 10), f8),
    # test_rechunk_expand: (5, 5) -> (3, 3, 3, 1) (exactly the grid of 3).
    C("da-expand", (10, 10), (5, 5), (3, 3), f8),
    # test_rechunk_expand2 (a=3, b=2): (2, 1) -> (2, 1) and (1, 1, 1).
    C("da-expand2", (3, 3), (2, 2), (2, 2), f8),
    C("da-expand2", (3, 3), (2, 2), (1, 1), f8),
    # test_rechunk_method: (5, 2, 3) mapped to 5 -> (3, 3, 3, 1) in 4-D; dims 2 and 3
    # shrunk from 10 to 4 (edges (3, 1)) to keep 64 target chunks, not 256.
    C("da-method", (10, 10, 4, 4), (5, 5, 2, 2), (3, 3, 3, 3), f8),
    # test_rechunk_blockshape: ((4, 4, 2), (3, 3, 3, 1)) -> (4, 3): the same grid.
    C("da-blockshape", (10, 10), (4, 3), (4, 3), f8),
    # test_dtype: ones(5, chunks=2) -> 1.
    C("da-dtype", (5,), (2,), (1,), f8),
    # test_rechunk_with_dict ({0: 12}, {0: -1}, {0: None, 1: "auto"} -> (4, 24)) and
    # test_rechunk_with_null_dimensions ((None, 4) -> (4, 4)), from (24, 24) (4, 8).
    C("da-with-dict", (24, 24), (4, 8), (12, 8), f8),
    C("da-with-dict", (24, 24), (4, 8), (-1, 8), f8),
    C("da-with-dict", (24, 24), (4, 8), (4, 24), f8),
    C("da-null-dims", (24, 24), (4, 8), (4, 4), f8),
    # test_rechunk_with_integer: arange(5) chunks 4 -> 3.
    C("da-integer", (5,), (4,), (3,), i8),
    # test_rechunk_0d.
    C("da-0d", (), (), (), i8),
    # test_rechunk_empty_array: shapes (0,), (2, 0), (2, 1, 0) rechunked to their own
    # (zero-sized) chunks; as Zarr: source chunks of 1, target "whole dim" (-1).
    C("da-empty-array", (0,), (1,), (-1,), f8),
    C("da-empty-array", (2, 0), (1, 1), (-1, -1), f8),
    C("da-empty-array", (2, 1, 0), (1, 1, 1), (-1, -1, -1), f8),
    # test_rechunk_empty, test_rechunk_zero_dim_array(_II), test_rechunk_zero_dim
    # ((0, 10, 10) chunks: the 0 mapped to 1).
    C("da-empty", (0, 10), (5, 5), (2, 2), f8),
    C("da-zero-dim", (4, 0), (3, 3), (4, 3), f8),
    C("da-zero-dim-2", (4, 0, 6, 10), (3, 3, 3, 3), (4, 3, 2, 3), f8),
    C("da-zero-dim-3", (0, 10, 100), (1, 10, 10), (1, 10, 50), f8),
    # test_rechunk_same, test_rechunk_with_zero_placeholders ((24, 0) mapped to 24),
    # test_rechunk_intermediates.
    C("da-same", (24, 24), (4, 8), (4, 8), f8),
    C("da-zero-placeholders", (24, 24), (12, 12), (12, 24), f8),
    C("da-intermediates", (10, 10), (10, 1), (1, 10), f8),
    # test_plan_rechunk (itemsize 1 -> uint8): coarse c = (20, 20) and fine f = (2,)*20 on
    # a dim of 40. The 1-D rows keep f = 2; in 2-D and 4-D f is 5 (8 chunks per dim,
    # not 20) to keep the chunk count small. c + f (irregular) is mapped to 20.
    C("da-plan", (40,), (20,), (2,), u1),
    C("da-plan", (40,), (2,), (20,), u1),
    C("da-plan", (40, 40), (20, 20), (5, 5), u1),
    C("da-plan", (40, 40), (5, 5), (20, 20), u1),
    C("da-plan", (40, 40), (5, 20), (20, 20), u1),
    C("da-plan", (40, 40), (5, 20), (20, 5), u1),
    C("da-plan", (40, 40, 40, 40), (20, 20, 20, 20), (20, 5, 20, 20), u1),
    C("da-plan", (80, 80), (20, 20), (5, 20), u1),
    # ... "just at the memory limit": (f, c) -> (c, f) with block_size_limit 400.
    C("da-plan", (40, 40), (5, 20), (20, 5), u1, max_mem=400, tight=True),
    # ... "larger problem": c = 1000, f = 2 on 2000, limit 99999: shrunk to 200 per dim
    # (c = 100; f relaxed to 10), the limit by 1/100.
    C("da-plan", (200, 200), (10, 100), (100, 10), u1, max_mem=1000, tight=True),
    # test_plan_rechunk_5d: c = 10 (the whole dim), f = 1 on dims of 10, shrunk to dims
    # of (3, 3, 3, 2, 2) (c stays the whole dim).
    C("da-plan-5d", (3, 3, 3, 2, 2), (3, 3, 3, 2, 2), (1, 1, 1, 1, 1), u1),
    C("da-plan-5d", (3, 3, 3, 2, 2), (1, 1, 1, 1, 2), (3, 3, 3, 1, 1), u1),
    C("da-plan-5d", (3, 3, 3, 2, 2), (3, 3, 1, 1, 2), (3, 3, 3, 1, 1), u1, max_mem=20_000),
    # test_plan_rechunk_heterogeneous: c = 10, f = 1 on dims of 20 (cc, ff, cf = c + f,
    # fc = f + c); cf mapped to 10, fc to 1, then f relaxed to 2 (10 chunks per dim).
    C("da-plan-hetero", (20, 20), (10, 10), (2, 2), u1),
    C("da-plan-hetero", (20, 20), (10, 2), (2, 10), u1),
    C("da-plan-hetero", (20, 20), (10, 10), (2, 10), u1),
    C("da-plan-hetero", (20, 20, 20), (10, 10, 10), (2, 10, 10), u1),
    C("da-plan-hetero", (20, 20, 20), (10, 2, 10), (2, 10, 10), u1, max_mem=100, tight=True),
    # test_plan_rechunk_asymmetric: (1000, 80_000_000) float64 ((1,)*1000, (80e6,)) ->
    # ((1000,), (80_000,)*1000). Scaled to (40, 2000); target 1/50 of dim 1 (not 1/1000).
    C("da-plan-asym", (40, 2000), (1, 2000), (40, 40), f8),
    # test_rechunk_warning: N = 20.
    C("da-warning", (20, 20, 100), (1, 20, 100), (20, 1, 100), f8),
    # test_dont_concatenate_single_chunks.
    C("da-single-chunks", (4,), (4,), (2,), f8),
    C("da-single-chunks", (4, 4), (4, 4), (2, 2), f8),
    C("da-single-chunks", (4, 4), (4, 4), (4, 2), f8),
    # test_rechunk_empty_chunks: ((7,), (10, 0, 0, 9, 0, 5)) mapped to (7, 10).
    C("da-empty-chunks", (7, 24), (7, 10), (2, 3), f8),
    # test_rechunk_avoid_needless_chunking.
    C("da-needless", (16,), (2,), (8,), f8),
    # test_rechunk_auto_1d: (shape, old chunks) and the chunks dask's "auto" chose;
    # irregular old chunks mapped to their first block ((1, 1, 1, 1, 6, 2, 1, 7) -> 1,
    # (2, 2, 2, 9, 1, 2, 2) -> 2, (10, 11) -> 10, (1, 18, 1) -> 1, (10, 18, 10) -> 10);
    # (20, (1, 18, 1)) then duplicates (20, (1, 1, 1, 1, 6, 2, 1, 7)): kept once.
    C("da-auto-1d", (100,), (1,), (10,), f8),
    C("da-auto-1d", (100,), (50,), (10,), f8),
    C("da-auto-1d", (100,), (100,), (10,), f8),
    C("da-auto-1d", (20,), (7,), (7,), f8),
    C("da-auto-1d", (20,), (1,), (5,), f8),
    C("da-auto-1d", (21,), (1,), (10,), f8),
    C("da-auto-1d", (30,), (3,), (6,), f8),
    C("da-auto-1d", (20,), (2,), (4,), f8),
    C("da-auto-1d", (20,), (10,), (4,), f8),
    C("da-auto-1d", (21,), (10,), (4,), f8),
    C("da-auto-1d", (38,), (10,), (5,), f8),
    # test_normalize_chunks_auto_2d (int8): ((3,), (50, 30)) mapped to (3, 50).
    C("da-normalize-auto-2d", (3, 80), (1, 10), (3, 50), "int8"),
    C("da-normalize-auto-2d", (4, 20), (2, 20), (1, 5), "int8"),
    C("da-normalize-auto-2d", (2, 20), (1, 20), (1, 5), "int8"),
    # test_rechunk_auto_2d: (20, 20) from (2, 2); the last row's source
    # ((2,)*10, (2, 2, 2, 2, 2, 5, 5)) mapped to (2, 2).
    C("da-auto-2d", (20, 20), (2, 2), (20, 1), f8),
    C("da-auto-2d", (20, 20), (2, 2), (20, 4), f8),
    C("da-auto-2d", (20, 20), (2, 2), (10, 2), f8),
    C("da-auto-2d", (20, 20), (2, 2), (4, 2), f8),
    # test_rechunk_auto_3d: (20, 20, 20) (2, 2, 2) -> (10, 10, 2); the source relaxed to
    # (5, 5, 4) (80 chunks, not 1000) and the target's last dim kept equal to it.
    C("da-auto-3d", (20, 20, 20), (5, 5, 4), (10, 10, 4), f8),
    # test_rechunk_auto_image_stack (n = 100): (100, 1000, 1000) (1, 1000, 1000) ->
    # 10 frames (10 MiB, uint8), 7 frames (7 MiB), (1, 362, 362) (1 MiB, float64) and
    # from (n, 2000, 2000) (1, 1000, 1000). Frames shrunk to 50 x 50 (362 -> 18); the
    # float64 stacks to 8 and 2 frames.
    C("da-image-stack", (100, 50, 50), (1, 50, 50), (10, 50, 50), u1),
    C("da-image-stack", (100, 50, 50), (1, 50, 50), (7, 50, 50), u1),
    C("da-image-stack", (8, 50, 50), (1, 50, 50), (1, 18, 18), f8),
    C("da-image-stack", (2, 100, 100), (1, 50, 50), (1, 18, 18), f8),
    # test_rechunk_down: y = (100, 1000, 1000) uint8 in (10, 1000, 1000) ->
    # (4, 511, 511) ((511, 489) mapped to 511), (1, 1000, 1000), (10, 104, 1000).
    # Frames shrunk to 50 x 50 (511 -> 26, 104 -> 5), the stack to 40.
    C("da-down", (40, 50, 50), (10, 50, 50), (4, 26, 26), u1),
    C("da-down", (40, 50, 50), (10, 50, 50), (1, 50, 50), u1),
    C("da-down", (40, 50, 50), (10, 50, 50), (10, 5, 50), u1),
    # test_rechunk_zero: "auto" at a 1 B limit -> 1.
    C("da-zero", (10,), (5,), (1,), f8),
    # test_rechunk_bad_keys: zeros (2, 3, 4) chunks 1, {-1: 4} and {-3: 2}.
    C("da-bad-keys", (2, 3, 4), (1, 1, 1), (1, 1, 4), f8),
    C("da-bad-keys", (2, 3, 4), (1, 1, 1), (2, 1, 1), f8),
    # test_balance_*: arange sources (int64), balanced and unbalanced results.
    C("da-balance", (220,), (100,), (100,), i8),
    C("da-balance", (220,), (100,), (110,), i8),
    C("da-balance", (220,), (220,), (100,), i8),
    C("da-balance", (220,), (220,), (110,), i8),
    C("da-balance", (13,), (13,), (4,), i8),
    C("da-balance", (13,), (13,), (5,), i8),
    C("da-balance", (7,), (7,), (3,), i8),
    C("da-balance", (7,), (7,), (4,), i8),
    C("da-balance", (100,), (100,), (12,), i8),
    C("da-balance", (100,), (100,), (13,), i8),
    C("da-balance", (100,), (100,), (9,), i8),
    C("da-balance", (100,), (100,), (10,), i8),
    # test_balance_basics_2d / _2d_negative_dimension: (210, 210) float64, one chunk.
    C("da-balance-2d", (210, 210), (210, 210), (100, 100), f8),
    C("da-balance-2d", (210, 210), (210, 210), (105, 105), f8),
    C("da-balance-2d", (210, 210), (210, 210), (100, -1), f8),
    C("da-balance-2d", (210, 210), (210, 210), (105, -1), f8),
    # test_balance_split_into_n_chunks: a few (prime N, N // nchunks) pairs.
    C("da-balance-split", (991,), (991,), (141,), f8),
    C("da-balance-split", (1013,), (1013,), (77,), f8),
    C("da-balance-split", (1069,), (1069,), (56,), f8),
    # test_rechunk_with_zero: ((4, 4), (4, 0, 0, 4)) <-> (4, 4): the same grid.
    C("da-with-zero", (8, 8), (4, 4), (4, 4), f8),
    # test_intersect_chunks_with_nonzero / _with_zero: ((4, 4), (2,)) -> ((8,), (1, 1)),
    # ((4, 0, 0, 4), (1, 1)) (-> 4) and ((2, 0, 0, 2, 4), (1, 1)) (-> 2).
    C("da-intersect-zero", (8, 2), (4, 2), (8, 1), f8),
    C("da-intersect-zero", (8, 2), (4, 2), (4, 1), f8),
    C("da-intersect-zero", (8, 2), (4, 2), (2, 1), f8),
    # test_rechunk_non_perfect_slicing_of_dimensions (GH#7859): (200, 100, 1059) coarsened
    # by 2 -> (100, 50, 529) in (1, -1, -1), rechunked to (64, 64, 64). Dim 0 shrunk to 16.
    C("da-non-perfect", (16, 50, 529), (1, 50, 529), (64, 64, 64), f8),
    # test_rechunk_unknown_from_pandas / _with_fully_unknown_dimension / _partially_...
    # / _explicit / test_rechunk_unknown_from_array: the NaN chunks are the known ones
    # the test built from; (1000, 10) (5, 10) shrunk to (100, 10). The partially unknown
    # tests concatenate two such arrays (the same chunks on twice the rows): kept once.
    C("da-unknown", (50, 10), (25, 10), (25, 5), f8),
    C("da-unknown", (100, 10), (5, 10), (5, 5), f8),
    C("da-unknown", (10, 10), (10, 10), (10, 5), f8),
    C("da-unknown", (10, 10), (10, 2), (10, 5), f8),
    C("da-unknown", (10, 10), (5, 2), (5, 5), f8),
    C("da-unknown", (4, 4), (2, 2), (2, 4), f8),
]

CASES = RA + RR + DA
IDS = [c.id for c in CASES]
assert len(set(IDS)) == len(IDS), sorted(i for i in IDS if IDS.count(i) > 1)


def sharded(case: Case) -> tuple[int, ...] | None:
    """Shards of twice the chunk in every dim, when they fit the array (else None)."""
    shards = tuple(2 * c for c in case.expected_chunks)
    if not shards or any(s > n for s, n in zip(shards, case.shape, strict=True)):
        return None
    return shards


SHARDED = [c for c in CASES if sharded(c) is not None]


def source_values(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    values = np.arange(math.prod(shape)).astype(dtype).reshape(shape)
    if values.dtype.kind == "f" and values.size:
        flat = values.reshape(-1)
        flat[0] = -0.0
        flat[flat.size // 2] = np.nan
        flat[-1] = np.nan
    return values


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def make_source(path: Path, case: Case, zarr_format: int) -> np.ndarray:
    values = source_values(case.shape, case.dtype)
    zarr.create_array(path, data=values, chunks=case.source_chunks, zarr_format=zarr_format)
    return values


def run(
    case: Case,
    source: Path,
    target: Path,
    shards: tuple[int, ...] | None,
    properties: list[tuple[str, object]],
) -> None:
    """Rechunk at the case's budget; once more at chunkwise's named minimum if refused."""
    try:
        rechunk(
            source, target, chunks=case.target_chunks, shards=shards, max_mem=case.budget, threads=2
        )
        return
    except ConstraintError as err:
        found = re.search(r"--max-mem (\d+(?:\.\d+)?\s*[KMGT]?i?B)\b", str(err))
        if found is None:
            raise
        minimum = parse_bytes(found.group(1))
    assert not target.exists(), "a refused run wrote to its target"
    properties.append(("max_mem_retry", minimum))
    rechunk(source, target, chunks=case.target_chunks, shards=shards, max_mem=minimum, threads=2)


def check(
    case: Case,
    tmp_path: Path,
    zarr_format: int,
    shards: tuple[int, ...] | None,
    properties: list[tuple[str, object]],
) -> None:
    source, target = tmp_path / "source.zarr", tmp_path / "target.zarr"
    values = make_source(source, case, zarr_format)
    before = snapshot(source)

    run(case, source, target, shards, properties)

    result = zarr.open_array(target, mode="r")
    assert result.shape == case.shape
    assert result.dtype == values.dtype
    assert result.chunks == case.expected_chunks
    # The target keeps the source's Zarr format; sharding needs v3.
    assert result.metadata.zarr_format == (3 if shards is not None else zarr_format)
    if shards is not None:
        assert result.shards == shards
    got = np.asarray(result[...])
    assert got.tobytes() == values.tobytes(), "target values differ from the source's"
    assert snapshot(source) == before, "the source store changed"
    left = list(tmp_path.rglob(MARKER + "*"))
    assert not left, f"working files left behind: {left}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_peer_case(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # Sources alternate between Zarr v2 and v3; the target keeps the source's format.
    zarr_format = 2 + CASES.index(case) % 2
    check(case, tmp_path, zarr_format, None, request.node.user_properties)


@pytest.mark.parametrize("case", SHARDED, ids=[c.id for c in SHARDED])
def test_peer_case_sharded(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # The other format than the unsharded run's source; the sharded target is Zarr v3.
    zarr_format = 3 - CASES.index(case) % 2
    check(case, tmp_path, zarr_format, sharded(case), request.node.user_properties)


# Cases compared with dask itself: dask.array.from_zarr(source).rechunk(target chunks).
DASK_CASES = [
    C("da-2d", (10, 30), (1, 5), (5, 15), f8),  # test_rechunk_2d, (1, 2, 3, 4) mapped to 1
    C("da-minus-one", (24, 24), (4, 8), (-1, 8), f8),  # test_rechunk_minus_one
    C("da-auto-1d", (38,), (10,), (5,), f8),  # test_rechunk_auto_1d, (10, 18, 10) -> 10
]


@pytest.mark.parametrize("case", DASK_CASES, ids=[c.id for c in DASK_CASES])
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_same_values_as_dask(
    case: Case, zarr_format: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import dask
    import dask.array as da

    source, target = tmp_path / "source.zarr", tmp_path / "target.zarr"
    make_source(source, case, zarr_format)
    run(case, source, target, None, request.node.user_properties)

    with dask.config.set(scheduler="synchronous"):
        theirs = da.from_zarr(str(source)).rechunk(case.target_chunks)
        expected = theirs.compute()
    ours = zarr.open_array(target, mode="r")
    assert np.asarray(ours[...]).tobytes() == expected.tobytes()
    # dask's first block in each dim is the Zarr chunk of the same request.
    assert tuple(c[0] for c in theirs.chunks) == ours.chunks
