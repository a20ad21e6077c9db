"""Pure-logic units of the frontend: encoding, estimates, progress mapping, the job store, Triton messages."""

from __future__ import annotations

import asyncio
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from tritonclient.grpc import InferResult, service_pb2
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from tests.support.fakes import gradient_frames, write_repository
from visualizr import names
from visualizr.families import get_family
from visualizr.frontend.bodies import decode_json
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import InvalidParametersError, InvalidPromptError, ModelNotFoundError
from visualizr.frontend.generation.intake.validation import validate_request
from visualizr.frontend.generation.running.encoding import encode_assets, probe_video
from visualizr.frontend.generation.running.progress import progress_of
from visualizr.frontend.generation.running.runner import generation_request
from visualizr.frontend.generation.schemas import GenerateVideoRequest
from visualizr.frontend.jobs.database import SqliteDatabase
from visualizr.frontend.jobs.naming import video_id_of
from visualizr.frontend.jobs.record import GenerationParameters, JobRecord
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.transitions import Retrying
from visualizr.frontend.jobs.work_queue import reap
from visualizr.triton.client import infer_inputs, is_final_response, progress_event


@pytest.mark.parametrize(
    ("frames", "fps", "width", "height"), [(16, 8, 64, 48), (5, 24, 128, 96), (1, 1, 8, 8)]
)
def test_mp4_has_exactly_the_frames(tmp_path: Path, frames: int, fps: int, width: int, height: int) -> None:
    assets, meta = encode_assets(gradient_frames(frames, height, width), fps, tmp_path, "video_x")
    with av.open(str(assets.video)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        assert stream.average_rate == Fraction(fps) and stream.codec_context.name == "h264"
    assert len(decoded) == frames
    assert {(f.width, f.height) for f in decoded} == {(width, height)}
    assert meta.num_frames == frames and meta.fps == fps and meta.resolution == f"{width}x{height}"
    assert meta.duration_seconds == pytest.approx(frames / fps, abs=1e-3)
    assert (
        meta.file_size_bytes == assets.video.stat().st_size and meta.codec == "h264" and meta.format == "mp4"
    )
    data = assets.video.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart
    assert assets.thumbnail.read_bytes()[:2] == b"\xff\xd8"
    assert assets.preview.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "video_x.mp4",
        "video_x_preview.gif",
        "video_x_thumb.jpg",
    ]
    assert probe_video(assets.video) == meta


def test_decoded_content_matches_roughly(tmp_path: Path) -> None:
    source = gradient_frames(4, 64, 64)
    assets, _ = encode_assets(source, 8, tmp_path, "video_y")
    with av.open(str(assets.video)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(first.astype(int) - source[0].astype(int)).mean() < 8


def test_progress_mapping() -> None:
    assert progress_of(names.PHASE_TEXT_ENCODING, 0, 10) == (5, "text_encoding")
    assert progress_of(names.PHASE_FRAME_GENERATION, 5, 10) == (47, "frame_generation")
    assert progress_of(names.PHASE_FRAME_GENERATION, 10, 10) == (90, "frame_generation")
    assert progress_of(names.PHASE_DECODING, 10, 10) == (90, "decoding")
    assert progress_of(names.PHASE_DECODING, 5, 10) == (47, "decoding")  # a segment's: its steps' share
    assert progress_of(names.PHASE_DONE, 10, 10) == (95, "encoding")
    assert video_id_of("video_req_abc") == "video_abc"


def test_validation_defaults_and_errors(tmp_path: Path) -> None:
    catalog = ModelCatalog(write_repository(tmp_path))
    valid = validate_request(
        decode_json(b'{"prompt": " hi ", "width": 128}', GenerateVideoRequest), catalog, random_seed=lambda: 9
    )
    assert valid.prompt == "hi" and valid.card.id == "animatediff"
    assert valid.parameters == GenerationParameters(
        width=128, height=48, num_frames=6, fps=8, num_inference_steps=4, guidance_scale=7.5, seed=9
    )
    with pytest.raises(InvalidPromptError):
        validate_request(GenerateVideoRequest(prompt=" "), catalog)
    with pytest.raises(ModelNotFoundError):
        validate_request(GenerateVideoRequest(prompt="x", model="nope"), catalog)
    with pytest.raises(InvalidParametersError) as info:
        decode_json(b'{"prompt": "x", "fps": 1.5}', GenerateVideoRequest)
    assert info.value.details == {"field": "fps", "reason": "Expected `int | null`, got `float`"}


def test_store_roundtrip_and_recovery(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = JobStore(SqliteDatabase(tmp_path / "jobs.sqlite3"))
        await store.open()
        params = GenerationParameters(64, 64, 4, 8, 2, 7.5, 1)
        for rid, status in (("video_req_a", "processing"), ("video_req_b", "queued")):
            await store.insert(JobRecord(rid, "animatediff", "p", "", None, params, status, 0, "queued", 1.0))
        assert (await store.get("video_req_b")).parameters == params
        await store.run(reap(2.0, lambda record: Retrying("interrupted", 2.0), expired_before=math.inf))
        again = await store.get("video_req_a")
        assert (again.status, again.current_step, again.started_at, again.last_error) == (
            "queued",
            "retrying",
            None,
            "interrupted",
        )
        assert [r.request_id for r in await store.list_by_status(["queued"])] == ["video_req_a", "video_req_b"]
        await store.run(lambda conn: conn.execute(
            "UPDATE jobs SET status = 'completed', processing_time_seconds = 3.0, completed_at = 4.0 "
            "WHERE request_id = 'video_req_b'"))  # fmt: skip
        assert await store.get("nope") is None
        await store.close()

    asyncio.run(scenario())


def test_triton_request_and_response_messages() -> None:
    params = GenerationParameters(64, 48, 6, 8, 4, 7.5, 42)
    job = JobRecord("video_req_1", "animatediff", "a cat", "blurry", None, params, "processing", 0, "queued", 1.0)
    # what an AnimateDiff pipeline model declares (the job's fps goes only to families that take it)
    accepted = set(get_family("animatediff").inputs)
    tensors = {t.name(): t for t in infer_inputs(generation_request(job, None), accepted)}
    assert set(tensors) == {
        names.IN_PROMPT,
        names.IN_NEGATIVE_PROMPT,
        names.IN_WIDTH,
        names.IN_HEIGHT,
        names.IN_NUM_FRAMES,
        names.IN_NUM_INFERENCE_STEPS,
        names.IN_GUIDANCE_SCALE,
        names.IN_SEED,
    }
    assert all(t.shape() == [1] for t in tensors.values())
    assert deserialize_bytes_tensor(tensors[names.IN_PROMPT]._get_content())[0] == b"a cat"
    assert tensors[names.IN_HEIGHT].datatype() == "INT32"
    assert np.frombuffer(tensors[names.IN_HEIGHT]._get_content(), np.int32)[0] == 48
    assert tensors[names.IN_SEED].datatype() == "INT64"
    assert np.frombuffer(tensors[names.IN_SEED]._get_content(), np.int64)[0] == 42
    assert np.frombuffer(tensors[names.IN_GUIDANCE_SCALE]._get_content(), np.float32)[0] == 7.5

    response = service_pb2.ModelInferResponse(model_name="animatediff", id="video_req_1")
    frames = gradient_frames(2, 8, 8)
    for name, dtype, shape, raw in (
        (names.OUT_STEP, "INT32", [1], np.array([4], np.int32).tobytes()),
        (names.OUT_TOTAL_STEPS, "INT32", [1], np.array([4], np.int32).tobytes()),
        (names.OUT_PHASE, "BYTES", [1], serialize_byte_tensor(np.array([b"done"], np.object_)).item()),
        (names.OUT_FRAMES, "UINT8", list(frames.shape), frames.tobytes()),
    ):
        response.outputs.append(
            service_pb2.ModelInferResponse.InferOutputTensor(name=name, datatype=dtype, shape=shape)
        )
        response.raw_output_contents.append(raw)
    response.parameters["triton_final_response"].bool_param = True
    result = InferResult(response)
    event = progress_event(result)
    assert is_final_response(result)
    assert (event.phase, event.step, event.total_steps) == ("done", 4, 4)
    assert np.array_equal(event.frames, frames)
