"""Settings read from the environment, in one place, for the API, the Triton launcher and `make serve`."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import msgspec

from visualizr.pipeline.cpu_engines import AUTO
from visualizr.pipeline.engine_calibration import requested_engine

REPO_ROOT = Path(__file__).resolve().parent.parent


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


_YES = ("1", "true", "yes")
LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"


class Settings(msgspec.Struct, frozen=True):
    # The API's address. VISUALIZR_HOST when set; else all interfaces when API keys are set, loopback when the API
    # runs open (from_env), so an open API is never reachable from another machine by default.
    host: str = LOOPBACK
    port: int = 8002
    triton_host: str = "127.0.0.1"
    triton_http_port: int = 8000
    triton_grpc_port: int = 8001
    triton_metrics_port: int = 8003
    data_dir: Path = REPO_ROOT / "data"
    model_repository: Path = REPO_ROOT / "model_repository"
    # Jobs waiting (not yet running) before POST answers QUEUE_FULL.
    queue_size: int = 32
    # Jobs streamed from Triton at once; from the environment, one per inference server unless set. On a CPU a job's
    # networks use every core: two at once only share them (a mixed workload took 5 % longer, its estimates
    # knew less); on GPUs 2 per server lets concurrent jobs' UNet steps share a dynamic batch (docker/ sets it).
    workers: int = 1
    # A running job whose pipeline stream sends nothing for this long is cancelled and run again (Triton hung).
    job_stall_timeout_s: int = 600
    # A job that failed because of the infrastructure runs again, up to this many runs in all...
    job_max_attempts: int = 3
    # ...and while it is younger than this (seconds since it was submitted).
    job_deadline_s: int = 3600
    # Below this much free space on the data folder's disk new jobs are refused (INSUFFICIENT_STORAGE) and queued
    # ones wait.
    min_free_disk_mb: int = 256
    # Comma-separated Triton gRPC endpoints (host:port); empty: the one `make serve` starts (triton_grpc_url).
    triton_urls: tuple[str, ...] = ()
    # Comma-separated model ids whose Triton models tritonserver loads at start; empty: every model of the
    # repository. The others load on demand (their first job, or POST /api/v1/models/{id}/load).
    load_models: tuple[str, ...] = ()
    # postgresql://user:password@host:port/db: the job database every API replica shares; empty: SQLite in the data
    # folder (one API process).
    database_url: str = ""
    # s3://bucket[/prefix]: where videos, thumbnails, previews, keyframes and uploaded inputs are kept (endpoint from
    # s3_endpoint_url, credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY); empty: the data folder.
    asset_store: str = ""
    s3_endpoint_url: str = ""
    # This API process's name among the replicas of one database (metrics' replica label, a job's runner); empty:
    # <hostname>-<pid>, unique per process.
    replica_id: str = ""
    # A running job's lease on the database: its replica renews it every third of this; a job whose lease ran out
    # (its replica died) is queued again by any replica's reaper. Workers look for others' submissions every
    # queue_poll_ms (their own wake them at once).
    job_lease_s: int = 30
    queue_poll_ms: int = 500
    # Comma-separated Bearer keys; empty means the API runs open (issue 3).
    api_keys: tuple[str, ...] = ()
    # Comma-separated origins (e.g. https://app.example.com) allowed to call the API from a browser; empty: no
    # CORS headers at all (the default). "*" allows any origin (no cookies are used, so no credentials mode).
    cors_origins: tuple[str, ...] = ()
    log_level: str = "info"
    # `make serve` restarts a tritonserver that exits after waiting 1 s, doubling per consecutive failure up to
    # the max; a server that stayed ready this long resets the doubling. A (re)start not ready in time is killed.
    triton_restart_backoff_s: int = 1
    triton_restart_backoff_max_s: int = 30
    triton_restart_stable_s: int = 60
    triton_ready_timeout_s: int = 300
    # A model whose Python-backend stub died is healed (reloaded) at most this many times per inference server
    # within the window; beyond that it is given up on there and `make serve` restarts its supervised Triton.
    heal_max: int = 3
    heal_window_s: int = 600
    # The CPU engine of every component model (VISUALIZR_CPU_ENGINE: onnxruntime | openvino | torch); auto: per network
    # the one measured fastest on this machine (visualizr/pipeline/engine_calibration.py). Read by the stubs too.
    cpu_engine: str = AUTO
    # Signed webhooks (a generate request's webhook_url): the Standard Webhooks signing secret (whsec_<base64> or any
    # text; empty: webhook fields are refused), the comma-separated hosts a webhook may target (empty: any host
    # whose every address is public), an opt-in for private and loopback addresses (tests, a trusted network), the
    # timeout of one POST, how long a failing delivery is retried, how often every replica looks for due ones.
    webhook_secret: str = ""
    webhook_allowed_hosts: tuple[str, ...] = ()
    webhook_allow_private: bool = False
    webhook_timeout_s: int = 10
    webhook_retry_for_s: int = 3600
    webhook_poll_ms: int = 1000

    @property
    def triton_grpc_url(self) -> str:
        return f"{self.triton_host}:{self.triton_grpc_port}"

    @property
    def inference_urls(self) -> tuple[str, ...]:
        """The Triton servers the API sends jobs to."""
        return self.triton_urls or (self.triton_grpc_url,)

    @property
    def triton_http_url(self) -> str:
        return f"{self.triton_host}:{self.triton_http_port}"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def assets_dir(self) -> Path:
        return self.data_dir / "assets" / "video"

    @property
    def supervisor_status_path(self) -> Path:
        """Where `make serve`'s Triton supervisor records its state (visualizr.supervisor.read_supervisor_status)."""
        return self.data_dir / "run" / "triton-supervisor.json"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        base = cls()
        keys = _list(env.get("VISUALIZR_API_KEYS", ""))
        triton_urls = _list(env.get("VISUALIZR_TRITON_URLS", ""))
        return cls(
            host=env.get("VISUALIZR_HOST") or (ALL_INTERFACES if keys else base.host),
            port=_int(env, "VISUALIZR_PORT", base.port),
            triton_host=env.get("VISUALIZR_TRITON_HOST", base.triton_host),
            triton_http_port=_int(env, "VISUALIZR_TRITON_HTTP_PORT", base.triton_http_port),
            triton_grpc_port=_int(env, "VISUALIZR_TRITON_GRPC_PORT", base.triton_grpc_port),
            triton_metrics_port=_int(env, "VISUALIZR_TRITON_METRICS_PORT", base.triton_metrics_port),
            data_dir=Path(env.get("VISUALIZR_DATA_DIR", base.data_dir)).resolve(),
            model_repository=Path(env.get("VISUALIZR_MODEL_REPOSITORY", base.model_repository)).resolve(),
            queue_size=_int(env, "VISUALIZR_QUEUE_SIZE", base.queue_size),
            workers=_int(env, "VISUALIZR_WORKERS", max(base.workers, len(triton_urls))),
            job_stall_timeout_s=_int(env, "VISUALIZR_JOB_STALL_TIMEOUT", base.job_stall_timeout_s),
            job_max_attempts=_int(env, "VISUALIZR_JOB_MAX_ATTEMPTS", base.job_max_attempts),
            job_deadline_s=_int(env, "VISUALIZR_JOB_DEADLINE", base.job_deadline_s),
            min_free_disk_mb=_int(env, "VISUALIZR_MIN_FREE_DISK_MB", base.min_free_disk_mb),
            triton_urls=triton_urls,
            load_models=_list(env.get("VISUALIZR_LOAD_MODELS", "")),
            database_url=env.get("VISUALIZR_DATABASE_URL", base.database_url).strip(),
            asset_store=env.get("VISUALIZR_ASSET_STORE", base.asset_store).strip(),
            s3_endpoint_url=env.get("VISUALIZR_S3_ENDPOINT_URL", base.s3_endpoint_url).strip(),
            replica_id=env.get("VISUALIZR_REPLICA_ID", "").strip() or f"{socket.gethostname()}-{os.getpid()}",
            job_lease_s=_int(env, "VISUALIZR_JOB_LEASE", base.job_lease_s),
            queue_poll_ms=_int(env, "VISUALIZR_QUEUE_POLL_MS", base.queue_poll_ms),
            api_keys=keys,
            cors_origins=_list(env.get("VISUALIZR_CORS_ORIGINS", "")),
            log_level=env.get("VISUALIZR_LOG_LEVEL", base.log_level),
            triton_restart_backoff_s=_int(env, "VISUALIZR_TRITON_RESTART_BACKOFF", base.triton_restart_backoff_s),
            triton_restart_backoff_max_s=_int(
                env, "VISUALIZR_TRITON_RESTART_BACKOFF_MAX", base.triton_restart_backoff_max_s
            ),
            triton_restart_stable_s=_int(env, "VISUALIZR_TRITON_RESTART_STABLE", base.triton_restart_stable_s),
            triton_ready_timeout_s=_int(env, "VISUALIZR_TRITON_READY_TIMEOUT", base.triton_ready_timeout_s),
            heal_max=_int(env, "VISUALIZR_HEAL_MAX", base.heal_max),
            heal_window_s=_int(env, "VISUALIZR_HEAL_WINDOW", base.heal_window_s),
            cpu_engine=requested_engine(env),
            webhook_secret=env.get("VISUALIZR_WEBHOOK_SECRET", base.webhook_secret).strip(),
            webhook_allowed_hosts=tuple(h.lower() for h in _list(env.get("VISUALIZR_WEBHOOK_ALLOWED_HOSTS", ""))),
            webhook_allow_private=env.get("VISUALIZR_WEBHOOK_ALLOW_PRIVATE", "").strip().lower()
            in ("1", "true", "yes"),
            webhook_timeout_s=_int(env, "VISUALIZR_WEBHOOK_TIMEOUT", base.webhook_timeout_s),
            webhook_retry_for_s=_int(env, "VISUALIZR_WEBHOOK_RETRY_FOR", base.webhook_retry_for_s),
            webhook_poll_ms=_int(env, "VISUALIZR_WEBHOOK_POLL_MS", base.webhook_poll_ms),
        )
