"""Record what a user's code really reads: the tracing store, zarr selection hooks and
the script runner (:mod:`~chunkwise.tracing.trace`, ``tracing`` and ``run_script``)."""
