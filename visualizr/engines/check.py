"""Is a model's TensorRT engine still the one its repository and this machine need?

One check, three callers (docs/ARCHITECTURE.md, "TensorRT engines"): the export (rebuild what is stale), the
API's model service before it asks Triton to load (repository facts: engine and manifest present, ONNX
unchanged, the card's ranges covered) and the pipeline model's ``initialize`` inside Triton (the same, plus this
server's TensorRT version and GPUs). A problem is a sentence naming what differs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from visualizr.engines.environment import Environment, probe
from visualizr.engines.manifest import PLAN_FILENAME, onnx_files, onnx_fingerprint, read_manifest
from visualizr.model_card import ModelCard

CONFIG_FILENAME: Final = "config.pbtxt"
TENSORRT_PLATFORM: Final = "tensorrt_plan"
COVERED_PARAMETERS: Final = ("width", "height", "num_frames")  # the card ranges an engine profile must cover
REBUILD_HINT: Final = "rebuild it with: python -m visualizr.export --backend tensorrt"

_PLATFORM_RE = re.compile(r'^platform:\s*"([^"]*)"', re.MULTILINE)


class StaleEngineError(RuntimeError):
    """A TensorRT engine that must not be loaded; the message names the model and every difference."""

    def __init__(self, model_name: str, problems: list[str]) -> None:
        super().__init__(f"stale TensorRT engine {model_name!r}: {'; '.join(problems)}; {REBUILD_HINT}")
        self.model_name = model_name
        self.problems = problems


def is_tensorrt_model(model_dir: Path) -> bool:
    try:
        match = _PLATFORM_RE.search((model_dir / CONFIG_FILENAME).read_text())
    except OSError:
        return False
    return match is not None and match.group(1) == TENSORRT_PLATFORM


def latest_version_dir(model_dir: Path) -> Path:
    """The highest numeric version folder (Triton's default version policy), or ``<model_dir>/1``."""
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return model_dir / str(max(versions, default=1))


def card_ranges(card: ModelCard) -> dict[str, list[int]]:
    """[min, max] of the card parameters an engine must cover."""
    return {
        name: [int(card.parameters[name].min), int(card.parameters[name].max)]
        for name in COVERED_PARAMETERS
        if name in card.parameters
    }


def engine_problems(
    model_dir: Path, card: ModelCard | None = None, environment: Environment | None = None
) -> list[str]:
    """What is wrong with the engine of the tensorrt_plan model in ``model_dir``: nothing is an empty list.

    Without model.onnx beside it (a repository shipped with engines only) the ONNX comparison is skipped."""
    version_dir = latest_version_dir(model_dir)
    if not (version_dir / PLAN_FILENAME).is_file():
        return [f"no engine {version_dir.name}/{PLAN_FILENAME}"]
    manifest = read_manifest(version_dir)
    if manifest is None:
        return [f"no readable engine manifest beside {version_dir.name}/{PLAN_FILENAME}, so its origin is unknown"]
    problems = []
    if onnx_files(version_dir):
        now = onnx_fingerprint(version_dir, manifest.onnx)
        if now.sha256 != manifest.key.onnx_sha256:
            problems.append(
                f"model.onnx changed since the engine was built (sha256 {manifest.key.onnx_sha256[:12]} then, "
                f"{now.sha256[:12]} now)"
            )
    if card is not None:
        problems += manifest.uncovered(card_ranges(card))
    if environment is not None:
        problems += environment.problems(manifest.key.tensorrt_version, manifest.key.gpu)
    return problems


def stale_engines(repository: Path, card: ModelCard, environment: Environment | None = None) -> dict[str, list[str]]:
    """Triton model name -> problems, for every tensorrt_plan model of ``card`` that has any."""
    found = {}
    for name in card.triton_models:
        model_dir = Path(repository) / name
        if is_tensorrt_model(model_dir):
            problems = engine_problems(model_dir, card, environment)
            if problems:
                found[name] = problems
    return found


def check_engines(repository: Path, card: ModelCard, environment: Environment | None = None) -> None:
    """Raise StaleEngineError for the first stale engine of ``card`` (in load order)."""
    for name, problems in stale_engines(repository, card, environment).items():
        raise StaleEngineError(name, problems)


def check_engines_here(repository: Path, card: ModelCard) -> None:
    """``check_engines`` against this machine (probed only when ``card`` has tensorrt_plan models): what the
    pipeline model runs in ``initialize``, inside the Triton server that loads the engines."""
    if any(is_tensorrt_model(Path(repository) / name) for name in card.triton_models):
        check_engines(repository, card, probe())
