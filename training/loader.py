"""From a decoded :class:`~training.datasets.FaceSet` to model-ready batches, without per-sample Python work.

A FaceSet goes once through ``ModelSpec.pixels`` into one cached uint8 tensor; each batch is then a gather, the
batch augmentations and ``ModelSpec.normalize``, all tensor ops. :class:`BatchLoader` shuffles (or oversamples by
class) from a generator seeded by ``(seed, epoch)`` and shards across DDP ranks, so resuming is exact.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator

import numpy as np
import torch

from core.models.base import ModelSpec
from training.augment import BatchAugmenter, class_sample_weights
from training.datasets import FaceSet, _save_npy, cache_root

log = logging.getLogger(__name__)


def seed_for(*parts: int) -> int:
    """A well-mixed 63-bit seed from small integers (seed, epoch, rank, stream), stable across runs."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1)


DISK_CACHE_MIN_PIXELS = 2**26
"""Model-sized tensors of at least this many pixels (e.g. 28k FER2013 faces at 224 px) are also cached on disk."""


def prepare_tensor(fs: FaceSet, spec: ModelSpec, chunk: int = 4096, cache_dir: str | None = None) -> torch.Tensor:
    """``spec.pixels(fs.images)`` (uint8 ``(N, c, S, S)``), cached on the FaceSet (and on disk).

    Computed in chunks to bound memory; large results go to ``<cache>/tensor-<hash>.npy`` (keyed by the source
    pixels and the spec) for later runs and sessions.
    """
    key = (spec.input_size, spec.in_chans, tuple(spec.preprocess))
    if key in fs.cache:
        return fs.cache[key]
    size = spec.input_size
    disk = None
    if len(fs) * size * size >= DISK_CACHE_MIN_PIXELS:
        h = hashlib.blake2b(f"pixels-v2|{fs.images.shape}|{key}".encode(), digest_size=12)
        h.update(np.ascontiguousarray(fs.images).data)
        disk = cache_root(cache_dir) / f"tensor-{h.hexdigest()}.npy"
        if disk.is_file():
            try:
                fs.cache[key] = out = torch.from_numpy(np.load(disk))
                return out
            except (OSError, ValueError) as exc:
                log.warning("tensor cache %s unreadable (%s); recomputing", disk, exc)
    parts = [spec.pixels(fs.images[start : start + chunk]) for start in range(0, len(fs.images), chunk)]
    channels = max((p.shape[1] for p in parts), default=1)
    out = (
        torch.cat([p.expand(-1, channels, -1, -1) for p in parts])
        if parts
        else torch.zeros((0, 1, size, size), dtype=torch.uint8)
    )
    fs.cache[key] = out
    if disk is not None:
        try:
            _save_npy(disk, out.numpy())
        except OSError as exc:
            log.warning("could not write the tensor cache %s: %s (continuing without it)", disk, exc)
    return out


GPU_RESIDENT_MAX_BYTES = 16 * 2**30
"""On CUDA, splits up to this size (uint8) are moved to the GPU once (FER2013 at 224 px gray: 1.4 GB)."""


class BatchLoader:
    """Batches of ``(inputs, targets, index)`` from a prepared FaceSet, augmented and normalised on ``device``.

    ``batch_size`` is per process. ``train`` shuffles (or oversamples by ``sampler``, see
    :func:`training.augment.class_sample_weights`), drops the last partial batch and applies ``augmenter``. Epoch
    ``e`` on rank ``r`` draws from generators seeded by ``(seed, e)`` and ``(seed, e, r)``; with DDP every rank sees
    ``ceil(N / world_size)`` samples. ``cache_dir`` is where :func:`prepare_tensor` may cache large tensors.
    """

    def __init__(
        self,
        fs: FaceSet,
        spec: ModelSpec,
        batch_size: int,
        *,
        train: bool = False,
        augmenter: BatchAugmenter | None = None,
        sampler: str = "random",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
        cache_dir: str | None = None,
    ) -> None:
        self.fs, self.spec, self.batch_size, self.train = fs, spec, batch_size, train
        self.augmenter = augmenter if train else None
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.device = torch.device(device)
        self.images = prepare_tensor(fs, spec, cache_dir=cache_dir)
        self.targets = torch.from_numpy(fs.targets)
        if self.device.type == "cuda" and self.images.numel() <= GPU_RESIDENT_MAX_BYTES:
            # the whole uint8 split on the GPU: batches are a device-side gather, no host copies per step
            self.images, self.targets = self.images.to(self.device), self.targets.to(self.device)
        weights = class_sample_weights(fs.labels, fs.num_classes, sampler) if train else None
        self.weights = None if weights is None else torch.from_numpy(weights)
        self.epoch = 0
        if train and self.num_samples < batch_size:
            raise ValueError(
                f"training split has {len(fs)} images ({self.num_samples} per process), fewer than one batch "
                f"of {batch_size}; lower batch_size or raise data.limit"
            )

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch."""
        return -(-len(self.fs) // self.world_size)

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        """This rank's sample order for the current epoch (identical on every rank before sharding)."""
        n = len(self.fs)
        if not self.train:
            order = torch.arange(n)
        else:
            g = torch.Generator().manual_seed(seed_for(self.seed, self.epoch, 0))
            if self.weights is not None:
                order = torch.multinomial(self.weights, n, replacement=True, generator=g)
            else:
                order = torch.randperm(n, generator=g)
        total = self.num_samples * self.world_size
        if total > n:  # pad like DistributedSampler so every rank has the same number of samples
            order = torch.cat([order, order[: total - n]])
        return order[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        order = self.indices()
        g = None
        if self.augmenter is not None:
            g = torch.Generator(device=self.device).manual_seed(seed_for(self.seed, self.epoch, self.rank + 1, 7))
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            at = idx.to(self.images.device)
            x = self.images[at].to(self.device, non_blocking=True).float().div_(255.0)
            y = self.targets[at].to(self.device, non_blocking=True)
            if self.augmenter is not None:
                x, y = self.augmenter(x, y, g)
            yield self.spec.normalize(x), y, idx
