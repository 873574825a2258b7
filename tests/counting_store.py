"""A store wrapper for the tests that records which requests a piece of code makes."""

from __future__ import annotations

from typing import Any

from zarr.storage import WrapperStore


class Counting(WrapperStore[Any]):
    """Records every get and listing made of the wrapped store, as ``(op, key)``."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.calls: list[tuple[str, str]] = []

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        self.calls.append(("get", key))
        return await self._store.get(key, prototype, byte_range)

    def list(self) -> Any:
        self.calls.append(("list", ""))
        return self._store.list()

    def list_prefix(self, prefix: str) -> Any:
        self.calls.append(("list_prefix", prefix))
        return self._store.list_prefix(prefix)

    def list_dir(self, prefix: str) -> Any:
        self.calls.append(("list_dir", prefix))
        return self._store.list_dir(prefix)
