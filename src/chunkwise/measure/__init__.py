"""Measure on this machine: ``bench`` writes layouts and times the workload
(:mod:`~chunkwise.measure.benchmark`, ``benchmark``), through zarr-python, tensorstore
or zarrs (:mod:`~chunkwise.measure.readers`); ``calibrate``, ``probe`` and codec
profiling measure the constants the cost model prices. Result values live in
:mod:`~chunkwise.measure.results`."""
