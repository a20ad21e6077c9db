"""One export package per model family (``EXPORT``: a ``visualizr.export.family.FamilyExport``), named like the
family's module in ``visualizr.families``; the registry is ``visualizr.families.FAMILY_NAMES``."""
