"""TensorRT engines of the model repository: what each was built from and for (its manifest), and whether it
still fits the repository and the machine that loads it.

    manifest.py     EngineKey (the cache key: ONNX hash, profile, precision, TensorRT version, GPU) and
                    EngineManifest, the ``model.plan.json`` written beside every ``model.plan``
    environment.py  this machine's TensorRT version (tensorrt module or libnvinfer) and GPUs (torch or NVML)
    check.py        the staleness check the export, the pipeline model (inside Triton) and the API share

Stdlib and msgspec only: the API imports it without torch or TensorRT. See docs/ARCHITECTURE.md, "TensorRT
engines", for where each check runs.
"""
