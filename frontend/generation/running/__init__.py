"""Running one job on Triton: the backend stream, progress, stall detection, the retry rule, encoding the frames."""
