"""The only code that imports zarr, numcodecs, fsspec or obstore."""
