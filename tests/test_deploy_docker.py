"""docker/: every Dockerfile is hadolint-clean, and the images, compose.yaml (three API replicas behind the nginx
proxy, on PostgreSQL and SeaweedFS) and the nginx, Prometheus and Grafana files agree with visualizr/settings.py
(ports, environment names, volumes, health checks). No Docker engine runs here: the files are linted and parsed, the
images are not built (README: "GPU deployment")."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.support.deploy import (
    DOCKER_DIR,
    api_settings,
    compose,
    exec_form,
    flags,
    gib,
    instruction,
    mounts,
    settings_env_names,
)
from visualizr.settings import REPO_ROOT, Settings

DOCKERFILES = sorted(p.name for p in DOCKER_DIR.glob("*.Dockerfile"))
DEFAULTS = Settings()


def test_the_three_images_exist() -> None:
    assert DOCKERFILES == ["export.Dockerfile", "frontend.Dockerfile", "triton.Dockerfile"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_is_clean(name: str) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKER_DIR / name)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_images_are_pinned(name: str) -> None:
    args = dict(a.split("=", 1) for a in instruction(name, "ARG") if "=" in a)
    for image in instruction(name, "FROM"):
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert ":" in image and not image.endswith(":latest"), image


def test_triton_and_export_use_one_ngc_release() -> None:
    """The same release means the same TensorRT: the export's engines deserialise in the Triton image."""
    releases = {name: instruction(name, "ARG") for name in ("triton.Dockerfile", "export.Dockerfile")}
    assert releases["triton.Dockerfile"] == releases["export.Dockerfile"] == ["NGC_RELEASE=25.01"]
    assert instruction("triton.Dockerfile", "FROM") == ["nvcr.io/nvidia/tritonserver:${NGC_RELEASE}-py3"]
    assert instruction("export.Dockerfile", "FROM") == ["nvcr.io/nvidia/tensorrt:${NGC_RELEASE}-py3"]


def test_triton_serves_on_the_settings_ports() -> None:
    (cmd,) = instruction("triton.Dockerfile", "CMD")
    command = exec_form(cmd)
    options = flags(command)
    assert command[0] == "tritonserver" and options["model-control-mode"] == "explicit"
    assert int(options["http-port"]) == DEFAULTS.triton_http_port
    assert int(options["grpc-port"]) == DEFAULTS.triton_grpc_port
    assert int(options["metrics-port"]) == DEFAULTS.triton_metrics_port
    exposed = {int(p) for p in instruction("triton.Dockerfile", "EXPOSE")[0].split()}
    assert exposed == {DEFAULTS.triton_http_port, DEFAULTS.triton_grpc_port, DEFAULTS.triton_metrics_port}
    (check,) = instruction("triton.Dockerfile", "HEALTHCHECK")
    assert f"localhost:{DEFAULTS.triton_http_port}/v2/health/ready" in check


def test_the_pipeline_images_install_the_pipeline_extra_and_the_api_image_does_not() -> None:
    for name in ("triton.Dockerfile", "export.Dockerfile"):
        assert any('"./[pipeline]"' in run for run in instruction(name, "RUN")), name
    (install,) = instruction("frontend.Dockerfile", "RUN")
    assert "pip install --no-cache-dir . " in install and "[" not in install.split("&&")[0]


def test_the_api_image_runs_as_a_user_on_the_settings_port() -> None:
    (user,) = instruction("frontend.Dockerfile", "USER")
    assert user not in ("root", "0")
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(instruction("frontend.Dockerfile", "ENV"))))
    names = {k for k in env if k.startswith("VISUALIZR_")}
    assert names <= settings_env_names()
    settings = Settings.from_env(env)
    assert instruction("frontend.Dockerfile", "EXPOSE") == [str(settings.port)] and settings.port == DEFAULTS.port
    (check,) = instruction("frontend.Dockerfile", "HEALTHCHECK")
    assert f"localhost:{settings.port}/api/v1/health" in check
    assert exec_form(instruction("frontend.Dockerfile", "CMD")[0]) == ["python", "-m", "visualizr.frontend"]


def test_the_export_image_builds_tensorrt_engines_into_the_repository() -> None:
    entrypoint = exec_form(instruction("export.Dockerfile", "ENTRYPOINT")[0])
    assert entrypoint[:3] == ["python3", "-m", "visualizr.export"]
    assert entrypoint[entrypoint.index("--backend") + 1] == "tensorrt"
    repository = entrypoint[entrypoint.index("--repository") + 1]
    assert instruction("export.Dockerfile", "ENV") == [f"VISUALIZR_MODEL_REPOSITORY={repository}"]
    triton = flags(exec_form(instruction("triton.Dockerfile", "CMD")[0]))
    assert triton["model-repository"] == repository


def test_the_api_imports_nothing_of_the_pipeline_extra() -> None:
    """What makes the API image slim: the core dependencies are all the API needs."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pipeline = [re.split(r"[<>=\[; ]", d)[0] for d in project["optional-dependencies"]["pipeline"]]
    core = [re.split(r"[<>=\[; ]", d)[0] for d in project["dependencies"]]
    assert not set(pipeline) & set(core)
    code = (
        "import sys, visualizr.frontend.app, visualizr.frontend.__main__; "
        f"print(sorted(m for m in {pipeline!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------- compose.yaml


@pytest.fixture(scope="module")
def services() -> dict:
    return compose()["services"]


def _gpu_capabilities(service: dict) -> list[str]:
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    return [c for d in devices if d["driver"] == "nvidia" for c in d["capabilities"]]


def test_compose_services_and_gpus(services: dict) -> None:
    assert set(services) == {"export", "triton", "postgres", "s3", "frontend", "proxy", "prometheus", "grafana"}
    assert _gpu_capabilities(services["export"]) == ["gpu"] and _gpu_capabilities(services["triton"]) == ["gpu"]
    assert gib(services["triton"]["shm_size"]) >= 1  # the Python backend's tensors travel through /dev/shm
    for name in ("export", "triton", "frontend"):
        assert services[name]["build"]["dockerfile"] == f"docker/{name}.Dockerfile"
        assert (DOCKER_DIR / services[name]["build"]["context"] / services[name]["build"]["dockerfile"]).is_file()


def test_compose_start_order_and_health_checks(services: dict) -> None:
    assert services["export"]["restart"] == "no"  # one-shot
    assert services["triton"]["depends_on"] == {"export": {"condition": "service_completed_successfully"}}
    healthy = {"condition": "service_healthy"}
    assert services["frontend"]["depends_on"] == {"triton": healthy, "postgres": healthy, "s3": healthy}
    assert services["proxy"]["depends_on"] == {"frontend": healthy}
    assert "service_healthy" in str(services["grafana"]["depends_on"])
    for name in ("triton", "postgres", "s3", "frontend", "proxy", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    triton_check = " ".join(services["triton"]["healthcheck"]["test"])
    assert f"localhost:{DEFAULTS.triton_http_port}/v2/health/ready" in triton_check


def test_compose_ports_volumes_and_environment_follow_the_settings(services: dict) -> None:
    triton, frontend, export = services["triton"], services["frontend"], services["export"]
    assert triton["ports"] == [f"{p}:{p}" for p in (8000, 8001, 8003)]
    assert (DEFAULTS.triton_http_port, DEFAULTS.triton_grpc_port, DEFAULTS.triton_metrics_port) == (8000, 8001, 8003)
    settings = api_settings(frontend)
    assert settings.triton_host == "triton"
    assert (settings.triton_http_port, settings.triton_grpc_port, settings.triton_metrics_port) == (8000, 8001, 8003)
    assert "ports" not in frontend and services["proxy"]["ports"] == [f"{settings.port}:{settings.port}"]
    assert f"localhost:{settings.port}/api/v1/health" in " ".join(frontend["healthcheck"]["test"])
    assert mounts(frontend["volumes"]) == {"model-repository": str(settings.model_repository)}
    assert [Path(t.split(":")[0]) for t in frontend["tmpfs"]] == [settings.data_dir]  # scratch only
    repository = flags(exec_form(instruction("triton.Dockerfile", "CMD")[0]))["model-repository"]
    assert mounts(triton["volumes"])["model-repository"] == repository
    assert mounts(export["volumes"])["model-repository"] == repository
    assert "model-repository:/models:ro" in triton["volumes"] and "model-repository:/models:ro" in frontend["volumes"]
    named = {"model-repository", "postgres-data", "s3-data", "prometheus-data", "grafana-data"}
    assert set(compose()["volumes"]) == named  # no data volume: the replicas keep jobs and files in postgres and s3


def test_prometheus_scrapes_triton_and_the_api(services: dict) -> None:
    config_path = mounts(services["prometheus"]["volumes"])["./prometheus/prometheus.yml"]
    assert config_path == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((DOCKER_DIR / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"triton", "visualizr-api"}
    assert jobs["triton"]["static_configs"][0]["targets"] == [f"triton:{DEFAULTS.triton_metrics_port}"]
    # every API replica on its own: one address per replica of the frontend service
    assert jobs["visualizr-api"]["dns_sd_configs"] == [
        {"names": ["frontend"], "type": "A", "port": DEFAULTS.port, "refresh_interval": "30s"}
    ]


def test_grafana_provisions_the_dashboard(services: dict) -> None:
    grafana_mounts = mounts(services["grafana"]["volumes"])
    provisioning = DOCKER_DIR / "grafana" / "provisioning"
    assert grafana_mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "visualizr.yaml").read_text())["providers"]
    assert grafana_mounts["./grafana/dashboards"] == provider["options"]["path"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and "9090:9090" in services["prometheus"]["ports"]
    assert (DOCKER_DIR / "grafana" / "dashboards" / "visualizr.json").is_file()

