"""The package version: a leaf every layer may import (``chunkwise.__version__``)."""

__version__ = "0.1.0"
