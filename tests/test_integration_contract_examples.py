"""The contract's own examples, verbatim: the three generation request bodies read from the vendored reference
(tests/data/visualizr-api.md) and sent as they stand to the real stack (the session's tritonserver and API). Each
must be accepted (202) and complete with the frames it asks for (``num_frames``, or ``duration_seconds x fps``)
at the size it asks for (the model card's default size where it names none), its progress never going back and
its time left, asked halfway, within a factor of the time it then took.

Each example prints what it took (wall time, the estimate at submission, the time left asked halfway); these are
the figures README's "The reference's examples" quotes."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from benchmarks.stack import ApiProcess
from tests.support.images import gradient_image
from tests.support.jobs import TERMINAL, download, status
from tests.support.spec_reference import request_bodies

TEXT = "/api/v1/generate/video"
FROM_IMAGE = "/api/v1/generate/video/from-image"
CHARACTER = "/api/v1/generate/character-animation"
FILE_PLACEHOLDER = "[image file]"
JOB_TIMEOUT_S = 900
POLL_S = 0.5
ETA_FACTOR = 3.0  # the time left, asked halfway through the denoising, is within this factor of what it took
ETA_MIN_LEFT_S = 10.0  # ... when that was long enough to measure


def example_picture(side: int = 512) -> bytes:
    """The picture for the from-image example's ``image: [image file]``: a square gradient, as a PNG."""
    buffer = io.BytesIO()
    Image.fromarray(gradient_image(side, side)).save(buffer, format="PNG")
    return buffer.getvalue()


def send_verbatim(api: ApiProcess, path: str) -> httpx.Response:
    body = request_bodies()[("POST", path)]
    if path != FROM_IMAGE:
        return httpx.post(f"{api.base_url}{path}", json=body, timeout=60)
    files = {name: ("example.png", example_picture(), "image/png") for name, v in body.items() if v == FILE_PLACEHOLDER}
    texts = {name: value for name, value in body.items() if name not in files}
    return httpx.post(f"{api.base_url}{path}", data=texts, files=files, timeout=60)


@dataclass
class Watch:
    """A job followed to its end: its progress as polled, and the time left it reported halfway."""

    started: float = field(default_factory=time.monotonic)
    progress: list[int] = field(default_factory=list)
    halfway: tuple[float, int] | None = None  # (when, estimated_remaining_seconds) at >= 50 % of the denoising
    final: dict[str, Any] = field(default_factory=dict)
    ended: float = 0.0


def took_from(watch: Watch) -> float:
    """Seconds from the halfway question to the job's end."""
    assert watch.halfway is not None
    return watch.ended - watch.halfway[0]


def follow(api: ApiProcess, request_id: str) -> Watch:
    watch = Watch()
    deadline = watch.started + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        body = status(api, request_id)
        if body["status"] in TERMINAL:
            watch.final, watch.ended = body, time.monotonic()
            return watch
        watch.progress.append(body.get("progress", 0))
        if watch.halfway is None and body.get("current_step") == "frame_generation" and body["progress"] >= 50:
            watch.halfway = (time.monotonic(), body["estimated_remaining_seconds"])
        time.sleep(POLL_S)
    httpx.delete(f"{api.base_url}/api/v1/generate/{request_id}", timeout=30)  # leave the stack to the next tests
    raise AssertionError(f"{request_id} not done after {JOB_TIMEOUT_S} s: {body}\n{api.log_tail()}")


def expected_video(api: ApiProcess, path: str, model: str) -> tuple[int, int, int]:
    """(frames, width, height) the example asks for; what it leaves out, the card of the model it ran on says."""
    body = request_bodies()[("POST", path)]
    card = httpx.get(f"{api.base_url}/api/v1/models/{model}", timeout=30).json()["parameters"]
    if path == TEXT:
        return body["num_frames"], body["width"], body["height"]
    if path == FROM_IMAGE:
        frames = round(float(body["duration_seconds"]) * int(body["fps"]))
        return frames, card["width"]["default"], card["height"]["default"]
    width, height = (int(side) for side in body["resolution"].split("x"))
    return round(body["duration_seconds"] * card["fps"]["default"]), width, height


def video_shape(data: bytes) -> tuple[int, int, int]:
    """(frames, width, height) of an MP4, every frame decoded."""
    with av.open(io.BytesIO(data)) as container:
        sizes = [(frame.width, frame.height) for frame in container.decode(video=0)]
    assert len(set(sizes)) == 1, set(sizes)
    return len(sizes), *sizes[0]


def test_the_reference_has_the_three_generation_examples() -> None:
    bodies = request_bodies()
    assert bodies[("POST", TEXT)]["model"] == "stable-video-diffusion" and bodies[("POST", TEXT)]["width"] == 1024
    assert bodies[("POST", FROM_IMAGE)]["image"] == FILE_PLACEHOLDER
    assert (bodies[("POST", FROM_IMAGE)]["duration_seconds"], bodies[("POST", FROM_IMAGE)]["fps"]) == ("3", "24")
    assert bodies[("POST", CHARACTER)]["resolution"] == "1024x1024"


@pytest.mark.parametrize("path", [TEXT, FROM_IMAGE, CHARACTER], ids=["text", "from-image", "character"])
def test_the_reference_example_runs_as_written(api: ApiProcess, path: str, capsys: pytest.CaptureFixture) -> None:
    response = send_verbatim(api, path)
    assert response.status_code == 202, f"{path} refused: {response.status_code} {response.text}"
    accepted = response.json()
    request_id = accepted["request_id"]
    watch = follow(api, request_id)
    took = watch.ended - watch.started
    final = watch.final
    assert final["status"] == "completed", f"{path}: {final}\n{api.log_tail()}"
    assert watch.progress == sorted(watch.progress), watch.progress

    details = httpx.get(f"{api.base_url}/api/v1/assets/videos/{request_id.replace('_req_', '_')}", timeout=30).json()
    frames, width, height = expected_video(api, path, details["model"])
    assert video_shape(download(api, final["result"]["video_url"]).content) == (frames, width, height)
    assert final["result"]["metadata"]["resolution"] == f"{width}x{height}"

    halfway = "" if watch.halfway is None else f"; halfway {watch.halfway[1]} s left, it took {took_from(watch):.0f} s"
    with capsys.disabled():
        print(f"\n[contract example {path}] {frames} frames {width}x{height} on {details['model']}: {took:.0f} s "
              f"(estimated {accepted['estimated_time_seconds']} s at submission{halfway})")  # fmt: skip
    if watch.halfway is not None and took_from(watch) >= ETA_MIN_LEFT_S:
        assert took_from(watch) / ETA_FACTOR <= watch.halfway[1] <= took_from(watch) * ETA_FACTOR
