"""Run rechunk tasks on a Dask distributed cluster.

Every task is :func:`chunkwise.rechunking.executor.copy_task`: the worker reads its box from the
source itself and writes whole shards straight into the target store, so no array data
passes through the scheduler or the client; only a byte count comes back.

**Memory.** ``--max-mem`` is a budget *per worker process* (as in rechunker). The plan is
made for the workers' thread count, and the client pins every task to a worker and keeps
at most ``parallel`` tasks on each one, so no worker holds more than the plan's projected
peak, whatever its number of threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from chunkwise.errors import MissingDependencyError, SpecError

__all__ = ["DaskExecutor", "connect"]


@dataclass
class DaskExecutor:
    """A connected Dask client (and the local cluster started for it, if any).

    Attributes
    ----------
    client
        The ``distributed.Client``.
    address
        The scheduler's address, or ``local:N`` for a cluster started here.
    cluster
        The ``LocalCluster`` started for ``local:N``, else ``None``.
    rss_at_start
        Each worker's resident memory when :meth:`prepare` ran, bytes.
    """

    client: Any
    address: str
    cluster: Any = None
    rss_at_start: dict[str, int] = field(default_factory=dict)

    @property
    def workers(self) -> list[str]:
        """Worker addresses, in a stable order."""
        return sorted(self.client.scheduler_info()["workers"])

    @property
    def threads_per_worker(self) -> int:
        """The most threads any worker has."""
        info = self.client.scheduler_info()["workers"]
        return max((int(w.get("nthreads", 1)) for w in info.values()), default=1)

    def describe(self) -> str:
        """``Dask cluster tcp://... (2 workers x 1 thread)``."""
        n, t = len(self.workers), self.threads_per_worker
        where = "a local Dask cluster" if self.cluster is not None else f"Dask at {self.address}"
        return f"{where} ({n} worker{'s' * (n != 1)} x {t} thread{'s' * (t != 1)})"

    def prepare(self) -> None:
        """Tame every worker's allocator as the local executor does
        (:func:`chunkwise.rechunking.executor.tame_allocator`), load what the tasks use
        (:func:`~chunkwise.rechunking.executor.warm_up`), and start watching each worker's peak
        memory from its current resident memory."""
        from chunkwise.rechunking.executor import start_memory_watch, tame_allocator, warm_up

        self.client.run(tame_allocator)
        self.client.run(warm_up)
        self.rss_at_start = {
            worker: int(rss) for worker, rss in self.client.run(start_memory_watch).items()
        }

    def limit_memory(self, projected: int, task: int, region: int) -> None:
        """Set each worker's mmap threshold for tasks whose smallest region is ``region``
        bytes (:func:`chunkwise.rechunking.executor.mmap_threshold_for`), and have it trim
        its heap after a task once it holds more than ``trim_room(projected, task)`` bytes
        above its memory at :meth:`prepare`
        (:func:`chunkwise.rechunking.executor.trim_above`)."""
        from chunkwise.rechunking.executor import (
            mmap_threshold_for,
            precise_allocation,
            tame_allocator,
            trim_above,
            trim_room,
        )

        precise = precise_allocation(region)
        self.client.run(tame_allocator, mmap_threshold_for(region), precise)
        room = 0 if precise else trim_room(projected, task)
        for worker, start in self.rss_at_start.items():
            limit = start + room
            self.client.run(trim_above, limit, workers=[worker])

    def check_engine(self, engine: Any) -> None:
        """Raise :class:`~chunkwise.errors.MissingDependencyError` when a worker lacks
        the library of ``engine`` (a :class:`chunkwise.io.engines.Engine`)."""
        if engine.name != "zarrs":
            return
        found = self.client.run(_installed, "zarrs")
        missing = sorted(worker for worker, ok in found.items() if not ok)
        if missing:
            raise MissingDependencyError(
                f"--engine zarrs: the Dask worker{'s' * (len(missing) > 1)} "
                f"{', '.join(missing[:3])} cannot import zarrs; install 'chunkwise[zarrs]' "
                "there, or use --engine zarr."
            )

    def runner(
        self, fn: Callable[..., Any], items: Iterable[tuple[Any, ...]], parallel: int
    ) -> Iterator[Any]:
        """Run ``fn(*args)`` for every item: each task pinned to one worker, at most
        ``parallel`` in flight per worker; results as they complete."""
        from distributed import as_completed

        pending = iter(items)
        owner: dict[str, str] = {}
        running = as_completed()  # type: ignore[no-untyped-call]

        def submit(worker: str) -> None:
            args = next(pending, None)
            if args is None:
                return
            future = self.client.submit(
                fn, *args, workers=[worker], allow_other_workers=False, pure=False
            )
            owner[future.key] = worker
            running.add(future)  # type: ignore[no-untyped-call]

        for worker in self.workers:
            for _ in range(max(1, parallel)):
                submit(worker)
        for future in running:
            done = future.result()  # a failed task raises here, on the client
            worker = owner.pop(future.key)
            future.release()
            submit(worker)
            yield done

    def memory_peak(self) -> tuple[int, int]:
        """The largest peak resident memory of any worker process since :meth:`prepare`,
        and the largest rise of any worker above its memory then, bytes."""
        from chunkwise.rechunking.executor import peak_rss

        peaks = {worker: int(v) for worker, v in self.client.run(peak_rss).items()}
        start = self.rss_at_start
        rises = [peak - start.get(worker, peak) for worker, peak in peaks.items()]
        return max(peaks.values(), default=0), max(rises, default=0)

    def close(self) -> None:
        """Close the client, and the local cluster if this started one."""
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def connect(address: str, *, threads_per_worker: int = 1) -> DaskExecutor:
    """Connect to ``tcp://host:port`` (a running scheduler) or start ``local:N`` workers.

    Parameters
    ----------
    address
        ``tcp://host:port`` / ``tls://...`` of a scheduler, or ``local:N`` for a
        ``distributed.LocalCluster`` of ``N`` worker processes started (and stopped) here.
    threads_per_worker
        Threads of each local worker (``local:N`` only).

    Raises
    ------
    SpecError
        For an address of neither form, or a scheduler that cannot be reached.
    MissingDependencyError
        When dask.distributed is not installed.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MissingDependencyError(
            "--dask needs dask.distributed; install it with: pip install 'chunkwise[dask]'."
        ) from None
    text = address.strip()
    if text.startswith("local:"):
        count = text.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise SpecError(
                f"--dask {address!r} must name a positive number of workers, like local:2."
            )
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=int(count),
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=":0",
            memory_limit=0,  # the plan bounds memory; Dask's nanny must not spill or kill
        )
        return DaskExecutor(Client(cluster), text, cluster)  # type: ignore[no-untyped-call]
    if "://" not in text:
        raise SpecError(
            f"--dask {address!r} is not a scheduler address; use tcp://host:8786 or local:N."
        )
    try:
        client = Client(text, timeout="10s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise SpecError(
            f"the Dask scheduler at {address!r} cannot be reached ({exc}); start it or use "
            "--dask local:N."
        ) from None
    return DaskExecutor(client, text)
