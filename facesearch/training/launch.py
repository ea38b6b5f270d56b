"""Starting a training run: the one entry point, ``train``, chooses how many processes.

* one (``Solo``): the loop runs here;
* ``--nproc N`` on this machine: N processes are spawned here and rendezvous on a free
  loopback port (gloo on CPU, NCCL with one GPU each);
* started by ``torchrun`` (its ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``
  in the environment), on one machine or several: this process is one of the team that
  torchrun's rendezvous formed, and ``facesearch train`` needs no ``--nproc``::

      torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
          -m facesearch.cli.main train DATA --out model.pt ...

  The data, the run folder and the model file must be at the same paths on every machine
  (the lead, rank 0, writes them); ``--resume`` continues whatever the number of processes.
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
    if started_by_torchrun():
        return run_in_team(config, int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                           int(os.environ.get("LOCAL_RANK", 0)), "env://", resume, checkpoint)
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


def started_by_torchrun() -> bool:
    """Is this process one of a team that torchrun (torch.distributed.run) started?"""
    return "TORCHELASTIC_RUN_ID" in os.environ and "RANK" in os.environ and "WORLD_SIZE" in os.environ


def run_in_team(
    config: TrainConfig, rank: int, world: int, local_rank: int, init_method: str,
    resume: bool = False, checkpoint: str | Path | None = None,
) -> TrainReport:
    """This process's part of a team's run: joins the process group (``init_method``: a
    tcp:// address, or env:// under torchrun), trains, and leaves it. Every process returns
    the report; the lead's is the one that wrote the files."""
    cuda = config.device != "cpu" and torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(local_rank)
        config = replace(config, device=f"cuda:{local_rank}")
    else:
        config = replace(config, device="cpu")
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        torch.set_num_threads(max(1, (os.cpu_count() or local) // local))
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world)
    try:
        cache_first = config.prepared  # the lead writes the prepared-faces cache; the others then read it
        if cache_first and rank > 0:
            dist.barrier()
        trainer = Trainer(config, team=Team(rank, world), on_epoch=_log_epoch if rank == 0 else None)
        if cache_first and rank == 0:
            dist.barrier()
        if resume or checkpoint:
            trainer.restore(checkpoint or config.run_path / "checkpoint.pt")
        report = trainer.run()
        del trainer  # its DDP wrappers go before the process group (else gloo may abort at teardown)
        dist.barrier()
        return report
    finally:
        dist.destroy_process_group()


def _worker(rank: int, world: int, port: int, config: TrainConfig, resume: bool, checkpoint: str | None, report: str) -> None:
    """A process spawned by ``train_distributed`` (``--nproc``); the lead leaves its report."""
    result = run_in_team(config, rank, world, rank, f"tcp://127.0.0.1:{port}", resume, checkpoint)
    if rank == 0:
        Path(report).write_bytes(pickle.dumps(result))


def _log_epoch(record: Any) -> None:
    log.warning("epoch %d %s: loss %.4f, %s%.0f img/s", record.epoch, record.phase, record.train_loss,
                f"pairs AUC {record.roc_auc:.4f}, " if record.roc_auc is not None else "", record.images_per_s)


def train_distributed(config: TrainConfig, nproc: int, resume: bool = False, checkpoint: str | Path | None = None) -> TrainReport:
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

