"""Turning a request into a job: validation against the model card, options, uploaded images, character requests,
idempotency keys."""
