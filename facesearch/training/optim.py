"""Optimisers and learning-rate schedules for one training phase.

Cosine and multistep schedules are stepped every batch (so warm-up is smooth even with few,
long epochs); ReduceLROnPlateau is stepped once per epoch on the validation figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn

OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("cosine", "multistep", "plateau")


def parameter_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict]:
    """Weight decay on weights only: decaying BatchNorm, PReLU and bias parameters (1-D)
    just shrinks them towards zero without regularising anything."""
    decay, no_decay = [], []
    for module in modules:
        for param in module.parameters():
            if param.requires_grad:
                (decay if param.ndim > 1 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    name: str, modules: Iterable[nn.Module], lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    groups = parameter_groups(modules, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")


def warmup_cosine(total_steps: int, warmup_steps: int, floor: float = 0.0):  # noqa: ANN201
    """Linear warm-up to the base rate, then a half cosine down to ``floor`` x base."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def warmup_multistep(warmup_steps: int, milestones: Sequence[int], gamma: float = 0.1):  # noqa: ANN201
    def factor(step: int) -> float:
        warm = (step + 1) / warmup_steps if step < warmup_steps else 1.0
        return warm * gamma ** sum(step >= m for m in milestones)

    return factor


def build_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    milestones: Sequence[float] = (0.6, 0.85),
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau:
    """``milestones`` are fractions of the phase's steps (multistep divides the rate by 10)."""
    if name == "cosine":
        factor = warmup_cosine(total_steps, warmup_steps)
    elif name == "multistep":
        factor = warmup_multistep(warmup_steps, [int(f * total_steps) for f in milestones])
    elif name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=1)
    else:
        raise ValueError(f"unknown scheduler {name!r} (known: {', '.join(SCHEDULERS)})")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def steps_per_batch(scheduler: object) -> bool:
    return not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
