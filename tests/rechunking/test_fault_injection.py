"""Fault injection: ``chunkwise rechunk`` killed at every kind of mutating operation and
rerun, concurrent runs, full and read-only disks, denied permissions, ext4 directory
orders, aliased paths and damaged source chunks.

The promises under test: the source is never modified; a run killed at any instant and
rerun with the same command ends with a bit-identical target and no run state left; a run
that exits 0 has a correct target; a second concurrent run is refused; ``--overwrite``
deletes only what is provably Zarr; bad input and I/O problems end in one sentence
(``Error: ...``, exit status 2), never a traceback. The children that kill themselves and
the fork server that starts them quickly are in ``faults.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorstore as ts
import zarr
from click.testing import CliRunner, Result
from faults import (
    NO_DAC,
    STATE,
    Fault,
    FaultKind,
    ForkServer,
    Outcome,
    bind_mount,
    error_line,
    exited,
    ext4,
    kill_points,
    leftovers,
    op_index,
    read_zarr,
    run_fresh,
    same_bits,
    snapshot,
    stamps,
    tmpfs,
)
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from chunkwise import api
from chunkwise.cli.main import cli
from chunkwise.errors import ChunkwiseError
from chunkwise.rechunking.convert import ConversionPlan

SHAPE = (32, 40, 36)
SOURCE_CHUNKS = (1, 40, 36)
LAYOUT = ["--chunks", "32,8,8", "--shards", "32,16,16"]
BUSY = "is being written by another chunkwise run"
FINISHED = "already holds the finished result of this command"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounts and dropped capabilities need root"
)

#: Kill points and reruns over the whole module, for the summary printed by each test.
TOTALS: dict[str, int] = {"kills": 0, "reruns": 0, "identical": 0, "steps": 0}


def values(shape: tuple[int, ...] = SHAPE, dtype: str = "float32", seed: int = 0) -> np.ndarray:
    """Random values with the bit patterns a careless copy loses: NaN (two payloads),
    -0.0 and infinities."""
    rng = np.random.default_rng(seed)
    out = (rng.standard_normal(shape) * 100).astype(dtype)
    if out.dtype.kind == "f":
        out.flat[:4] = [np.nan, -0.0, np.inf, -np.inf]
        bits = out.view(f"u{out.dtype.itemsize}")
        bits.flat[4] = bits.flat[0] | 1  # another NaN payload
    return out


def cli_outcome(result: Result) -> Outcome:
    """A :class:`CliRunner` result as an :class:`Outcome` (an exception that escaped the
    command counts as a traceback)."""
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += f"\nTraceback (escaped): {result.exception!r}"
    return Outcome(result.exit_code, result.stdout, stderr, (), False)


def invoke(*args: str, env: dict[str, str] | None = None) -> Outcome:
    return cli_outcome(CliRunner(env=env).invoke(cli, list(args)))


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: files with their bytes, folders and links by kind."""
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[key] = f"-> {os.readlink(path)}"
            elif path.is_dir():
                found[key] = "dir"
            else:
                found[key] = path.read_bytes()
    return found


def finished_problems(
    outcome: Outcome,
    target: Path,
    expected: dict[str, np.ndarray],
    source: Path,
    source_before: dict[str, bytes],
) -> list[str]:
    """What is wrong with a run that should have finished the target: exit status, values
    (bit for bit, dtype and shape), the source, and state left behind."""
    if outcome.status != 0:
        return [f"exit {outcome.status}: {outcome.stderr.strip()[-300:]}"]
    problems = []
    try:
        got = read_zarr(target)
    except Exception as exc:
        return [f"target unreadable: {exc!r}"]
    if got.keys() != expected.keys():
        problems.append(f"arrays {sorted(got)} instead of {sorted(expected)}")
    for name, want in expected.items():
        if name in got and not same_bits(got[name], want):
            problems.append(f"array {name or '(root)'!r} differs from the source")
    if snapshot(source) != source_before:
        problems.append("the source changed")
    if left := leftovers(target):
        problems.append(f"left behind: {left[:5]}")
    return problems


# ----------------------------------------------------------------------------- fixtures


@dataclass(frozen=True)
class Sources:
    """The module's sources (never modified: tests check that)."""

    root: Path
    array: Path  # zarr v2, SHAPE float32 in SOURCE_CHUNKS
    group: Path  # zarr v3 group of three arrays
    two_pass_budget: str  # a --max-mem for which the array's plan has two passes


def find_two_pass_budget(source: Path) -> str:
    """The largest --max-mem (in 256 KiB steps) for which the plan has two passes: the
    smallest valid budget must give two passes, and the largest leaves the most room
    between the projected and the measured peak."""
    found = None
    for kib in range(1024, 256 * 1024, 256):
        try:
            plan = api.rechunk(
                source, source.parent / "never.zarr", chunks=(32, 8, 8), shards=(32, 16, 16),
                max_mem=kib * 1024, dry_run=True,
            )  # fmt: skip
        except ChunkwiseError:
            continue
        assert isinstance(plan, ConversionPlan)
        stages = [s.name for s in plan.jobs[0].plan.stages]
        if stages != ["to-intermediate", "from-intermediate"]:
            break
        found = kib
    assert found is not None, "the smallest valid budget plans one pass"
    return f"{found}KiB"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    root = tmp_path_factory.mktemp("sources")
    array = root / "maps.zarr"
    zarr.create_array(array, data=values(), chunks=SOURCE_CHUNKS, zarr_format=2)
    group = root / "group.zarr"
    g = zarr.open_group(group, mode="w", zarr_format=3, attributes={"title": "three"})
    g.create_array("a", data=values(seed=1), chunks=SOURCE_CHUNKS, attributes={"units": "K"})
    g.create_array("b", data=values((32, 20, 36), "float64", seed=2), chunks=(8, 20, 36))
    ints = np.arange(np.prod(SHAPE), dtype="int16").reshape(SHAPE)
    g.create_array("c", data=ints, chunks=(32, 10, 36))
    return Sources(root, array, group, find_two_pass_budget(array))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    forks = ForkServer(tmp_path_factory.mktemp("forks"))
    yield forks
    forks.close()


# ----------------------------------------------------------------------------- kill sweeps


@dataclass
class Sweep:
    """One scenario killed at many operations and rerun.

    Attributes
    ----------
    cwd
        Where the commands run; every kill point gets its own target folder in it.
    command
        The command for a target name.
    expected
        The arrays the finished target must hold, by path.
    source
        The source folder (checked unchanged).
    prepare
        Makes a target's starting state (for ``--overwrite``: an old store to replace).
    """

    cwd: Path
    command: Callable[[str], list[str]]
    expected: dict[str, np.ndarray]
    source: Path
    prepare: Callable[[Path], None] = lambda target: None
    source_before: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.source_before = snapshot(self.source)

    def count(self, server: ForkServer) -> Outcome:
        """The counting pass: the scenario run without a fault, which must finish."""
        self.prepare(self.cwd / "count.zarr")
        outcome = server.run(self.command("count.zarr"), self.cwd)
        problems = finished_problems(
            outcome, self.cwd / "count.zarr", self.expected, self.source, self.source_before
        )
        assert not problems, problems
        assert outcome.ops, "the counting pass logged no operation"
        return outcome

    def run(
        self,
        server: ForkServer,
        faults: Sequence[Fault],
        *,
        after_kill: Callable[[Path], Any] = lambda target: None,
        after_rerun: Callable[[Path, Any], list[str]] = lambda target, state: [],
    ) -> list[str]:
        """Kill a fresh target at each fault, rerun the same command; returns the problems
        found (empty when every rerun finished bit-identical)."""
        names = [f"{f.kind}-{f.at}.zarr" for f in faults]
        for name in names:
            self.prepare(self.cwd / name)
        jobs = [(self.command(n), self.cwd, f) for n, f in zip(names, faults, strict=True)]
        killed = server.run_all(jobs)
        problems = []
        states = []
        for name, outcome in zip(names, killed, strict=True):
            if not (outcome.fired and outcome.killed):
                problems.append(f"{name}: the kill did not happen ({outcome.describe()})")
            if snapshot(self.source) != self.source_before:
                problems.append(f"{name}: the killed run changed the source")
            states.append(after_kill(self.cwd / name))
        TOTALS["kills"] += len(faults)
        reruns = server.run_all([(self.command(n), self.cwd, None) for n in names])
        for name, state, outcome in zip(names, states, reruns, strict=True):
            TOTALS["reruns"] += 1
            found = finished_problems(
                outcome, self.cwd / name, self.expected, self.source, self.source_before
            )
            if not found:
                found = after_rerun(self.cwd / name, state)
            TOTALS["identical"] += not found
            problems.extend(f"{name}: rerun: {p}" for p in found)
        return problems


#: The moments of an operation a child can be killed at (``kill-during``: ``set`` only).
MOMENTS: tuple[FaultKind, ...] = ("kill-before", "kill-during", "kill-after")


def kill_faults(ops: Sequence[str], points: Sequence[int] | None = None) -> list[Fault]:
    """Kills at the sampled operations: at every moment of the first three operations and
    the last one, at one moment (in rotation) of the others."""
    chosen = kill_points(len(ops)) if points is None else points
    faults = []
    for i, k in enumerate(chosen):
        writes = ops[k].split(" ", 2)[1].startswith("set")
        possible = [m for m in MOMENTS if writes or m != "kill-during"]
        every = k < 3 or k == len(ops) - 1
        faults += [Fault(m, k) for m in (possible if every else [possible[i % len(possible)]])]
    return faults


def report(name: str, faults: Sequence[Fault], ops: int) -> None:
    print(f"{name}: {ops} operations, {len(faults)} kill points; totals {TOTALS}")


def assert_none(problems: Sequence[str]) -> None:
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])


def tensorstore_read(path: Path) -> np.ndarray:
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}}
    return np.asarray(ts.open(spec, read=True).result().read().result())


def test_the_fork_server_is_faithful_to_a_fresh_interpreter(
    server: ForkServer, sources: Sources, tmp_path: Path
) -> None:
    """The children forked from the preloaded server behave as fresh processes: the same
    operations, and a kill there is resumed by the real console script."""
    command = ["rechunk", str(sources.array), "out.zarr", *LAYOUT, "--max-mem", "64MiB"]
    forked = server.run(command, tmp_path)
    shutil.rmtree(tmp_path / "out.zarr")
    fresh = run_fresh(command, tmp_path, tmp_path / "fresh-out")
    assert forked.status == fresh.status == 0, (forked.describe(), fresh.describe())

    def ops(outcome: Outcome) -> list[str]:
        return sorted(line.split(" ", 1)[1] for line in outcome.ops)

    assert ops(forked) == ops(fresh)
    shutil.rmtree(tmp_path / "out.zarr")
    done = op_index(forked.ops, lambda op, path: op == "set" and "/done-" in path)[0]
    killed = run_fresh(command, tmp_path, tmp_path / "fresh-kill", Fault("kill-before", done))
    assert killed.killed and killed.fired, killed.describe()
    assert (tmp_path / "out.zarr" / STATE / "run.json").exists()
    script = Path(sys.executable).with_name("chunkwise")
    rerun = subprocess.run(
        [str(script), *command], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert "already done (resumed)" in rerun.stdout
    assert same_bits(read_zarr(tmp_path / "out.zarr")[""], values())
    assert leftovers(tmp_path / "out.zarr") == []


@pytest.mark.slow
def test_one_pass_survives_a_kill_at_every_operation(
    server: ForkServer, sources: Sources, tmp_path: Path
) -> None:
    """(a) A lone zarr v2 array into sharded v3 in one pass; reruns read back bit-identical
    in zarr-python and tensorstore."""
    sweep = Sweep(
        tmp_path,
        lambda target: ["rechunk", str(sources.array), target, *LAYOUT, "--max-mem", "64MiB"],
        {"": values()},
        sources.array,
    )
    ops = sweep.count(server).ops
    assert op_index(ops, lambda op, path: "/copy/" in path), "expected a one-pass plan"
    faults = kill_faults(ops)

    def in_tensorstore(target: Path, state: Any) -> list[str]:
        if not same_bits(tensorstore_read(target), values()):
            return ["tensorstore reads other values"]
        return []

    problems = sweep.run(server, faults, after_rerun=in_tensorstore)
    report("one pass", faults, len(ops))
    assert_none(problems)


@pytest.mark.slow
def test_two_passes_survive_a_kill_at_every_operation(
    server: ForkServer, sources: Sources, tmp_path: Path
) -> None:
    """(b) The same array through an intermediate: the plan really has two passes."""
    budget = sources.two_pass_budget
    plan = tmp_path / "plan.zarr"
    command = ["rechunk", str(sources.array), str(plan), *LAYOUT, "--max-mem", budget]
    shown = invoke(*command, "--dry-run", "--json")
    assert shown.status == 0, shown.describe()
    (array,) = json.loads(shown.stdout)["arrays"]
    assert array["passes"] == 2
    assert [s["name"] for s in array["stages"]] == ["to-intermediate", "from-intermediate"]
    assert not plan.exists()
    sweep = Sweep(
        tmp_path,
        lambda target: ["rechunk", str(sources.array), target, *LAYOUT, "--max-mem", budget],
        {"": values()},
        sources.array,
    )
    ops = sweep.count(server).ops
    assert op_index(ops, lambda op, path: "/intermediate/" in path)
    faults = kill_faults(ops)
    problems = sweep.run(server, faults)
    report("two passes", faults, len(ops))
    assert_none(problems)


@pytest.mark.slow
def test_a_group_survives_kills_and_never_rewrites_a_finished_array(
    server: ForkServer, sources: Sources, tmp_path: Path
) -> None:
    """(c) A group of three arrays: an array whose done marker existed at the kill keeps
    its chunk files untouched (same inode and mtime) through the rerun."""
    group = zarr.open_group(sources.group, mode="r")
    expected = {name: np.asarray(a[...]) for name, a in group.arrays()}
    sweep = Sweep(
        tmp_path,
        lambda target: ["rechunk", str(sources.group), target, *LAYOUT, "--max-mem", "64MiB"],
        expected,
        sources.group,
    )
    ops = sweep.count(server).ops
    faults = kill_faults(ops)
    finished_at_kill = 0

    def finished_arrays(target: Path) -> dict[str, dict[str, tuple[int, int]]]:
        nonlocal finished_at_kill
        state = target / STATE / "arrays"
        done = {name for name in expected if list((state / name).glob("done-*"))}
        finished_at_kill += len(done)
        return {name: stamps(target / name) for name in done}

    def untouched(target: Path, state: dict[str, dict[str, tuple[int, int]]]) -> list[str]:
        return [
            f"finished array {name!r} was rewritten"
            for name, before in state.items()
            if {k: v for k, v in stamps(target / name).items() if k in before} != before
        ]

    problems = sweep.run(server, faults, after_kill=finished_arrays, after_rerun=untouched)
    report("group", faults, len(ops))
    assert finished_at_kill > 0, "no kill point found an array finished"
    assert_none(problems)


def old_store(target: Path) -> None:
    """A Zarr v3 array with other values and chunks, for --overwrite to replace."""
    zarr.create_array(target, data=values((20, 20, 20), "int16", seed=9), chunks=(10, 10, 10))


@pytest.mark.slow
def test_overwrite_survives_a_kill_during_the_replacement(
    server: ForkServer, sources: Sources, tmp_path: Path
) -> None:
    """(d) --overwrite replacing an existing Zarr array, killed at each of the
    replacement's deletions (and a sample of the operations after them): rerunning the
    same command finishes the replacement."""
    sweep = Sweep(
        tmp_path,
        lambda target: copy_command(sources.array, target, "--overwrite"),
        {"": values()},
        sources.array,
        prepare=old_store,
    )
    ops = sweep.count(server).ops
    # The run records itself as replacing (run.json, phase "replacing") before it deletes
    # anything, and as writing (run.json again) once the old store is gone.
    record = op_index(ops, lambda op, path: op == "set" and path.endswith(f"{STATE}/run.json"))
    deletions = list(range(record[0], record[1] + 1))
    assert len(deletions) >= 9, ops[: record[1] + 1]  # the old zarr.json and 8 chunks
    later = [k for k in kill_points(len(ops), sample=8, head=0, tail=3) if k > record[1]]
    faults = kill_faults(ops, [*deletions, *later])
    problems = sweep.run(server, faults)
    report("overwrite", faults, len(ops))
    assert_none(problems)


@pytest.mark.slow
def test_a_kill_after_the_final_clean_up_leaves_a_finished_target(
    server: ForkServer, sources: Sources, tmp_path: Path
) -> None:
    """Killed after the run record is deleted, or after the command returned: the rerun
    reports the finished result (exit 0) and writes nothing."""
    budget = sources.two_pass_budget
    source_before = snapshot(sources.array)

    def command(target: str) -> list[str]:
        return ["rechunk", str(sources.array), target, *LAYOUT, "--max-mem", budget]

    count = server.run(command("count.zarr"), tmp_path)
    assert count.status == 0, count.describe()
    (record_gone,) = op_index(
        count.ops, lambda op, path: op == "delete" and path.endswith(f"{STATE}/run.json")
    )
    problems: list[str] = []
    for fault in (Fault("kill-after", record_gone), Fault("kill-at-exit")):
        target = tmp_path / f"{fault.kind}.zarr"
        killed = server.run(command(target.name), tmp_path, fault)
        assert killed.killed and killed.fired, killed.describe()
        before = {k: v for k, v in snapshot(target).items() if not k.startswith(STATE)}
        rerun = server.run(command(target.name), tmp_path)
        TOTALS["kills"] += 1
        TOTALS["reruns"] += 1
        found = finished_problems(rerun, target, {"": values()}, sources.array, source_before)
        if FINISHED not in rerun.stdout:
            found.append(f"the rerun did not report the finished result: {rerun.stdout!r}")
        if snapshot(target) != before:
            found.append("the rerun wrote into the finished target")
        if writes := op_index(rerun.ops, lambda op, path: op.startswith("set")):
            found.append(f"the rerun wrote: {[rerun.ops[n] for n in writes]}")
        TOTALS["identical"] += not found
        problems.extend(f"{fault.kind}: {p}" for p in found)
    assert_none(problems)


# ----------------------------------------------------------------------------- state machine


@dataclass
class Context:
    server: ForkServer
    cwd: Path
    source: Path
    source_before: dict[str, bytes]
    model: np.ndarray
    budget: str
    examples: int = 0
    targets: int = 0
    #: What the rules did: kills, reruns, refused second runs, full disks hit.
    done: Counter[str] = field(default_factory=Counter)


def wait_for_pause(child_pid: int, signal_dir: Path, timeout: float = 60.0) -> bool:
    """Whether the child paused (else it ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (signal_dir / "paused").exists():
            return True
        if exited(child_pid):
            return (signal_dir / "paused").exists()
        time.sleep(0.01)
    raise AssertionError(f"child {child_pid} neither paused nor ended in {timeout} s")


#: Operation numbers for the state machine's faults: a fresh two-pass run makes about 60
#: operations, a resumed one fewer, one on a finished target a handful.
OP_NUMBERS = st.integers(0, 10) | st.integers(0, 60)


def machine(ctx: Context) -> type[RuleBasedStateMachine]:
    """Kills, reruns, concurrent runs and full disks on one target, against a numpy model."""

    class ResumeMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            ctx.examples += 1
            ctx.targets += 1
            self.name = f"machine-{ctx.targets}.zarr"
            self.target = ctx.cwd / self.name
            self.complete = False
            self.command = ["rechunk", str(ctx.source), self.name, *LAYOUT, "--max-mem",
                            ctx.budget]  # fmt: skip

        def finished(self, outcome: Outcome) -> None:
            problems = finished_problems(
                outcome, self.target, {"": ctx.model}, ctx.source, ctx.source_before
            )
            assert not problems, (problems, outcome.describe())
            self.complete = True

        def files_but_the_lock(self) -> dict[str, bytes]:
            """The target's files (the lock's heartbeat rewrites it)."""
            return {k: v for k, v in snapshot(self.target).items() if not k.endswith("/lock")}

        def settled_files(self) -> dict[str, bytes]:
            """:meth:`files_but_the_lock` once the paused run's writes already in flight
            have landed (the pause blocks zarr's event loop, but a file write handed to a
            worker thread just before it still completes): two equal snapshots 50 ms
            apart."""
            files = self.files_but_the_lock()
            for _ in range(100):
                time.sleep(0.05)
                again = self.files_but_the_lock()
                if again == files:
                    return files
                files = again
            raise AssertionError("the paused run kept writing for 5 s")

        @precondition(lambda self: self.complete)
        @rule()
        def new_target(self) -> None:
            """A finished target makes every later run a no-op: move on to a new one."""
            TOTALS["steps"] += 1
            ctx.targets += 1
            self.name = f"machine-{ctx.targets}.zarr"
            self.target = ctx.cwd / self.name
            self.command[2] = self.name
            self.complete = False

        @rule(k=OP_NUMBERS, moment=st.sampled_from(MOMENTS))
        def kill(self, k: int, moment: FaultKind) -> None:
            TOTALS["steps"] += 1
            outcome = ctx.server.run(self.command, ctx.cwd, Fault(moment, k))
            if outcome.fired:
                assert outcome.killed, outcome.describe()
                ctx.done["killed"] += 1
            else:  # the run made fewer operations: it finished
                self.finished(outcome)

        @rule()
        def rerun(self) -> None:
            TOTALS["steps"] += 1
            self.finished(ctx.server.run(self.command, ctx.cwd))
            ctx.done["reran"] += 1

        @rule(k=OP_NUMBERS, overwrite=st.booleans())
        def concurrent(self, k: int, overwrite: bool) -> None:
            """A second run (with --overwrite too) while the first holds the target."""
            TOTALS["steps"] += 1
            signal_dir = ctx.cwd / f"{self.name}-pause-{TOTALS['steps']}"
            signal_dir.mkdir()
            first = ctx.server.start(self.command, ctx.cwd, Fault("pause", k, str(signal_dir)))
            paused = wait_for_pause(first.pid, signal_dir)
            if paused:
                before = self.settled_files()
                extra = ["--overwrite"] if overwrite else []
                second = ctx.server.run([*self.command, *extra], ctx.cwd)
                assert BUSY in error_line(second)
                after = self.files_but_the_lock()
                assert after == before, "the refused run changed the target"
                ctx.done["refused"] += 1
                (signal_dir / "go").touch()
            outcome = ctx.server.wait(first)
            assert paused, f"the first run never held its lease: {outcome.describe()}"
            self.finished(outcome)

        @rule(k=OP_NUMBERS)
        def disk_full(self, k: int) -> None:
            TOTALS["steps"] += 1
            outcome = ctx.server.run(self.command, ctx.cwd, Fault("enospc", k))
            if outcome.fired:
                assert "no space left" in error_line(outcome).lower()
                ctx.done["disk full"] += 1
            else:
                self.finished(outcome)

        @invariant()
        def source_unchanged(self) -> None:
            assert snapshot(ctx.source) == ctx.source_before

    return ResumeMachine


@pytest.mark.slow
def test_kills_reruns_concurrent_runs_and_full_disks_keep_the_model(
    server: ForkServer, sources: Sources, tmp_path: Path
) -> None:
    ctx = Context(
        server, tmp_path, sources.array, snapshot(sources.array), values(),
        sources.two_pass_budget,
    )  # fmt: skip
    run_state_machine_as_test(
        machine(ctx),
        settings=settings(
            max_examples=15, stateful_step_count=6, deadline=None, derandomize=True,
            database=None,
        ),
    )  # fmt: skip
    print(
        f"state machine: {ctx.examples} examples, {ctx.targets} targets, {dict(ctx.done)}; "
        f"totals {TOTALS}"
    )
    assert {"killed", "reran", "refused", "disk full"} <= set(ctx.done), ctx.done


# ----------------------------------------------------------------------------- real faults


def copy_command(source: Path, target: Path | str, *extra: str) -> list[str]:
    return ["rechunk", str(source), str(target), *LAYOUT, "--max-mem", "64MiB", *extra]


@needs_root
def test_a_full_tmpfs_stops_the_run_with_one_sentence(sources: Sources, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "64k") as mount:
        outcome = invoke(*copy_command(sources.array, mount / "out.zarr"))
        assert "no space left" in error_line(outcome)


@needs_root
def test_freeing_space_lets_the_same_command_resume(sources: Sources, tmp_path: Path) -> None:
    before = snapshot(sources.array)
    with tmpfs(tmp_path / "disk", "4m") as mount:
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        ballast = mount / "ballast"
        ballast.write_bytes(b"\0" * (free - 48 * 1024))
        command = copy_command(sources.array, mount / "out.zarr")
        full = invoke(*command)
        assert "no space left" in error_line(full)
        ballast.unlink()
        outcome = invoke(*command)
        problems = finished_problems(
            outcome, mount / "out.zarr", {"": values()}, sources.array, before
        )
        assert not problems, (problems, outcome.describe())


@needs_root
def test_a_read_only_target_is_one_sentence(sources: Sources, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as mount:
        outcome = invoke(*copy_command(sources.array, mount / "out.zarr"))
        assert "read-only" in error_line(outcome)


def test_a_target_under_proc_is_one_sentence(sources: Sources) -> None:
    outcome = invoke(*copy_command(sources.array, "/proc/out.zarr"))
    assert "/proc" in error_line(outcome)


@pytest.fixture(scope="module")
def no_dac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    """A fork server whose children are root without the permission bypass."""
    if os.geteuid() != 0:
        pytest.skip("dropping capabilities needs root")
    probe = tmp_path_factory.mktemp("probe") / "secret"
    probe.write_text("x")
    probe.chmod(0)
    denied = subprocess.run([*NO_DAC, "cat", str(probe)], capture_output=True, check=False)
    assert denied.returncode != 0, "setpriv did not take away the permission bypass"
    forks = ForkServer(tmp_path_factory.mktemp("forks-no-dac"), prefix=NO_DAC)
    yield forks
    forks.close()


def v3_source(path: Path, compressors: Any = "auto", shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    data = values(shape, seed=3)
    zarr.create_array(path, data=data, chunks=(16, 20, 18), compressors=compressors)
    return data


def denied_source_folder(tmp_path: Path) -> tuple[list[str], str]:
    v3_source(tmp_path / "src.zarr")
    (tmp_path / "src.zarr").chmod(0)
    return copy_command(Path("src.zarr"), "out.zarr"), "src.zarr"


def denied_chunk(tmp_path: Path) -> tuple[list[str], str]:
    v3_source(tmp_path / "src.zarr")
    (tmp_path / "src.zarr" / "c" / "0" / "1" / "0").chmod(0)
    return copy_command(Path("src.zarr"), "out.zarr"), "c/0/1/0"


def denied_hdf5(tmp_path: Path) -> tuple[list[str], str]:
    import h5py

    with h5py.File(tmp_path / "data.h5", "w") as f:
        f.create_dataset("t", data=values(), chunks=(4, 40, 36))
    (tmp_path / "data.h5").chmod(0)
    return ["convert", "data.h5", "out.zarr"], "data.h5"


def denied_target_parent(tmp_path: Path) -> tuple[list[str], str]:
    v3_source(tmp_path / "src.zarr")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o555)
    return copy_command(Path("src.zarr"), "locked/out.zarr"), "locked"


def denied_target(tmp_path: Path) -> tuple[list[str], str]:
    v3_source(tmp_path / "src.zarr")
    (tmp_path / "out.zarr").mkdir()
    (tmp_path / "out.zarr").chmod(0o555)
    return copy_command(Path("src.zarr"), "out.zarr"), "out.zarr"


@needs_root
@pytest.mark.parametrize(
    "setup",
    [denied_source_folder, denied_chunk, denied_hdf5, denied_target_parent, denied_target],
    ids=["source-folder-000", "source-chunk-000", "hdf5-file-000", "target-parent-555",
         "target-555"],
)  # fmt: skip
def test_permission_denied_is_one_sentence(
    no_dac: ForkServer, tmp_path: Path, setup: Callable[[Path], tuple[list[str], str]]
) -> None:
    command, named = setup(tmp_path)
    try:
        outcome = no_dac.run(command, tmp_path)
        line = error_line(outcome)
        assert "permission denied" in line.lower()
        assert named in line
    finally:
        for folder, dirs, files in os.walk(tmp_path):
            for name in [*dirs, *files]:
                os.chmod(Path(folder, name), 0o755, follow_symlinks=False)


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize(
    "seed",
    ["0e4b2d3c-8d1f-4a55-9e2b-3f1c5d7a9b01", "b7c4e1f0-2a3d-4c5b-8e6f-7a8b9c0d1e2f",
     "5f3e2d1c-0b9a-4876-9543-210fedcba987"],
)  # fmt: skip
def test_clean_up_survives_kills_in_any_ext4_directory_order(
    server: ForkServer, sources: Sources, tmp_path: Path, seed: str
) -> None:
    """The two-pass run on ext4 file systems whose directory hash seeds differ (so folders
    list in different orders), killed at each operation of its final clean-up."""
    with ext4(tmp_path / "mnt", tmp_path / "fs.img", seed) as mount:
        budget = sources.two_pass_budget
        sweep = Sweep(
            mount,
            lambda t: ["rechunk", str(sources.array), t, *LAYOUT, "--max-mem", budget],
            {"": values()},
            sources.array,
        )
        ops = sweep.count(server).ops
        done = op_index(ops, lambda op, path: op == "set" and "/done-" in path)[0]
        (record_gone,) = op_index(
            ops, lambda op, path: op == "delete" and path.endswith(f"{STATE}/run.json")
        )
        faults = [Fault("kill-before", k) for k in range(done, record_gone + 1)]
        faults.append(Fault("kill-after", record_gone))
        problems = sweep.run(server, faults)
        report(f"ext4 {seed[:8]}", faults, len(ops))
    assert_none(problems)


# ----------------------------------------------------------------------------- aliasing


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder ``work`` holding ``data/maps.zarr`` and ``maps.zarr``, the
    current folder for the test, with sentinel files around it."""
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    for where in (tmp_path, work, work / "data"):
        (where / "sentinel.txt").write_text("keep me")
    zarr.create_array(work / "maps.zarr", data=values(), chunks=(8, 40, 36), zarr_format=2)
    shutil.copytree(work / "maps.zarr", work / "data" / "maps.zarr")
    monkeypatch.chdir(work)
    return work


OVERLAPS: list[tuple[str, str]] = [
    ("maps.zarr", "file://{work}/maps.zarr"),
    ("maps.zarr", "file://{work}/maps.zarr/inner.zarr"),
    ("maps.zarr", "maps.zarr/inner.zarr"),
    ("maps.zarr", "./maps.zarr/"),
    ("maps.zarr", "maps.zarr"),
    ("link.zarr", "maps.zarr/x"),
    ("maps.zarr", "alias.zarr"),
    ("maps.zarr", "deep/x.zarr"),
    ("data/maps.zarr", "data"),
    ("data/maps.zarr", "data/../data/maps.zarr"),
    ("data/maps.zarr", "data/nowhere/../maps.zarr/x"),
    ("maps.zarr", "../work/maps.zarr/x"),
    ("data/maps.zarr", "{work}/data/./maps.zarr"),
]


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize(("source", "target"), OVERLAPS)
def test_targets_that_overlap_the_source_are_refused(
    place: Path, source: str, target: str, overwrite: bool
) -> None:
    (place / "link.zarr").symlink_to("maps.zarr")
    (place / "alias.zarr").symlink_to(place / "maps.zarr")
    (place / "deep").symlink_to("maps.zarr")
    before = tree(place.parent)
    command = copy_command(Path(source), target.format(work=place))
    outcome = invoke(*command, *(["--overwrite"] if overwrite else []))
    assert "overlaps the source" in error_line(outcome)
    assert tree(place.parent) == before


@needs_root
@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("target", ["bind", "bind/maps.zarr", "bind/maps.zarr/x"])
def test_a_bind_mount_of_the_source_folder_is_seen_through(
    place: Path, target: str, overwrite: bool
) -> None:
    with bind_mount(place / "data", place / "bind"):
        before = tree(place / "data")
        command = copy_command(Path("data/maps.zarr"), target)
        outcome = invoke(*command, *(["--overwrite"] if overwrite else []))
        assert "overlaps the source" in error_line(outcome)
        assert tree(place / "data") == before


@pytest.mark.parametrize(
    ("target", "words"),
    [("", "empty"), (".", "current directory"), ("..", "current directory"), ("~", "home"),
     ("/", "root"), ("{parent}", "current directory"), ("~/", "home")],
)  # fmt: skip
def test_targets_no_run_may_replace_are_refused(place: Path, target: str, words: str) -> None:
    home = place.parent / "home"
    home.mkdir()
    (home / "sentinel.txt").write_text("keep me")
    zarr.create_array(home / "old.zarr", shape=(4,), dtype="int8")
    before = tree(place.parent)
    command = copy_command(Path("maps.zarr"), target.format(parent=place.parent), "--overwrite")
    outcome = invoke(*command, env={"HOME": str(home)})
    assert words in error_line(outcome)
    assert tree(place.parent) == before


def stray_notes(target: Path) -> str:
    target.mkdir()
    (target / "notes.txt").write_text("my notes")
    return "notes.txt"


def stray_in_zarr(target: Path) -> str:
    old_store(target)
    (target / "c" / "0" / "README.md").write_text("hi")
    return "c/0/README.md"


def symlink_in_zarr(target: Path) -> str:
    old_store(target)
    (target / "c" / "2").symlink_to(target.parent / "data")
    return "symlink"


@pytest.mark.parametrize("setup", [stray_notes, stray_in_zarr, symlink_in_zarr])
def test_overwrite_replaces_only_provable_zarr(place: Path, setup: Callable[[Path], str]) -> None:
    named = setup(place / "out.zarr")
    before = tree(place.parent)
    outcome = invoke(*copy_command(Path("maps.zarr"), "out.zarr", "--overwrite"))
    assert named in error_line(outcome)
    assert tree(place.parent) == before


# ----------------------------------------------------------------------------- corrupt chunks


CODECS: dict[str, Any] = {
    "zstd": [ZstdCodec()],
    "blosc-lz4": [BloscCodec(cname="lz4", clevel=5)],
    "uncompressed": None,
}


def flip(path: Path, count: int = 16) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("codec", [*CODECS, "zstd+crc32c"])
def test_a_truncated_source_chunk_is_named(tmp_path: Path, codec: str) -> None:
    compressors = [ZstdCodec(), Crc32cCodec()] if codec == "zstd+crc32c" else CODECS[codec]
    v3_source(tmp_path / "src.zarr", compressors)
    truncate(tmp_path / "src.zarr" / "c" / "0" / "1" / "0")
    before = snapshot(tmp_path / "src.zarr")
    outcome = invoke(*copy_command(tmp_path / "src.zarr", tmp_path / "out.zarr"))
    assert "'c/0/1/0'" in error_line(outcome)
    assert snapshot(tmp_path / "src.zarr") == before


def test_flipped_bytes_under_a_checksum_are_named(tmp_path: Path) -> None:
    v3_source(tmp_path / "src.zarr", [ZstdCodec(), Crc32cCodec()])
    flip(tmp_path / "src.zarr" / "c" / "1" / "0" / "1")
    outcome = invoke(*copy_command(tmp_path / "src.zarr", tmp_path / "out.zarr"))
    line = error_line(outcome)
    assert "'c/1/0/1'" in line and "source is damaged" in line


@pytest.mark.parametrize("codec", list(CODECS))
def test_flipped_bytes_without_a_checksum_are_copied_as_zarr_reads_them(
    tmp_path: Path, codec: str
) -> None:
    """Without a checksum nothing can tell flipped bytes from data: when zarr-python
    decodes the damaged chunk, chunkwise copies exactly what it decodes (and says
    "verified", which is true of the copy); when the codec fails on it, the chunk is
    named. Uncompressed data always decodes."""
    original = v3_source(tmp_path / "src.zarr", CODECS[codec])
    flip(tmp_path / "src.zarr" / "c" / "1" / "0" / "1")
    try:
        damaged: np.ndarray | None = np.asarray(zarr.open_array(tmp_path / "src.zarr")[...])
    except Exception:
        damaged = None
    if codec == "uncompressed":
        assert damaged is not None and not same_bits(damaged, original)
    outcome = invoke(*copy_command(tmp_path / "src.zarr", tmp_path / "out.zarr"))
    if damaged is None:
        assert "'c/1/0/1'" in error_line(outcome)
    else:
        assert outcome.status == 0, outcome.describe()
        assert "verified" in outcome.stdout
        assert same_bits(read_zarr(tmp_path / "out.zarr")[""], damaged)
