"""LTX-Video's export: a local ``LTXPipeline`` folder (or the tiny demo saved as one), loaded by ``loader.py`` and
described by ``specs.py`` and ``cards.py``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from visualizr import names
from visualizr.export.family import FamilyExport, LoadedModel
from visualizr.families import Family, get_family
from visualizr.families.ltx_video.vocabulary import TRANSFORMER

if TYPE_CHECKING:
    from visualizr.export.build_stamp import ExportOptions
    from visualizr.export.families.ltx_video.loader import LTXVideoComponents

# The transformer has no downsampling (patch size 1); its trace and verification cases use a factor of 2 so that
# their token counts and latent sizes differ on every axis.
CASE_FACTOR = 2


class LTXVideoExport(FamilyExport):
    @property
    def family(self) -> Family:
        return get_family("ltx-video")

    def check_weights(self, weights: Path) -> str | None:
        from visualizr.export.families.ltx_video.loader import check_folder

        return check_folder(weights)

    def load_components(self, options: ExportOptions) -> LTXVideoComponents:
        from visualizr.export.families.ltx_video.loader import load_ltx_video

        if options.is_tiny:
            from visualizr.export.families.ltx_video.tiny import ensure_tiny_weights

            return load_ltx_video(ensure_tiny_weights())
        return load_ltx_video(Path(options.weights))

    def describe(self, options: ExportOptions, components: LTXVideoComponents) -> LoadedModel:
        import msgspec

        from visualizr.export.families.ltx_video import cards
        from visualizr.export.families.ltx_video.previews import fit_preview_map
        from visualizr.export.families.ltx_video.specs import NETWORK_SPECS, LTXVideoDims
        from visualizr.export.model_cards import model_card, shape_limits
        from visualizr.families.ltx_video.loop import LTXVideoConfig
        from visualizr.pipeline_config import SCHEDULER_DIRNAME, TOKENIZER_DIRNAME

        vae = components.vae
        config = LTXVideoConfig(
            model_id=options.id,
            family=self.family.name,
            latent_channels=components.latent_channels,
            vae_scale_factor=components.vae_scale_factor,
            vae_scaling_factor=float(vae.config.scaling_factor),
            text_max_length=components.text_max_length,
            vae_temporal_scale_factor=components.vae_temporal_scale_factor,
            latents_mean=[float(v) for v in vae.latents_mean],
            latents_std=[float(v) for v in vae.latents_std],
            timestep_conditioning=components.timestep_conditioning,
        )
        config = msgspec.structs.replace(config, latent_rgb=fit_preview_map(vae, config))
        dims = LTXVideoDims(
            latent_channels=config.latent_channels,
            vae_scale_factor=config.vae_scale_factor,
            vae_temporal_scale_factor=config.vae_temporal_scale_factor,
            text_max_length=config.text_max_length,
            text_hidden_size=components.text_hidden_size,
        )
        networks: dict[str, Any] = {
            names.TEXT_ENCODER: components.text_encoder,
            TRANSFORMER: components.transformer,
            names.VAE_DECODER: vae,
            names.VAE_ENCODER: vae,
        }
        triton_models = self.triton_models(options.id)
        card = model_card(cards, options, triton_models, config.vae_scale_factor, 0, components.source_name)
        return LoadedModel(
            networks=networks,
            specs=tuple(spec(dims) for spec in NETWORK_SPECS),
            config=config,
            card=card,
            limits=shape_limits(card, config),
            assets={TOKENIZER_DIRNAME: components.tokenizer, SCHEDULER_DIRNAME: components.scheduler},
            unet_downsample_factor=CASE_FACTOR,
        )


EXPORT = LTXVideoExport()
