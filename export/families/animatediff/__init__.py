"""AnimateDiff's export: a Stable Diffusion 1.5 folder + motion adapter (or a saved AnimateDiffPipeline) and
optionally an IP-Adapter folder, or the tiny demo (with its tiny IP-Adapter) saved in those layouts, loaded by
``loader.py`` and described by ``specs.py`` and ``cards.py``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from visualizr import names
from visualizr.export.family import FamilyExport, LoadedModel
from visualizr.families import Family, get_family
from visualizr.families.animatediff.vocabulary import IMAGE_ENCODER, TEXT_ENCODER

if TYPE_CHECKING:
    from visualizr.export.build_stamp import ExportOptions
    from visualizr.export.families.animatediff.loader import AnimateDiffComponents


class AnimateDiffExport(FamilyExport):
    @property
    def family(self) -> Family:
        return get_family("animatediff")

    def load_components(self, options: ExportOptions) -> AnimateDiffComponents:
        from visualizr.export.families.animatediff.loader import load_animatediff

        if options.is_tiny:  # the demo has its tiny IP-Adapter, unless given another
            from visualizr.export.families.animatediff.ip_adapter import ensure_tiny_ip_adapter
            from visualizr.export.families.animatediff.tiny import ensure_tiny_weights

            return load_animatediff(*ensure_tiny_weights(), options.ip_adapter or ensure_tiny_ip_adapter())
        return load_animatediff(Path(options.weights), options.motion_adapter, options.ip_adapter)

    def describe(self, options: ExportOptions, components: AnimateDiffComponents) -> LoadedModel:
        import msgspec

        from visualizr.export.families.animatediff import cards
        from visualizr.export.families.animatediff.specs import NETWORK_SPECS, AnimateDiffDims
        from visualizr.export.families.animatediff.tiny import DECODE_CHUNK_SIZE
        from visualizr.export.model_cards import model_card, shape_limits
        from visualizr.families.animatediff.loop import AnimateDiffConfig
        from visualizr.pipeline.previews import fit_latent_rgb
        from visualizr.pipeline_config import FEATURE_EXTRACTOR_DIRNAME, SCHEDULER_DIRNAME, TOKENIZER_DIRNAME

        model_id = options.id
        windows = cards.CONTEXT_WINDOWS
        windows = msgspec.structs.replace(windows, length=min(windows.length, components.max_frames))
        tiny_only = {"decode_chunk_size": DECODE_CHUNK_SIZE} if options.is_tiny else {}  # real weights: the default
        ip_adapter = components.ip_adapter
        image_size, image_embed_dim = (ip_adapter.image_size, ip_adapter.image_embed_dim) if ip_adapter else (0, 0)
        if options.is_tiny:  # previews' map fitted to the random VAE (real weights: SD1.5's, pipeline.previews)
            tiny_only["latent_rgb"] = fit_latent_rgb(lambda z: components.vae.decode(z).sample, components)
        config = AnimateDiffConfig(
            model_id=model_id,
            family=self.family.name,
            text_max_length=components.text_max_length,
            text_hidden_size=components.text_hidden_size,
            latent_channels=components.latent_channels,
            vae_scale_factor=components.vae_scale_factor,
            vae_scaling_factor=components.vae_scaling_factor,
            context=windows,
            ip_adapter_embed_dim=image_embed_dim,
            **tiny_only,
        )
        dims = AnimateDiffDims(
            latent_channels=config.latent_channels,
            vae_scale_factor=config.vae_scale_factor,
            text_max_length=config.text_max_length,
            text_hidden_size=config.text_hidden_size,
            windows=windows,
            image_size=image_size,
            image_embed_dim=image_embed_dim,
        )
        vae = components.vae
        networks = {
            TEXT_ENCODER: components.text_encoder,
            names.UNET: components.unet,
            names.VAE_DECODER: vae,
            names.VAE_ENCODER: vae,
        }
        assets = {TOKENIZER_DIRNAME: components.tokenizer, SCHEDULER_DIRNAME: components.scheduler}
        if ip_adapter is not None:
            networks[IMAGE_ENCODER] = ip_adapter.image_encoder
            assets[FEATURE_EXTRACTOR_DIRNAME] = ip_adapter.image_processor
        specs = tuple(spec(dims) for spec in NETWORK_SPECS if spec.component in networks)
        multiple_of = components.vae_scale_factor  # the UNet export accepts every latent size (see trace_case)
        triton_models = self.triton_models(model_id, [spec.component for spec in specs])
        card = model_card(cards, options, triton_models, multiple_of, windows.length, components.source_name)
        if ip_adapter is not None:
            card = cards.with_ip_adapter(card)
        return LoadedModel(
            networks=networks,
            specs=specs,
            config=config,
            card=card,
            limits=shape_limits(card, config),
            assets=assets,
            unet_downsample_factor=components.unet_downsample_factor,
        )


EXPORT = AnimateDiffExport()
