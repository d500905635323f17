"""The dataset card's pictures: real/fake shares per category and per bin, and faces per source (PNG, atomic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from realfake.core.atomic import atomic_path


def plot_bars(df: pd.DataFrame, col: str, path: Path, title: str) -> None:
    """Grouped real/fake bars of shares per category, saved atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    x = np.arange(len(df))
    ax.bar(x - 0.2, df["real"], 0.4, label="real", color="#3b7dd8")
    ax.bar(x + 0.2, df["fake"], 0.4, label="fake", color="#d8573b")
    ax.set_xticks(x, df[col].astype(str), rotation=30, ha="right")
    ax.set_ylabel("share of faces")
    ax.set_title(title)
    ax.legend()
    _save(fig, path)


def plot_hist(df: pd.DataFrame, col: str, path: Path, xlabel: str) -> None:
    """Real/fake step histograms of shares per bin, saved atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    for label, color in (("real", "#3b7dd8"), ("fake", "#d8573b")):
        ax.step(df[col], df[label], where="mid", label=label, color=color)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of faces")
    ax.legend()
    _save(fig, path)


def plot_source_counts(df: pd.DataFrame, path: Path) -> None:
    """Horizontal bars of faces per source, coloured by label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 0.3 * max(len(df), 4) + 1), dpi=100)
    colors = ["#3b7dd8" if lab == "real" else "#d8573b" for lab in df["label"]]
    ax.barh(df["source"], df["faces"], color=colors)
    ax.set_xlabel("faces in data/metadata.parquet (blue real, red fake)")
    _save(fig, path)


def _save(fig, path: Path) -> None:
    """Write a figure atomically and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
