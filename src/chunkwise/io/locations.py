"""Where a source or target really is, so that chunkwise never writes into its source.

A user can name one place in many ways: ``maps.zarr``, ``./maps.zarr/``,
``file:///home/me/maps.zarr``, a symlink to it, a bind mount of its folder,
``s3://bucket//maps.zarr/``. :func:`resolve_location` turns each into a
:class:`Location` (resolved path components plus, for what exists locally, the device
and inode of the place and of every folder above it), and :func:`check_apart` refuses a
target that is the source, lies inside it or contains it, *before* anything is created
or deleted. :func:`check_target_name` refuses targets no run may ever replace: an empty
name (an unset ``$OUT`` in a script), the current folder or one above it, the home
folder, a filesystem root, and the kernel's virtual filesystems.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from chunkwise.errors import SpecError

__all__ = ["Location", "check_apart", "check_target_name", "resolve_location", "source_paths"]

#: Kernel filesystems that hold no user data: nothing is ever written under them.
VIRTUAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


@dataclass(frozen=True, slots=True)
class Location:
    """One place, resolved.

    Attributes
    ----------
    scheme
        ``"file"`` for local paths, else the URL scheme (``"s3"``, ``"https"``, ...);
        ``"memory"`` for in-process stores.
    parts
        Path components: of the real path (symlinks followed) for local places; the
        host or bucket then the key prefix for URLs.
    inodes
        ``(device, inode)`` of the place, when it exists locally.
    ancestors
        ``(device, inode)`` of every existing folder above the place, nearest first.
    """

    scheme: str
    parts: tuple[str, ...]
    inodes: tuple[int, int] | None = None
    ancestors: tuple[tuple[int, int], ...] = ()

    def contains(self, other: Location) -> bool:
        """Whether ``other`` is this place or lies inside it (by path, or by inode when
        both exist locally: bind mounts and case-insensitive names share inodes)."""
        if self.scheme == "memory" or other.scheme != self.scheme:
            return False
        if other.parts[: len(self.parts)] == self.parts:
            return True
        if self.inodes is None:
            return False
        return self.inodes == other.inodes or self.inodes in other.ancestors


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _local(path: Path) -> Location:
    real = Path(os.path.realpath(path))
    above = []
    for parent in real.parents:
        found = _identity(parent)
        if found is not None:
            above.append(found)
    return Location("file", real.parts, _identity(real), tuple(above))


def _strip_fragment(url: str) -> str:
    """``store.zarr#group/array`` -> ``store.zarr``: the whole store is the source."""
    if "#" in url and ("://" in url or not Path(url).expanduser().exists()):
        return url.rpartition("#")[0]
    return url


def resolve_location(url: str) -> Location:
    """Resolve a path or URL (``file://``, ``zip://``, ``s3://``, ``memory://``, ...).

    Local paths are made absolute against the current folder, ``~`` is expanded and
    symlinks are followed (for the part of the path that exists). A ``#inner`` member
    path is dropped: the store around it is the place.
    """
    text = _strip_fragment(url.strip())
    if text.startswith("memory://"):
        return Location("memory", ())
    for local in ("file://", "zip://"):
        if text.startswith(local):
            return _local(Path(text.removeprefix(local)).expanduser())
    if "://" in text:
        parts = urlsplit(text)
        keys = tuple(p for p in parts.path.split("/") if p and p != ".")
        return Location(parts.scheme.lower(), (parts.netloc, *keys))
    return _local(Path(text).expanduser())


def source_paths(url: str) -> list[str]:
    """The places a source occupies: its store, file or folder; each file of a glob."""
    text = _strip_fragment(url.strip())
    local = text.removeprefix("file://")
    if "://" not in local and glob.has_magic(local) and not Path(local).exists():
        return sorted(glob.glob(os.path.expanduser(local))) or [text]
    return [text]


def check_apart(source: str, target: str) -> None:
    """Refuse a target that is the source, is inside it, or contains it.

    Raises
    ------
    SpecError
        Naming both as given and where they resolve to.
    """
    dst = resolve_location(target)
    for place in source_paths(source):
        src = resolve_location(place)
        if src.contains(dst) or dst.contains(src):
            where = "/".join(dst.parts).replace("//", "/") if dst.scheme == "file" else target
            raise SpecError(
                f"target {target!r} ({where}) overlaps the source {source!r}; chunkwise never "
                "writes into, over or around its source: choose a separate directory."
            )


def check_target_name(target: str) -> None:
    """Refuse targets that no run may create or replace.

    Raises
    ------
    SpecError
        For an empty name, the current folder or a folder above it, the home folder, a
        filesystem root, or a place under ``/proc``, ``/sys`` or ``/dev``.
    """
    if not target.strip():
        raise SpecError(
            f"target {target!r} is empty (is a shell variable unset?); give a new directory "
            "name, like out.zarr."
        )
    location = resolve_location(target)
    if location.scheme != "file":
        if location.scheme != "memory" and not location.parts[0]:
            raise SpecError(f"target {target!r} names no bucket or host; give s3://bucket/prefix.")
        return
    path = Path(*location.parts)
    if path == Path(path.anchor):
        raise SpecError(
            f"target {target!r} is the filesystem root; give a new directory name, like out.zarr."
        )
    here = _local(Path.cwd())
    if location.contains(here):
        raise SpecError(
            f"target {target!r} is the current directory or one above it; give a new "
            "directory name, like out.zarr."
        )
    home = Path.home()
    if location.contains(_local(home)):
        raise SpecError(
            f"target {target!r} is your home directory or one above it; give a new directory "
            "name, like ~/out.zarr."
        )
    for root in VIRTUAL_ROOTS:
        if path == root or root in path.parents:
            raise SpecError(
                f"target {target!r} is under {root}, a kernel filesystem that holds no data; "
                "give a directory on a disk, like ./out.zarr."
            )
