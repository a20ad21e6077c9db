"""Peak memory of the API under concurrent near-limit image uploads (image-to-video), read from the kernel.

Starts a real API process (its own data folder; the Triton at VISUALIZR_TRITON_* or nothing, in which case the
accepted jobs just wait), warms it up with one small upload, then sends ``--uploads`` concurrent uploads of each
kind and prints the process's peak RSS (``VmHWM`` in /proc/<pid>/status) before and after each batch:
  jpeg : a noisy side x side JPEG just under the byte limit (the bytes and the pixels near their limits)
  png  : a side x side RGBA PNG (small on the wire, the most decoded pixels per byte)

    python -m benchmarks.upload_memory [--uploads 6] [--side 4096]

Accepted jobs are cancelled at once. The peak is what the kernel saw, so run it on a quiet API.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from benchmarks.stack import stack_settings, start_api
from visualizr.frontend.infra.images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS

FROM_IMAGE = "/api/v1/generate/video/from-image"
MIB = 1024 * 1024


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for pid {pid}")


def noisy_jpeg(side: int, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """A side x side JPEG of a noisy gradient, as large as it can be below ``max_bytes``."""
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    noise = np.random.default_rng(0).normal(0, 40, (side, side, 3)).astype(np.float32)
    pixels = np.clip((ramp[None, :, None] + ramp[:, None, None]) / 2 + noise, 0, 255).astype(np.uint8)
    for quality in (95, 90, 85, 75, 60):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
        if buffer.tell() <= max_bytes:
            return buffer.getvalue()
    raise ValueError(f"no JPEG of {side}x{side} fits in {max_bytes} bytes")


def rgba_png(side: int) -> bytes:
    ramp = np.linspace(0, 255, side, dtype=np.uint8)
    pixels = np.empty((side, side, 4), dtype=np.uint8)
    pixels[..., 0], pixels[..., 1] = ramp[None, :], ramp[:, None]
    pixels[..., 2], pixels[..., 3] = 128, 200
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@dataclass
class Batch:
    name: str
    uploads: int
    upload_bytes: int
    before_kb: int
    after_kb: int
    statuses: list[int]

    @property
    def growth_mb(self) -> float:
        return (self.after_kb - self.before_kb) / 1024


def _post(client: httpx.Client, filename: str, data: bytes) -> tuple[int, str | None]:
    response = client.post(
        FROM_IMAGE,
        data={"motion_prompt": "waves rolling in", "num_inference_steps": "1"},
        files={"image": (filename, data, "application/octet-stream")},
    )
    return response.status_code, response.json().get("request_id")


def send_batch(client: httpx.Client, pid: int, name: str, data: bytes, uploads: int) -> Batch:
    """``uploads`` concurrent uploads of ``data``; accepted jobs are cancelled afterwards."""
    before = peak_rss_kb(pid)
    with ThreadPoolExecutor(uploads) as pool:
        answers = list(pool.map(lambda _: _post(client, f"upload.{name}", data), range(uploads)))
    after = peak_rss_kb(pid)
    for _, request_id in answers:
        if request_id is not None:
            client.delete(f"/api/v1/generate/{request_id}")
    return Batch(name, uploads, len(data), before, after, [status for status, _ in answers])


def measure(base_url: str, pid: int, uploads: int, side: int, headers: dict[str, str] | None = None) -> list[Batch]:
    """A warm-up upload, then one batch per kind of image; the API's peak RSS around each."""
    payloads = {"jpeg": noisy_jpeg(side), "png": rgba_png(side)}
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        warm_up = send_batch(client, pid, "png", rgba_png(64), 1)
        assert warm_up.statuses == [202], f"warm-up upload answered {warm_up.statuses}"
        return [send_batch(client, pid, name, data, uploads) for name, data in payloads.items()]


def report(batches: list[Batch]) -> str:
    lines = []
    for b in batches:
        lines.append(
            f"{b.name:4} x{b.uploads} ({b.upload_bytes / MIB:5.1f} MB each): peak RSS {b.before_kb / 1024:6.0f} MB "
            f"-> {b.after_kb / 1024:6.0f} MB (+{b.growth_mb:.0f} MB), answers {sorted(set(b.statuses))}"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=6)
    parser.add_argument("--side", type=int, default=int(MAX_IMAGE_PIXELS**0.5))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="visualizr-upload-memory-") as tmp:
        keep = {k: v for k, v in os.environ.items() if k.startswith("VISUALIZR_TRITON_")}
        settings, env = stack_settings(Path(tmp), VISUALIZR_QUEUE_SIZE=str(4 * args.uploads), **keep)
        api = start_api(settings, env)
        try:
            started = time.monotonic()
            batches = measure(api.base_url, api.process.pid, args.uploads, args.side)
            print(report(batches))
            print(f"done in {time.monotonic() - started:.1f} s")
        finally:
            api.stop()


if __name__ == "__main__":
    main()
