"""Service-level endpoints (health now; metrics, models, assets and API keys slot in here later)."""
