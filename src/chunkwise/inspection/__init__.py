"""Walk a store and gather the facts that ``plan.findings`` judges
(:mod:`~chunkwise.inspection.store`, ``inspect_store``)."""
