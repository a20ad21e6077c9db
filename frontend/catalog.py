"""Model cards from the model repository (``<repository>/<model_id>/model_card.json``), used to validate
requests.

Cards are re-read when their file changes, so a re-export is picked up without restarting the API.
"""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path

import msgspec

from visualizr.frontend.errors import ModelNotFoundError
from visualizr.model_card import MODEL_CARD_FILENAME, ModelCard, read_model_card

# A model id is a Triton model name: no path separators, no dot-dot, so it can never leave the repository.
_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,127}$")


class ModelCatalog:
    def __init__(self, repository: Path) -> None:
        self._repository = Path(repository)
        self._cache: dict[str, tuple[int, ModelCard]] = {}
        self._lock = threading.Lock()

    @property
    def repository(self) -> Path:
        return self._repository

    def get(self, model_id: str) -> ModelCard:
        """The card of ``model_id``; ModelNotFoundError if the id is malformed, absent or unreadable."""
        if not isinstance(model_id, str) or not _MODEL_ID_RE.match(model_id):
            raise ModelNotFoundError(f"Model {model_id!r} is not available", {"model": model_id})
        path = self._repository / model_id / MODEL_CARD_FILENAME
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            raise ModelNotFoundError(f"Model {model_id!r} is not available", {"model": model_id}) from None
        with self._lock:
            cached = self._cache.get(model_id)
            if cached is not None and cached[0] == mtime:
                return cached[1]
        try:
            card = read_model_card(path)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ModelNotFoundError(
                f"Model {model_id!r} is not available",
                {"model": model_id, "reason": f"unreadable model card: {exc}"},
            ) from None
        if card.id != model_id:
            raise ModelNotFoundError(
                f"Model {model_id!r} is not available",
                {"model": model_id, "reason": f"model card id {card.id!r} does not match its folder"},
            )
        with self._lock:
            self._cache[model_id] = (mtime, card)
        return card

    def cards(self) -> list[ModelCard]:
        """Every readable card (an unreadable one is simply not listed)."""
        cards = []
        for model_id in self.ids():
            with contextlib.suppress(ModelNotFoundError):
                cards.append(self.get(model_id))
        return cards

    def ids(self) -> list[str]:
        """Ids of every folder holding a model card (the /api/v1/models list)."""
        if not self._repository.is_dir():
            return []
        return sorted(
            p.name
            for p in self._repository.iterdir()
            if _MODEL_ID_RE.match(p.name) and (p / MODEL_CARD_FILENAME).is_file()
        )
