"""The animated preview is bounded by the MP4: preview <= max(PREVIEW_MAX_RATIO x mp4, PREVIEW_MIN_BUDGET_BYTES),
on smooth, noisy and tiny videos (the demo model's output is noise-like, the hardest case for a GIF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.stack import ApiProcess
from tests.support.fakes import gradient_frames
from tests.support.jobs import download, submit, wait_terminal
from visualizr.frontend.generation.running import encoding
from visualizr.frontend.generation.running.encoding import (
    PREVIEW_LADDER,
    PREVIEW_MAX_RATIO,
    PREVIEW_MIN_BUDGET_BYTES,
    STILL,
    encode_assets,
    preview_budget,
    preview_gif,
    preview_plan,
    write_preview_gif,
)


def noisy_frames(count: int, size: int, seed: int = 0) -> np.ndarray:
    """Blurred colour noise drifting over time: roughly what the random demo model makes."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, size // 8, size // 8, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR)) for f in coarse])


def moving_frames(count: int, size: int) -> np.ndarray:
    """A smooth pattern scrolling a few pixels a frame (a camera pan)."""
    y, x = np.mgrid[0:size, 0:size]
    return np.stack(
        [np.stack([(x + 4 * i) % 256, (2 * y + 3 * i) % 256, np.full_like(x, 120)], -1) for i in range(count)]
    ).astype(np.uint8)


@pytest.mark.parametrize(
    ("name", "frames", "fps"),
    [
        ("smooth 128px x 16", gradient_frames(16, 128, 128), 8),
        ("smooth 512px x 32", gradient_frames(32, 512, 512), 24),
        ("pan 256px x 24", moving_frames(24, 256), 8),
        ("noise 128px x 16", noisy_frames(16, 128), 8),
        ("noise 256px x 24", noisy_frames(24, 256), 8),
        ("noise 64px x 4", noisy_frames(4, 64), 4),
        ("white noise 64px x 8", np.random.default_rng(1).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8), 8),
    ],
)
def test_preview_is_bounded_by_the_mp4(tmp_path: Path, name: str, frames: np.ndarray, fps: int) -> None:
    assets, meta = encode_assets(frames, fps, tmp_path, "video_p")
    preview = assets.preview.stat().st_size
    assert preview <= preview_budget(meta.file_size_bytes), (name, preview, meta.file_size_bytes)
    with Image.open(assets.preview) as gif:
        assert max(gif.size) <= PREVIEW_LADDER[0].max_side
        assert gif.info.get("loop") == 0


def test_the_largest_rung_within_the_budget_is_written(tmp_path: Path) -> None:
    frames = moving_frames(32, 256)
    assets, meta = encode_assets(frames, 24, tmp_path, "video_q")
    budget = preview_budget(meta.file_size_bytes)
    rung = write_preview_gif(frames, 24, tmp_path / "again.gif", budget)
    assert (tmp_path / "again.gif").read_bytes() == assets.preview.read_bytes()
    larger = PREVIEW_LADDER[: PREVIEW_LADDER.index(rung)]
    assert all(len(preview_gif(frames, 24, r)) > budget for r in larger)
    with Image.open(assets.preview) as gif:
        assert gif.size == (rung.max_side, rung.max_side)
        assert gif.n_frames > 1


def test_frame_rate_and_size_of_a_rung(tmp_path: Path) -> None:
    path = tmp_path / "p.gif"
    path.write_bytes(preview_gif(moving_frames(32, 256), 24, PREVIEW_LADDER[0]))
    with Image.open(path) as gif:
        assert gif.size == (160, 160)
        assert gif.n_frames == 11  # 24 fps -> every 3rd frame (8 fps): frames 0, 3, ..., 30
        assert abs(gif.info["duration"] - 125) <= 10  # GIF keeps centiseconds


def test_each_rung_is_smaller_than_the_one_before() -> None:
    frames = noisy_frames(16, 256, seed=3)
    sizes = [len(preview_gif(frames, 8, rung)) for rung in (*PREVIEW_LADDER, STILL)]
    assert sizes == sorted(sizes, reverse=True), sizes


def test_a_rung_that_makes_the_same_gif_as_one_before_is_not_rendered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 128 px video is never upscaled: the 144 px and 128 px rungs (48 colours, 8 fps) make one GIF."""
    frames = noisy_frames(16, 128)
    plans = [preview_plan(frames, 8, rung) for rung in (*PREVIEW_LADDER, STILL)]
    assert plans[1] == plans[2] and len(set(plans)) == len(plans) - 1
    rendered = []

    def too_big(frames: np.ndarray, plan: object) -> bytes:
        rendered.append(plan)
        return b"x" * 10**6

    monkeypatch.setattr(encoding, "render_preview", too_big)
    assert write_preview_gif(frames, 8, tmp_path / "p.gif", budget_bytes=1) == STILL
    assert rendered == list(dict.fromkeys(plans))


@pytest.mark.integration
def test_demo_model_previews_are_smaller_than_their_mp4(api: ApiProcess) -> None:
    """On the real stack, at the card's default size: the preview GIF was 2.7x the MP4 before the ladder."""
    accepted = submit(api, prompt="preview size", seed=5, num_inference_steps=2)
    final = wait_terminal(api, accepted["request_id"])
    assert final["status"] == "completed", final
    mp4 = len(download(api, final["result"]["video_url"]).content)
    gif = len(download(api, final["result"]["preview_gif_url"]).content)
    assert mp4 > PREVIEW_MIN_BUDGET_BYTES / PREVIEW_MAX_RATIO  # big enough that the ratio, not the floor, binds
    assert gif <= PREVIEW_MAX_RATIO * mp4, (gif, mp4)
