"""Deterministic, resumable batch order over a map-style dataset.

Each epoch is a permutation drawn from its own generator seeded by (seed, epoch), so the
order depends only on the seed and the position (epoch, index), which is all a checkpoint
needs to store. Batches run on across epoch boundaries (no sample is dropped); each item
comes with its epoch, since the training set draws its random crops from (seed, epoch,
photo). Samples are loaded in the training process itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class BatchOrder:
    def __init__(self, dataset_size: int, batch_size: int, seed: int):
        if dataset_size < 1:
            raise ValueError("the training set is empty")
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.index = 0
        self._permutation = self._permute(0)

    def _permute(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.dataset_size, generator=generator).tolist()

    def next_batch(self) -> list[tuple[int, int]]:
        """The next batch_size (epoch, dataset index) pairs."""
        items = []
        while len(items) < self.batch_size:
            if self.index == self.dataset_size:
                self.epoch += 1
                self.index = 0
                self._permutation = self._permute(self.epoch)
            take = min(self.batch_size - len(items), self.dataset_size - self.index)
            items += [(self.epoch, i) for i in self._permutation[self.index:self.index + take]]
            self.index += take
        return items

    def state_dict(self) -> dict:
        return {"dataset_size": self.dataset_size, "batch_size": self.batch_size,
                "seed": self.seed, "epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict) -> None:
        for key in ("dataset_size", "batch_size", "seed"):
            if state[key] != getattr(self, key):
                raise ValueError(f"the checkpoint was made with {key} {state[key]}, this run "
                                 f"has {getattr(self, key)}: resume with the same data and "
                                 f"options, or use a new run directory")
        self.epoch, self.index = state["epoch"], state["index"]
        self._permutation = self._permute(self.epoch)


def collate(samples: Sequence[dict]) -> dict:
    """Stack a list of sample dicts key by key (tensors stacked, numbers as a tensor)."""
    batch = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        else:
            batch[key] = torch.as_tensor(values)
    return batch
