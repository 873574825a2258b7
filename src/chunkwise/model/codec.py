"""Codecs as users name them, and what they cost.

A codec is written as a short string everywhere a user names one::

    blosc:zstd:5:shuffle   blosc:lz4:1:bitshuffle   zstd:3   gzip:6   none

optionally followed by ``+crc32c``, a CRC-32C checksum appended to every chunk after
compression (zarr format 3's ``crc32c`` codec; a corrupted chunk then fails to read
instead of decoding into wrong values)::

    blosc:zstd:5:shuffle+crc32c   zstd:3+crc32c   none+crc32c

or as zarr codec JSON (a v3 ``{"name": ..., "configuration": ...}`` object or list,
or a v2 numcodecs ``{"id": ...}`` object). Both parse to one :class:`CodecSpec`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from chunkwise.errors import SpecError, shown

__all__ = [
    "BLOSC_CNAMES",
    "CHECKSUM_SUFFIX",
    "CRC32C_BYTES",
    "DEFAULT_CODEC",
    "CRC32C_DECODE_Bps",
    "CRC32C_ENCODE_Bps",
    "CodecProfile",
    "CodecSpec",
    "checksum_profile",
    "default_codec_profile",
    "parse_codec",
    "v2_checksum_message",
]

Kind = Literal["blosc", "zstd", "gzip", "none"]
Shuffle = Literal["noshuffle", "shuffle", "bitshuffle"]

BLOSC_CNAMES = ("lz4", "lz4hc", "blosclz", "zstd", "zlib", "snappy")
_SHUFFLES: tuple[Shuffle, ...] = ("noshuffle", "shuffle", "bitshuffle")
_SHUFFLE_NAMES: dict[str, Shuffle] = {name: name for name in _SHUFFLES}
_LEVEL_RANGE = {"blosc": (0, 9), "zstd": (-131072, 22), "gzip": (0, 9)}
_DEFAULT_LEVEL = {"blosc": 5, "zstd": 3, "gzip": 6}
_FORMS = (
    "'blosc:zstd:5:shuffle', 'blosc:lz4:1:bitshuffle', 'zstd:3', 'gzip:6' or 'none', "
    "optionally with '+crc32c'"
)
#: The short-form suffix that adds a crc32c checksum to a codec.
CHECKSUM_SUFFIX = "+crc32c"
#: Bytes the crc32c codec appends to every chunk.
CRC32C_BYTES = 4


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
    checksum
        ``True`` appends a CRC-32C of every compressed chunk (4 bytes), checked on every
        read: zarr format 3's ``crc32c`` codec, after the compressor.
    """

    kind: Kind
    cname: str | None = None
    level: int = 0
    shuffle: Shuffle | None = None
    checksum: bool = False

    def __str__(self) -> str:
        return self.short

    @property
    def short(self) -> str:
        """The canonical short string, e.g. ``blosc:zstd:5:shuffle`` or ``zstd:3+crc32c``."""
        if self.kind == "none":
            base = "none"
        elif self.kind == "blosc":
            base = f"blosc:{self.cname}:{self.level}:{self.shuffle}"
        else:
            base = f"{self.kind}:{self.level}"
        return base + CHECKSUM_SUFFIX if self.checksum else base

    def with_checksum(self, checksum: bool = True) -> CodecSpec:
        """This compressor with (or, given ``False``, without) the crc32c checksum."""
        return self if self.checksum == checksum else replace(self, checksum=checksum)

    def v3_codecs_json(self, itemsize: int) -> list[dict[str, Any]]:
        """The zarr v3 bytes-to-bytes codecs JSON, in order: the compressor (none for
        ``none``), then ``crc32c`` when :attr:`checksum` is set.

        Parameters
        ----------
        itemsize
            Bytes per array element (Blosc's ``typesize``).
        """
        compressor = self.v3_compressor_json(itemsize)
        out = [] if compressor is None else [compressor]
        if self.checksum:
            out.append({"name": "crc32c"})
        return out

    def v3_compressor_json(self, itemsize: int) -> dict[str, Any] | None:
        """The zarr v3 compressor JSON, or ``None`` for no compression.

        The checksum, when set, is a codec of its own: see :meth:`v3_codecs_json`.
        """
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
        """The zarr v2 (numcodecs) compressor JSON, or ``None`` for no compression.

        Raises
        ------
        SpecError
            For a codec with :attr:`checksum`: chunkwise writes crc32c in zarr format 3 only.
        """
        if self.checksum:
            raise SpecError(v2_checksum_message(self))
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


def v2_checksum_message(codec: CodecSpec) -> str:
    """The one sentence refusing a checksummed codec in zarr format 2."""
    return (
        f"codec {codec.short!r} needs zarr format 3: zarr format 2 has no crc32c checksum "
        f"codec; use --zarr-format 3 (zarr_format: 3 in a spec), or drop {CHECKSUM_SUFFIX!r}."
    )


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
        raise SpecError(
            f"codec {shown(source)} has level {shown(level)}; the level must be an integer."
        )
    lvl = _DEFAULT_LEVEL[kind] if level is None else level
    low, high = _LEVEL_RANGE[kind]
    if not low <= lvl <= high:
        raise SpecError(
            f"codec {shown(source)} has level {shown(lvl)}; {kind} levels run from {low} to {high}."
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
    base, plus, suffix = text.partition("+")
    if not plus:
        return _parse_compressor(text, text)
    if suffix.strip().lower() != CHECKSUM_SUFFIX[1:]:
        raise SpecError(
            f"codec {text!r} has suffix '+{suffix.strip()}'; the only suffix is "
            f"{CHECKSUM_SUFFIX!r} (a checksum per chunk), written once, like 'zstd:3+crc32c'."
        )
    return _parse_compressor(base, text).with_checksum()


def _parse_compressor(part: str, text: str) -> CodecSpec:
    """The compressor part of a short string (``text`` is the whole string, for errors)."""
    parts = [p.strip().lower() for p in part.split(":")]
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
            "use blosc, zstd or gzip, optionally followed by crc32c."
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
        if ident == "crc32c":
            raise SpecError(
                f"codec JSON {source!r} uses numcodecs' crc32c, a zarr format 2 checksum chunkwise "
                "does not write; use zarr format 3, whose crc32c codec chunkwise models "
                "(a codec like 'zstd:3+crc32c')."
            )
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
        ``"blosc:zstd:5:shuffle"``, ``"zstd:3"``, ``"gzip:6"``, ``"none"``, each optionally
        with ``"+crc32c"``; a JSON string or mapping such as
        ``{"name": "zstd", "configuration": {"level": 3}}``; a list of v3 codecs
        (``bytes`` is skipped; ``{"name": "crc32c"}`` after the compressor sets the
        checksum); or ``None`` for no compression.

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
                    f"codec {shown(value)} looks like JSON but does not parse: {exc.msg}."
                ) from None
            except RecursionError:
                raise SpecError(
                    f"codec {shown(value)} nests lists or objects too deeply; a codec is one "
                    "JSON object or a short list of them."
                ) from None
            except ValueError:  # a number of more than 4,300 digits
                raise SpecError(
                    f"codec {shown(value)} holds a number too long to read; fix the level."
                ) from None
            return parse_codec(decoded)
        return _parse_short(text)
    if isinstance(value, Mapping):
        if _is_crc32c(value):
            return CodecSpec("none", checksum=True)
        spec = _from_json_object(value, value)
        return spec if spec is not None else CodecSpec("none")
    if isinstance(value, Sequence):
        return _from_json_list(value)
    raise SpecError(f"codec {value!r} is not understood; write it like {_FORMS}.")


def _is_crc32c(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("name", "")).lower() == "crc32c"


def _from_json_list(value: Sequence[Any]) -> CodecSpec:
    """A v3 codec list: at most one compressor, then optionally ``crc32c``."""
    found: list[CodecSpec] = []
    checksum = False
    for item in value:
        obj = _as_mapping(item, value)
        if _is_crc32c(obj):
            if checksum:
                raise SpecError(
                    f"codec list {value!r} has crc32c twice; chunkwise models one checksum per chunk."
                )
            checksum = True
            continue
        spec = _from_json_object(obj, value)
        if spec is None:
            continue
        if checksum:
            raise SpecError(
                f"codec list {value!r} checksums before compressing ({spec.short} after crc32c); "
                "chunkwise models the checksum of the compressed bytes, so put crc32c last."
            )
        found.append(spec)
    if len(found) > 1:
        raise SpecError(
            f"codec list {value!r} has {len(found)} compressors; chunkwise models one compressor per array."
        )
    return (found[0] if found else CodecSpec("none")).with_checksum(checksum)


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


# crc32c throughput on one core, in bytes going into the checksum (the compressor's output)
# per second, measured on the reader it describes by benchmarks/bench_checksum.py (RESULTS.md,
# "Checksums"): zarr-python 3.1.6's Crc32cCodec (google-crc32c 1.9) through the batched
# encode/decode its codec pipeline awaits, 1 MiB chunks of blosc:zstd:5:shuffle output, each
# chunk coming from memory ("cold", as after a read from storage, not from the CPU caches).
# Encode is the CRC plus appending it, which copies the chunk; decode is the CRC and the
# compare. The run in RESULTS.md measured 4,630 MB/s encode and 8,101 MB/s decode (16 MiB
# chunks: 5,503 and 11,224); we take 4,200 and 6,700 MB/s, the slowest 1 MiB figures of four
# runs on that shared 2-core machine. The 4 bytes per chunk are counted by the cost model.
CRC32C_ENCODE_Bps = 4200 * _MB
CRC32C_DECODE_Bps = 6700 * _MB


def checksum_profile(profile: CodecProfile) -> CodecProfile:
    """``profile`` with a crc32c checksum after the compressor.

    The checksum runs over the compressed bytes, ``1 / ratio`` of the raw ones, so each
    raw byte costs ``1 / (ratio * CRC32C_ENCODE_Bps)`` seconds more to encode and
    ``1 / (ratio * CRC32C_DECODE_Bps)`` more to decode. The ratio is unchanged: the 4
    bytes per chunk (:data:`CRC32C_BYTES`) are counted per chunk by the cost model.

    Parameters
    ----------
    profile
        The compressor's profile (throughputs in uncompressed bytes per second, one core).

    Returns
    -------
    CodecProfile
        Same ratio and ``measured`` flag; slower encode and decode, bytes per second.
    """
    crc_encode_s = 1.0 / (profile.ratio * CRC32C_ENCODE_Bps)
    crc_decode_s = 1.0 / (profile.ratio * CRC32C_DECODE_Bps)
    return CodecProfile(
        profile.ratio,
        1.0 / (1.0 / profile.encode_Bps + crc_encode_s),
        1.0 / (1.0 / profile.decode_Bps + crc_decode_s),
        measured=profile.measured,
    )


def default_codec_profile(codec: CodecSpec) -> CodecProfile:
    """The assumed profile of ``codec`` when nothing has been measured (a codec with a
    checksum: its compressor's, through :func:`checksum_profile`)."""
    if codec.checksum:
        return checksum_profile(default_codec_profile(codec.with_checksum(False)))
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
