"""Report figures: ROC curve and the similarity histograms of matches against strangers.

matplotlib is imported lazily with the Agg backend: reports are written on headless machines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_plot(path: str | Path, scores: np.ndarray, positive: np.ndarray, title: str) -> None:
    plt = _pyplot()
    fpr, tpr, _ = roc_curve(positive, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, lw=2)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set(xlabel="false accept rate", ylabel="true accept rate", title=title, xlim=(0, 1), ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def histogram_plot(path: str | Path, scores: np.ndarray, positive: np.ndarray, labels: tuple[str, str],
                   threshold: float | None = None) -> None:
    """Overlaid histograms of the cosine similarity of the two groups (and the threshold)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(min(-0.2, float(scores.min())), 1.0, 50)
    ax.hist(scores[positive], bins=bins, alpha=0.6, label=labels[0], density=True)
    ax.hist(scores[~positive], bins=bins, alpha=0.6, label=labels[1], density=True)
    if threshold is not None:
        ax.axvline(threshold, c="k", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set(xlabel="cosine similarity", ylabel="density")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
