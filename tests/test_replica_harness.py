"""benchmarks/replicas.py, the multi-replica harness: two API replicas on the tests' PostgreSQL and S3 servers and the
session Triton. Each replica has its own id, port and folder and shares the database (a job accepted by one is read
from the other); a SIGKILLed replica restarts on the same port; leaving the block stops the replicas and nothing of
the servers it was given."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg

from benchmarks.backing_services import PostgresServer, S3Server
from benchmarks.replicas import replica_stack
from benchmarks.stack import ApiProcess
from tests.support.jobs import SMALL, submit, wait_terminal
from visualizr.launcher import TritonServer
from visualizr.settings import Settings


def test_replicas_share_the_database_restart_in_place_and_stop_only_themselves(
    postgres: PostgresServer, s3: S3Server, triton: TritonServer, model_repository: Path, tmp_path: Path
) -> None:
    urls = [triton.settings.triton_grpc_url]
    with replica_stack(tmp_path, model_repository, 2, postgres=postgres, s3=s3, triton_urls=urls) as stack:
        first, second = stack.replicas
        assert (first.replica_id, second.replica_id) == ("replica-0", "replica-1")
        assert first.settings.port != second.settings.port and first.settings.data_dir != second.settings.data_dir
        for replica in stack.replicas:
            settings = Settings.from_env(replica.env)
            assert settings.replica_id == replica.replica_id and settings.database_url == stack.database_url
            assert settings.asset_store.startswith(f"s3://{s3.bucket}/") and settings.s3_endpoint_url == s3.endpoint_url
            assert settings.triton_urls == tuple(urls)
        request_id = submit(first.api, prompt="replicas", seed=4, **SMALL)["request_id"]
        assert wait_terminal(first.api, request_id)["status"] == "completed"
        seen = httpx.get(f"{second.base_url}/api/v1/generate/status/{request_id}", timeout=30)
        assert seen.status_code == 200 and seen.json()["status"] == "completed", seen.text

        killed_pid = second.api.process.pid
        second.kill()
        assert not second.alive and second.api.process.returncode == -9
        second.restart()
        assert second.alive and second.api.process.pid != killed_pid and second.lives == 2
        assert (second.settings.data_dir / "api.1.log").is_file()  # the first life's log, kept
        assert httpx.get(f"{second.base_url}/api/v1/generate/status/{request_id}", timeout=30).status_code == 200
        apis: list[ApiProcess] = [replica.api for replica in stack.replicas]
    assert all(api.process.poll() is not None for api in apis)
    assert triton.is_ready() and s3.process is not None and s3.process.poll() is None
    with psycopg.connect(stack.database_url) as conn:  # the database outlives the stack: it is the server's
        assert conn.execute("SELECT status FROM jobs WHERE request_id = %s", (request_id,)).fetchone() == ("completed",)
