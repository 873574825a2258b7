"""The user's data: :mod:`~chunkwise.io.sources.readers` opens any supported source
(zarr, npy, HDF5/NetCDF, TIFF, MRC) lazily for rechunk and convert (``open_source``);
:mod:`~chunkwise.io.sources.data` loads data to benchmark, including the samples and the
synthetic generators (``load_data``)."""
