"""Data for the engine: the registered dataset a run names, as loaders whose order depends only on
the seed and the epoch, and that can start mid-epoch (so a resumed run sees the batches the
interrupted one would have)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler


class ResumableSampler(Sampler[int]):
    """DistributedSampler's order (a permutation from seed + epoch, this rank's share of it), from
    batch `start` of the epoch on. One process is rank 0 of 1."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.inner = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.batch_size = batch_size
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[int]:
        indices = list(self.inner)
        return iter(indices[self.start_batch * self.batch_size :])

    def __len__(self) -> int:
        return max(len(self.inner) - self.start_batch * self.batch_size, 0)


def batches_per_epoch(sampler: ResumableSampler, drop_last: bool) -> int:
    n, b = len(sampler.inner), sampler.batch_size
    return n // b if drop_last else -(-n // b)


def load_split(dataset: Any, split: str, options: dict[str, Any], config: Any = None) -> Dataset:
    """dataset.load(split=..., **options), with an error that names the dataset and the split. A
    loaded dataset that can check its masks (`expect_classes`, e.g. image-mask-folder) is told the
    run's num_classes and ignore_index, so a bad mask fails naming its file, not inside the loss."""
    try:
        loaded = dataset.load(split=split, **options)
    except TypeError as exc:
        raise ValueError(f"dataset {dataset.name!r} does not take these options {sorted(options)}: {exc}") from exc
    expect = getattr(loaded, "expect_classes", None)
    if expect is not None and isinstance(getattr(config, "num_classes", None), int):
        expect(config.num_classes, getattr(config, "ignore_index", 255))
    return loaded


def prepare(data: Any, dataset: Dataset, train: bool) -> tuple[Dataset, list[tuple[str, str]]]:
    """The split as the run uses it: bad items skipped when data.skip_bad (returned as (file,
    problem) pairs), the training transforms applied."""
    skipped: list[tuple[str, str]] = []
    if data.skip_bad:
        from vision_kernels.data.skipping import SkipBad

        dataset = SkipBad(dataset)
        skipped = list(dataset.skipped)
    if train and data.transforms:
        from vision_kernels.data.transforms import Transformed, build_transforms

        dataset = Transformed(dataset, build_transforms(data.transforms))
    return dataset, skipped


def train_loader(data: Any, dataset: Dataset, seed: int, rank: int, world_size: int) -> DataLoader:
    sampler = ResumableSampler(dataset, data.batch_size, data.shuffle, seed, data.drop_last, rank, world_size)
    return DataLoader(
        dataset,
        batch_size=data.batch_size,
        sampler=sampler,
        drop_last=data.drop_last,
        num_workers=data.num_workers,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
        collate_fn=getattr(dataset, "collate_fn", None),  # e.g. detection targets of varying length
    )


def eval_loader(data: Any, dataset: Dataset) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=data.eval_batch_size or data.batch_size,
        shuffle=False,
        num_workers=data.num_workers,
        collate_fn=getattr(dataset, "collate_fn", None),
    )


def to_device(batch: Any, device: torch.device) -> Any:
    """Moves every tensor of a (nested) batch to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch
