"""What benchmarks/gpu.py needs of each family: its networks, Visualizr's loop, diffusers' pipeline over the SAME
modules, which module entry points make which stage, the FLOPs per stage, and the benchmark's default case."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks import gpu_models
from visualizr import names
from visualizr.export.families.ltx_video.loader import SUBFOLDERS as LTX_SUBFOLDERS
from visualizr.pipeline import GenerationRequest

TEXT_ENCODER_STAGE, VAE_DECODER_STAGE = "text_encoder", "vae_decoder"
Timed = list[tuple[Any, str, str]]  # (owner, attribute, stage): the entry points the timer wraps


@dataclass(frozen=True)
class BenchFamily:
    name: str  # --family, the export's family name and the demo model id
    denoiser: str  # the network called every step: its stage is its time over all steps
    defaults: dict[str, Any]  # the benchmark's case: frames, height, width, steps, guidance, dtype
    subfolders: tuple[str, ...]  # the diffusers folder --save-weights writes
    load: Callable[[argparse.Namespace], Any]  # the components (real-size random, tiny demo or --weights)
    visualizr_pipeline: Callable[[], type]  # Visualizr's loop class
    diffusers_pipeline: Callable[[Any], Any]  # components -> diffusers' pipeline over them (a fresh scheduler)
    diffusers_arguments: Callable[[Any, GenerationRequest], dict[str, Any]]  # config, request -> family arguments
    timed: Callable[[Any, dict[str, Any]], Timed]  # components, spec wrappers by component -> entry points
    flops: Callable[[Any, int, int, int, int], dict[str, int]]  # components, batch, frames, height, width

    @property
    def stages(self) -> tuple[str, str, str]:
        return (TEXT_ENCODER_STAGE, self.denoiser, VAE_DECODER_STAGE)


def fresh_scheduler(components: Any) -> Any:
    return type(components.scheduler).from_config(components.scheduler.config)


def _animatediff_pipeline(components: Any) -> Any:
    from diffusers import AnimateDiffPipeline

    return AnimateDiffPipeline(
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        unet=components.unet,
        motion_adapter=None,
        scheduler=fresh_scheduler(components),
    )


def _animatediff_loop() -> type:
    from visualizr.families.animatediff.loop import AnimateDiffPipeline

    return AnimateDiffPipeline


ANIMATEDIFF = BenchFamily(
    name="animatediff",
    denoiser=names.UNET,
    defaults={"frames": 16, "height": 512, "width": 512, "steps": 25, "guidance": 7.5, "dtype": "fp16"},
    subfolders=gpu_models.ANIMATEDIFF_SUBFOLDERS,
    load=lambda args: gpu_models.load_components(args.size, args.device, args.weights, args.motion_adapter),
    visualizr_pipeline=_animatediff_loop,
    diffusers_pipeline=_animatediff_pipeline,
    diffusers_arguments=lambda config, request: {"decode_chunk_size": config.decode_chunk_size},
    timed=lambda components, wrappers: [
        (components.text_encoder, "forward", TEXT_ENCODER_STAGE),
        (components.unet, "forward", names.UNET),
        (wrappers[names.UNET].unet, "forward", names.UNET),  # the export's unet: a windowed copy sharing weights
        (components.vae, "decode", VAE_DECODER_STAGE),
    ],
    flops=gpu_models.stage_flops,
)


def _ltx_pipeline(components: Any) -> Any:
    from diffusers import LTXPipeline

    return LTXPipeline(
        scheduler=fresh_scheduler(components),
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        transformer=components.transformer,
    )


def _ltx_loop() -> type:
    from visualizr.families.ltx_video.loop import LTXVideoPipeline

    return LTXVideoPipeline


def _ltx_arguments(config: Any, request: GenerationRequest) -> dict[str, Any]:
    from visualizr.families.ltx_video.loop import DEFAULT_FPS

    return {
        "frame_rate": request.fps or DEFAULT_FPS,
        "decode_timestep": config.decode_timestep,
        "decode_noise_scale": config.decode_noise_scale,
        "max_sequence_length": config.text_max_length,
    }


def _ltx_timed(components: Any, wrappers: dict[str, Any]) -> Timed:
    from visualizr.families.ltx_video.vocabulary import TRANSFORMER

    return [
        (components.text_encoder, "forward", TEXT_ENCODER_STAGE),
        (components.transformer, "forward", TRANSFORMER),
        (wrappers[TRANSFORMER], "forward", TRANSFORMER),  # the export's forward over the same blocks and weights
        (components.vae, "decode", VAE_DECODER_STAGE),
    ]


LTX_VIDEO = BenchFamily(
    name="ltx-video",
    denoiser="transformer",
    # the case at LTXPipeline's defaults (50 steps, CFG 3); bf16 as LTX-Video runs (T5 overflows fp16)
    defaults={"frames": 121, "height": 512, "width": 768, "steps": 50, "guidance": 3.0, "dtype": "bf16"},
    subfolders=LTX_SUBFOLDERS,
    load=lambda args: gpu_models.load_ltx_components(args.size, args.device, args.torch_dtype, args.weights),
    visualizr_pipeline=_ltx_loop,
    diffusers_pipeline=_ltx_pipeline,
    diffusers_arguments=_ltx_arguments,
    timed=_ltx_timed,
    flops=gpu_models.ltx_stage_flops,
)

FAMILIES = {family.name: family for family in (ANIMATEDIFF, LTX_VIDEO)}
