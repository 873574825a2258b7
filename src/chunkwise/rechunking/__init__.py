"""Carry out ``plan.rechunk`` plans: local threads (:mod:`~chunkwise.rechunking.executor`,
``run_plan``) or Dask (:mod:`~chunkwise.rechunking.dask_executor`), ``convert`` from any
source (:mod:`~chunkwise.rechunking.convert`, ``run_conversion``), the read-back
verification, and the target's safety: the lease and run records
(:mod:`~chunkwise.rechunking.target`, :mod:`~chunkwise.rechunking.lease`)."""
