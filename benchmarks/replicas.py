"""K API replicas on one PostgreSQL and one S3-compatible server in front of M tritonservers, on loopback: the
multi-replica harness of ``benchmarks.scale`` and ``benchmarks.replica_soak``.

    with replica_stack(root, repository, replicas=3, tritons=2) as stack:
        stack.replicas[0].api.base_url ...
        stack.replicas[1].kill(); stack.replicas[1].restart()
        stack.kill_triton(0)

Each API has its own ``VISUALIZR_REPLICA_ID`` (``replica-<i>``), port and scratch folder, and shares the database
URL, the bucket (``VISUALIZR_ASSET_STORE``) and the Triton endpoints (``VISUALIZR_TRITON_URLS``). Servers passed in
(``postgres``, ``s3``, ``triton_urls``: a test session's) are used, never stopped; everything the harness starts it
stops by its own handle (the API's pid, tritonserver's process group, ``pg_ctl`` on its own folder, weed's pid).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from benchmarks.backing_services import PostgresServer, S3Server
from benchmarks.stack import ApiProcess, stack_settings, start_api
from visualizr.launcher import TritonServer
from visualizr.settings import Settings


@dataclass
class Replica:
    """One API process of the set, restartable on the same port, id and folder."""

    replica_id: str
    settings: Settings
    env: dict[str, str]
    api: ApiProcess | None = None
    lives: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def alive(self) -> bool:
        return self.api is not None and self.api.process.poll() is None

    def start(self, replica_id: str | None = None) -> Replica:
        """Start (again), under a new ``replica_id`` if given (as a new pod would be named)."""
        if replica_id is not None:
            self.replica_id = replica_id
            self.env = {**self.env, "VISUALIZR_REPLICA_ID": replica_id}
            self.settings = msgspec.structs.replace(self.settings, replica_id=replica_id)
        log = self.settings.data_dir / "api.log"
        if log.exists():  # keep the earlier life's log beside the new one
            log.rename(log.with_name(f"api.{self.lives}.log"))
        self.api = start_api(self.settings, self.env)
        self.lives += 1
        return self

    def kill(self) -> None:
        """SIGKILL: the replica dies mid-work, with nothing flushed or handed over."""
        if self.api is not None:
            self.api.kill()

    def restart(self) -> Replica:
        self.kill()
        return self.start()

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()


@dataclass
class ReplicaStack:
    database_url: str
    s3: S3Server
    triton_urls: tuple[str, ...]
    replicas: list[Replica] = field(default_factory=list)
    tritons: list[TritonServer] = field(default_factory=list)  # the ones this harness started

    @property
    def urls(self) -> list[str]:
        return [replica.base_url for replica in self.replicas]

    def kill_triton(self, index: int) -> None:
        """SIGKILL one tritonserver this harness started, then reap its process group (its stubs)."""
        server = self.tritons[index]
        if server.process is not None and server.exit_code() is None:
            os.kill(server.process.pid, signal.SIGKILL)
        server.reap()

    def restart_triton(self, index: int, timeout_s: float = 300) -> None:
        self.tritons[index].start().wait_ready(timeout_s)


def replica_env(
    data_dir: Path,
    replica_id: str,
    database_url: str,
    s3: S3Server,
    triton_urls: Sequence[str],
    repository: Path,
    **overrides: str,
) -> tuple[Settings, dict[str, str]]:
    """The settings and environment of one replica."""
    return stack_settings(
        data_dir,
        VISUALIZR_REPLICA_ID=replica_id,
        VISUALIZR_MODEL_REPOSITORY=str(repository),
        VISUALIZR_TRITON_URLS=",".join(triton_urls),
        **shared_storage(database_url, s3),
        **overrides,
    )


def shared_storage(database_url: str, s3: S3Server) -> dict[str, str]:
    """The environment that puts an API's jobs in ``database_url`` and its files in ``s3``'s bucket, under a prefix
    named after the database (stacks sharing a server never see each other's files)."""
    return {
        "VISUALIZR_DATABASE_URL": database_url,
        "VISUALIZR_ASSET_STORE": f"s3://{s3.bucket}/{database_url.rsplit('/', 1)[-1]}",
        "VISUALIZR_S3_ENDPOINT_URL": s3.endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        **s3.credentials,
    }


@contextmanager
def replica_stack(
    root: Path,
    repository: Path,
    replicas: int = 3,
    tritons: int = 2,
    *,
    postgres: PostgresServer | None = None,
    s3: S3Server | None = None,
    triton_urls: Sequence[str] = (),
    load_models: str = "animatediff",
    **overrides: str,
) -> Iterator[ReplicaStack]:
    """``replicas`` APIs on one new database of ``postgres`` (started here when None) and ``s3`` (likewise), in
    front of ``triton_urls`` or, when empty, ``tritons`` tritonservers started here (loading ``load_models``).
    ``overrides``: more environment for every replica (VISUALIZR_WORKERS, VISUALIZR_QUEUE_SIZE ...)."""
    with ExitStack() as stack:
        if postgres is None:
            postgres = stack.enter_context(PostgresServer())
        if s3 is None:
            s3 = stack.enter_context(S3Server(root / "s3"))
        started: list[TritonServer] = []
        stack.callback(lambda: [server.stop() for server in started])
        if not triton_urls:
            for index in range(tritons):
                settings, _ = stack_settings(
                    root / f"triton-{index}", VISUALIZR_MODEL_REPOSITORY=str(repository),
                    VISUALIZR_LOAD_MODELS=load_models,
                )  # fmt: skip
                started.append(TritonServer(settings).start())
            for server in started:
                server.wait_ready(300)
            triton_urls = [server.settings.triton_grpc_url for server in started]
        result = ReplicaStack(postgres.new_database(), s3, tuple(triton_urls), tritons=started)
        stack.callback(lambda: [replica.stop() for replica in result.replicas])
        for index in range(replicas):
            replica_id = f"replica-{index}"
            settings, env = replica_env(
                root / replica_id, replica_id, result.database_url, s3, result.triton_urls, repository, **overrides
            )
            result.replicas.append(Replica(replica_id, settings, env).start())
        yield result
