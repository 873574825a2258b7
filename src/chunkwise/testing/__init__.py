"""Hypothesis strategies for property tests of chunkwise's planning model."""

from chunkwise.testing.strategies import DTYPES, array_specs, codec_specs, dim_cases, layouts

__all__ = ["DTYPES", "array_specs", "codec_specs", "dim_cases", "layouts"]
