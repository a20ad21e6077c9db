"""Model management: the catalog's cards merged with Triton's live repository state; load / unload."""
