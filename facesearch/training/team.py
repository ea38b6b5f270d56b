"""A training process's place in its team: alone (``Solo``) or one of several (``Team``).

Each process holds the whole model and sees every N-th sample of the epoch's order (the same
order everywhere, from the same seed), in batches of ``batch_size / N``, so the N of them
together take the steps one process would take on the whole batch. The step runs under torch's
DistributedDataParallel, whose backward averages the gradients across processes, so every
process applies the same update and the weights stay identical. The lead process (rank 0)
alone validates, writes the model file and the checkpoints; the others wait for its figures.

Backends: gloo on CPU, NCCL on CUDA (one GPU per process). A process that dies takes the
others down (``torch.multiprocessing`` terminates them), and ``--resume`` continues from the
lead's last checkpoint, whatever the number of processes.

This module is the only one that knows there may be several processes: the trainer asks its
``Team`` (``Solo`` for one process) to shard, wrap the step, sum and share.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from facesearch.errors import InputError

log = logging.getLogger(__name__)


class Solo:
    """One process: every team operation is the identity."""

    rank, world, lead = 0, 1, True

    def shard(self, sampler: Sampler) -> Sampler:
        return sampler

    def batch_size(self, whole: int) -> int:
        return whole

    def wrap(self, step: nn.Module) -> nn.Module:
        """The module a training step calls: as it is, for one process."""
        return step

    def sum(self, values: Sequence[float]) -> list[float]:
        return list(values)

    def share(self, value: Any) -> Any:
        return value


class Shard(Sampler):
    """Every ``world``-th index of ``base``'s order, from ``rank``: the process's part of an
    epoch (the base sampler is seeded alike in every process, so the parts never overlap)."""

    def __init__(self, base: Sampler, rank: int, world: int) -> None:
        self.base, self.rank, self.world = base, rank, world

    def __iter__(self) -> Iterator[int]:
        for position, index in enumerate(self.base):
            if position % self.world == self.rank:
                yield index

    def __len__(self) -> int:
        return (len(self.base) - self.rank + self.world - 1) // self.world  # type: ignore[arg-type]


class Team(Solo):
    """This process's place among ``world`` training processes (torch.distributed)."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world, self.lead = rank, world, rank == 0

    def shard(self, sampler: Sampler) -> Sampler:
        return Shard(sampler, self.rank, self.world)

    def batch_size(self, whole: int) -> int:
        return max(1, whole // self.world)

    def wrap(self, step: nn.Module) -> nn.Module:
        """``step`` under torch's DistributedDataParallel: its forward is the process's shard of
        the batch, and backward averages the gradients across the team (bucketed all-reduce,
        overlapped with the backward pass), so every process applies the same update. Made
        collectively (it broadcasts the lead's weights), by every process at the same point.
        Parameters a step may leave unused (the classifier when the teacher alone teaches)
        are allowed; BatchNorm statistics stay each process's own (the lead re-estimates them
        before it validates)."""
        from torch.nn.parallel import DistributedDataParallel

        device = next(step.parameters()).device
        return DistributedDataParallel(
            step, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True, broadcast_buffers=False,
        )

    def sum(self, values: Sequence[float]) -> list[float]:
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        total = torch.tensor(list(values), dtype=torch.float64, device=device)
        dist.all_reduce(total)
        return total.tolist()

    def share(self, value: Any) -> Any:
        """The lead's ``value`` (its validation figures), in every process."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def check_nproc(nproc: int, device: str | None) -> None:
    """Refuse a process count the machine cannot run: more than its CPUs (or GPUs)."""
    if nproc < 1:
        raise InputError(f"--nproc must be at least 1, not {nproc}")
    cuda = device != "cpu" and torch.cuda.is_available()
    available = torch.cuda.device_count() if cuda else (os.cpu_count() or 1)
    if nproc > available:
        what = "GPUs" if cuda else "CPUs"
        raise InputError(f"--nproc {nproc} is more processes than this machine's {available} {what}")
