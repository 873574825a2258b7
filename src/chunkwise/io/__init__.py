"""Bytes in and out, shared by every verb: open a store from a URL or path
(:mod:`~chunkwise.io.stores`: directory, zip, memory, S3, HTTPS, emulated), read the
user's data (:mod:`~chunkwise.io.sources`), and turn chunkwise layouts into zarr arrays
and codecs (:mod:`~chunkwise.io.codecs`). Entry points: ``open_target``, ``open_source``,
``load_data``, ``create_array``."""
