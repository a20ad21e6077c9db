"""Service-level endpoints: health, JSON and Prometheus metrics, NVML GPU facts, job-history aggregates."""
