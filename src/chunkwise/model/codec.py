"""Codecs as users name them, and what they cost.

A codec is written as a short string everywhere a user names one::

    blosc:zstd:5:shuffle   blosc:lz4:1:bitshuffle   zstd:3   gzip:6   none

or as zarr codec JSON (a v3 ``{"name": ..., "configuration": ...}`` object or list,
or a v2 numcodecs ``{"id": ...}`` object). Both parse to one :class:`CodecSpec`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chunkwise.errors import SpecError

__all__ = [
    "BLOSC_CNAMES",
    "DEFAULT_CODEC",
    "CodecProfile",
    "CodecSpec",
    "default_codec_profile",
    "parse_codec",
]

Kind = Literal["blosc", "zstd", "gzip", "none"]
Shuffle = Literal["noshuffle", "shuffle", "bitshuffle"]

BLOSC_CNAMES = ("lz4", "lz4hc", "blosclz", "zstd", "zlib", "snappy")
_SHUFFLES: tuple[Shuffle, ...] = ("noshuffle", "shuffle", "bitshuffle")
_SHUFFLE_NAMES: dict[str, Shuffle] = {name: name for name in _SHUFFLES}
_LEVEL_RANGE = {"blosc": (0, 9), "zstd": (-131072, 22), "gzip": (0, 9)}
_DEFAULT_LEVEL = {"blosc": 5, "zstd": 3, "gzip": 6}
_FORMS = "'blosc:zstd:5:shuffle', 'blosc:lz4:1:bitshuffle', 'zstd:3', 'gzip:6' or 'none'"


@dataclass(frozen=True, slots=True)
class CodecSpec:
    """One compressor (with its byte-shuffle filter, for Blosc).

    Parameters
    ----------
    kind
        ``"blosc"``, ``"zstd"``, ``"gzip"`` or ``"none"``.
    cname
        Blosc's inner compressor (``"zstd"``, ``"lz4"``, ...); ``None`` otherwise.
    level
        Compression level; 0 for ``none``.
    shuffle
        Blosc's shuffle mode; ``None`` for other codecs.
    """

    kind: Kind
    cname: str | None = None
    level: int = 0
    shuffle: Shuffle | None = None

    def __str__(self) -> str:
        return self.short

    @property
    def short(self) -> str:
        """The canonical short string, e.g. ``blosc:zstd:5:shuffle``."""
        if self.kind == "none":
            return "none"
        if self.kind == "blosc":
            return f"blosc:{self.cname}:{self.level}:{self.shuffle}"
        return f"{self.kind}:{self.level}"

    def v3_compressor_json(self, itemsize: int) -> dict[str, Any] | None:
        """The zarr v3 bytes-to-bytes codec JSON, or ``None`` for no compression."""
        if self.kind == "none":
            return None
        if self.kind == "blosc":
            return {
                "name": "blosc",
                "configuration": {
                    "cname": self.cname,
                    "clevel": self.level,
                    "shuffle": self.shuffle,
                    "typesize": itemsize,
                    "blocksize": 0,
                },
            }
        if self.kind == "zstd":
            return {"name": "zstd", "configuration": {"level": self.level, "checksum": False}}
        return {"name": "gzip", "configuration": {"level": self.level}}

    def v2_compressor_json(self) -> dict[str, Any] | None:
        """The zarr v2 (numcodecs) compressor JSON, or ``None`` for no compression."""
        if self.kind == "none":
            return None
        if self.kind == "blosc":
            assert self.shuffle is not None
            return {
                "id": "blosc",
                "cname": self.cname,
                "clevel": self.level,
                "shuffle": _SHUFFLES.index(self.shuffle),
                "blocksize": 0,
            }
        if self.kind == "zstd":
            return {"id": "zstd", "level": self.level}
        return {"id": "gzip", "level": self.level}


def _make(
    kind: str, cname: str | None, level: int | None, shuffle: str | None, source: object
) -> CodecSpec:
    if kind not in ("blosc", "zstd", "gzip", "none"):
        raise SpecError(
            f"codec {source!r} uses unknown compressor {kind!r}; write it like {_FORMS}."
        )
    if kind == "none":
        return CodecSpec("none")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)):
        raise SpecError(f"codec {source!r} has level {level!r}; the level must be an integer.")
    lvl = _DEFAULT_LEVEL[kind] if level is None else level
    low, high = _LEVEL_RANGE[kind]
    if not low <= lvl <= high:
        raise SpecError(
            f"codec {source!r} has level {lvl}; {kind} levels run from {low} to {high}."
        )
    if kind == "blosc":
        cname = cname or "zstd"
        if cname not in BLOSC_CNAMES:
            raise SpecError(
                f"codec {source!r} names Blosc compressor {cname!r}; use one of {', '.join(BLOSC_CNAMES)}."
            )
        shuf = _SHUFFLE_NAMES.get(shuffle or "shuffle")
        if shuf is None:
            raise SpecError(
                f"codec {source!r} has shuffle {shuffle!r}; use noshuffle, shuffle or bitshuffle."
            )
        return CodecSpec("blosc", cname, lvl, shuf)
    return CodecSpec(kind, None, lvl, None)  # type: ignore[arg-type]


def _parse_short(text: str) -> CodecSpec:
    parts = [p.strip().lower() for p in text.split(":")]
    kind = parts[0]
    if kind in ("none", "null", "raw", "uncompressed", "bytes"):
        if len(parts) > 1:
            raise SpecError(f"codec {text!r}: 'none' takes no options.")
        return CodecSpec("none")
    if kind == "zlib":
        kind = "gzip"

    def level_of(token: str) -> int:
        try:
            return int(token)
        except ValueError:
            raise SpecError(
                f"codec {text!r} has level {token!r}, not an integer; write it like {_FORMS}."
            ) from None

    if kind == "blosc":
        if len(parts) > 4:
            raise SpecError(
                f"codec {text!r} has too many parts; write it like 'blosc:zstd:5:shuffle'."
            )
        cname = parts[1] if len(parts) > 1 else None
        level = level_of(parts[2]) if len(parts) > 2 else None
        shuffle = parts[3] if len(parts) > 3 else None
        return _make("blosc", cname, level, shuffle, text)
    if kind in ("zstd", "gzip"):
        if len(parts) > 2:
            raise SpecError(f"codec {text!r} has too many parts; write it like '{kind}:3'.")
        return _make(kind, None, level_of(parts[1]) if len(parts) > 1 else None, None, text)
    raise SpecError(f"codec {text!r} is not understood; write it like {_FORMS}.")


def _from_json_object(obj: Mapping[str, Any], source: object) -> CodecSpec | None:
    """One codec JSON object -> spec; ``None`` for serializer codecs like ``bytes``."""
    if "name" in obj:  # zarr v3
        name = str(obj["name"]).lower()
        conf = obj.get("configuration") or {}
        if name in ("bytes", "endian"):
            return None
        if name == "blosc":
            shuffle = conf.get("shuffle", "shuffle")
            if isinstance(shuffle, int):
                shuffle = _SHUFFLES[shuffle] if 0 <= shuffle < 3 else str(shuffle)
            return _make("blosc", conf.get("cname"), conf.get("clevel"), shuffle, source)
        if name in ("zstd", "gzip"):
            return _make(name, None, conf.get("level"), None, source)
        raise SpecError(
            f"codec JSON {source!r} uses zarr codec {name!r}, which chunkwise does not model; "
            f"use blosc, zstd or gzip."
        )
    if "id" in obj:  # zarr v2 / numcodecs
        ident = str(obj["id"]).lower()
        if ident == "blosc":
            shuffle = obj.get("shuffle", 1)
            shuf = (
                _SHUFFLES[shuffle]
                if isinstance(shuffle, int) and 0 <= shuffle < 3
                else str(shuffle)
            )
            return _make("blosc", obj.get("cname"), obj.get("clevel"), shuf, source)
        if ident in ("zstd", "gzip", "zlib"):
            return _make("gzip" if ident == "zlib" else ident, None, obj.get("level"), None, source)
        raise SpecError(
            f"codec JSON {source!r} uses numcodecs codec {ident!r}, which chunkwise does not model; "
            "use blosc, zstd or gzip."
        )
    raise SpecError(f"codec JSON {source!r} has neither 'name' (zarr v3) nor 'id' (zarr v2).")


def parse_codec(value: str | Mapping[str, Any] | Sequence[Any] | CodecSpec | None) -> CodecSpec:
    """Parse a codec from its short string or zarr codec JSON.

    Parameters
    ----------
    value
        ``"blosc:zstd:5:shuffle"``, ``"zstd:3"``, ``"gzip:6"``, ``"none"``; a JSON string or
        mapping such as ``{"name": "zstd", "configuration": {"level": 3}}``; a list of v3
        codecs (``bytes`` is skipped); or ``None`` for no compression.

    Returns
    -------
    CodecSpec
    """
    if isinstance(value, CodecSpec):
        return value
    if value is None:
        return CodecSpec("none")
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("{", "[")):
            try:
                decoded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SpecError(
                    f"codec {value!r} looks like JSON but does not parse: {exc.msg}."
                ) from None
            return parse_codec(decoded)
        return _parse_short(text)
    if isinstance(value, Mapping):
        spec = _from_json_object(value, value)
        return spec if spec is not None else CodecSpec("none")
    if isinstance(value, Sequence):
        found = [
            s
            for s in (_from_json_object(_as_mapping(v, value), value) for v in value)
            if s is not None
        ]
        if len(found) > 1:
            raise SpecError(
                f"codec list {value!r} has {len(found)} compressors; chunkwise models one compressor per array."
            )
        return found[0] if found else CodecSpec("none")
    raise SpecError(f"codec {value!r} is not understood; write it like {_FORMS}.")


def _as_mapping(item: object, source: object) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise SpecError(
            f"codec list {source!r} contains {item!r}, which is not a codec JSON object."
        )
    return item


DEFAULT_CODEC = CodecSpec("blosc", "zstd", 5, "shuffle")


@dataclass(frozen=True, slots=True)
class CodecProfile:
    """What a codec does to bytes and what it costs.

    Parameters
    ----------
    ratio
        Uncompressed / compressed bytes (>= 1 means it shrinks data).
    encode_Bps
        Encode throughput per core, uncompressed bytes per second.
    decode_Bps
        Decode throughput per core, uncompressed bytes per second.
    measured
        ``True`` when the numbers came from profiling the user's data.
    """

    ratio: float
    encode_Bps: float
    decode_Bps: float
    measured: bool = False

    def __post_init__(self) -> None:
        if not self.ratio > 0:
            raise SpecError(
                f"codec ratio {self.ratio!r} must be positive (uncompressed / compressed bytes)."
            )
        if not (self.encode_Bps > 0 and self.decode_Bps > 0):
            raise SpecError(
                "codec encode and decode throughputs must be positive bytes per second."
            )


_MB = 1e6
# Assumed defaults for typical smooth-plus-noise scientific data, one core. They rank codecs
# sensibly until `chunkwise bench` profiles the user's own data and replaces them.
_BLOSC_BASE: dict[str, tuple[float, float, float]] = {  # ratio at level 5 + shuffle, encode, decode
    "lz4": (1.25, 900 * _MB, 2000 * _MB),
    "lz4hc": (1.30, 90 * _MB, 2000 * _MB),
    "blosclz": (1.18, 900 * _MB, 2000 * _MB),
    "snappy": (1.18, 700 * _MB, 1500 * _MB),
    "zstd": (1.35, 230 * _MB, 900 * _MB),
    "zlib": (1.33, 60 * _MB, 350 * _MB),
}


def default_codec_profile(codec: CodecSpec) -> CodecProfile:
    """The assumed profile of ``codec`` when nothing has been measured."""
    if codec.kind == "none":
        return CodecProfile(1.0, 4000 * _MB, 4000 * _MB)
    if codec.kind == "blosc":
        assert codec.cname is not None
        ratio, enc, dec = _BLOSC_BASE[codec.cname]
        gain = ratio - 1.0
        gain *= {"noshuffle": 0.45, "shuffle": 1.0, "bitshuffle": 1.08}[codec.shuffle or "shuffle"]
        gain *= 1.0 + 0.03 * (codec.level - 5)
        if codec.level == 0:
            return CodecProfile(1.0, 3000 * _MB, 3000 * _MB)
        enc_scale = (
            2.0 ** ((5 - codec.level) / 2.0) if codec.cname in ("zstd", "zlib", "lz4hc") else 1.0
        )
        return CodecProfile(1.0 + max(gain, 0.01), enc * enc_scale, dec)
    if codec.kind == "zstd":
        level = codec.level
        gain = 0.20 * (1.0 + 0.03 * (level - 3))
        return CodecProfile(
            1.0 + max(gain, 0.01), 300 * _MB * 2.0 ** ((3 - level) / 2.0), 800 * _MB
        )
    gain = 0.25 * (1.0 + 0.02 * (codec.level - 6))
    return CodecProfile(
        1.0 + max(gain, 0.01), 40 * _MB * 2.0 ** ((6 - codec.level) / 3.0), 250 * _MB
    )
