"""Confusion matrices and PNGs (lenet_mcu.plots), shared by the evaluation and the verify report."""

from __future__ import annotations

import io

import numpy as np
import pytest

from lenet_mcu import plots

pytestmark = pytest.mark.base


def _png_shape(data: bytes) -> tuple[int, ...]:
    import matplotlib.image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(io.BytesIO(data), format="png").shape


def test_confusion_matrix_counts_true_by_predicted():
    labels = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 0, 9])
    cm = plots.confusion_matrix(labels, pred, classes=3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]  # 9 is out of range: counted as class 2
    assert cm.sum() == len(labels)


def test_confusion_png_is_a_png_of_the_figure_size():
    cm = plots.confusion_matrix(np.arange(1000) % 10, (np.arange(1000) * 7) % 10)
    assert _png_shape(plots.confusion_png(cm, "title", xlabel="predicted (TFLM)"))[:2] == (560, 640)


def test_misclassified_gallery_grows_with_the_digits_shown():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(100, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=100)
    preds = {i: (labels[i] + 1) % 10 for i in range(100)}
    none = _png_shape(plots.misclassified_png(images, labels, preds, []))
    some = _png_shape(plots.misclassified_png(images, labels, preds, list(range(25))))
    capped = _png_shape(plots.misclassified_png(images, labels, preds, list(range(100))))
    assert none[0] < some[0] < capped[0]  # one row, three rows, the GALLERY_MAX cap (six rows)
    assert capped[0] == _png_shape(plots.misclassified_png(images, labels, preds, list(range(plots.GALLERY_MAX))))[0]
