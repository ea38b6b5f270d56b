"""Training on several processes (--nproc): the data parallel arithmetic, the CLI, a killed
process, --resume, and bad process counts. CPU only (gloo); CI has no GPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from facesearch.errors import InputError
from facesearch.synthetic import write_dataset, write_pairs
from facesearch.training.team import Shard, Team, check_nproc
from tests.conftest import cli, cli_json

TWO_CPUS = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs")


def test_shards_split_an_epoch_without_overlap() -> None:
    order = list(torch.randperm(23, generator=torch.Generator().manual_seed(5)))
    parts = [list(Shard(order, rank, 3)) for rank in range(3)]
    assert sorted(i for part in parts for i in part) == sorted(order)
    assert [len(Shard(order, rank, 3)) for rank in range(3)] == [len(p) for p in parts] == [8, 8, 7]
    assert parts[1][:2] == [order[1], order[4]]  # every 3rd of the same order: batch k is global batch k


def _shard_gradient(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3))  # same weights everywhere (one seed)
    x, y = torch.randn(8, 6, generator=torch.Generator().manual_seed(1)), torch.arange(8) % 3
    part = list(Shard(range(8), rank, world))
    step = Team(rank, world).wrap(model)  # DistributedDataParallel: backward averages the team's gradients
    nn.functional.cross_entropy(step(x[part]), y[part]).backward()
    if rank == 0:
        torch.save([p.grad for p in model.parameters()], out)
    del step  # the DDP wrapper goes before its process group (else gloo may abort at teardown)
    dist.barrier()
    dist.destroy_process_group()


@TWO_CPUS
def test_averaged_shard_gradients_are_the_whole_batch_gradient(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    from facesearch.training.launch import _free_port

    out = tmp_path / "grads.pt"
    mp.start_processes(_shard_gradient, args=(2, _free_port(), str(out)), nprocs=2, join=True, start_method="spawn")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3))
    x, y = torch.randn(8, 6, generator=torch.Generator().manual_seed(1)), torch.arange(8) % 3
    nn.functional.cross_entropy(model(x), y).backward()
    for together, alone in zip(torch.load(out), [p.grad for p in model.parameters()]):
        assert torch.allclose(together, alone, atol=1e-6)


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dist")
    write_dataset(root / "train", identities=8, images_per_identity=6, seed=3)
    write_pairs(root / "unseen", identities=8, images_per_identity=3, folds=4, per_fold=5, seed=4, first_identity=500)
    return root


def train_args(people: Path, out: Path, epochs: int = 2) -> list:
    return ["train", people / "train", "--out", out, "--epochs", epochs, "--arcface-epochs", 1, "--batch-size", 16,
            "--lr", 0.05, "--holdout", 0, "--workers", 0, "--augment", "none", "--backbone", "mobilenet_v3_small",
            "--embedding-dim", 64, "--val-pairs", people / "unseen" / "pairs.txt", "--val-images", people / "unseen" / "images"]


@TWO_CPUS
def test_two_processes_train_a_model_that_enrolls(people: Path, tmp_path: Path, home: Path) -> None:
    report = cli_json(*train_args(people, tmp_path / "two.pt"), "--nproc", 2)
    assert report["epochs"] == 3 and report["train_images"] == 48
    assert 0.0 <= report["validation"]["roc_auc"] <= 1.0
    rows = (tmp_path / "two.pt.run" / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 3  # the lead alone writes the log: one row per epoch
    enrolled = cli_json("enroll", people / "train", "--model", tmp_path / "two.pt")
    assert enrolled["enrolled"] == 48
    answer = cli_json("query", people / "train" / "person_0003" / "0002.jpg")
    assert answer["identity"] == "person_0003" and answer["score"] == pytest.approx(1.0, abs=1e-4)


@TWO_CPUS
def test_torchrun_starts_a_team_without_nproc(people: Path, tmp_path: Path) -> None:
    """torchrun (here standalone, two processes on this machine; across machines the same
    command with --nnodes and a rendezvous endpoint) runs `facesearch train` as one team:
    the lead writes the model and the log, and prints the one report."""
    out = tmp_path / "torchrun.pt"
    args = [str(a) for a in train_args(people, out, epochs=1)] + ["--json"]
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "facesearch.cli.main", *args],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-1500:]
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1 and reports[0]["epochs"] == 2 and reports[0]["train_images"] == 48
    assert len((tmp_path / "torchrun.pt.run" / "log.csv").read_text().strip().splitlines()) == 1 + 2
    assert out.is_file()


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


@TWO_CPUS
def test_a_killed_training_process_stops_the_others_and_resume_finishes(people: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed.pt"
    args = [str(a) for a in train_args(people, out, epochs=6)] + ["--nproc", "2", "--json"]
    parent = subprocess.Popen([sys.executable, "-m", "facesearch.cli.main", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    checkpoint = out.parent / "killed.pt.run" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.2)
    assert checkpoint.exists(), parent.communicate()[1].decode()[-800:]
    workers = [p for p in _children(parent.pid) if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text(errors="ignore")]
    assert len(workers) >= 2, workers
    os.kill(workers[-1], signal.SIGKILL)
    out_text, err = parent.communicate(timeout=120)
    assert parent.returncode == 1, err.decode()[-800:]
    error = json.loads(out_text)["error"]
    assert "died" in error and "--resume" in error
    time.sleep(1)
    assert not [p for p in workers if Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()]
    finished = cli_json(*train_args(people, out, epochs=6), "--nproc", 2, "--resume")
    assert finished["epochs"] == 7
    assert len((tmp_path / "killed.pt.run" / "log.csv").read_text().strip().splitlines()) == 1 + 7


def test_bad_process_counts_are_clear_errors(people: Path, tmp_path: Path) -> None:
    for count, said in [(0, "at least 1"), ((os.cpu_count() or 1) + 1, "more processes than this machine's")]:
        result = cli(*train_args(people, tmp_path / "m.pt"), "--nproc", count)
        assert result.exit_code == 1 and said in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(InputError, match="GPUs|CPUs"):
        check_nproc(10_000, "cpu")
