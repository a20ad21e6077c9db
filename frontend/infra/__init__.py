"""Shared infrastructure of the API: the inference servers (Triton endpoints and their repository API), GPUs
(NVML) and the data folder's disk. Every domain may use it."""
