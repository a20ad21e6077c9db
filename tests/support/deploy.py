"""Reading docker/ for the deployment tests: Dockerfile instructions, compose and Kubernetes YAML, and the
environment names visualizr/settings.py reads."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from visualizr.settings import REPO_ROOT, Settings

DOCKER_DIR = REPO_ROOT / "docker"
KUBERNETES_DIR = DOCKER_DIR / "kubernetes"


def settings_env_names() -> set[str]:
    """Every VISUALIZR_* name Settings.from_env reads (from its source: the one place settings live)."""
    return set(re.findall(r'"(VISUALIZR_[A-Z0-9_]+)"', (REPO_ROOT / "visualizr" / "settings.py").read_text()))


def dockerfile(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in (DOCKER_DIR / name).read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            logical.append(current)
            current = ""
    return [(text.split(" ", 1)[0].upper(), text.split(" ", 1)[1] if " " in text else "") for text in logical]


def instruction(name: str, keyword: str) -> list[str]:
    return [args for key, args in dockerfile(name) if key == keyword]


def exec_form(args: str) -> list[str]:
    """The JSON array of a CMD / ENTRYPOINT / HEALTHCHECK CMD in exec form."""
    return json.loads(args[args.index("[") :])


def flags(command: list[str]) -> dict[str, str]:
    return dict(arg[2:].split("=", 1) for arg in command if arg.startswith("--") and "=" in arg)


def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER_DIR / "compose.yaml").read_text())


def kubernetes_documents() -> list[dict[str, Any]]:
    """Every resource the kustomization lists, in order."""
    kustomization = yaml.safe_load((KUBERNETES_DIR / "kustomization.yaml").read_text())
    return [
        doc
        for name in kustomization["resources"]
        for doc in yaml.safe_load_all((KUBERNETES_DIR / name).read_text())
        if doc
    ]


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name)


def mounts(volumes: list[str]) -> dict[str, str]:
    """compose volume strings -> {source: container path}."""
    return {v.split(":")[0]: v.split(":")[1] for v in volumes}


def gib(size: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]?)b?", size.lower()).groups()
    return float(number) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit] / (1 << 30)


def env_file(relative: str) -> dict[str, str]:
    """A compose env file of docker/ (KEY=VALUE lines; comments and blank lines skipped)."""
    lines = (DOCKER_DIR / relative).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    """The environment a compose service's process gets: its env files, then its ``environment`` (a
    ``${NAME:-default}`` read as its default)."""
    environment: dict[str, str] = {}
    for relative in service.get("env_file", []):
        environment.update(env_file(relative))
    for name, value in service.get("environment", {}).items():
        environment[name] = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
    return environment


def api_settings(frontend: dict[str, Any]) -> Settings:
    """The settings an API replica of compose.yaml runs with (every VISUALIZR_* name one Settings reads)."""
    environment = compose_environment(frontend)
    assert {name for name in environment if name.startswith("VISUALIZR_")} <= settings_env_names()
    return Settings.from_env(environment)
