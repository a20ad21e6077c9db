"""The pinned third-party assets of the ``/schema`` docs, fetched from the npm registry at install time.

``python -m visualizr.frontend.studio.vendor`` (run by ``make setup``) downloads each package's tarball with
``npm pack`` (the ordinary npm client; nothing is installed, no scripts run), checks its SHA-512 against the pin
below, and extracts only the listed files into ``vendor/<name>@<version>/`` (git-ignored). A package whose files
are all there is skipped, so a second run costs nothing. The docs pages reference these files only, never a CDN.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR_DIR = Path(__file__).parent / "vendor"


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str  # the registry's "sha512-<base64>" of the tarball
    files: tuple[str, ...]  # paths inside the package (the tarball's "package/" prefix left off)

    @property
    def folder(self) -> str:
        return f"{self.name.replace('/', '-').lstrip('@')}@{self.version}"

    def path(self, file: str) -> Path:
        return VENDOR_DIR / self.folder / file

    def url(self, file: str) -> str:
        """Where the docs pages load ``file`` from (``frontend.studio.docs`` serves VENDOR_DIR there)."""
        return f"/schema/static/{self.folder}/{file}"

    def present(self) -> bool:
        return all(self.path(f).is_file() for f in self.files)


SWAGGER_UI = NpmPackage(
    "swagger-ui-dist",
    "5.32.0",
    "sha512-nKZB0OuDvacB0s/lC2gbge+RigYvGRGpLLMWMFxaTUwfM+CfndVk9Th2IaTinqXiz6Mn26GK2zriCpv6/+5m3Q==",
    ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"),
)
REDOC = NpmPackage(
    "redoc",
    "2.5.2",
    "sha512-sTJfItvRkcDTojB6wdLN4M+Ua6mlZwElV21Tf8Mn7IbQF/1Os6GvgQpZyLWPGZZHbhy7GC1Or1hTMHfz1vKh5A==",
    ("bundles/redoc.standalone.js", "LICENSE"),
)
RAPIDOC = NpmPackage(
    "rapidoc",
    "9.3.8",
    "sha512-eCYEbr1Xr8OJZvVCw8SXl9zBCRoLJbhNGuG5IZTHq/RWAOq/O4MafUCuFEyZHsrhLrlUcGZMa64pyhpib8fQKQ==",
    ("dist/rapidoc-min.js", "LICENSE.txt"),
)
ELEMENTS = NpmPackage(
    "@stoplight/elements",
    "9.0.0",
    "sha512-nz3DGl8yfX00eMvOZxQa6o1Ica9KvPQutwDHtT2Nr0zQeqmoQX3+zrAVef45u69h5za3ZqBv/F4MznOljJvYoA==",
    ("web-components.min.js", "styles.min.css", "LICENSE"),
)
PACKAGES = (SWAGGER_UI, REDOC, RAPIDOC, ELEMENTS)


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def npm_pack(package: NpmPackage, folder: Path) -> bytes:
    """The package's tarball, downloaded by ``npm pack``."""
    command = ["npm", "pack", f"{package.name}@{package.version}", "--json", "--pack-destination", str(folder)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=folder)
    filename = json.loads(done.stdout)[0]["filename"]
    return (folder / filename).read_bytes()


def extract(package: NpmPackage, tarball: bytes) -> None:
    """Write the package's listed files from its (integrity-checked) tarball, each atomically."""
    got = integrity_of(tarball)
    if got != package.integrity:
        raise RuntimeError(f"{package.name}@{package.version}: tarball integrity {got} != pinned {package.integrity}")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for file in package.files:
            member = archive.extractfile(f"package/{file}")
            if member is None:
                raise RuntimeError(f"{package.name}@{package.version} has no regular file {file}")
            target = package.path(file)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(member.read())
            os.replace(tmp, target)


def fetch_missing(packages: tuple[NpmPackage, ...] = PACKAGES) -> list[NpmPackage]:
    """Fetch the packages whose files are not all present; returns those fetched."""
    missing = [p for p in packages if not p.present()]
    if missing:
        with tempfile.TemporaryDirectory(prefix="visualizr-npm-") as tmp:
            for package in missing:
                extract(package, npm_pack(package, Path(tmp)))
    return missing


def main() -> int:
    try:
        fetched = fetch_missing()
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        sys.stderr.write(f"docs assets: {exc}\n{detail}")
        return 1
    for package in fetched:
        print(f"docs assets: {package.name}@{package.version} -> {VENDOR_DIR / package.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
