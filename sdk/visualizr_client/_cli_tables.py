"""The tables ``visualizr models`` and ``visualizr videos`` print (``--json`` prints the API's JSON instead)."""

from __future__ import annotations

from collections.abc import Sequence

from visualizr_client import models as m

MAX_PROMPT_CHARS = 48  # a prompt longer than this is cut, with an ellipsis


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns left-aligned to their widest cell, two spaces apart, no trailing blanks."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
             for line in (header, *rows)]  # fmt: skip
    return "\n".join(lines) + "\n"


def _number(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


def _cut(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= MAX_PROMPT_CHARS else text[: MAX_PROMPT_CHARS - 1] + "…"


def models_table(models: Sequence[m.ModelSummary]) -> str:
    rows = [
        (
            x.id,
            x.type or "-",
            x.status or ("loaded" if x.loaded else "-"),
            x.max_resolution or "-",
            _number(x.max_duration_seconds, " s"),
            _number(x.gpu_memory_required_gb, " GB"),
            _number(x.average_generation_time_seconds, " s"),
        )
        for x in models
    ]
    header = ("ID", "TYPE", "STATUS", "MAX RESOLUTION", "MAX DURATION", "GPU MEMORY", "AVERAGE TIME")
    return table(header, rows) if rows else "no models\n"


def videos_table(videos: m.VideoList) -> str:
    rows = [
        (
            v.id,
            v.model or "-",
            v.metadata.resolution if v.metadata else "-",
            _number(v.metadata.duration_seconds if v.metadata else None, " s"),
            v.created_at or "-",
            _cut(v.prompt),
        )
        for v in videos.videos
    ]
    if not rows:
        return f"no videos (of {videos.total_count})\n"
    more = ", more with --offset" if videos.has_more else ""
    footer = f"{len(rows)} of {videos.total_count} video(s){more}\n"
    return table(("ID", "MODEL", "RESOLUTION", "DURATION", "CREATED", "PROMPT"), rows) + footer
