"""HTTP byte ranges and validators (RFC 9110 sections 13-14), pure functions over header values.

* ``Range: bytes=a-b | bytes=a- | bytes=-n`` (one range) -> the inclusive byte span to send with 206.
* Ignored (the whole file is sent, 200), as RFC 9110 allows: no header, another unit or none, several ranges
  (no multipart/byteranges), or an ``If-Range`` that no longer matches the file.
* Unsatisfiable or malformed byte ranges -> ``RangeNotSatisfiableError`` (416, ``Content-Range: bytes */size``).
"""

from __future__ import annotations

import re
from email.utils import formatdate, parsedate_to_datetime

from visualizr.frontend.errors import InvalidParametersError

_SPEC = re.compile(r"([0-9]*)-([0-9]*)")  # ASCII digits: \d also matches other scripts' digits
_PAST_ANY_FILE = 10**18


def _position(digits: str) -> int:
    """A byte position or count; a longer number is past any file (int() refuses over 4300 digits)."""
    return int(digits) if len(digits) < len(str(_PAST_ANY_FILE)) else _PAST_ANY_FILE


class RangeNotSatisfiableError(InvalidParametersError):
    """416: the Range asked for bytes the file does not have (error body code INVALID_PARAMETERS)."""

    http_status = 416

    def __init__(self, header: str, size: int) -> None:
        super().__init__(
            f"Range {header[:100]!r} cannot be satisfied by a file of {size} bytes",
            {"range": header[:100], "size_bytes": size},
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        )


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive, of a single ``bytes`` range; None to send the whole file."""
    if not header:
        return None
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parts = specs.split(",")
    if len(parts) > 1:
        return None
    match = _SPEC.fullmatch(parts[0].strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeNotSatisfiableError(header, size)
    first, last = match.group(1), match.group(2)
    if first == "":  # suffix: the last n bytes
        count = _position(last)
        if count == 0 or size == 0:
            raise RangeNotSatisfiableError(header, size)
        return max(0, size - count), size - 1
    start = _position(first)
    end = size - 1 if last == "" else _position(last)
    if start >= size or end < start:
        raise RangeNotSatisfiableError(header, size)
    return start, min(end, size - 1)


def content_range(first: int, last: int, size: int) -> str:
    return f"bytes {first}-{last}/{size}"


def http_date(epoch_seconds: float) -> str:
    return formatdate(epoch_seconds, usegmt=True)


def _etags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def not_modified(
    if_none_match: str | None, if_modified_since: str | None, etag: str, mtime_seconds: float
) -> bool:
    """Whether a GET/HEAD can answer 304 (If-None-Match wins over If-Modified-Since; weak comparison)."""
    if if_none_match is not None:
        return any(tag == "*" or tag.removeprefix("W/") == etag for tag in _etags(if_none_match))
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
        return int(mtime_seconds) <= since
    return False


def if_range_holds(if_range: str | None, etag: str, last_modified: str) -> bool:
    """Whether a Range may be honoured: no If-Range, or one that still names this file (strong comparison)."""
    if not if_range:
        return True
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    return value == last_modified
