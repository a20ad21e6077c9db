"""FreeNoise context windows, piece by piece against diffusers' own code: the window weights, the shuffled initial
noise, the trace-friendly motion block (``ContextWindowedBlock``) and the windowed UNet copy."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from diffusers.models.attention import BasicTransformerBlock, FreeNoiseTransformerBlock
from diffusers.pipelines.free_noise_utils import AnimateDiffFreeNoiseMixin

from visualizr.export.families.animatediff.wrappers import ContextWindowedBlock, window_plan, with_context_windows
from visualizr.families.animatediff.context import WEIGHTINGS, ContextWindows, shuffle_context

DIM, HEADS = 8, 2
# (length, stride, weighting): diffusers' defaults, lengths that the stride does not divide, windows end to end.
SETTINGS = [(16, 4, "pyramid"), (7, 3, "pyramid"), (8, 3, "delayed_reverse_sawtooth"), (6, 6, "flat")]


def _block_arguments() -> dict:
    """A motion module's transformer block, as AnimateDiffTransformer3D builds it."""
    return dict(
        dim=DIM,
        num_attention_heads=HEADS,
        attention_head_dim=DIM // HEADS,
        cross_attention_dim=None,
        activation_fn="geglu",
        double_self_attention=True,
        positional_embeddings="sinusoidal",
        num_positional_embeddings=48,
    )


@pytest.fixture(scope="module")
def plain_block() -> BasicTransformerBlock:
    torch.manual_seed(3)
    block = BasicTransformerBlock(**_block_arguments()).eval()
    for parameter in block.parameters():  # diffusers zero-initialises some; random weights make every path count
        torch.nn.init.normal_(parameter, std=0.3)
    return block


def _free_noise_block(plain: BasicTransformerBlock, windows: ContextWindows) -> FreeNoiseTransformerBlock:
    block = FreeNoiseTransformerBlock(
        **_block_arguments(),
        context_length=windows.length,
        context_stride=windows.stride,
        weighting_scheme=windows.weighting,
    ).eval()
    block.load_state_dict(plain.state_dict())
    return block


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_window_weights_are_diffusers(weighting: str) -> None:
    reference = FreeNoiseTransformerBlock(**_block_arguments())
    for length in range(1, 34):
        if weighting == "delayed_reverse_sawtooth" and length % 2:  # diffusers makes length + 1 weights
            with pytest.raises(ValueError, match="even length"):
                ContextWindows(length=length, stride=1, weighting=weighting)
            continue
        ours = ContextWindows(length=length, stride=1, weighting=weighting).weights()
        assert ours == reference._get_frame_weights(length, weighting), length


@pytest.mark.parametrize(("length", "stride", "weighting"), SETTINGS)
def test_past_one_window_the_block_is_diffusers_free_noise_bit_for_bit(
    plain_block: BasicTransformerBlock, length: int, stride: int, weighting: str
) -> None:
    windows = ContextWindows(length=length, stride=stride, weighting=weighting)
    ours, reference = ContextWindowedBlock(plain_block, windows), _free_noise_block(plain_block, windows)
    # whole windows to the last frame, and incomplete last windows (diffusers' extra window and its weight quirk)
    for frames in sorted({length + 1, length + stride, length + stride + 1, 2 * length + 3, 3 * length - 1}):
        hidden = torch.randn(3, frames, DIM)
        with torch.no_grad():
            assert torch.equal(ours(hidden), reference(hidden)), frames


@pytest.mark.parametrize(("length", "stride", "weighting"), SETTINGS)
def test_up_to_one_window_the_block_is_the_plain_block_bit_for_bit(
    plain_block: BasicTransformerBlock, length: int, stride: int, weighting: str
) -> None:
    ours = ContextWindowedBlock(plain_block, ContextWindows(length=length, stride=stride, weighting=weighting))
    for frames in range(1, length + 1):
        hidden = torch.randn(2, frames, DIM)
        with torch.no_grad():
            assert torch.equal(ours(hidden), plain_block(hidden)), frames


def test_window_plan_covers_every_frame_in_diffusers_windows() -> None:
    windows = ContextWindows(length=16, stride=4)
    weights = torch.tensor(windows.weights())
    plan = window_plan(torch.tensor(25), windows, weights)
    # diffusers' example: 25 frames -> [(0, 16), (4, 20), (8, 24), (9, 25)]
    assert plan.gather[:, 0].tolist() == [0, 4, 8, 9] and plan.gather.shape == (4, 16)
    assert bool((plan.totals > 0).all())
    # the last frame is only in the extra window; its total is the weight at that window's first new position
    assert float(plan.totals[24]) == weights[15] and float(plan.weights[-1][24]) == weights[15]
    assert float(plan.totals[0]) == weights[0]  # the first frame: one window, its own weight
    short = window_plan(torch.tensor(5), windows, weights)
    assert short.gather.tolist() == [[0, 1, 2, 3, 4]] and short.totals.tolist() == [1.0] * 5


@pytest.mark.parametrize("frames", [16, 17, 23, 40])
def test_shuffled_noise_is_diffusers(frames: int) -> None:
    windows = ContextWindows()
    owner = SimpleNamespace(
        _free_noise_context_length=windows.length,
        _free_noise_context_stride=windows.stride,
        _free_noise_noise_type="shuffle_context",
        vae_scale_factor=8,
    )
    expected = AnimateDiffFreeNoiseMixin._prepare_latents_free_noise(
        owner, 1, 4, frames, 16, 24, torch.float32, torch.device("cpu"), torch.Generator().manual_seed(5)
    )
    generator = torch.Generator().manual_seed(5)
    latents = torch.randn((1, 4, frames, 2, 3), generator=generator)
    assert torch.equal(shuffle_context(latents, windows, generator), expected)
    if frames > windows.length:  # each frame past the first window repeats one of the stride frames a window back
        for frame in range(windows.length, frames):
            back = frame - frame % windows.stride - windows.length
            assert any(torch.equal(latents[:, :, frame], latents[:, :, f]) for f in range(back, back + windows.stride))


def test_context_windows_reject_gaps_and_unknown_schemes() -> None:
    with pytest.raises(ValueError, match="stride"):
        ContextWindows(length=8, stride=9)  # frames between windows would belong to none
    with pytest.raises(ValueError, match="weighting"):
        ContextWindows(weighting="steep")
    with pytest.raises(ValueError, match="noise"):
        ContextWindows(noise="repeat_context")


def test_windowed_unet_is_a_copy_sharing_the_weights() -> None:
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=4,
        cross_attention_dim=8,
        attention_head_dim=2,
    )
    adapter = MotionAdapter(block_out_channels=(8, 16), motion_layers_per_block=1, motion_norm_num_groups=4,
                            motion_num_attention_heads=2)
    motion = UNetMotionModel.from_unet2d(unet, adapter).eval()
    windowed = with_context_windows(motion, ContextWindows(length=4, stride=2))
    originals = [m for m in motion.modules() if isinstance(m, BasicTransformerBlock)]
    copies = [m for m in windowed.modules() if isinstance(m, ContextWindowedBlock)]
    assert copies and not any(isinstance(m, ContextWindowedBlock) for m in motion.modules())
    assert {id(p) for p in windowed.parameters()} == {id(p) for p in motion.parameters()}
    assert len(originals) >= len(copies)
    sample, timestep, text = torch.randn(2, 4, 7, 8, 8), torch.tensor([10.0, 10.0]), torch.randn(14, 5, 8)
    with torch.no_grad():
        short = (sample[:, :, :4], timestep, text[:8])
        assert torch.equal(windowed(*short).sample, motion(*short).sample)  # one window: the plain unet
        assert not torch.allclose(windowed(sample, timestep, text).sample, motion(sample, timestep, text).sample)
