"""Starting a training run: the one entry point (``train``), which runs the loop in this
process (``Solo``) or in ``--nproc`` processes on this machine (``Team``), and
``facesearch.training.launch`` as the entry of processes that ``torchrun`` started.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from facesearch.errors import InputError
from facesearch.progress import Progress, quiet
from facesearch.training.config import TrainConfig
from facesearch.training.loop import Trainer
from facesearch.training.records import EpochRecord, TrainReport
from facesearch.training.team import Team, check_nproc

log = logging.getLogger(__name__)


def train(
    config: TrainConfig,
    resume: bool = False,
    checkpoint: str | Path | None = None,
    progress: Progress = quiet,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainReport:
    """Train (or, with ``resume``, continue) a run; returns its report. ``checkpoint``
    resumes from another run's checkpoint file (such as its ``phase1.pt``). With
    ``config.nproc`` > 1: that many processes (facesearch.training.team), which report
    each epoch in the log rather than through ``progress``."""
    if config.nproc != 1:
        return train_distributed(config, config.nproc, resume, checkpoint)
    trainer = Trainer(config, progress, on_epoch)
    if resume or checkpoint:
        trainer.restore(checkpoint or config.run_path / "checkpoint.pt")
    return trainer.run()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world: int, port: int, config: Any, resume: bool, checkpoint: str | None, report: str) -> None:
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

