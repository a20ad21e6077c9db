"""Where the generated files and uploaded inputs live: a folder (the data folder, the default) or an S3-compatible
bucket (``VISUALIZR_ASSET_STORE=s3://bucket[/prefix]``, endpoint ``VISUALIZR_S3_ENDPOINT_URL``, credentials from the
standard ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``), so that any API replica reads what another wrote.

Objects are named by relative keys (``assets/video/video_<hex>.mp4``, ``inputs/video_<hex>.png``). A published
object is complete or absent, never half-written: the folder writes a temporary file and renames it; S3 makes a PUT
visible only once it has all of it. Reads take byte ranges (video players seek); the API proxies them, so
``/assets/...`` keeps its URLs, its keys or tickets and its range semantics whatever the store.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visualizr.frontend.errors import ObjectStoreUnavailableError

CHUNK_BYTES = 256 * 1024
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    modified: float  # epoch seconds
    version: str  # changes whenever the content may have: the ETag's seed


class ObjectStoreError(ObjectStoreUnavailableError):
    """The object store could not be reached or refused an operation (a route answers 503 with the reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The file store cannot be used now: {reason}", {"reason": reason})


class ObjectStore(ABC):
    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    async def publish(self, key: str, source: Path) -> None:
        """Make the local file ``source`` the object ``key``, all at once."""

    @abstractmethod
    async def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    async def get_bytes(self, key: str) -> bytes | None:
        """The whole object, None when there is none."""

    @abstractmethod
    async def info(self, key: str) -> ObjectInfo | None: ...

    @abstractmethod
    def read(self, key: str, offset: int, length: int) -> AsyncIterator[bytes]:
        """Bytes [offset, offset + length) of the object, in chunks (opened on the first one)."""

    @abstractmethod
    async def delete(self, keys: Iterable[str]) -> int:
        """Delete the objects that exist; returns the bytes they held."""

    @abstractmethod
    async def problem(self) -> str | None:
        """Why the store cannot be used now (health), None when it can."""

    def folder(self, prefix: str) -> Path | None:
        """The local folder that holds the keys under ``prefix`` (files written there are published in place);
        None when the objects are elsewhere (S3)."""
        return None


class FolderStore(ObjectStore):
    """Objects as files under ``root`` (the data folder); a key never leaves its own folder (symlinks followed
    and checked)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return str(self.root)

    def path(self, key: str) -> Path:
        return self.root / key

    def folder(self, prefix: str) -> Path:
        return self.root / prefix

    def _resolve(self, key: str) -> tuple[Path, os.stat_result] | None:
        root = self.root.resolve()
        try:
            home = (root / key).parent.resolve(strict=True)  # the key's own folder (an asset link stays in it)
            path = (root / key).resolve(strict=True)
            found = path.stat()
        except (OSError, RuntimeError):  # missing, dangling link, link loop
            return None
        inside = home.is_relative_to(root) and path.is_relative_to(home)
        return (path, found) if inside and stat.S_ISREG(found.st_mode) else None

    async def publish(self, key: str, source: Path) -> None:
        target = self.path(key)
        if Path(source) != target:
            await asyncio.to_thread(_replace_into, Path(source), target)

    async def put_bytes(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(_write_atomically, self.path(key), data)

    async def get_bytes(self, key: str) -> bytes | None:
        found = await asyncio.to_thread(self._resolve, key)
        return None if found is None else await asyncio.to_thread(found[0].read_bytes)

    async def info(self, key: str) -> ObjectInfo | None:
        found = await asyncio.to_thread(self._resolve, key)
        if found is None:
            return None
        st = found[1]
        return ObjectInfo(st.st_size, st.st_mtime, f"{st.st_size:x}-{st.st_mtime_ns:x}")

    async def read(self, key: str, offset: int, length: int) -> AsyncIterator[bytes]:
        found = await asyncio.to_thread(self._resolve, key)
        if found is None:
            return
        fd = await asyncio.to_thread(os.open, found[0], _OPEN_FLAGS)
        try:
            end = offset + length
            while offset < end:
                chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK_BYTES, end - offset), offset)
                if not chunk:  # the file shrank under us: end the body short (the client sees it)
                    return
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def delete(self, keys: Iterable[str]) -> int:
        return await asyncio.to_thread(unlink_all, [self.path(k) for k in keys])

    async def problem(self) -> str | None:
        return await asyncio.to_thread(_folder_problem, self.root)


class S3Store(ObjectStore):
    """Objects in an S3 bucket under ``prefix`` (boto3, each call in a worker thread)."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, client: Any = None) -> None:
        self.bucket, self.prefix, self.endpoint_url = bucket, prefix.strip("/"), endpoint_url
        self._client = client

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None) -> S3Store:
        """``s3://bucket[/prefix]``."""
        if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
            raise ValueError(f"VISUALIZR_ASSET_STORE must be s3://bucket[/prefix], got {url!r}")
        bucket, _, prefix = url[5:].partition("/")
        return cls(bucket, prefix, endpoint_url or None)

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/") + where

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
            self._client = boto3.client("s3", endpoint_url=self.endpoint_url, config=config)
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(getattr(self.client, method), Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(kwargs.get("Key")) from exc
            raise ObjectStoreError(f"{self.describe()}: {method} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise ObjectStoreError(f"{self.describe()}: {exc}") from exc

    async def publish(self, key: str, source: Path) -> None:
        with open(source, "rb") as body:  # streamed from the file; the object appears once the PUT is whole
            await self._call("put_object", Key=self._key(key), Body=body)

    async def put_bytes(self, key: str, data: bytes) -> None:
        await self._call("put_object", Key=self._key(key), Body=data)

    async def get_bytes(self, key: str) -> bytes | None:
        try:
            response = await self._call("get_object", Key=self._key(key))
        except FileNotFoundError:
            return None
        return await asyncio.to_thread(response["Body"].read)

    async def info(self, key: str) -> ObjectInfo | None:
        try:
            head = await self._call("head_object", Key=self._key(key))
        except FileNotFoundError:
            return None
        return ObjectInfo(int(head["ContentLength"]), head["LastModified"].timestamp(), head["ETag"].strip('"'))

    async def read(self, key: str, offset: int, length: int) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        span = f"bytes={offset}-{offset + length - 1}"
        try:
            response = await self._call("get_object", Key=self._key(key), Range=span)
        except FileNotFoundError:
            return
        body = response["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK_BYTES):
                yield chunk
        finally:
            body.close()

    async def delete(self, keys: Iterable[str]) -> int:
        freed = 0
        for key in keys:
            found = await self.info(key)
            if found is None:
                continue
            await self._call("delete_object", Key=self._key(key))
            freed += found.size
        return freed

    async def problem(self) -> str | None:
        try:
            await self._call("head_bucket")
        except ObjectStoreError as exc:
            return f"the object store cannot be reached: {exc.details['reason']}"
        except FileNotFoundError:
            return f"the object store {self.describe()} has no bucket {self.bucket!r}"
        return None


def open_object_store(url: str, data_dir: Path, endpoint_url: str | None = None) -> ObjectStore:
    """The S3 bucket of an ``s3://`` URL, else the data folder."""
    return S3Store.from_url(url, endpoint_url) if url else FolderStore(data_dir)


def _folder_problem(root: Path) -> str | None:
    if not root.is_dir():
        return f"the data folder {root} is not a folder"
    return None if os.access(root, os.W_OK) else f"the data folder {root} is not writable"


def _replace_into(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _write_atomically(target, source.read_bytes())  # another filesystem: copied, then renamed in place
        source.unlink()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def unlink_all(paths: Iterable[Path]) -> int:
    """Delete the files (missing ones are skipped); returns the bytes freed by the files actually removed."""
    freed = 0
    for path in paths:
        try:
            size = path.lstat().st_size  # a link's own size: unlink removes the link, not its target
            path.unlink()
        except FileNotFoundError:
            continue
        freed += size
    return freed
