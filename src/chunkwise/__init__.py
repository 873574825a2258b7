"""chunkwise: which chunks, shards and codecs should this Zarr array use?"""

__version__ = "0.1.0"
