"""Live previews, pure logic: the latent-to-RGB map (fit, projection), the loops' preview events, their tensors,
the hub's preview subscribers, the API's picture and rate, the SDK's preview messages."""

from __future__ import annotations

import base64
import io

import msgspec
import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.fakes import pending
from tests.support.pipeline_fakes import (
    FakeComponents,
    FakeSvdComponents,
    collect,
    make_pipeline,
    make_request,
    make_svd_pipeline,
    make_svd_request,
    run,
)
from visualizr import names
from visualizr.families import get_family
from visualizr.frontend.generation.reporting.hub import GenerationHub, Subscriber
from visualizr.frontend.generation.reporting.previews import (
    MAX_PREVIEW_SIDE,
    PreviewThrottle,
    preview_message,
    preview_picture,
)
from visualizr.pipeline import InvalidRequest
from visualizr.pipeline.previews import (
    MAX_PREVIEW_FRAMES,
    SD15_LATENT_RGB,
    fit_latent_rgb,
    preview_frames,
    projection_for,
)
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline_config import LatentRGB
from visualizr.triton.pipeline_io import parse_generation_request, progress_arrays
from visualizr_client import PreviewMessage
from visualizr_client import _core as sdk_core


class Geometry:
    latent_channels, vae_scaling_factor, vae_scale_factor = 4, 0.5, 8


def test_fit_recovers_a_linear_decoder() -> None:
    true = torch.tensor([[0.5, -0.2, 0.1], [0.0, 0.3, 0.2], [-0.4, 0.1, 0.6], [0.2, 0.2, -0.3]])
    bias = torch.tensor([0.1, -0.05, 0.0])

    def decode(latents: torch.Tensor) -> torch.Tensor:  # unscaled latents -> 8x upsampled linear colours
        rgb = torch.einsum("nchw,cr->nrhw", latents, true) + bias[None, :, None, None]
        return rgb.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)

    fitted = fit_latent_rgb(decode, Geometry())
    # the loop's latents are scaled (x 0.5): the map from them is the decoder's divided by the scale
    np.testing.assert_allclose(fitted.factors, (true / 0.5).numpy(), atol=1e-4)
    np.testing.assert_allclose(fitted.bias, bias.numpy(), atol=1e-4)
    assert fit_latent_rgb(decode, Geometry()) == fitted  # seeded: the same map every export


def test_preview_frames_pick_spread_frames_pool_and_project() -> None:
    latents = torch.zeros(10, 4, 100, 50)
    latents[:, 0] = torch.arange(10).float()[:, None, None] / 10  # channel 0 says which frame
    frames = preview_frames(latents, LatentRGB([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], [0.0, 0.0, -1.0]))
    assert frames.dtype == np.uint8 and frames.shape == (MAX_PREVIEW_FRAMES, 50, 25, 3)  # 100 cells pooled by 2
    assert [int(f[0, 0, 0]) for f in frames] == [round((v / 10 + 1) * 127.5) for v in (0, 3, 6, 9)]
    assert (frames[..., 1] == 128).all() and (frames[..., 2] == 0).all()  # green 0 -> mid, blue -1 -> 0
    assert preview_frames(torch.zeros(2, 4, 8, 8), SD15_LATENT_RGB).shape == (2, 8, 8, 3)


def test_projection_defaults_to_sd15_for_four_channels_only() -> None:
    own = LatentRGB([[0.0] * 3] * 16, [0.0] * 3)
    assert projection_for(None, 4) is SD15_LATENT_RGB
    assert projection_for(None, 16) is None
    assert projection_for(own, 16) is own


def test_animatediff_previews_every_n_steps_and_the_last_only_when_asked() -> None:
    asked = run(collect(make_pipeline(), make_request(num_inference_steps=5, preview_every=2), FakeComponents()))
    previews = {e.step: e.preview for e in asked if e.preview is not None}
    assert sorted(previews) == [2, 4, 5]
    assert all(p.dtype == np.uint8 and p.shape == (3, 2, 4, 3) for p in previews.values())  # 3 frames, 16x32 px
    assert previews[2].tobytes() != previews[5].tobytes()  # the picture changes as the video forms
    plain = run(collect(make_pipeline(), make_request(num_inference_steps=5), FakeComponents()))
    assert [e.preview for e in plain] == [None] * len(plain)
    np.testing.assert_array_equal(asked[-1].frames, plain[-1].frames)  # previews change nothing


def test_svd_previews_its_segments_steps_not_the_keyframe_stage() -> None:
    request = make_svd_request(image=None, prompt="a lake", num_inference_steps=2, preview_every=1)
    events = run(collect(make_svd_pipeline(keyframe=True), request, FakeSvdComponents()))
    with_preview = [(e.phase, e.step) for e in events if e.preview is not None]
    assert with_preview == [(names.PHASE_FRAME_GENERATION, 3), (names.PHASE_FRAME_GENERATION, 4)]


def test_preview_tensors_and_the_preview_every_input() -> None:
    preview = np.zeros((2, 3, 4, 3), np.uint8)
    with_preview = ProgressEvent(names.PHASE_FRAME_GENERATION, 1, 2, preview=preview)
    assert progress_arrays(with_preview)[names.OUT_PREVIEW].shape == (2, 3, 4, 3)
    assert names.OUT_PREVIEW not in progress_arrays(ProgressEvent(names.PHASE_FRAME_GENERATION, 1, 2))
    family = get_family("animatediff")
    arrays = {names.IN_PROMPT: np.array([b"p"], object), names.IN_PREVIEW_EVERY: np.array([3], np.int32)}
    for name in (names.IN_WIDTH, names.IN_HEIGHT, names.IN_NUM_FRAMES, names.IN_NUM_INFERENCE_STEPS):
        arrays[name] = np.array([8], np.int32)
    arrays[names.IN_GUIDANCE_SCALE] = np.array([1.0], np.float32)
    assert parse_generation_request(arrays.get, family.required_inputs, family.optional_inputs).preview_every == 3
    del arrays[names.IN_PREVIEW_EVERY]
    assert parse_generation_request(arrays.get, family.required_inputs, family.optional_inputs).preview_every is None
    with pytest.raises(InvalidRequest, match="preview_every"):
        run(collect(make_pipeline(), make_request(preview_every=-1), FakeComponents()))


def test_hub_sends_previews_only_to_who_asked_and_asks_the_pipeline_only_then() -> None:
    hub = GenerationHub()
    watcher, plain = Subscriber(), Subscriber()
    assert not hub.wants_previews("job")
    hub.subscribe("job", plain)
    assert not hub.wants_previews("job")  # nobody asked: the pipeline computes nothing
    hub.subscribe("job", watcher, previews=True)
    assert hub.wants_previews("job") and hub.wants_previews("next-job")  # a previews socket may subscribe next
    frames = np.full((2, 4, 4, 3), 200, np.uint8)
    for step in (1, 2):
        hub.publish_preview("job", preview_message("job", step, 2, frames))
    assert [m["step"] for m in pending(watcher)] == [2]  # coalesced: a slow socket gets the newest
    assert pending(plain) == []
    hub.unsubscribe("job", watcher)
    hub.publish_preview("job", preview_message("job", 2, 2, frames))
    assert pending(watcher) == []
    hub.remove(watcher)
    assert not hub.wants_previews("next-job")


def test_a_socket_may_ask_for_previews_before_it_subscribes() -> None:
    hub, socket = GenerationHub(), Subscriber()
    hub.want_previews(socket)
    assert hub.wants_previews("any-job")
    hub.remove(socket)  # closed
    assert not hub.wants_previews("any-job")


def test_terminal_message_ends_the_previews() -> None:
    hub, watcher = GenerationHub(), Subscriber()
    hub.subscribe("job", watcher, previews=True)
    hub.deliver("job", '{"type": "completed"}', terminal=True)
    pending(watcher)
    hub.publish_preview("job", preview_message("job", 1, 1, np.zeros((1, 2, 2, 3), np.uint8)))
    assert pending(watcher) == []


@pytest.mark.parametrize(
    ("frames", "size"), [((4, 8, 8), (256, 64)), ((1, 128, 64), (128, 256)), ((3, 90, 160), (256, 48))]
)
def test_preview_picture_is_a_small_jpeg_strip(frames: tuple[int, int, int], size: tuple[int, int]) -> None:
    count, height, width = frames
    url, picture_width, picture_height = preview_picture(np.full((count, height, width, 3), 90, np.uint8))
    assert url.startswith("data:image/jpeg;base64,") and max(picture_width, picture_height) == MAX_PREVIEW_SIDE
    image = Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2])))
    assert (image.format, image.size, (picture_width, picture_height)) == ("JPEG", size, size)


def test_throttle_allows_two_a_second() -> None:
    throttle = PreviewThrottle()
    assert [throttle.due(t) for t in (0.0, 0.2, 0.49, 0.5, 0.9, 1.01)] == [True, False, False, True, False, True]


def test_sdk_subscribes_for_previews_and_reads_them() -> None:
    assert msgspec.json.decode(sdk_core.subscribe_frame("r", previews=True)) == {
        "type": "subscribe",
        "request_id": "r",
        "previews": True,
    }
    assert "previews" not in msgspec.json.decode(sdk_core.subscribe_frame("r"))
    sent = msgspec.json.encode(preview_message("r", 3, 8, np.full((2, 4, 4, 3), 50, np.uint8)))
    message = sdk_core.parse_ws_message(sent, "r")
    assert isinstance(message, PreviewMessage) and (message.step, message.total_steps, message.frames) == (3, 8, 2)
    assert message.image_bytes[:2] == b"\xff\xd8"  # a JPEG
