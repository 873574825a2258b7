"""The keys chunkwise keeps in a target store beside the data: shared by the rechunk
executor, the target's safety checks and the source reader (which refuses to read a
store an unfinished run is still writing)."""

__all__ = ["MARKER_PREFIX", "RUN_RECORD"]

#: Where progress markers and the intermediate array live in the target store.
MARKER_PREFIX = ".chunkwise-rechunk"
#: The run record: which run a half-written target belongs to, and its phase.
RUN_RECORD = f"{MARKER_PREFIX}/run.json"
