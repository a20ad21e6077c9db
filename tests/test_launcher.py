"""The tritonserver launcher without starting Triton: backend preparation, environment, command, lifecycle."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from visualizr import launcher
from visualizr.launcher import (
    PY_VERSION,
    STUB_NAME,
    TritonInstall,
    TritonServer,
    TritonStartError,
    models_to_load,
    prepare_backends,
    server_env,
)
from visualizr.model_card import Capabilities, ModelCard, Requirements, write_model_card
from visualizr.settings import REPO_ROOT, Settings


def fake_pytriton(root: Path) -> Path:
    (root / "tritonserver" / "backends" / "python").mkdir(parents=True)
    (root / "tritonserver" / "backends" / "python" / "libtriton_python.so").write_bytes(b"so")
    stub_dir = root / "tritonserver" / "python_backend_stubs" / PY_VERSION
    stub_dir.mkdir(parents=True)
    (stub_dir / STUB_NAME).write_bytes(b"stub")
    return root


def test_prepare_backends_copies_the_stub_once(tmp_path: Path) -> None:
    root = fake_pytriton(tmp_path / "pytriton")
    first = prepare_backends(root, tmp_path / "cache")
    assert (first / "python" / STUB_NAME).read_bytes() == b"stub"
    assert (first / "python" / "libtriton_python.so").is_file()
    (first / "python" / "marker").write_text("kept")
    assert prepare_backends(root, tmp_path / "cache") == first
    assert (first / "python" / "marker").is_file()  # not copied again


def test_prepare_backends_without_a_stub_for_this_python(tmp_path: Path) -> None:
    root = fake_pytriton(tmp_path / "pytriton")
    (root / "tritonserver" / "python_backend_stubs" / PY_VERSION / STUB_NAME).unlink()
    with pytest.raises(TritonStartError, match=PY_VERSION):
        prepare_backends(root, tmp_path / "cache")


def test_server_env_activates_this_python() -> None:
    install = TritonInstall(Path("/x/tritonserver"), Path("/b"), (Path("/libs"), Path("/pylib")))
    env = server_env(install, {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/old"})
    assert env["LD_LIBRARY_PATH"].split(os.pathsep) == ["/libs", "/pylib", "/old"]
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO_ROOT)
    if sys.prefix != sys.base_prefix:
        assert env["VIRTUAL_ENV"] == sys.prefix


def _card(model_id: str, models: list[str]) -> ModelCard:
    return ModelCard(
        id=model_id,
        family=model_id,
        name=model_id,
        description="",
        version="1",
        type="text-to-video",
        capabilities=Capabilities("64x64", "64x64", 1.0, 1.0, 8, 8, ["mp4"]),
        requirements=Requirements(0, 0, 1),
        parameters={},
        triton_models=models,
        weights="random-tiny",
    )


def test_models_to_load_from_model_cards(tmp_path: Path) -> None:
    assert models_to_load(tmp_path) == ["*"]
    for model_id in ("a", "b"):
        (tmp_path / model_id).mkdir()
        write_model_card(
            _card(model_id, [f"{model_id}_unet", "shared", model_id]), tmp_path / model_id / "model_card.json"
        )
    assert models_to_load(tmp_path) == ["a_unet", "shared", "a", "b_unet", "b"]


def test_command_uses_the_settings_ports_and_explicit_mode(tmp_path: Path) -> None:
    settings = Settings(triton_http_port=18000, triton_grpc_port=18001, triton_metrics_port=18003)
    server = TritonServer(
        settings, model_repository=tmp_path, models=["m1", "m2"], log_path=tmp_path / "t.log"
    )
    command = server.command(TritonInstall(Path("/bin/tritonserver"), Path("/backends")))
    assert command[0] == "/bin/tritonserver"
    for arg in (
        f"--model-repository={tmp_path.resolve()}",
        "--model-control-mode=explicit",
        "--load-model=m1",
        "--load-model=m2",
        "--http-port=18000",
        "--grpc-port=18001",
        "--metrics-port=18003",
        "--backend-directory=/backends",
    ):
        assert arg in command
    assert not any(
        arg.startswith("--backend-directory") for arg in server.command(TritonInstall(Path("/t"), None))
    )


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_wait_ready_fails_fast_with_the_log_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = _script(tmp_path / "tritonserver", 'echo "error: model failed to load"; exit 3')
    monkeypatch.setattr(launcher, "find_triton", lambda: TritonInstall(binary, None))
    server = TritonServer(
        Settings(triton_http_port=1), model_repository=tmp_path, log_path=tmp_path / "t.log"
    )
    with server, pytest.raises(TritonStartError, match="model failed to load"):
        server.wait_ready(timeout=20)


def test_stop_terminates_and_kills_a_stubborn_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = _script(tmp_path / "tritonserver", "trap '' TERM; while true; do sleep 0.1; done")
    monkeypatch.setattr(launcher, "find_triton", lambda: TritonInstall(binary, None))
    server = TritonServer(Settings(), model_repository=tmp_path, log_path=tmp_path / "t.log").start()
    assert server.process is not None and server.process.poll() is None
    assert server.stop(timeout=0.5) is not None
    assert server.process is None


def test_models_to_load_of_the_named_cards_only(tmp_path: Path) -> None:
    for model_id in ("a", "b"):
        (tmp_path / model_id).mkdir()
        write_model_card(_card(model_id, [f"{model_id}_unet", model_id]), tmp_path / model_id / "model_card.json")
    assert models_to_load(tmp_path, ("b",)) == ["b_unet", "b"]
    server = TritonServer(Settings(load_models=("a",)), model_repository=tmp_path)
    assert server.models_to_load() == ["a_unet", "a"]
    assert TritonServer(Settings(load_models=("a",)), model_repository=tmp_path, models=["b"]).models_to_load() == ["b"]
    with pytest.raises(TritonStartError, match="no model card for \\['c'\\]"):
        models_to_load(tmp_path, ("c",))
