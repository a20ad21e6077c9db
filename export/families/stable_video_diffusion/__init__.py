"""Stable Video Diffusion's export: a local ``StableVideoDiffusionPipeline`` folder (or the tiny demo saved as
one), with the keyframe stage of a local Stable Diffusion folder when given (the tiny demo's: the AnimateDiff
demo's), loaded by ``loader.py`` and described by ``specs.py`` and ``cards.py``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from visualizr import names
from visualizr.export.family import FamilyExport, LoadedModel
from visualizr.families import Family, get_family
from visualizr.families.stable_video_diffusion.vocabulary import IMAGE_ENCODER, KEYFRAME_PREFIX

if TYPE_CHECKING:
    from visualizr.export.build_stamp import ExportOptions
    from visualizr.export.families.stable_video_diffusion.loader import (
        KeyframeComponents,
        StableVideoDiffusionComponents,
    )
    from visualizr.pipeline.text_to_image import TextToImageConfig


class StableVideoDiffusionExport(FamilyExport):
    @property
    def family(self) -> Family:
        return get_family("stable-video-diffusion")

    def check_weights(self, weights: Path) -> str | None:
        from visualizr.export.families.stable_video_diffusion.loader import check_folder

        return check_folder(weights)

    def load_components(self, options: ExportOptions) -> StableVideoDiffusionComponents:
        from visualizr.export.families.stable_video_diffusion.loader import load_stable_video_diffusion

        if options.is_tiny:
            from visualizr.export.families.animatediff.tiny import ensure_tiny_weights as ensure_tiny_sd
            from visualizr.export.families.stable_video_diffusion.tiny import ensure_tiny_weights

            return load_stable_video_diffusion(ensure_tiny_weights(), ensure_tiny_sd()[0])
        return load_stable_video_diffusion(Path(options.weights), options.keyframe_weights)

    def describe(self, options: ExportOptions, components: StableVideoDiffusionComponents) -> LoadedModel:
        from visualizr.export.families.stable_video_diffusion import cards
        from visualizr.export.families.stable_video_diffusion.specs import (
            KEYFRAME_SPECS,
            NETWORK_SPECS,
            KeyframeDims,
            StableVideoDiffusionDims,
        )
        from visualizr.export.model_cards import model_card, shape_limits
        from visualizr.families.stable_video_diffusion.loop import StableVideoDiffusionConfig
        from visualizr.pipeline.previews import fit_latent_rgb
        from visualizr.pipeline_config import (
            FEATURE_EXTRACTOR_DIRNAME,
            KEYFRAME_DIRNAME,
            SCHEDULER_DIRNAME,
            TOKENIZER_DIRNAME,
        )

        model_id, keyframe = options.id, components.keyframe
        config = StableVideoDiffusionConfig(
            model_id=model_id,
            family=self.family.name,
            image_size=components.image_size,
            latent_channels=components.latent_channels,
            vae_scale_factor=components.vae_scale_factor,
            vae_scaling_factor=components.vae_scaling_factor,
            decode_max_cells=cards.decode_max_cells(options.is_tiny),
            native_num_frames=components.num_frames,
            keyframe=None if keyframe is None else _keyframe_config(keyframe),
            latent_rgb=fit_latent_rgb(_decode_frames(components.vae), components) if options.is_tiny else None,
        )
        dims = StableVideoDiffusionDims(
            latent_channels=config.latent_channels,
            vae_scale_factor=config.vae_scale_factor,
            image_size=config.image_size,
            image_embed_dim=components.image_embed_dim,
        )
        specs = [spec(dims) for spec in NETWORK_SPECS]
        networks: dict[str, Any] = {
            IMAGE_ENCODER: components.image_encoder,
            names.VAE_ENCODER: components.vae,
            names.UNET: components.unet,
            names.VAE_DECODER: components.vae,
        }
        assets: dict[str, Any] = {
            FEATURE_EXTRACTOR_DIRNAME: components.feature_extractor,
            SCHEDULER_DIRNAME: components.scheduler,
        }
        downsample = components.unet_downsample_factor
        if keyframe is not None:
            keyframe_dims = KeyframeDims(
                latent_channels=keyframe.latent_channels,
                vae_scale_factor=keyframe.vae_scale_factor,
                text_max_length=keyframe.text_max_length,
                text_hidden_size=keyframe.text_hidden_size,
            )
            specs += [spec(keyframe_dims) for spec in KEYFRAME_SPECS]
            networks.update(_keyframe_networks(keyframe))
            assets[f"{KEYFRAME_DIRNAME}/{TOKENIZER_DIRNAME}"] = keyframe.tokenizer
            assets[f"{KEYFRAME_DIRNAME}/{SCHEDULER_DIRNAME}"] = keyframe.scheduler
            downsample = max(downsample, keyframe.unet_downsample_factor)  # one trace case fits both UNets
        multiple_of = components.vae_scale_factor  # the UNet exports accept every latent size (see trace_case)
        triton_models = self.triton_models(model_id, [spec.component for spec in specs])
        card = model_card(cards, options, triton_models, multiple_of, components.num_frames, components.source_name)
        card = cards.with_stages(card, components.num_frames, None if keyframe is None else keyframe.source_name)
        return LoadedModel(
            networks=networks,
            specs=tuple(specs),
            config=config,
            card=card,
            limits=shape_limits(card, config, unet_frames=components.num_frames),  # a segment per pass
            assets=assets,
            unet_downsample_factor=downsample,
        )


def _keyframe_config(keyframe: KeyframeComponents) -> TextToImageConfig:
    from visualizr.pipeline.text_to_image import TextToImageConfig

    return TextToImageConfig(
        latent_channels=keyframe.latent_channels,
        vae_scale_factor=keyframe.vae_scale_factor,
        vae_scaling_factor=keyframe.vae_scaling_factor,
        text_max_length=keyframe.text_max_length,
        text_hidden_size=keyframe.text_hidden_size,
    )


def _keyframe_networks(keyframe: KeyframeComponents) -> dict[str, Any]:
    """The keyframe stage's networks under the model's component names (``keyframe_<shared name>``)."""
    stage = {names.TEXT_ENCODER: keyframe.text_encoder, names.UNET: keyframe.unet, names.VAE_DECODER: keyframe.vae}
    return {KEYFRAME_PREFIX + component: network for component, network in stage.items()}


EXPORT = StableVideoDiffusionExport()


def _decode_frames(vae: Any) -> Any:
    """The temporal VAE decoder over a batch of latents as one clip (previews' fit)."""
    return lambda latents: vae.decode(latents, num_frames=latents.shape[0]).sample
