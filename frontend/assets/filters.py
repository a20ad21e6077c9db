"""Query parameters of ``GET /api/v1/assets/videos``, parsed here (not by Litestar) so each error names its field.

Dates are ISO 8601 with or without a time, fraction, ``Z`` or UTC offset; a value without an offset is UTC.
``start_date`` is inclusive. ``end_date`` is inclusive at the precision the API renders times with: a date
alone covers that whole day, a time covers its whole second (so the ``created_at`` of a listed video, passed
back as ``end_date``, still includes that video).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime

from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.jobs.listing import DEFAULT_LIMIT, ListQuery
from visualizr.frontend.jobs.naming import shown

MAX_LIMIT = 100
MAX_OFFSET = 2**31 - 1
MAX_MODEL_CHARS = 200
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")  # ASCII digits only: str.isdigit() also passes "²", which int() refuses


def _invalid(field: str, value: str, expected: str) -> InvalidParametersError:
    return InvalidParametersError(
        f"Invalid {field} {shown(value)!r}: expected {expected}",
        {"field": field, "value": shown(value), "expected": expected},
    )


def _integer(field: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    expected = f"an integer from {low} to {high}"
    text = raw.strip()
    if not _INTEGER.fullmatch(text):
        raise _invalid(field, raw, expected)
    value = int(text)
    if not low <= value <= high:
        raise _invalid(field, raw, expected)
    return value


def _parse_date(field: str, raw: str) -> tuple[datetime, bool]:
    """(UTC datetime, whether the value was a date alone)."""
    text = raw.strip()
    expected = "an ISO 8601 date or date-time, e.g. 2024-01-15 or 2024-01-15T10:30:00Z"
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC), True
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(field, raw, expected) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value, False


def parse_list_query(
    limit: str | None = None,
    offset: str | None = None,
    model: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
) -> ListQuery:
    created_from = created_before = None
    if start_date is not None:
        created_from = _parse_date("start_date", start_date)[0].timestamp()
    if end_date is not None:
        end, date_only = _parse_date("end_date", end_date)
        # in seconds, not datetimes: the day after 9999-12-31 is no datetime
        created_before = end.timestamp() + 86400.0 if date_only else math.floor(end.timestamp()) + 1.0
    if created_from is not None and created_before is not None and created_from >= created_before:
        raise InvalidParametersError(
            "start_date must not be after end_date",
            {"field": "start_date", "start_date": shown(start_date or ""), "end_date": shown(end_date or "")},
        )
    if model is not None and (not model.strip() or len(model) > MAX_MODEL_CHARS):
        raise _invalid("model", model, f"a model id of 1 to {MAX_MODEL_CHARS} characters")
    return ListQuery(
        limit=_integer("limit", limit, DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_integer("offset", offset, 0, 0, MAX_OFFSET),
        model=model,
        created_from=created_from,
        created_before=created_before,
    )
