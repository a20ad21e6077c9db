"""Stable Video Diffusion's export: a local ``StableVideoDiffusionPipeline`` folder (or the tiny demo saved as
one), loaded by ``loader.py`` and described by ``specs.py`` and ``cards.py``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from visualizr import names
from visualizr.export.family import FamilyExport, LoadedModel
from visualizr.families import Family, get_family
from visualizr.families.stable_video_diffusion.vocabulary import IMAGE_ENCODER

if TYPE_CHECKING:
    from visualizr.export.build_stamp import ExportOptions
    from visualizr.export.families.stable_video_diffusion.loader import StableVideoDiffusionComponents


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
            from visualizr.export.families.stable_video_diffusion.tiny import ensure_tiny_weights

            return load_stable_video_diffusion(ensure_tiny_weights())
        return load_stable_video_diffusion(Path(options.weights))

    def describe(self, options: ExportOptions, components: StableVideoDiffusionComponents) -> LoadedModel:
        from visualizr.export.families.stable_video_diffusion import cards
        from visualizr.export.families.stable_video_diffusion.specs import NETWORK_SPECS, StableVideoDiffusionDims
        from visualizr.export.model_cards import model_card, shape_limits
        from visualizr.families.stable_video_diffusion.loop import StableVideoDiffusionConfig
        from visualizr.pipeline_config import FEATURE_EXTRACTOR_DIRNAME, SCHEDULER_DIRNAME

        model_id = options.id
        config = StableVideoDiffusionConfig(
            model_id=model_id,
            family=self.family.name,
            image_size=components.image_size,
            latent_channels=components.latent_channels,
            vae_scale_factor=components.vae_scale_factor,
            vae_scaling_factor=components.vae_scaling_factor,
        )
        multiple_of = components.vae_scale_factor  # the UNet export accepts every latent size (see trace_case)
        card = model_card(
            cards, options, self.triton_models(model_id), multiple_of, components.num_frames, components.source_name
        )
        dims = StableVideoDiffusionDims(
            latent_channels=config.latent_channels,
            vae_scale_factor=config.vae_scale_factor,
            image_size=config.image_size,
            image_embed_dim=components.image_embed_dim,
        )
        return LoadedModel(
            networks={
                IMAGE_ENCODER: components.image_encoder,
                names.VAE_ENCODER: components.vae,
                names.UNET: components.unet,
                names.VAE_DECODER: components.vae,
            },
            specs=tuple(spec(dims) for spec in NETWORK_SPECS),
            config=config,
            card=card,
            limits=shape_limits(card, config),
            assets={FEATURE_EXTRACTOR_DIRNAME: components.feature_extractor, SCHEDULER_DIRNAME: components.scheduler},
            unet_downsample_factor=components.unet_downsample_factor,
        )


EXPORT = StableVideoDiffusionExport()
