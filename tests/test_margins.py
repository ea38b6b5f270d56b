"""Margin heads: the arithmetic of each loss, and that each one learns."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from facesearch.models.margins import MarginHead


def head_with_centres(loss: str, centres: torch.Tensor, **kw: float) -> MarginHead:
    head = MarginHead(centres.shape[1], centres.shape[0], loss=loss, **kw)
    with torch.no_grad():
        head.weight.copy_(centres)
    return head


def test_normsoftmax_logits_are_scaled_cosines() -> None:
    torch.manual_seed(0)
    emb, centres = torch.randn(5, 8), torch.randn(3, 8)
    head = head_with_centres("normsoftmax", centres, scale=30.0)
    labels = torch.tensor([0, 1, 2, 0, 1])
    loss, logits = head(emb, labels)
    expected = 30.0 * F.normalize(emb) @ F.normalize(centres).T
    assert torch.allclose(logits, expected, atol=1e-5)
    assert loss.item() == pytest.approx(F.cross_entropy(expected, labels).item(), rel=1e-5)


def test_arcface_widens_only_the_target_angle() -> None:
    centres = torch.eye(2)
    angle = math.pi / 3
    emb = torch.tensor([[math.cos(angle), math.sin(angle)]])  # 60 degrees from class 0
    head = head_with_centres("arcface", centres, scale=10.0, margin=0.5)
    _, logits = head(emb, torch.tensor([0]))
    assert logits[0, 0].item() == pytest.approx(10.0 * math.cos(angle + 0.5), abs=1e-4)
    assert logits[0, 1].item() == pytest.approx(10.0 * math.sin(angle), abs=1e-4)  # untouched


def test_arcface_stays_monotonic_past_pi_minus_m() -> None:
    centres = torch.eye(2)
    emb = torch.tensor([[-1.0, 0.05]])  # almost pi from class 0
    head = head_with_centres("arcface", centres, scale=1.0, margin=0.5)
    _, logits = head(emb, torch.tensor([0]))
    cos = F.normalize(emb)[0, 0].item()
    assert logits[0, 0].item() == pytest.approx(cos - 0.5 * math.sin(0.5), abs=1e-4)


def test_intra_adds_alpha_times_the_mean_target_angle() -> None:
    torch.manual_seed(1)
    emb, centres, labels = torch.randn(6, 4), torch.randn(3, 4), torch.tensor([0, 1, 2, 2, 1, 0])
    plain, _ = head_with_centres("normsoftmax", centres)(emb, labels)
    intra, _ = head_with_centres("intra", centres, alpha=0.3)(emb, labels)
    cos = (F.normalize(emb) * F.normalize(centres)[labels]).sum(1)
    assert (intra - plain).item() == pytest.approx(0.3 * torch.acos(cos).mean().item(), rel=1e-4)


def test_from_classifier_uses_normalised_rows() -> None:
    linear = torch.nn.Linear(8, 5, bias=False)
    head = MarginHead.from_classifier(linear, loss="arcface")
    assert torch.allclose(head.weight, F.normalize(linear.weight, dim=1))


@pytest.mark.parametrize("loss", ["arcface", "normsoftmax", "intra"])
def test_each_loss_learns_a_toy_problem(loss: str) -> None:
    torch.manual_seed(2)
    means = F.normalize(torch.randn(4, 16), dim=1) * 3
    labels = torch.arange(4).repeat(32)
    data = means[labels] + torch.randn(128, 16)
    embed = torch.nn.Linear(16, 16)
    head = MarginHead(16, 4, loss=loss, scale=16.0, margin=0.3)
    optimiser = torch.optim.SGD([*embed.parameters(), *head.parameters()], lr=0.1, momentum=0.9)
    first = None
    for _ in range(60):
        value, _ = head(embed(data), labels)
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        first = value.item() if first is None else first
    assert value.item() < 0.5 * first
    accuracy = (head.cosines(embed(data)).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.9


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown loss"):
        MarginHead(4, 2, loss="cosface")
    with pytest.raises(ValueError, match="margin"):
        MarginHead(4, 2, margin=2.0)
