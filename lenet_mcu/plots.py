"""Confusion matrices and the PNGs people look at (evaluation and verify reports).

Rendering returns PNG bytes; callers write them atomically. matplotlib is
imported only when a PNG is drawn, with the non-interactive Agg backend.
"""

from __future__ import annotations

import io
import math

import numpy as np

#: Digits shown at most in the misclassified gallery.
GALLERY_MAX = 60


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, classes: int = 10) -> np.ndarray:
    """counts[true, predicted]; predictions outside 0..classes-1 count as the nearest class."""
    cm = np.zeros((classes, classes), dtype=np.int64)
    pred = np.clip(np.asarray(pred, np.int64), 0, classes - 1)
    np.add.at(cm, (np.asarray(labels, np.int64), pred), 1)
    return cm


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure_png(fig) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def confusion_png(
    confusion: np.ndarray, title: str | None = None, xlabel: str = "predicted", ylabel: str = "true label"
) -> bytes:
    """The matrix with every non-zero count written in its cell."""
    plt = _pyplot()
    confusion = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    # Log colour so the few off-diagonal errors stay visible next to ~1000 diagonal hits.
    ax.imshow(np.log1p(confusion), cmap="Blues")
    k = confusion.shape[0]
    for t in range(k):
        for p in range(k):
            if confusion[t, p]:
                ax.text(
                    p,
                    t,
                    str(confusion[t, p]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if t == p else "black",
                )
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    else:
        ax.set_title(f"Confusion matrix ({int(confusion.sum())} images)")
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.93)
    return _figure_png(fig)


def misclassified_png(
    images: np.ndarray, labels: np.ndarray, preds: dict, indices: list[int], where: str = "on device"
) -> bytes:
    """One mosaic image (fast to draw) with '#index: true->predicted' under each digit."""
    plt = _pyplot()
    shown = list(indices[:GALLERY_MAX])
    cols = 10
    rows = max(1, math.ceil(len(shown) / cols))
    cell_h, cell_w = 28 + 12, 28 + 4  # room for the caption below each digit
    mosaic = np.zeros((rows * cell_h, cols * cell_w), np.uint8)
    for k, i in enumerate(shown):
        r, c = divmod(k, cols)
        mosaic[r * cell_h : r * cell_h + 28, c * cell_w + 2 : c * cell_w + 30] = images[i]
    fig = plt.figure(figsize=(cols * 0.9, rows * 1.15 + 0.4))
    ax = fig.add_axes((0, 0, 1, rows * 1.15 / (rows * 1.15 + 0.4)))
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    for k, i in enumerate(shown):
        r, c = divmod(k, cols)
        ax.text(
            c * cell_w + 16,
            r * cell_h + 34,
            f"#{i}: {labels[i]}->{preds[i]}",
            ha="center",
            va="center",
            fontsize=6.5,
            color="darkred",
        )
    more = f", first {len(shown)} shown" if len(indices) > len(shown) else ""
    title = (
        f"Misclassified {where}: {len(indices)} images{more} (true->predicted)"
        if len(indices)
        else "No misclassified images"
    )
    fig.suptitle(title, fontsize=9, y=0.995, va="top")
    return _figure_png(fig)


def layer_ticks_png(names: list[str], series: dict[str, list[int]], title: str, unit: str = "ticks") -> bytes:
    """Horizontal bars per layer (first layer on top), one bar per series (e.g. per runtime)."""
    plt = _pyplot()
    k = max(1, len(series))
    height = 0.8 / k
    fig, ax = plt.subplots(figsize=(7.0, (0.35 + 0.3 * k) * len(names) + 1.4))
    for i, (label, ticks) in enumerate(series.items()):
        y = [j + (i - (k - 1) / 2) * height for j in range(len(names))]
        bars = ax.barh(y, ticks, height=height, label=label)
        ax.bar_label(bars, labels=[f"{t:,}" for t in ticks], padding=3, fontsize=7)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    peak = max((max(t) for t in series.values() if t), default=1)
    ax.set_xlim(0, peak * 1.3)
    ax.set_xlabel(unit)
    ax.set_title(title)
    if k > 1:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _figure_png(fig)
