"""What does a crc32c checksum per chunk cost? The codec alone, then a real array.

Run:  .venv/bin/python benchmarks/bench_checksum.py [--repeats 11] [--array-repeats 15] [--write-results]

1. zarr-python's own ``Crc32cCodec``, called through the batched ``encode`` / ``decode``
   that zarr's codec pipeline awaits, one chunk of smooth float32 data per call (1 MiB
   and 16 MiB; the uncompressed bytes and the blosc:zstd:5:shuffle output, since the
   checksum runs after the compressor). Encode computes the CRC and appends it (a copy
   of the chunk); decode recomputes it, compares and slices it off. *Hot* passes the
   same chunk over and over (it stays in the CPU caches); *cold* passes 256 MiB of
   distinct chunks, so each comes from memory as it does after a read from storage: the
   cold figures are the ones a real read or write sees. Median over ``--repeats``
   passes, in MB/s of bytes going into the codec.
2. A 256 MiB float32 array in 1 MiB chunks on local disk (a temporary directory),
   blosc:zstd:5:shuffle with and without ``+crc32c``, created through chunkwise's adapter:
   wall and process CPU time (all threads) of writing it whole and of reading it whole
   (the files are in the page cache, so the read is CPU-bound, where a checksum shows
   most), median over ``--array-repeats`` runs. The two variants alternate run by run so
   drift hits both; on a small shared machine single wall times vary by 2x, CPU time less.
   Alongside, the cost model's prediction for the same two layouts on ``local-ssd``.

With ``--write-results`` the tables replace the checksum section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import zarr
from harness import machine, publish
from zarr.codecs import Crc32cCodec
from zarr.core.array_spec import ArrayConfig, ArraySpec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.buffer.cpu import Buffer
from zarr.core.dtype import UInt8

from chunkwise.cost.model import CostInputs, estimate_layout
from chunkwise.io.codecs import create_array
from chunkwise.model import ArraySpec as ChunkwiseArray
from chunkwise.model import Layout, parse_codec
from chunkwise.model.codec import default_codec_profile
from chunkwise.model.workload import Workload
from chunkwise.spec import parse_storage

MiB = 2**20
CHUNK_SIZES = (1 * MiB, 16 * MiB)
POOL_BYTES = 256 * MiB  # distinct chunks per cold pass: far more than the CPU caches hold
ARRAY_SHAPE = (64, 1024, 1024)  # 256 MiB of float32
ARRAY_CHUNKS = (16, 128, 128)  # 1 MiB
BASE = "blosc:zstd:5:shuffle"


def smooth(n_elements: int, seed: int = 0) -> np.ndarray[Any, Any]:
    """Smooth waves plus 2% noise, float32: compresses like real measurements."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 40.0, n_elements, dtype=np.float32)
    return (np.sin(x) + rng.normal(0.0, 0.02, n_elements)).astype(np.float32)


def _chunk_spec(nbytes: int) -> ArraySpec:
    """The chunk description the codec receives (it reads only ``prototype``)."""
    return ArraySpec(
        shape=(nbytes,),
        dtype=UInt8(),
        fill_value=0,
        config=ArrayConfig.from_dict({}),
        prototype=default_buffer_prototype(),
    )


async def _time_codec(payloads: list[bytes], repeats: int) -> tuple[list[float], list[float]]:
    """Seconds per pass over ``payloads``: encoding each, then decoding each."""
    codec = Crc32cCodec()
    spec = _chunk_spec(len(payloads[0]))
    buffers = [Buffer.from_bytes(p) for p in payloads]
    encode_s, decode_s = [], []
    for repeat in range(repeats):
        start = time.perf_counter()
        encoded = [(await codec.encode([(b, spec)]))[0] for b in buffers]
        middle = time.perf_counter()
        decoded = [(await codec.decode([(e, spec)]))[0] for e in encoded if e is not None]
        end = time.perf_counter()
        if repeat == 0:
            for payload, enc, dec in zip(payloads, encoded, decoded, strict=True):
                assert enc is not None and len(enc) == len(payload) + 4
                assert dec is not None and dec.to_bytes() == payload
        encode_s.append(middle - start)
        decode_s.append(end - middle)
    return encode_s, decode_s


def codec_rows(repeats: int) -> list[dict[str, Any]]:
    """Crc32cCodec throughput on raw and on compressed chunks of each size, the same chunk
    over and over (hot: it stays in the CPU caches) and a pool of distinct chunks (cold:
    every chunk comes from memory, as it does after a read from storage)."""
    rows = []
    blosc = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
    for size in CHUNK_SIZES:
        raws = [smooth(size // 4, seed=i).tobytes() for i in range(POOL_BYTES // size)]
        compressed = [bytes(blosc.encode(raw)) for raw in raws]
        for what, pool in (("raw float32", raws), (f"{BASE} output", compressed)):
            for cache, payloads in (("hot", pool[:1]), ("cold", pool)):
                asyncio.run(_time_codec(payloads, 1))  # warm-up
                enc, dec = asyncio.run(_time_codec(payloads, repeats))
                nbytes = sum(len(p) for p in payloads)
                row = {
                    "chunk": f"{size // MiB} MiB",
                    "input": what,
                    "cache": cache,
                    "bytes": len(payloads[0]),
                    "chunks": len(payloads),
                    "encode_MBps": nbytes / statistics.median(enc) / 1e6,
                    "decode_MBps": nbytes / statistics.median(dec) / 1e6,
                }
                rows.append(row)
                print(
                    f"crc32c {row['chunk']} {what}, {cache} ({len(payloads)} x "
                    f"{len(payloads[0]) / MiB:.2f} MiB): encode {row['encode_MBps']:,.0f} MB/s, "
                    f"decode {row['decode_MBps']:,.0f} MB/s"
                )
    return rows


def _stored_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.name != "zarr.json")


def array_rows(repeats: int) -> list[dict[str, Any]]:
    """Write and read a 256 MiB array with and without the checksum, alternating; wall
    and process CPU seconds (all threads), median over ``repeats`` runs."""
    spec = ChunkwiseArray.create(list(ARRAY_SHAPE), "float32", ["z", "y", "x"])
    data = smooth(int(np.prod(ARRAY_SHAPE)), seed=1).reshape(ARRAY_SHAPE)
    variants = (BASE, f"{BASE}+crc32c")
    layouts = {
        v: Layout.create(spec, ARRAY_CHUNKS, codec=parse_codec(v), zarr_format=3) for v in variants
    }
    times: dict[tuple[str, str], list[float]] = {}
    stored: dict[str, int] = {}
    root = Path(tempfile.mkdtemp(prefix="bench-checksum-"))
    try:
        for run in range(repeats + 1):  # run 0 warms up
            for variant in variants if run % 2 else variants[::-1]:
                path = root / f"{variant.replace(':', '_').replace('+', '_')}.zarr"
                shutil.rmtree(path, ignore_errors=True)
                arr = create_array(zarr.storage.LocalStore(path), spec, layouts[variant])
                wall, cpu = time.perf_counter(), time.process_time()
                arr[...] = data
                write = (time.perf_counter() - wall, time.process_time() - cpu)
                wall, cpu = time.perf_counter(), time.process_time()
                back = arr[...]
                read = (time.perf_counter() - wall, time.process_time() - cpu)
                if run == 0:
                    np.testing.assert_array_equal(back, data)
                    stored[variant] = _stored_bytes(path)
                    continue
                for key, value in zip(
                    ("write_s", "write_cpu_s", "read_s", "read_cpu_s"), (*write, *read), strict=True
                ):
                    times.setdefault((variant, key), []).append(value)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    storage = parse_storage("local-ssd")
    workload = Workload.from_spec(
        [{"op": "write", "weight": 0.5}, {"op": "scan", "weight": 0.5}], spec
    )
    rows = []
    for variant in variants:
        layout = layouts[variant]
        inputs = CostInputs(spec, storage, layout.codec, default_codec_profile(layout.codec))
        cost = estimate_layout(layout, workload, inputs)
        row: dict[str, Any] = {"codec": variant, "stored": stored[variant]}
        for key in ("write_s", "write_cpu_s", "read_s", "read_cpu_s"):
            row[key] = statistics.median(times[variant, key])
        row["pred_write_s"] = cost.seconds(workload.ops[0].name)
        row["pred_read_s"] = cost.seconds(workload.ops[1].name)
        rows.append(row)
        print(
            f"{variant}: write {row['write_s'] * 1e3:.0f} ms (CPU {row['write_cpu_s'] * 1e3:.0f} ms), "
            f"read {row['read_s'] * 1e3:.0f} ms (CPU {row['read_cpu_s'] * 1e3:.0f} ms), "
            f"{stored[variant]:,} bytes stored"
        )
    return rows


def _busy_note(load: tuple[float, float]) -> str:
    """A warning when other jobs kept the cores busy during the runs."""
    cores = os.cpu_count() or 1
    if max(load) <= cores:
        return ""
    return (
        f" The load average exceeded the {cores} cores: other jobs took CPU time from these "
        "runs, so the measured ratios below are mostly their noise; rerun on a quiet machine "
        "to compare them with the prediction."
    )


COLUMNS = ("write_s", "write_cpu_s", "read_s", "read_cpu_s", "pred_write_s", "pred_read_s")


def markdown(
    codec: list[dict[str, Any]],
    arrays: list[dict[str, Any]],
    repeats: int,
    array_repeats: int,
    load: tuple[float, float],
) -> str:
    n_chunks = int(np.prod([n // c for n, c in zip(ARRAY_SHAPE, ARRAY_CHUNKS, strict=True)]))
    lines = [
        "## Checksums: what crc32c per chunk costs",
        "",
        "Command: `.venv/bin/python benchmarks/bench_checksum.py "
        f"--repeats {repeats} --array-repeats {array_repeats} --write-results`. "
        f"Machine: {machine()}; zarr-python {zarr.__version__}, numcodecs {numcodecs.__version__}, "
        f"google-crc32c {importlib.metadata.version('google-crc32c')}; 1-minute load average "
        f"{load[0]:.1f} at the start and {load[1]:.1f} at the end (other jobs share the machine). "
        "zarr-python's `Crc32cCodec` through the batched `encode`/`decode` its codec pipeline "
        "awaits, one chunk of smooth float32 data per call: *hot* passes the same chunk again "
        f"and again (it stays in the CPU caches), *cold* passes {POOL_BYTES // MiB} MiB of "
        "distinct chunks (each comes from memory, as after a read from storage). Median of "
        f"{repeats} passes after a warm-up; MB/s of bytes into the codec (the checksum runs "
        "after the compressor, on its output).",
        "",
        "| chunk | codec input | cache | bytes per chunk | encode (CRC + append) | decode (verify) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in codec:
        lines.append(
            f"| {r['chunk']} | {r['input']} | {r['cache']} | {r['bytes']:,} | "
            f"{r['encode_MBps']:,.0f} MB/s | {r['decode_MBps']:,.0f} MB/s |"
        )
    lines += [
        "",
        f"A {'x'.join(map(str, ARRAY_SHAPE))} float32 array (256 MiB) in {n_chunks} chunks of "
        f"{'x'.join(map(str, ARRAY_CHUNKS))} (1 MiB), written whole and read whole on local disk "
        "(a temporary directory; reads come from the page cache, so they are CPU-bound, where a "
        "checksum shows most), created through `chunkwise.io.codecs.create_array`. "
        f"Median of {array_repeats} runs per variant, variants alternating; CPU is the process's "
        "CPU time over all threads, steadier than wall time on a shared machine. Predicted: "
        "chunkwise's cost model on `local-ssd` (zarr-python reader), with the crc32c constants "
        f"of `chunkwise.model.codec`.{_busy_note(load)}",
        "",
        "| codec | write | write CPU | read | read CPU | stored bytes | predicted write | "
        "predicted read |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in arrays:
        cells = " | ".join(f"{r[k] * 1e3:.0f} ms" for k in COLUMNS[:4])
        predicted = " | ".join(f"{r[k] * 1e3:.0f} ms" for k in COLUMNS[4:])
        lines.append(f"| {r['codec']} | {cells} | {r['stored']:,} | {predicted} |")
    base, crc = arrays
    extra = crc["stored"] - base["stored"]
    ratios = [f"{crc[k] / base[k]:.3f}x" for k in COLUMNS]
    measured = " | ".join(f"**{r}**" for r in ratios[:4])
    lines.append(
        f"| **+crc32c / without** | {measured} | "
        f"+{extra:,} ({extra / n_chunks:g} per chunk) | {' | '.join(ratios[4:])} |"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=11, help="passes per codec timing")
    parser.add_argument("--array-repeats", type=int, default=15, help="runs per array variant")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    codec = codec_rows(args.repeats)
    arrays = array_rows(args.array_repeats)
    load = (load_before, os.getloadavg()[0])
    section = markdown(codec, arrays, args.repeats, args.array_repeats, load)
    publish(section, write=args.write_results)


if __name__ == "__main__":
    main()
