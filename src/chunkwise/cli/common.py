"""Pieces every command shares: the user-error exit, and options that name files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from chunkwise.errors import ChunkwiseError, shown
from chunkwise.spec import load_spec

__all__ = [
    "UserError",
    "codec_profiles_arg",
    "int_list",
    "remote_options",
    "storage_arg",
    "storage_options",
    "user_errors",
]

P = ParamSpec("P")
R = TypeVar("R")


class UserError(click.ClickException):
    """A user mistake: one sentence, exit status 2."""

    exit_code = 2


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn :class:`ChunkwiseError` into :class:`UserError`."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ChunkwiseError as exc:
            raise UserError(str(exc)) from None

    return wrapper


def storage_arg(value: str) -> str | dict[str, Any]:
    """A storage preset name, or a YAML/JSON file (as ``chunkwise probe`` writes) holding one."""
    if Path(value).suffix.lower() in (".yaml", ".yml", ".json"):
        if not Path(value).is_file():
            raise UserError(
                f"storage file {value!r} does not exist; give a preset name or a file written "
                "by chunkwise probe --out."
            )
        data = load_spec(value)
        inner = data.get("storage", data)
        if not isinstance(inner, dict):
            raise UserError(f"storage file {value!r} must hold a mapping of storage settings.")
        return inner
    return value


def codec_profiles_arg(data: dict[str, Any], path: str) -> None:
    """Merge a ``chunkwise codecs`` file: its profiles, and its codecs unless one is fixed."""
    extra = load_spec(path)
    profiles = extra.get("codec_profiles")
    if not isinstance(profiles, dict):
        raise UserError(
            f"codec profile file {path!r} has no 'codec_profiles' mapping; write one with chunkwise codecs --out FILE."
        )
    data["codec_profiles"] = {**(data.get("codec_profiles") or {}), **profiles}
    if "codec" not in data and isinstance(extra.get("codecs"), list):
        data["codecs"] = extra["codecs"]


def int_list(value: str | None, what: str) -> list[int] | None:
    if value is None:
        return None
    parts = [v.strip() for v in value.replace("x", ",").split(",") if v.strip()]
    if any(len(v) > 100 and v.lstrip("+-").isdigit() for v in parts):  # int() stops at 4300
        raise UserError(
            f"{what} {shown(value)} has a number of more than 100 digits; no size is that large."
        )
    try:
        return [int(v) for v in parts]
    except ValueError:
        raise UserError(
            f"{what} {shown(value)} must be comma-separated integers, like 184,630,630."
        ) from None


def storage_options(endpoint_url: str | None, pairs: Sequence[str]) -> dict[str, Any]:
    """fsspec options from ``--endpoint-url`` and ``--storage-option key=value``."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--storage-option {pair!r} must look like key=value, e.g. anon=true.")
        lowered = value.strip().lower()
        options[key.strip()] = (
            True if lowered == "true" else False if lowered == "false" else value.strip()
        )
    if endpoint_url:
        options.setdefault("client_kwargs", {})["endpoint_url"] = endpoint_url
    return options


_remote_options = [
    click.option("--endpoint-url", help="S3-compatible endpoint, e.g. http://127.0.0.1:9000."),
    click.option(
        "--storage-option",
        "storage_option",
        multiple=True,
        help="fsspec option for remote stores, key=value (repeatable), e.g. anon=true.",
    ),
]


def remote_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--endpoint-url`` and ``--storage-option``."""
    for option in reversed(_remote_options):
        func = option(func)
    return func


def profile_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--profile``: a calibration profile written by ``chunkwise calibrate``."""
    return click.option(
        "--profile",
        "profile",
        help="Calibration profile: a file written by chunkwise calibrate --out, or 'cached' "
        "for the one it keeps for the reader installed here.",
    )(func)
