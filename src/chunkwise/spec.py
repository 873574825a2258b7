"""Spec files: the user's description of an array, its workload and its storage.

A spec is YAML or JSON::

    array: {shape: [184, 630, 630], dtype: float32, dims: [z, y, x]}
    storage: local-ssd            # a preset, or {latency: 20ms, bandwidth: 200MB/s, concurrency: 16}
    reader: zarr-python           # the line installed here; or zarr-python-3.1, -3.4, tensorstore, zarrs
    workload:                     # a preset name, or a list of weighted operations
      - {op: plane, dims: [y, x], weight: 0.7}
      - {op: region, extent: {z: 64, y: 64, x: 64}, weight: 0.2}
      - {op: scan, weight: 0.1}
    constraints: {zarr_format: 2}
    codec: blosc:zstd:5:shuffle   # fix the codec; or codecs: [...] to choose among
    codec_profiles:               # measured numbers replace the assumed ones
      "blosc:zstd:5:shuffle": {ratio: 1.17, encode: 230MB/s, decode: 900MB/s}
    profile: calibration.yaml     # from chunkwise calibrate --out (or: cached)

This module turns such a mapping into validated model values once; nothing past it
sees raw user input. It does no I/O except :func:`load_spec` reading the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from chunkwise.errors import SpecError, shown
from chunkwise.io.installed import calibration_cache, installed_reader
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecProfile, CodecSpec, default_codec_profile, parse_codec
from chunkwise.model.constraints import ByteRange, Constraints
from chunkwise.model.layout import Layout
from chunkwise.model.storage import (
    READER_ALIASES,
    READER_PRESETS,
    STORAGE_PRESETS,
    ReaderProfile,
    StorageProfile,
)
from chunkwise.model.workload import Workload, preset_workload
from chunkwise.units import (
    finite_float,
    format_bytes,
    parse_bytes,
    parse_count,
    parse_duration,
    parse_rate,
)

__all__ = [
    "Problem",
    "load_profile",
    "load_spec",
    "parse_layout",
    "parse_reader",
    "parse_storage",
    "problem_from_spec",
]

_TOP_KEYS = {
    "array", "storage", "reader", "workload", "constraints", "codec", "codecs",
    "codec_profiles", "top", "name", "description", "candidates", "profile",
}  # fmt: skip


#: Largest spec file read: a spec is a short description (even a thousand candidate layouts
#: take well under 1 MiB), and YAML parses a few MiB per second.
MAX_SPEC_BYTES = 4 * 2**20
#: More digits than Python turns into an int (``sys.get_int_max_str_digits``); no size or
#: count is anywhere near that long.
_HUGE_NUMBER = re.compile(r"[0-9]{4301,}")


@dataclass(frozen=True)
class Problem:
    """A fully validated advise request."""

    array: ArraySpec
    workload: Workload
    storage: StorageProfile
    constraints: Constraints
    codecs: tuple[CodecSpec, ...]
    codec_profiles: Mapping[CodecSpec, CodecProfile]
    top: int
    candidates: tuple[Layout, ...] = ()


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON spec file into a mapping; errors name the file and the fix."""
    file = Path(path)
    if file.is_dir():
        raise SpecError(
            f"spec path {str(path)!r} is a directory; give the path of a YAML or JSON spec file."
        )
    if not file.is_file():
        raise SpecError(
            f"spec file {str(path)!r} does not exist; give the path of a YAML or JSON spec."
        )
    kind = "JSON" if file.suffix.lower() == ".json" else "YAML"
    try:
        size = file.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(
                f"spec file {str(path)!r} is {format_bytes(size)}, too big for a spec (at most "
                f"{format_bytes(MAX_SPEC_BYTES)}); check the path: a spec is a short YAML or JSON file."
            )
        raw = file.read_bytes()
    except OSError as exc:
        raise SpecError(
            f"spec file {str(path)!r} cannot be read ({exc.strerror or exc}); check its permissions."
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"spec file {str(path)!r} is not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x}); "
            f"save it as UTF-8 {kind}."
        ) from None
    huge = _HUGE_NUMBER.search(text)
    if huge is not None:
        line = text.count("\n", 0, huge.start()) + 1
        raise SpecError(
            f"spec file {str(path)!r} has a {huge.end() - huge.start()}-digit number at line {line}; "
            "no size or count is that large: fix the number."
        )
    try:
        data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except RecursionError:
        raise SpecError(
            f"spec file {str(path)!r} nests lists or mappings too deeply to read; a spec is a "
            "few levels deep, like the examples in chunkwise/examples."
        ) from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        elif isinstance(exc, json.JSONDecodeError):
            where = f" at line {exc.lineno}, column {exc.colno}"
        raise SpecError(
            f"spec file {str(path)!r} is not valid {kind}{where}; fix the syntax there."
        ) from None
    except ValueError as exc:  # e.g. a YAML date that does not exist: 2024-13-45
        raise SpecError(
            f"spec file {str(path)!r} has a value {kind} cannot turn into data ({exc}); fix it."
        ) from None
    if not isinstance(data, Mapping):
        raise SpecError(
            f"spec file {str(path)!r} must contain a mapping with at least an 'array' entry."
        )
    return dict(data)


def parse_reader(value: object) -> ReaderProfile:
    """A reader preset name or a mapping of reader settings."""
    if isinstance(value, ReaderProfile):
        return value
    if isinstance(value, str):
        key = value.strip().lower().replace("_", "-")
        if key in ("zarr", "zarr-python", "zarr-python3", "zarr-python-3", "installed"):
            key = installed_reader()
        key = READER_ALIASES.get(key, key)
        if key not in READER_PRESETS:
            raise SpecError(
                f"reader {shown(value)} is unknown; use one of {', '.join(READER_PRESETS)}, "
                "or zarr-python for the one installed here."
            )
        return READER_PRESETS[key]
    if isinstance(value, Mapping):
        known = {
            "name",
            "preset",
            "concurrency",
            "per_chunk_cpu",
            "per_call",
            "per_request",
            "sequential_inner_reads",
            "threads",
        }
        extra = sorted(set(value) - known, key=str)
        if extra:
            raise SpecError(
                f"reader setting(s) {', '.join(map(shown, extra))} unknown; use {', '.join(sorted(known))}."
            )
        base = parse_reader(_preset_name(value.get("preset", "installed"), "reader"))
        cpu = value.get("per_chunk_cpu")
        per_call = value.get("per_call")
        per_request = value.get("per_request")
        sequential = value.get("sequential_inner_reads", base.sequential_inner_reads)
        if not isinstance(sequential, bool):
            raise SpecError(
                f"reader sequential_inner_reads {shown(sequential)} must be true or false."
            )
        return replace(
            base,
            name=_name(value.get("name", base.name), "reader name"),
            concurrency=_int(value.get("concurrency", base.concurrency), "reader concurrency"),
            per_chunk_cpu_s=base.per_chunk_cpu_s
            if cpu is None
            else parse_duration(cpu, what="reader per_chunk_cpu"),
            per_call_s=base.per_call_s
            if per_call is None
            else parse_duration(per_call, what="reader per_call"),
            per_request_s=base.per_request_s
            if per_request is None
            else parse_duration(per_request, what="reader per_request"),
            sequential_inner_reads=sequential,
            threads=_int(value.get("threads", base.threads), "reader threads"),
        )
    raise SpecError(
        f"reader {shown(value)} must be a name ({', '.join(READER_PRESETS)}) or a mapping of settings."
    )


def _int(value: object, what: str) -> int:
    return parse_count(value, what=what)


def _name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{what} {shown(value)} must be text, like 'my-store'.")
    return value


def _preset_name(value: object, what: str) -> str:
    """A ``preset:`` inside a mapping names a preset; it is not itself a mapping."""
    if not isinstance(value, str):
        raise SpecError(f"{what} preset {shown(value)} must be a preset name.")
    return value


_STORAGE_KEYS = {
    "preset", "name", "kind", "latency", "bandwidth", "stream_bandwidth", "concurrency", "block_size",
    "object_bytes", "get_price", "put_price", "storage_price", "reader",
}  # fmt: skip


def parse_storage(value: object, reader: object = None) -> StorageProfile:
    """A storage preset name, or a mapping of custom values (optionally on top of a preset).

    A mapping without ``preset`` starts from ``s3`` when its latency is 5 ms or more
    (an object store; prices zero unless given) and from ``local-ssd`` otherwise.
    """
    if isinstance(value, StorageProfile):
        profile = value
    elif isinstance(value, str):
        key = value.strip().lower()
        if key not in STORAGE_PRESETS:
            raise SpecError(
                f"storage {shown(value)} is unknown; use one of {', '.join(STORAGE_PRESETS)} or a mapping like {{latency: 20ms, bandwidth: 200MB/s}}."
            )
        profile = STORAGE_PRESETS[key]
    elif isinstance(value, Mapping):
        extra = sorted(set(value) - _STORAGE_KEYS, key=str)
        if extra:
            raise SpecError(
                f"storage setting(s) {', '.join(map(shown, extra))} unknown; use {', '.join(sorted(_STORAGE_KEYS))}."
            )
        latency = (
            None
            if "latency" not in value
            else parse_duration(value["latency"], what="storage latency")
        )
        if "preset" in value:
            profile = parse_storage(_preset_name(value["preset"], "storage"))
            custom_base = False
        else:
            base = "s3" if latency is not None and latency >= 5e-3 else "local-ssd"
            profile = replace(
                STORAGE_PRESETS[base],
                get_usd_per_1000=0.0,
                put_usd_per_1000=0.0,
                storage_usd_per_gb_month=0.0,
                request_limit=None,  # a store of the user's own: no provider's limit known
            )
            custom_base = True
        changes: dict[str, Any] = {
            "name": _name(
                value.get("name", profile.name if not custom_base else "custom"), "storage name"
            )
        }
        if latency is not None:
            changes["latency_s"] = latency
        if "bandwidth" in value:
            bw = parse_rate(value["bandwidth"], what="storage bandwidth")
            changes["bandwidth_Bps"] = bw
            changes["stream_bandwidth_Bps"] = (
                bw if custom_base else min(profile.stream_bandwidth_Bps, bw)
            )
        if "stream_bandwidth" in value:
            changes["stream_bandwidth_Bps"] = parse_rate(
                value["stream_bandwidth"], what="storage stream_bandwidth"
            )
        if "concurrency" in value:
            changes["concurrency"] = _int(value["concurrency"], "storage concurrency")
        if "block_size" in value:
            changes["block_bytes"] = parse_bytes(value["block_size"], what="storage block_size")
        if "kind" in value:
            if value["kind"] not in ("filesystem", "object"):
                raise SpecError(
                    f"storage kind {shown(value['kind'])} must be 'filesystem' or 'object'."
                )
            changes["kind"] = value["kind"]
        if "object_bytes" in value:
            rng = ByteRange.parse(value["object_bytes"], "storage object_bytes")
            changes["object_bytes_min"] = rng.min_bytes or 0
            changes["object_bytes_max"] = rng.max_bytes if rng.max_bytes is not None else 2**62
        for key, field in (
            ("get_price", "get_usd_per_1000"),
            ("put_price", "put_usd_per_1000"),
            ("storage_price", "storage_usd_per_gb_month"),
        ):
            if key in value:
                price = finite_float(value[key])
                if price is None or price < 0:
                    raise SpecError(
                        f"storage {key} {shown(value[key])} must be a non-negative number of US dollars."
                    )
                changes[field] = price
        profile = replace(profile, **changes)
        if reader is None and "reader" in value:
            reader = value["reader"]
    else:
        raise SpecError(
            f"storage {shown(value)} must be a preset name ({', '.join(STORAGE_PRESETS)}) or a mapping of settings."
        )
    if reader is None and not isinstance(value, StorageProfile):
        reader = "installed"  # price the reader this machine runs, unless told otherwise
    if reader is not None:
        profile = profile.with_reader(parse_reader(reader))
    return profile


def _parse_array(raw: object) -> ArraySpec:
    if not isinstance(raw, Mapping):
        raise SpecError(
            "spec needs 'array', a mapping like {shape: [184, 630, 630], dtype: float32, dims: [z, y, x]}."
        )
    extra = sorted(set(raw) - {"shape", "dtype", "dims", "name"}, key=str)
    if extra:
        raise SpecError(
            f"array setting(s) {', '.join(map(shown, extra))} unknown; use shape, dtype and dims."
        )
    if "shape" not in raw or "dtype" not in raw:
        raise SpecError(
            "array needs shape and dtype, like {shape: [184, 630, 630], dtype: float32}."
        )
    return ArraySpec.create(raw["shape"], raw["dtype"], raw.get("dims"))


def _parse_workload(raw: object, array: ArraySpec) -> Workload:
    if isinstance(raw, str):
        return preset_workload(raw, array)
    if isinstance(raw, Mapping) and "preset" in raw:
        return preset_workload(_preset_name(raw["preset"], "workload"), array)
    if isinstance(raw, Sequence):
        return Workload.from_spec(raw, array)
    raise SpecError(
        "spec needs 'workload': a preset name such as slice-viewer, or a list of operations."
    )


_PROFILE_KEYS = {"reader", "codec_profiles", "calibration"}


def load_profile(value: object, reader: object = None) -> dict[str, Any]:
    """A calibration profile (``chunkwise calibrate``): a file, ``"cached"``, or a mapping.

    ``"cached"`` is the profile ``chunkwise calibrate`` keeps for ``reader`` (the spec's
    ``reader:``, a name or a mapping with a ``preset``), by default the reader installed
    here. The profile's ``reader`` applies unless the spec names a reader itself; its
    ``codec_profiles`` apply under the spec's own.
    """
    if value is None:
        return {}
    if isinstance(value, str) and value.strip().lower() == "cached":
        name = _cached_reader_name(reader)
        path = calibration_cache(name)
        if not path.is_file():
            option = "" if reader is None else f" --reader {name}"
            raise SpecError(
                f"no calibration of {name} is cached here ({path}); run chunkwise calibrate"
                f"{option} first, or give a profile file."
            )
        value = path
    if isinstance(value, str | Path):
        if not Path(value).is_file():
            raise SpecError(
                f"profile file {str(value)!r} does not exist; write one with chunkwise "
                "calibrate --out FILE."
            )
        value = load_spec(value)
    if not isinstance(value, Mapping):
        raise SpecError(
            f"profile {shown(value)} must be a file written by chunkwise calibrate, 'cached', "
            "or a mapping with reader and codec_profiles."
        )
    extra = sorted(set(value) - _PROFILE_KEYS, key=str)
    if extra:
        raise SpecError(
            f"profile has unknown key(s) {', '.join(map(shown, extra))}; a profile holds "
            f"{', '.join(sorted(_PROFILE_KEYS))}."
        )
    return dict(value)


def _reader_with_profile(named: object, calibrated: object) -> object:
    """The reader to price: the spec's, or the calibration profile's when the spec names
    none or names the very preset the profile calibrated (a bare name such as
    ``tensorstore`` then takes the measured constants)."""
    if named is None:
        return calibrated
    same = (
        isinstance(named, str)
        and isinstance(calibrated, Mapping)
        and _cached_reader_name(named) == _cached_reader_name(calibrated)
    )
    return calibrated if same else named


def _cached_reader_name(reader: object) -> str:
    """The preset name whose cached calibration ``profile: cached`` means for ``reader``."""
    if isinstance(reader, ReaderProfile):
        return reader.name
    if isinstance(reader, Mapping):
        reader = reader.get("preset")
    if reader is None:
        return installed_reader()
    return parse_reader(_preset_name(reader, "reader")).name


def _parse_profiles(raw: object) -> dict[CodecSpec, CodecProfile]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SpecError("codec_profiles must map a codec to {ratio, encode, decode}.")
    out = {}
    for name, values in raw.items():
        codec = parse_codec(name)
        if not isinstance(values, Mapping) or not {"ratio", "encode", "decode"} <= set(values):
            raise SpecError(
                f"codec profile for {name!r} needs ratio, encode and decode, like {{ratio: 1.2, encode: 200MB/s, decode: 900MB/s}}."
            )
        ratio = finite_float(values["ratio"])
        if ratio is None or ratio <= 0:
            raise SpecError(
                f"codec profile ratio {shown(values['ratio'])} for {name!r} must be a positive number."
            )
        measured = values.get("measured", True)
        if not isinstance(measured, bool):
            raise SpecError(
                f"codec profile 'measured' {shown(measured)} for {name!r} must be true or false."
            )
        out[codec] = CodecProfile(
            ratio,
            parse_rate(values["encode"], what=f"encode throughput of {name}"),
            parse_rate(values["decode"], what=f"decode throughput of {name}"),
            measured=measured,
        )
    return out


def parse_layout(raw: object, array: ArraySpec, default_codec: CodecSpec) -> Layout:
    """A user-named layout ``{zarr_format, chunks, shards, codec}``, validated against ``array``."""
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"candidate {shown(raw)} must be a mapping like {{zarr_format: 3, chunks: [32, 32, 32], shards: [256, 256, 256]}}."
        )
    extra = sorted(
        set(raw) - {"zarr_format", "chunks", "shards", "codec", "name", "separator"}, key=str
    )
    if extra:
        raise SpecError(
            f"candidate setting(s) {', '.join(map(shown, extra))} unknown; use zarr_format, chunks, shards, codec."
        )
    if "chunks" not in raw:
        raise SpecError(
            f"candidate {shown(dict(raw))} needs chunks, one size per dimension {list(array.dims)!r}."
        )
    fmt = raw.get("zarr_format", 3)
    codec = parse_codec(raw["codec"]) if "codec" in raw else default_codec
    return Layout.create(
        array,
        raw["chunks"],
        shards=raw.get("shards"),
        codec=codec,
        zarr_format=fmt,
        separator=raw.get("separator"),
    )


def problem_from_spec(
    spec: Mapping[str, Any],
    *,
    default_storage: str,
    default_codecs: Sequence[str],
    default_top: int,
) -> Problem:
    """Validate a whole spec mapping into a :class:`Problem`.

    Parameters
    ----------
    spec
        The mapping (from a file or built from CLI flags).
    default_storage, default_codecs, default_top
        Used when the spec does not say (the defaults live in :mod:`chunkwise.api`).
    """
    extra = sorted(set(spec) - _TOP_KEYS, key=str)
    if extra:
        raise SpecError(
            f"spec has unknown key(s) {', '.join(map(shown, extra))}; known keys are {', '.join(sorted(_TOP_KEYS))}."
        )
    array = _parse_array(spec.get("array"))
    if "workload" not in spec:
        raise SpecError(
            "spec needs 'workload': a preset name such as slice-viewer, or a list of operations."
        )
    workload = _parse_workload(spec["workload"], array)
    profile = load_profile(spec.get("profile"), spec.get("reader"))
    storage = parse_storage(
        spec.get("storage", default_storage),
        _reader_with_profile(spec.get("reader"), profile.get("reader")),
    )
    constraints = Constraints.from_spec(spec.get("constraints"), array)
    if "codec" in spec and "codecs" in spec:
        raise SpecError("give either 'codec' (fixed) or 'codecs' (to choose among), not both.")
    if "codec" in spec:
        codecs: tuple[CodecSpec, ...] = (parse_codec(spec["codec"]),)
    else:
        raw_codecs = spec.get("codecs", list(default_codecs))
        if not isinstance(raw_codecs, list) or not raw_codecs:
            raise SpecError("codecs must be a non-empty list, like [blosc:zstd:5:shuffle, zstd:3].")
        codecs = tuple(dict.fromkeys(parse_codec(c) for c in raw_codecs))
    profiles: dict[CodecSpec, CodecProfile] = {c: default_codec_profile(c) for c in codecs}
    profiles.update(_parse_profiles(profile.get("codec_profiles")))
    profiles.update(_parse_profiles(spec.get("codec_profiles")))
    top = spec.get("top", default_top)
    raw_candidates = spec.get("candidates") or []
    if not isinstance(raw_candidates, list):
        raise SpecError(
            "candidates must be a list of layouts like {zarr_format: 3, chunks: [...], shards: [...], codec: ...}."
        )
    candidates = tuple(parse_layout(c, array, codecs[0]) for c in raw_candidates)
    for layout in candidates:
        profiles.setdefault(layout.codec, default_codec_profile(layout.codec))
    return Problem(
        array, workload, storage, constraints, codecs, profiles, _int(top, "top"), candidates
    )
