"""The CLI's progress bar: redrawn in place on a terminal, one line per change of step (or per 10 %) otherwise."""

from __future__ import annotations

from typing import TextIO


class ProgressBar:
    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_key: tuple[str, int] | None = None
        self._drawn = 0

    @staticmethod
    def render(progress: float, step: str | None, eta: float | None, width: int = 30) -> str:
        pct = max(0, min(100, int(progress)))
        filled = round(width * pct / 100)
        eta_text = f" ~{int(eta)}s left" if eta is not None and pct < 100 else ""
        return f"[{'#' * filled}{'-' * (width - filled)}] {pct:3d}% {step or ''}{eta_text}".rstrip()

    def update(self, progress: float, step: str | None = None, eta: float | None = None) -> None:
        line = self.render(progress, step, eta, self.width)
        if self.tty:
            self.stream.write("\r" + line.ljust(self._drawn))
            self._drawn = len(line)
        else:
            key = (step or "", int(progress) // 10)
            if key == self._last_key:
                return
            self._last_key = key
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A message on its own line (the bar is redrawn by the next update)."""
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0
