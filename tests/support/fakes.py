"""Shared helpers of the frontend tests: a scripted fake GenerationBackend, a tmp model repository, the app.

The fake stands in for Triton only in these unit tests of the API's own logic; the real Triton integration
tests live elsewhere.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from litestar.testing import TestClient

from visualizr import names
from visualizr.frontend.app import create_app
from visualizr.frontend.generation.reporting.hub import Subscriber
from visualizr.frontend.generation.running.backend import GenerationInput
from visualizr.frontend.infra.failures import BackendError
from visualizr.model_card import Capabilities, ModelCard, ParameterRange, Requirements, write_model_card
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.request import GenerationRequest
from visualizr.settings import Settings

MODEL_ID = "animatediff"


def make_card(model_id: str = MODEL_ID) -> ModelCard:
    return ModelCard(
        id=model_id,
        family=model_id,
        name="AnimateDiff (tiny test)",
        description="test card",
        version="0.0-test",
        type="text-to-video",
        capabilities=Capabilities(
            max_resolution="256x256",
            min_resolution="32x32",
            max_duration_seconds=10,
            min_duration_seconds=0.1,
            max_fps=30,
            min_fps=1,
            supported_formats=["mp4", "gif"],
        ),
        requirements=Requirements(gpu_memory_gb=1, vram_usage_gb=1, estimated_load_time_seconds=1),
        parameters={
            "width": ParameterRange(min=32, max=256, default=64, description="w", multiple_of=8),
            "height": ParameterRange(min=32, max=256, default=48, description="h", multiple_of=8),
            "num_frames": ParameterRange(min=1, max=24, default=6, description="frames"),
            "fps": ParameterRange(min=1, max=30, default=8, description="fps"),
            "num_inference_steps": ParameterRange(min=1, max=50, default=4, description="steps"),
            "guidance_scale": ParameterRange(min=1.0, max=20.0, default=7.5, description="cfg"),
        },
        triton_models=[f"{model_id}_text_encoder", f"{model_id}_unet", f"{model_id}_vae_decoder", model_id],
        weights="random-tiny",
    )


def svd_card(model_id: str = "stable-video-diffusion", keyframe: bool = False) -> ModelCard:
    """A Stable Video Diffusion card: image-to-video only, no negative prompt; with ``keyframe``, text too (and a
    negative prompt) through a keyframe stage."""
    card = make_card(model_id)
    caps = msgspec.structs.replace(
        card.capabilities,
        supports_negative_prompt=keyframe,
        supports_image_to_video=True,
        text_to_video_via_keyframe=keyframe,
    )
    family = "stable-video-diffusion"
    return msgspec.structs.replace(card, family=family, type="image-to-video", name="SVD (test)", capabilities=caps)


def write_repository(root: Path) -> Path:
    (root / MODEL_ID).mkdir(parents=True, exist_ok=True)
    write_model_card(make_card(), root / MODEL_ID / "model_card.json")
    return root


def gradient_frames(num_frames: int, height: int, width: int) -> np.ndarray:
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    frames[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, None, :]
    frames[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[None, :, None]
    frames[..., 2] = (np.arange(num_frames, dtype=np.uint16) * 255 // max(1, num_frames - 1)).astype(
        np.uint8
    )[:, None, None]
    return frames


class FakeStream:
    def __init__(self, backend: FakeBackend, run: GenerationInput) -> None:
        self.backend = backend
        self.run = run
        self.job = run.request  # what the pipeline was asked for
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    async def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.cancelled:
            await asyncio.sleep(0.005)

    async def _hold(self) -> None:
        # threading.Event: the test thread releases it while the app runs on the TestClient's loop thread.
        while not self.backend.release.is_set() and not self.cancelled:
            await asyncio.sleep(0.005)

    def __aiter__(self) -> AsyncIterator[ProgressEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ProgressEvent]:
        job = self.job
        keyframe_steps = self.backend.keyframe_steps if job.image is None else 0  # a keyframe stage's
        total = keyframe_steps + job.num_inference_steps
        await self._pause(self.backend.step_delay)
        if self.cancelled:
            return
        yield ProgressEvent(names.PHASE_TEXT_ENCODING, 0, total)
        for step in range(1, total + 1):
            if step == keyframe_steps + 1 and keyframe_steps:
                yield ProgressEvent(names.PHASE_IMAGE_ENCODING, keyframe_steps, total)
            if self.backend.fail_at_step == step:
                raise BackendError("Video generation failed", f"fake pipeline exploded at step {step}")
            if step == self.backend.hold_at_step:
                await self._hold()
            await self._pause(self.backend.step_delay)
            if self.cancelled:
                self.backend.cancelled_at_step.append(step)
                return
            phase = names.PHASE_KEYFRAME if step <= keyframe_steps else names.PHASE_FRAME_GENERATION
            yield ProgressEvent(phase, step, total)
        yield ProgressEvent(names.PHASE_DECODING, total, total)
        frames = self.backend.frames_factory(job)
        keyframe = frames[0] if keyframe_steps else None
        yield ProgressEvent(names.PHASE_DONE, total, total, frames=frames, keyframe=keyframe)


class FakeBackend:
    def __init__(
        self,
        *,
        step_delay: float = 0.0,
        hold_at_step: int | None = None,
        fail_at_step: int | None = None,
        frames_factory: Callable[[GenerationRequest], np.ndarray] | None = None,
        keyframe_steps: int = 0,
    ) -> None:
        self.step_delay = step_delay
        # > 0: a text request runs a keyframe stage of that many steps first (its picture: the first frame)
        self.keyframe_steps = keyframe_steps
        self.hold_at_step = hold_at_step
        self.fail_at_step = fail_at_step
        self.release = threading.Event()
        self.frames_factory = frames_factory or (
            lambda job: gradient_frames(job.num_frames, job.height, job.width)
        )
        self.streams: list[FakeStream] = []
        self.cancelled_at_step: list[int] = []
        self.is_ready = True

    def stream(self, endpoint: object, request: GenerationInput) -> FakeStream:
        stream = FakeStream(self, request)
        self.streams.append(stream)
        return stream

    async def ready(self, model: str) -> bool:
        return self.is_ready

    async def aclose(self) -> None:
        return None


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    repo = write_repository(tmp_path / "model_repository")
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "model_repository": repo,
        "workers": 1,
        "queue_size": 4,
    }
    values.update(overrides)
    return Settings(**values)


def wait_for(
    client: TestClient, request_id: str, statuses: set[str], timeout: float = 10.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/generate/status/{request_id}").json()
        if body.get("status") in statuses:
            return body
        time.sleep(0.01)
    raise AssertionError(f"{request_id} never reached {statuses}; last: {body}")


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    """The ``error`` object of an error response, checked to have ``status``, ``code`` and the body's shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError("condition not reached")


@contextmanager
def running_app(settings: Settings, fake: FakeBackend, timeout: float = 10) -> Iterator[TestClient]:
    """The real app over the fake backend, lifespan included; releases any job the fake holds on exit."""
    with TestClient(create_app(settings, backend=fake), timeout=timeout) as test_client:
        yield test_client
    fake.release.set()


def pending(subscriber: Subscriber) -> list[dict[str, Any]]:
    """The messages a hub Subscriber holds, decoded, in order (it is drained)."""

    async def drain() -> list[dict[str, Any]]:
        out = []
        while subscriber._pending:
            out.append(msgspec.json.decode(await subscriber.next()))
        return out

    return asyncio.run(drain())
