"""Declarative access into foreign JSON: dotted paths to values and timestamp formats."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, tzinfo
from typing import Final

from firmware_bridge.errors import PayloadError

_MISSING: Final = object()
_INDEX = re.compile(r"\[(\d+)\]")
# Epoch values further than this from now are almost certainly in the wrong unit.
_EPOCH_FORMATS: Final = {"epoch_s": 1.0, "epoch_ms": 1e-3, "epoch_us": 1e-6}


def split_path(path: str) -> tuple[str | int, ...]:
    """`$.a.b[0].c` (or `a.b.0.c`) → ('a', 'b', 0, 'c'); `$` alone is the root."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    text = _INDEX.sub(r".\1", text)
    parts: list[str | int] = []
    for part in text.split("."):
        if part == "":
            continue
        parts.append(int(part) if part.isdigit() else part)
    return tuple(parts)


def resolve(document: object, path: str | tuple[str | int, ...]) -> object:
    """The value at `path` in a parsed JSON document; raise PayloadError naming the path."""
    parts = split_path(path) if isinstance(path, str) else path
    node: object = document
    for i, part in enumerate(parts):
        nxt: object = _MISSING
        if isinstance(node, dict):
            nxt = node.get(str(part), _MISSING)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            nxt = node[part]
        if nxt is _MISSING:
            where = ".".join(str(p) for p in parts[: i + 1])
            raise PayloadError(f"missing field {where!r}")
        node = nxt
    return node


def number(value: object, what: str) -> float | None:
    """A JSON value as a finite float (None for JSON null); PayloadError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise PayloadError(f"{what}: {value!r} is not a number") from None
    else:
        raise PayloadError(f"{what}: {type(value).__name__} is not a number")
    if not math.isfinite(result):
        raise PayloadError(f"{what}: {value!r} is not a finite number")
    return result


def parse_time(value: object, fmt: str, tz: tzinfo = UTC) -> datetime:
    """Parse a foreign timestamp: iso8601, epoch_s/ms/us, or a strptime pattern (naive → `tz`)."""
    if fmt in _EPOCH_FORMATS:
        seconds = number(value, "timestamp")
        if seconds is None:
            raise PayloadError("timestamp is null")
        try:
            return datetime.fromtimestamp(seconds * _EPOCH_FORMATS[fmt], UTC)
        except (OverflowError, OSError, ValueError):
            raise PayloadError(f"timestamp {value!r} is out of range for {fmt}") from None
    if not isinstance(value, str):
        raise PayloadError(f"timestamp {value!r} is not a string ({fmt})")
    try:
        if fmt == "iso8601":
            # Network servers send nanoseconds (TTS) which fromisoformat rejects before 3.11
            # only partially; trim the fraction to microseconds to be safe.
            text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("z", "Z")
            parsed = datetime.fromisoformat(text)
        else:
            parsed = datetime.strptime(value.strip(), fmt)
    except ValueError:
        raise PayloadError(f"timestamp {value!r} does not match {fmt}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)
