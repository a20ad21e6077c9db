"""What a Triton Python-backend stub imports, checked in a fresh interpreter (with a stand-in
``triton_python_backend_utils``: only a stub has the real one). Every start, restart and heal of tritonserver pays
these imports once per stub: a component model's stub needs numpy and the CPU engine it serves with (torch only
when that is the torch engine), never diffusers or transformers; a pipeline model's stub (the adapter, then its
family's loop in ``initialize``) needs torch and diffusers' schedulers, not transformers nor diffusers' models and
pipelines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from visualizr.families import FAMILY_NAMES
from visualizr.pipeline.cpu_engines import ENGINE_NAMES

REPO_ROOT = Path(__file__).resolve().parent.parent
STAND_IN_PB_UTILS = (
    "import sys; pb = type(sys)('triton_python_backend_utils'); pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1; "
    "sys.modules[pb.__name__] = pb"
)


def modules_imported_by(statement: str) -> set[str]:
    """``sys.modules`` after running ``statement`` in a fresh interpreter, as a stub would."""
    code = f"{STAND_IN_PB_UTILS}\n{statement}\nprint('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return set(done.stdout.split())


def packages_among(modules: set[str], *prefixes: str) -> set[str]:
    """The modules that are one of ``prefixes`` or inside one."""
    return {m for m in modules if any(m == p or m.startswith(f"{p}.") for p in prefixes)}


def test_component_stub_imports_numpy_and_no_engine_torch_diffusers_or_transformers() -> None:
    modules = modules_imported_by("import visualizr.triton.onnx_component")
    assert "numpy" in modules  # an engine only when it opens a network (visualizr.pipeline.cpu_engines)
    assert packages_among(modules, "torch", "diffusers", "transformers", *ENGINE_NAMES) == set()


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_a_component_imports_the_engine_it_serves_with_and_no_other(model_repository: Path, engine: str) -> None:
    onnx = model_repository / "animatediff_text_encoder" / "1" / "model.onnx"
    modules = modules_imported_by(
        f"from visualizr.pipeline.cpu_engines import open_engine; open_engine({engine!r}, {str(onnx)!r})"
    )
    unwanted = {"torch", "diffusers", "transformers", *ENGINE_NAMES} - {engine}  # a TorchScript file needs no diffusers
    assert engine in modules and packages_among(modules, *unwanted) == set()


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_pipeline_stub_imports_no_transformers_nor_diffusers_models_and_pipelines(family: str) -> None:
    modules = modules_imported_by(
        "import visualizr.triton.pipeline_model\n"
        f"from visualizr.families import get_family; get_family({family!r}).pipeline_class()"
    )
    assert {"torch", "diffusers.schedulers"} <= modules
    assert packages_among(modules, "transformers", "diffusers.models", "diffusers.pipelines", "onnxruntime") == set()


def test_the_torch_engine_runs_on_the_configured_threads_that_sleep_between_calls(model_repository: Path) -> None:
    """OpenMP's threads spin after each call unless told otherwise before torch loads (they starved the other
    stubs on a loaded 2-core machine): the engine sets it when it is first to load torch, then its threads."""
    onnx = model_repository / "animatediff_text_encoder" / "1" / "model.onnx"
    code = (
        "import os; from visualizr.pipeline.cpu_engines import open_engine; "
        f"open_engine('torch', {str(onnx)!r}, 1); "
        "import torch; print(os.environ['OMP_WAIT_POLICY'], torch.get_num_threads())"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["PASSIVE", "1"]
