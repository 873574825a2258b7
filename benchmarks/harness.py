"""What every benchmark shares: isolated worker processes with peak-RSS sampling, quiet
machines, the machine line, and writing one section of RESULTS.md.

A benchmark file holds its cases; this module holds how they are measured.

* **Isolated runs.** :func:`measure` runs ``python SCRIPT --worker JSON`` through a small
  launcher interpreter (Linux carries a process's high-water RSS across fork and exec, so a
  worker forked straight from a large parent would report the parent's RSS as its own),
  samples the RSS and CPU of the whole process tree every 20 ms, and reads the worker's
  result from its ``BENCH-RESULT`` line (:func:`report` writes it; :func:`begin` marks the
  start of the timed work and notes the worker's RSS after its imports).
* **Quiet machines.** :func:`measure_quietly` waits until other processes use under
  :data:`OTHER_LOAD_LIMIT` cores and measures again (at most :data:`RETRIES` times) when
  they were busy during the run; what it kept anyway is on the :class:`Run`.
* **Interleaved runs.** Benchmarks run their contenders round by round (one run of each
  per round), so a slow spell of the machine touches all of them alike.
* **Results.** :func:`publish` prints a section and, asked to, replaces the section with
  the same heading in ``benchmarks/RESULTS.md`` (:func:`write_section`).

Only the standard library is imported at the top, so workers start fast; ``psutil`` is
imported where the parent samples.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "RESULTS",
    "Run",
    "begin",
    "machine",
    "machine_line",
    "measure",
    "measure_quietly",
    "publish",
    "report",
    "wait_idle",
    "write_section",
]

RESULTS = Path(__file__).with_name("RESULTS.md")
RESULT_MARK = "BENCH-RESULT "
LAUNCHER_MARK = "BENCH-LAUNCHER "
#: How often the parent samples the worker tree's RSS and CPU, seconds.
SAMPLE_EVERY_S = 0.02
#: A worker running longer than this is killed, seconds.
RUN_TIMEOUT_S = 1800.0
#: Other processes may use this many cores during a run that is kept.
OTHER_LOAD_LIMIT = 0.25
#: Runs measured again, at most, when other processes were busy.
RETRIES = 3
#: How long to wait for a quiet machine before measuring anyway, seconds.
IDLE_WAIT_S = 300.0
GiB = 2**30


# -- results --------------------------------------------------------------------------------


def machine() -> str:
    """``x86_64, 2 cores, Python 3.11.7, Linux``."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()}"
    )


def machine_line() -> str:
    """:func:`machine` with the memory: ``x86_64, 2 cores, ..., Linux, 24 GiB RAM``."""
    import psutil

    return f"{machine()}, {psutil.virtual_memory().total / GiB:.0f} GiB RAM"


def write_section(section: str) -> Path:
    """Replace the section with ``section``'s heading (its first line) in RESULTS.md, or
    append it."""
    heading = section.splitlines()[0]
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)
    return RESULTS


def publish(section: str, *, write: bool) -> None:
    """Print ``section``; with ``write``, also put it into RESULTS.md."""
    print()
    print(section)
    if write:
        print(f"wrote {write_section(section)}")


# -- the worker side ------------------------------------------------------------------------

_STARTED: dict[str, int] = {}


def begin() -> float:
    """Mark the start of the timed work (noting the worker's RSS after its imports) and
    return ``time.perf_counter()``."""
    with open("/proc/self/statm") as statm:
        _STARTED["rss"] = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return time.perf_counter()


def report(result: dict[str, Any]) -> None:
    """Hand the worker's ``result`` (with ``work_s``) to the parent, with the RSS noted
    by :func:`begin` as ``start_rss``."""
    result["start_rss"] = _STARTED.get("rss", 0)
    print(RESULT_MARK + json.dumps(result), flush=True)


# -- the parent side ------------------------------------------------------------------------


@dataclass
class Run:
    """One measured worker run."""

    work_s: float
    process_s: float
    peak_tree: int
    peak_single: int
    kernel_maxrss: int  # the largest single process of the tree, by the kernel's count
    cpu_s: float  # CPU time of the whole tree
    other_cores: float  # CPU that other processes on the machine used meanwhile, in cores
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def peak(self) -> int:
        # Sampling can miss a short spike the kernel saw; the tree sum can exceed it.
        return max(self.peak_tree, self.kernel_maxrss)


#: Spawns the worker from a small interpreter and reports the kernel's view of it.
LAUNCHER = """
import json, resource, subprocess, sys
code = subprocess.call(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
info = {"maxrss": usage.ru_maxrss * 1024, "cpu_s": usage.ru_utime + usage.ru_stime}
print("BENCH-LAUNCHER " + json.dumps(info), flush=True)
sys.exit(code)
"""


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (every core, everything but idle)."""
    import psutil

    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0))


def measure(python: Path, script: Path, spec: dict[str, Any], *, name: str = "worker") -> Run:
    """Run ``python script --worker JSON(spec)`` in a fresh interpreter, sampling its
    process tree's RSS and CPU; ``name`` labels errors.

    Raises
    ------
    RuntimeError
        When the worker fails, prints no result, or runs over :data:`RUN_TIMEOUT_S`.
    """
    import psutil

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    worker = [str(python), str(script), "--worker", json.dumps(spec)]
    cmd = [sys.executable, "-I", "-S", "-c", LAUNCHER, *worker]
    me = psutil.Process()
    my_cpu, busy = sum(me.cpu_times()[:2]), busy_seconds()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peaks = {"tree": 0, "single": 0}
    cpu: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        try:
            launcher = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            try:
                procs = launcher.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            total = single = 0
            for p in procs:
                try:
                    with p.oneshot():
                        rss = p.memory_info().rss
                        cpu[p.pid] = sum(p.cpu_times()[:2])
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                total += rss
                single = max(single, rss)
            peaks["tree"] = max(peaks["tree"], total)
            peaks["single"] = max(peaks["single"], single)
            stop.wait(SAMPLE_EVERY_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        stdout, stderr = proc.communicate()
        raise RuntimeError(f"{name} ran over {RUN_TIMEOUT_S:.0f} s") from None
    finally:
        stop.set()
        sampler.join()
    process_s = time.perf_counter() - started
    other_s = busy_seconds() - busy - (sum(me.cpu_times()[:2]) - my_cpu)
    found = {
        mark: json.loads(line[len(mark) :])
        for line in stdout.splitlines()
        for mark in (RESULT_MARK, LAUNCHER_MARK)
        if line.startswith(mark)
    }
    if proc.returncode != 0 or RESULT_MARK not in found:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{name} exited with {proc.returncode}: {tail}")
    result, kernel = found[RESULT_MARK], found.get(LAUNCHER_MARK, {})
    tree_cpu_s = max(kernel.get("cpu_s", 0.0), sum(cpu.values()))
    return Run(
        work_s=result.pop("work_s"),
        process_s=process_s,
        peak_tree=peaks["tree"],
        peak_single=peaks["single"],
        kernel_maxrss=kernel.get("maxrss", 0),
        cpu_s=tree_cpu_s,
        other_cores=max(0.0, other_s - tree_cpu_s) / process_s,
        extra=result,
    )


def wait_idle(limit_s: float = IDLE_WAIT_S) -> float:
    """Wait until other processes use under :data:`OTHER_LOAD_LIMIT` cores over one
    second, at most ``limit_s``; return the load seen last, in cores."""
    import psutil

    me = psutil.Process()
    deadline = time.monotonic() + limit_s
    while True:
        mine, busy = sum(me.cpu_times()[:2]), busy_seconds()
        time.sleep(1.0)
        load = float(busy_seconds() - busy - (sum(me.cpu_times()[:2]) - mine))
        if load < OTHER_LOAD_LIMIT or time.monotonic() > deadline:
            return load


def measure_quietly(
    python: Path,
    script: Path,
    spec: dict[str, Any],
    *,
    name: str = "worker",
    before: Callable[[], None] = lambda: None,
) -> tuple[Run, int]:
    """:func:`measure` on an idle machine: wait for other processes to go quiet, and
    measure again (at most :data:`RETRIES` times) when they were busy during the run;
    ``before()`` runs before every attempt (to remove a previous attempt's output).
    Returns the run and how many runs were discarded."""
    discarded = 0
    while True:
        before()
        load = wait_idle()
        if load >= OTHER_LOAD_LIMIT:
            print(f"  machine still busy ({load:.2f} cores); measuring anyway", flush=True)
        run = measure(python, script, spec, name=name)
        if run.other_cores < OTHER_LOAD_LIMIT or discarded >= RETRIES:
            return run, discarded
        discarded += 1
        print(
            f"  discarded a {name} run: other processes used {run.other_cores:.2f} cores meanwhile",
            flush=True,
        )
