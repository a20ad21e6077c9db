"""Model families: the registry. A family is one set of modules (see docs/ARCHITECTURE.md, "Model families"):

    visualizr/families/<module>/__init__.py   FAMILY: its networks, pipeline inputs, loop class, motion mapping
    visualizr/families/<module>/vocabulary.py the tensor names only its networks use
    visualizr/families/<module>/loop.py       its denoising loop (a visualizr.pipeline.diffusion.DiffusionPipeline)
    export/families/<module>/                 its export: loader, tiny demo, network specs, wrappers, model cards

``<module>`` is the family name with ``-`` as ``_``. Adding a family is adding those modules and one line here.
Importing this package (and a family's ``FAMILY``) never imports torch.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Final

from visualizr.families.base import Family, Network

FAMILY_NAMES: Final = (
    "animatediff",
    "stable-video-diffusion",
    "ltx-video",
)


def module_name(family_name: str) -> str:
    """The Python module name of a family: ``stable-video-diffusion`` -> ``stable_video_diffusion``."""
    return family_name.replace("-", "_")


@cache
def get_family(name: str) -> Family:
    """The registered family ``name``; ValueError for any other name."""
    if name not in FAMILY_NAMES:
        raise ValueError(f"unknown model family {name!r}; expected one of {', '.join(FAMILY_NAMES)}")
    family = importlib.import_module(f"{__name__}.{module_name(name)}").FAMILY
    if family.name != name:
        raise ValueError(f"family module {module_name(name)} declares {family.name!r}, not {name!r}")
    return family


__all__ = ["FAMILY_NAMES", "Family", "Network", "get_family", "module_name"]
