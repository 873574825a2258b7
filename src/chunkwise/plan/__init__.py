"""PURE: decisions from the model's prices — the layout search and ``make_advice`` with
its rationale (:mod:`~chunkwise.plan.advice`), rechunk plans within a memory budget
(:mod:`~chunkwise.plan.rechunk`), the inspect lint (:mod:`~chunkwise.plan.findings`)
and workload inference from traced reads (:mod:`~chunkwise.plan.infer`)."""
