"""Starts tritonserver on the model repository: NVIDIA's container binary when ``tritonserver`` is on
PATH, else the one in the ``nvidia-pytriton`` wheel (CPU-only hosts), with its Python backend and the stub
of this Python.

    with TritonServer(Settings.from_env()) as server:
        server.wait_ready(timeout=120)
        ...

``python -m visualizr.launcher`` runs it in the foreground until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from visualizr import process_tree
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card
from visualizr.settings import REPO_ROOT, Settings
from visualizr.stubs import STUB_NAME

logger = logging.getLogger(__name__)

PY_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
DEFAULT_BACKENDS_CACHE = REPO_ROOT / "build" / "triton"


class TritonStartError(RuntimeError):
    """tritonserver could not be found, exited early or did not become ready in time."""


@dataclass(frozen=True)
class TritonInstall:
    binary: Path
    backend_directory: Path | None  # None: the binary's default (/opt/tritonserver/backends in the container)
    library_dirs: tuple[Path, ...] = ()


def _pytriton_root() -> Path | None:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def prepare_backends(pytriton_root: Path, cache_dir: Path = DEFAULT_BACKENDS_CACHE) -> Path:
    """A private copy of the wheel's ``backends/`` plus this Python's stub in ``python/`` (idempotent)."""
    stub = pytriton_root / "tritonserver" / "python_backend_stubs" / PY_VERSION / STUB_NAME
    if not stub.is_file():
        raise TritonStartError(f"nvidia-pytriton has no Python backend stub for Python {PY_VERSION}: {stub}")
    target = cache_dir / f"backends-py{PY_VERSION}-{stub.stat().st_size}-{int(stub.stat().st_mtime)}"
    if (target / "python" / STUB_NAME).is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".{target.name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(
        pytriton_root / "tritonserver" / "backends", staging, ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(stub, staging / "python" / STUB_NAME)
    try:
        staging.rename(target)
    except OSError:  # another process won the race: its copy is as good as ours
        shutil.rmtree(staging, ignore_errors=True)
    return target


def find_triton(cache_dir: Path = DEFAULT_BACKENDS_CACHE) -> TritonInstall:
    on_path = shutil.which("tritonserver")
    if on_path:
        return TritonInstall(Path(on_path), None)
    root = _pytriton_root()
    if root is None:
        raise TritonStartError("tritonserver is not on PATH and nvidia-pytriton is not installed")
    binary = root / "tritonserver" / "bin" / "tritonserver"
    if not binary.is_file():
        raise TritonStartError(f"nvidia-pytriton ships no tritonserver binary at {binary}")
    libs = root.parent / "nvidia_pytriton.libs"
    return TritonInstall(
        binary, prepare_backends(root, cache_dir), (libs, Path(sysconfig.get_config_var("LIBDIR")))
    )


def _prepend(env: dict[str, str], key: str, *entries: str) -> None:
    parts = [e for e in entries if e] + [p for p in env.get(key, "").split(os.pathsep) if p]
    env[key] = os.pathsep.join(dict.fromkeys(parts))


def server_env(install: TritonInstall, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the Python-backend stub needs: libraries, this venv active, the repo importable."""
    env = dict(os.environ if base is None else base)
    _prepend(env, "LD_LIBRARY_PATH", *(str(d) for d in install.library_dirs))
    _prepend(env, "PATH", str(Path(sys.executable).parent))
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    _prepend(env, "PYTHONPATH", str(REPO_ROOT))
    return env


def models_to_load(model_repository: Path, model_ids: tuple[str, ...] = ()) -> list[str]:
    """The Triton models of the repository's model cards (components first), of the cards ``model_ids`` names
    (all when empty); ["*"] for a repository without cards. An id with no card is a TritonStartError."""
    paths = sorted(Path(model_repository).glob(f"*/{MODEL_CARD_FILENAME}"))
    cards = {card.id: card for card in map(read_model_card, paths)}
    unknown = [model_id for model_id in model_ids if model_id not in cards]
    if unknown:
        raise TritonStartError(f"no model card for {unknown} in {model_repository}; it has {sorted(cards)}")
    chosen = [cards[model_id] for model_id in model_ids] if model_ids else list(cards.values())
    return list(dict.fromkeys(name for card in chosen for name in card.triton_models)) or ["*"]


# Looked up now, not in the forked child: the API's threads may hold the dynamic loader's lock at fork time.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM tritonserver if the thread that started it ends or its process dies
    (even by SIGKILL), so a crashed `make serve` or test run never leaves a server holding the ports."""
    if _prctl is not None:
        pr_set_pdeathsig = 1
        _prctl(pr_set_pdeathsig, signal.SIGTERM)


class TritonServer:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        model_repository: Path | None = None,
        models: list[str] | None = None,
        log_path: Path | None = None,
        verbose: bool = False,
        extra_args: tuple[str, ...] = (),
        exit_timeout_s: int = 10,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.model_repository = Path(model_repository or self.settings.model_repository).resolve()
        self.models = models
        self.log_path = Path(log_path or self.settings.data_dir / "logs" / "tritonserver.log")
        self.verbose = verbose
        self.extra_args = extra_args
        # Triton waits this long for live models on shutdown (the pipeline model can linger: see stop()).
        self.exit_timeout_s = exit_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def shm_region_prefix(self) -> str:
        """Names the Python backend's shared-memory regions; each stub carries its region's name in argv."""
        return f"visualizr_{self.settings.triton_grpc_port}_"

    @property
    def ready_url(self) -> str:
        return f"http://{self.settings.triton_http_url}/v2/health/ready"

    def models_to_load(self) -> list[str]:
        """``models`` if given, else those of the cards ``Settings.load_models`` names (every card when empty)."""
        return self.models or models_to_load(self.model_repository, self.settings.load_models)

    def command(self, install: TritonInstall) -> list[str]:
        s = self.settings
        args = [
            str(install.binary),
            f"--model-repository={self.model_repository}",
            "--model-control-mode=explicit",
            *(f"--load-model={m}" for m in self.models_to_load()),
            f"--http-port={s.triton_http_port}",
            f"--grpc-port={s.triton_grpc_port}",
            f"--metrics-port={s.triton_metrics_port}",
            "--metrics-config=summary_latencies=true",  # per-model p50/p90/p95/p99 (nv_inference_*_summary_us)
            # one shared-memory namespace per server, so a test server never meets a dev server's regions
            f"--backend-config=python,shm-region-prefix-name={self.shm_region_prefix}",
            f"--log-verbose={1 if self.verbose else 0}",
            f"--exit-timeout-secs={self.exit_timeout_s}",
        ]
        if install.backend_directory is not None:
            args.append(f"--backend-directory={install.backend_directory}")
        return [*args, *self.extra_args]

    def start(self) -> TritonServer:
        if self.process is not None:
            if self.exit_code() is None:
                return self
            self.reap()
        install = find_triton()
        command = self.command(install)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logger.info("starting %s (log: %s)", " ".join(command), self.log_path)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_env(install),
                start_new_session=True,
                preexec_fn=_terminate_with_parent,
            )
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Poll /v2/health/ready; fail fast with the log tail when the process dies."""
        if self.process is None:
            raise TritonStartError("tritonserver was not started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.exit_code()
            if code is not None:
                raise TritonStartError(f"tritonserver exited with code {code}:\n{self.log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.25)
        raise TritonStartError(f"tritonserver not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def exit_code(self) -> int | None:
        """tritonserver's exit code once it has exited (None while it runs); unlike Popen.poll() it does not
        reap the process, whose pid then keeps its process group reserved until :meth:`reap`."""
        if self.process is None or self.process.returncode is not None:
            return None if self.process is None else self.process.returncode
        return process_tree.exit_code(self.process.pid)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; then :meth:`reap`. Returns the exit code."""
        if self.process is None:
            return None
        if self.exit_code() is None:
            os.kill(self.process.pid, signal.SIGTERM)  # not Popen.send_signal: its poll() would reap
            if process_tree.wait_exit(self.process.pid, timeout) is None:
                logger.warning("tritonserver ignored SIGTERM for %.0fs: killing it", timeout)
                os.kill(self.process.pid, signal.SIGKILL)
        return self.reap()

    def reap(self, timeout: float = 10.0) -> int | None:
        """SIGKILL tritonserver's whole process group (Python-backend stubs included) while the unreaped leader
        still reserves the group id, reap the leader, then wait for (and reap) the rest. Returns tritonserver's
        exit code (negative: the signal that killed it)."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.returncode is None:  # not reaped yet, so the group id is still its own
            process_tree.kill_group(process.pid)  # start_new_session: the group id is the leader's pid
        code = process.wait()
        if not process_tree.reap_group(process.pid, timeout):
            logger.warning("processes of tritonserver's group %d outlived it by %.0fs", process.pid, timeout)
        return code

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run tritonserver on the Visualizr model repository.")
    parser.add_argument("--model-repository", type=Path, default=None)
    parser.add_argument("--model", action="append", dest="models", help="model to load (repeatable); default: cards")
    parser.add_argument("--log-file", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true", help="tritonserver --log-verbose=1")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for readiness")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = TritonServer(
        model_repository=args.model_repository,
        models=args.models,
        log_path=args.log_file,
        verbose=args.verbose,
    )
    with server:
        server.wait_ready(args.timeout)
        logger.info("tritonserver ready at %s (log: %s)", server.settings.triton_http_url, server.log_path)
        with contextlib.suppress(KeyboardInterrupt):
            while server.exit_code() is None:
                time.sleep(1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
