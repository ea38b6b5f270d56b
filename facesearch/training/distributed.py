"""Training on several processes (``facesearch train --nproc N``): data parallel, one machine.

Each process holds the whole model and sees every N-th sample of the epoch's order (the same
order everywhere, from the same seed), in batches of ``batch_size / N``, so the N of them
together take the steps one process would take on the whole batch. After each backward pass
the gradients are averaged across processes (one all-reduce of them all, flattened), so every
process applies the same update and the weights stay identical. The lead process (rank 0)
alone validates, writes the model file and the checkpoints; the others wait for its figures.

Backends: gloo on CPU, NCCL on CUDA (one GPU per process). A process that dies takes the
others down (``torch.multiprocessing`` terminates them), and ``--resume`` continues from the
lead's last checkpoint, whatever the number of processes.

This module is the only one that knows there may be several processes: the trainer asks its
``Team`` (``Solo`` for one process) to shard, average, sum and share.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
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

    def average_gradients(self, modules: Sequence[nn.Module]) -> None:
        pass

    def sum(self, values: Sequence[float]) -> list[float]:
        return list(values)

    def share(self, value: Any) -> Any:
        return value

    def align(self, modules: Sequence[nn.Module]) -> None:
        pass


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

    def average_gradients(self, modules: Sequence[nn.Module]) -> None:
        grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

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

    def align(self, modules: Sequence[nn.Module]) -> None:
        """Start from the lead's weights exactly (they already agree, from one seed; cheap)."""
        for module in modules:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)


def check_nproc(nproc: int, device: str | None) -> None:
    """Refuse a process count the machine cannot run: more than its CPUs (or GPUs)."""
    if nproc < 1:
        raise InputError(f"--nproc must be at least 1, not {nproc}")
    cuda = device != "cpu" and torch.cuda.is_available()
    available = torch.cuda.device_count() if cuda else (os.cpu_count() or 1)
    if nproc > available:
        what = "GPUs" if cuda else "CPUs"
        raise InputError(f"--nproc {nproc} is more processes than this machine's {available} {what}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world: int, port: int, config: Any, resume: bool, checkpoint: str | None, report: str) -> None:
    from facesearch.training.loop import Trainer

    cuda = config.device != "cpu" and torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(rank)
        config = replace(config, device=f"cuda:{rank}")
    else:
        config = replace(config, device="cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or world) // world))
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        cache_first = config.prepared  # the lead writes the prepared-faces cache; the others then read it
        if cache_first and rank > 0:
            dist.barrier()
        trainer = Trainer(config, team=Team(rank, world), on_epoch=_log_epoch if rank == 0 else None)
        if cache_first and rank == 0:
            dist.barrier()
        if resume or checkpoint:
            trainer.restore(checkpoint or config.run_path / "checkpoint.pt")
        result = trainer.run()
        if rank == 0:
            Path(report).write_bytes(pickle.dumps(result))
    finally:
        dist.destroy_process_group()


def _log_epoch(record: Any) -> None:
    log.warning("epoch %d %s: loss %.4f, %s%.0f img/s", record.epoch, record.phase, record.train_loss,
                f"pairs AUC {record.roc_auc:.4f}, " if record.roc_auc is not None else "", record.images_per_s)


def train_distributed(config: Any, nproc: int, resume: bool = False, checkpoint: str | Path | None = None) -> Any:
    """Run ``nproc`` training processes and return the lead's TrainReport."""
    import torch.multiprocessing as mp

    check_nproc(nproc, config.device)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="facesearch-train-") as folder:
        report = Path(folder) / "report.pkl"
        args = (nproc, port, config, resume, str(checkpoint) if checkpoint else None, str(report))
        try:
            mp.start_processes(_worker, args=args, nprocs=nproc, join=True, start_method="spawn")
        except mp.ProcessExitedException as exc:
            raise InputError(
                f"training process {exc.error_index} of {nproc} died ({_how(exc)}); the others were stopped. "
                f"Run the same command with --resume to continue from {config.run_path / 'checkpoint.pt'}"
            ) from None
        except mp.ProcessRaisedException as exc:
            last = str(exc).strip().splitlines()[-1]
            raise InputError(f"a training process failed: {last}") from None
        return pickle.loads(report.read_bytes())


def _how(exc: Any) -> str:
    signal_name = getattr(exc, "signal_name", None)
    return f"signal {signal_name}" if signal_name else f"exit code {exc.exit_code}"

