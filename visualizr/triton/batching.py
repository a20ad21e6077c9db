"""Groups the requests of one dynamic batch, concatenates their inputs along dim 0, splits outputs back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

Feeds = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]


def shape_signature(feeds: Feeds) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The non-batch shapes of a request's inputs: requests that share it can run as one batch."""
    return tuple(sorted((name, tuple(array.shape[1:])) for name, array in feeds.items()))


def group_batchable(all_feeds: Sequence[Feeds]) -> list[list[int]]:
    """Indices of requests grouped by shape signature, in arrival order."""
    groups: dict[tuple, list[int]] = {}
    for index, feeds in enumerate(all_feeds):
        groups.setdefault(shape_signature(feeds), []).append(index)
    return list(groups.values())


def run_batched(run: Callable[[Feeds], Outputs], all_feeds: Sequence[Feeds]) -> list[Outputs]:
    """Run ``run`` once over the concatenated ``all_feeds`` (one signature) and split its outputs back."""
    if len(all_feeds) == 1:
        return [run(all_feeds[0])]
    sizes = [next(iter(feeds.values())).shape[0] for feeds in all_feeds]
    for feeds, size in zip(all_feeds, sizes, strict=True):
        if any(array.shape[0] != size for array in feeds.values()):
            raise ValueError("inputs of one request disagree on the batch size")
    merged = {name: np.concatenate([feeds[name] for feeds in all_feeds]) for name in all_feeds[0]}
    outputs = run(merged)
    bounds = np.cumsum(sizes)[:-1]
    split = {name: np.split(array, bounds) for name, array in outputs.items()}
    return [{name: parts[i] for name, parts in split.items()} for i in range(len(all_feeds))]
