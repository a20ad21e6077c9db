"""Builds Visualizr's Triton model repository.

tiny random AnimateDiff (fixed seed) or a local diffusers folder -> ONNX (one spec class per network)
-> optional TensorRT engines -> rendered ``config.pbtxt``, model card and pipeline assets.

Importing this package must stay cheap (no torch): ``python -m visualizr.export`` checks its build stamp first.
"""
