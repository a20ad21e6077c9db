"""The same frames always make the same MP4, also when several encodes run at once (the API encodes finished jobs
in worker threads): same seed, same video, down to the bytes a client downloads.

With x264's macroblock-tree rate control on, a clip of independent 8x8 colour blocks per frame (the kind of
high-entropy clip the random demo models make) encoded 200 times from four threads gave 3-13 different MP4s on a
2-core machine; ``X264_OPTIONS`` turns it off."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from visualizr.frontend.generation.running.encoding import write_mp4

pytestmark = pytest.mark.slow

ENCODES = 200
BLOCKS = np.kron(
    np.random.default_rng(0).integers(0, 256, (6, 12, 8, 3)), np.ones((1, 8, 8, 1), dtype=np.int64)
).astype(np.uint8)  # 6 frames of 96 x 64


def test_the_same_frames_encode_to_the_same_bytes_from_concurrent_threads(tmp_path: Path) -> None:
    def encode(index: int) -> bytes:
        path = tmp_path / f"{index}.mp4"
        write_mp4(BLOCKS, 24, path)
        return path.read_bytes()

    with ThreadPoolExecutor(4) as pool:
        encodings = set(pool.map(encode, range(ENCODES)))
    assert len(encodings) == 1
