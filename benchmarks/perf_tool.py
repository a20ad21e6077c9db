"""A working perf_analyzer, found or fetched (``make perf`` calls :func:`find_perf_analyzer`).

In order:
1. ``perf_analyzer`` on PATH that runs (NVIDIA's Triton SDK container ships one in /usr/local/bin);
2. the ``perf-analyzer`` wheel installed in this Python, if it holds a real binary. On glibc < 2.38 (Debian 12)
   ``pip install perf-analyzer`` silently resolves to 0.1.0, a placeholder without a binary, because every real
   release is tagged manylinux_2_38: that trap is detected, not trusted;
3. glibc >= 2.38: ``pip install perf-analyzer==VERSION`` into this Python (the wheel works as is);
4. glibc < 2.38: the real wheel is downloaded explicitly and run through Debian 13's dynamic loader with
   Debian 13's libc, libstdc++ and libgcc (``apt-get download`` with a private apt configuration, unpacked with
   ``dpkg-deb``), all cached under ``build/perf_analyzer/``; nothing is installed system-wide.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from visualizr.settings import REPO_ROOT

VERSION = "2.60.0"
REQUIRED_GLIBC = (2, 38)
CACHE_DIR = REPO_ROOT / "build" / "perf_analyzer"
TRIXIE_PACKAGES = ("libc6", "libstdc++6", "libgcc-s1")
TRIXIE_SOURCE = (
    "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main"
)
LIB_SUBDIR = Path("usr/lib/x86_64-linux-gnu")  # Debian 13 is usr-merged: the loader lives here too


def say(message: str) -> None:
    print(f"perf: {message}", file=sys.stderr, flush=True)


def glibc_version() -> tuple[int, int]:
    name, version = platform.libc_ver()
    if name != "glibc" or not version:
        return (0, 0)
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _works(command: list[str]) -> bool:
    try:
        done = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "Perf Analyzer" in done.stdout + done.stderr


def _wheel_binary() -> Path | None:
    """The binary of the perf-analyzer wheel installed in this Python (None: not installed, or the placeholder)."""
    spec = importlib.util.find_spec("perf_analyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "perf_analyzer"
    return binary if binary.is_file() else None


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {' '.join(command)}\n{done.stdout}{done.stderr}")


def _download_wheel(cache: Path) -> Path:
    binary = cache / "wheel" / "perf_analyzer" / "bin" / "perf_analyzer"
    if binary.is_file():
        return binary
    say(f"downloading the perf-analyzer {VERSION} wheel (manylinux_2_38) into {cache}")
    download = cache / "download"
    _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
          "--platform", "manylinux_2_38_x86_64", "--python-version", "3", "--implementation", "py",
          f"perf-analyzer=={VERSION}", "-d", str(download)], "pip download")
    wheel = next(download.glob("perf_analyzer-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(cache / "wheel")
    binary.chmod(0o755)
    return binary


def _trixie_libraries(cache: Path) -> Path:
    """Debian 13's loader, libc, libstdc++ and libgcc unpacked under ``cache/trixie``; returns their folder."""
    root = cache / "trixie"
    libs = root / LIB_SUBDIR
    if (libs / "ld-linux-x86-64.so.2").exists() and (libs / "libstdc++.so.6").exists():
        return libs
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise RuntimeError("glibc < 2.38 and no apt-get/dpkg-deb to fetch Debian 13's C library: run perf_analyzer "
                           "from NVIDIA's Triton SDK container instead")
    say("this C library is older than 2.38: fetching Debian 13's loader, libc and libstdc++ (apt-get download)")
    apt = cache / "apt"
    for folder in (apt / "lists" / "partial", apt / "cache" / "archives" / "partial", cache / "debs"):
        folder.mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(TRIXIE_SOURCE + "\n")
    options = [
        f"-oDir::Etc::SourceList={apt / 'sources.list'}", "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={apt / 'lists'}", f"-oDir::Cache={apt / 'cache'}", "-oDir::State::Status=/dev/null",
        "-oAPT::Architecture=amd64", "-oAPT::Architectures=amd64", "-oDebug::NoLocking=1", "-qq",
    ]
    _run(["apt-get", *options, "update"], "apt-get update (Debian 13 lists)")
    done = subprocess.run(["apt-get", *options, "download", *TRIXIE_PACKAGES], cwd=cache / "debs",
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"apt-get download failed: {done.stderr}")
    staging = cache / f".trixie-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    for deb in sorted((cache / "debs").glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(staging)], f"dpkg-deb -x {deb.name}")
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return libs


def find_perf_analyzer(cache: Path = CACHE_DIR) -> list[str]:
    """The command that runs a working perf_analyzer (see the module docstring for the order)."""
    on_path = shutil.which("perf_analyzer")
    if on_path and _works([on_path]):
        say(f"using {on_path}")
        return [on_path]
    binary = _wheel_binary()
    if binary is not None and _works([str(binary)]):
        say(f"using the perf-analyzer wheel's {binary}")
        return [str(binary)]
    glibc = glibc_version()
    if glibc >= REQUIRED_GLIBC:
        say(f"installing perf-analyzer=={VERSION} (glibc {glibc[0]}.{glibc[1]})")
        _run([sys.executable, "-m", "pip", "install", "-q", f"perf-analyzer=={VERSION}"], "pip install")
        binary = _wheel_binary()
        if binary is None or not _works([str(binary)]):
            raise RuntimeError("perf-analyzer installed but its binary does not run")
        return [str(binary)]
    say(f"glibc {glibc[0]}.{glibc[1]} < 2.38: `pip install perf-analyzer` would give the 0.1.0 placeholder (no "
        "binary); using the real wheel through Debian 13's loader instead")
    cache.mkdir(parents=True, exist_ok=True)
    binary = _download_wheel(cache)
    libs = _trixie_libraries(cache)
    command = [str(libs / "ld-linux-x86-64.so.2"), "--library-path", str(libs), str(binary)]
    if not _works(command):
        raise RuntimeError(f"perf_analyzer does not run through Debian 13's loader: {' '.join(command)}")
    say(f"using {binary} through {libs / 'ld-linux-x86-64.so.2'}")
    return command


if __name__ == "__main__":
    print(" ".join(find_perf_analyzer()))
