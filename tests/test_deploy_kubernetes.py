"""docker/kubernetes: every resource validates against the Kubernetes schemas (kubernetes-validate, offline), and
the manifests agree with visualizr/settings.py and the images: GPU requests, probes on Triton's and the API's
health endpoints, ports, environment names, volumes; the API runs as several replicas on a shared database and
object store (from a Secret and the ConfigMap) with scratch space only, and a redeploy keeps serving."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.support.deploy import (
    KUBERNETES_DIR,
    exec_form,
    find,
    flags,
    instruction,
    kubernetes_documents,
    settings_env_names,
)
from visualizr.settings import Settings

KUBERNETES_VERSION = "1.30.0"
DOCUMENTS = kubernetes_documents()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_resources_validate_against_the_kubernetes_schema(document: dict) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((KUBERNETES_DIR / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in KUBERNETES_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


def _pod(name: str) -> dict:
    return find(DOCUMENTS, "Deployment", name)["spec"]["template"]["spec"]


def _container(pod: dict, name: str, key: str = "containers") -> dict:
    return next(c for c in pod[key] if c["name"] == name)


def _ports(container: dict) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def _settings() -> Settings:
    """The API's settings: the ConfigMap's, then the Secret's (the order of its envFrom)."""
    config = find(DOCUMENTS, "ConfigMap", "visualizr-config")["data"]
    assert set(config) <= settings_env_names()
    return Settings.from_env({**config, **_secret("visualizr-backing")})


def _secret(name: str) -> dict[str, str]:
    return find(DOCUMENTS, "Secret", name)["stringData"]


def test_triton_gets_a_gpu_probes_and_shared_memory() -> None:
    pod = _pod("triton")
    triton = _container(pod, "triton")
    assert int(triton["resources"]["limits"]["nvidia.com/gpu"]) == 1
    defaults = Settings()
    assert _ports(triton) == {
        "http": defaults.triton_http_port,
        "grpc": defaults.triton_grpc_port,
        "metrics": defaults.triton_metrics_port,
    }
    assert triton["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert triton["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert triton["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "shm", "mountPath": "/dev/shm"} in triton["volumeMounts"]
    assert "args" not in triton and "command" not in triton  # the image's CMD: one copy of the flags
    image_flags = flags(exec_form(instruction("triton.Dockerfile", "CMD")[0]))
    assert int(image_flags["http-port"]) == _ports(triton)["http"]
    repository = next(m for m in triton["volumeMounts"] if m["name"] == "model-repository")
    assert repository["mountPath"] == image_flags["model-repository"] and repository["readOnly"]


def test_the_export_runs_first_on_the_same_gpu_node() -> None:
    pod = _pod("triton")
    export = _container(pod, "export", key="initContainers")
    assert export["image"] == "visualizr-export" and int(export["resources"]["limits"]["nvidia.com/gpu"]) == 1
    env = {e["name"]: e["value"] for e in export["env"]}
    mount = next(m for m in export["volumeMounts"] if m["name"] == "model-repository")
    assert env["VISUALIZR_MODEL_REPOSITORY"] == mount["mountPath"] and not mount.get("readOnly")


def test_the_services_expose_the_container_ports() -> None:
    for name in ("triton", "frontend"):
        service = find(DOCUMENTS, "Service", name)
        container = _container(_pod(name), name)
        assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == _ports(container)
        assert service["spec"]["selector"] == find(DOCUMENTS, "Deployment", name)["spec"]["selector"]["matchLabels"]


def test_the_api_settings_point_at_the_triton_service_and_the_volumes() -> None:
    settings = _settings()
    triton_ports = {p["name"]: p["port"] for p in find(DOCUMENTS, "Service", "triton")["spec"]["ports"]}
    assert settings.triton_host == "triton"
    assert (settings.triton_http_port, settings.triton_grpc_port, settings.triton_metrics_port) == (
        triton_ports["http"],
        triton_ports["grpc"],
        triton_ports["metrics"],
    )
    frontend = _container(_pod("frontend"), "frontend")
    assert _ports(frontend) == {"http": settings.port}
    mounts = {m["name"]: m for m in frontend["volumeMounts"]}
    assert Path(mounts["model-repository"]["mountPath"]) == settings.model_repository
    assert mounts["model-repository"]["readOnly"]
    assert Path(mounts["scratch"]["mountPath"]) == settings.data_dir


def test_the_api_probes_and_runs_as_a_user() -> None:
    pod = _pod("frontend")
    frontend = _container(pod, "frontend")
    assert frontend["readinessProbe"]["httpGet"] == {"path": "/api/v1/health", "port": "http"}
    # /api/v1/health answers 503 while Triton is not ready: restarting the API would not help, so liveness
    # only asks whether the process accepts connections.
    assert frontend["livenessProbe"] == {"tcpSocket": {"port": "http"}, "periodSeconds": 15, "failureThreshold": 4}
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    secrets = [e["secretRef"] for e in frontend["envFrom"] if "secretRef" in e]
    assert secrets == [{"name": "visualizr-backing"}, {"name": "visualizr-api-keys", "optional": True}]
    assert "nvidia.com/gpu" not in str(frontend["resources"])


# ------------------------------------------------------------------------------------------- API replicas


def test_the_api_runs_as_replicas_and_a_redeploy_keeps_serving() -> None:
    deployment = find(DOCUMENTS, "Deployment", "frontend")
    assert deployment["spec"]["replicas"] == 3
    strategy = deployment["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    budget = find(DOCUMENTS, "PodDisruptionBudget", "frontend")["spec"]
    assert budget["selector"] == deployment["spec"]["selector"]
    assert 1 <= budget["minAvailable"] < deployment["spec"]["replicas"]  # a drain may take one, never all


def test_the_api_has_no_volume_of_its_own() -> None:
    """Scratch (emptyDir) and the model cards of the shared read-only model repository: nothing a replica owns."""
    pod = _pod("frontend")
    claims = {c["metadata"]["name"]: c for c in DOCUMENTS if c["kind"] == "PersistentVolumeClaim"}
    mounts = {m["name"]: m for m in _container(pod, "frontend")["volumeMounts"]}
    for volume in pod["volumes"]:
        if "emptyDir" in volume:
            continue
        claim = claims[volume["persistentVolumeClaim"]["claimName"]]
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"] and mounts[volume["name"]]["readOnly"], volume
    assert set(claims) == {"model-repository"}  # no data volume left anywhere


def test_the_api_reaches_the_shared_database_and_object_store() -> None:
    settings = _settings()
    assert settings.database_url.startswith("postgresql://") and settings.asset_store.startswith("s3://")
    assert settings.s3_endpoint_url.startswith(("http://", "https://"))
    config = find(DOCUMENTS, "ConfigMap", "visualizr-config")["data"]
    assert "VISUALIZR_DATABASE_URL" not in config and not any(k.startswith("AWS_") for k in config)  # secrets only
    assert set(_secret("visualizr-backing")) == {"VISUALIZR_DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def test_every_variable_the_manifests_set_is_read_and_every_secret_referenced_exists() -> None:
    for deployment in (d for d in DOCUMENTS if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            for source in container.get("envFrom", []):
                if "secretRef" in source and not source["secretRef"].get("optional"):
                    names = set(_secret(source["secretRef"]["name"]))
                elif "configMapRef" in source:
                    names = set(find(DOCUMENTS, "ConfigMap", source["configMapRef"]["name"])["data"])
                else:
                    continue
                assert names <= settings_env_names() | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, names
            assert {e["name"] for e in container.get("env", [])} <= settings_env_names()


def test_the_example_secret_holds_placeholders_only() -> None:
    assert all("REPLACE-ME" in value for value in _secret("visualizr-backing").values())
    header = (KUBERNETES_DIR / "backing-secret.yaml").read_text().split("apiVersion")[0]
    assert "TO BE REPLACED" in header and "kubectl -n visualizr create secret generic visualizr-backing" in header
