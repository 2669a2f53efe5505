"""Which class the model's 10 outputs name.

A softmax model outputs scores: the largest wins. An RBF model (the paper's
Euclidean RBF output units) outputs distances to each class's code: the smallest
wins. Its int8 graph ends in SUM (the distance y_i = sum_j (x_j - w_ij)^2), so the
.tflite itself says which rule applies; every stage asks here.
Ties go to the first class, like numpy.argmax / argmin and the firmware.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The last operator of a graph whose outputs are distances.
DISTANCE_OUTPUT_OP = "SUM"


def smallest_wins(ops: Sequence[str]) -> bool:
    """True if a graph with these operators (in execution order) outputs distances."""
    return bool(ops) and ops[-1] == DISTANCE_OUTPUT_OP


def predict(outputs: np.ndarray, smallest: bool) -> np.ndarray:
    """Class index per row of [N, classes] outputs."""
    outputs = np.asarray(outputs)
    return np.argmin(outputs, axis=-1) if smallest else np.argmax(outputs, axis=-1)


def rule_name(smallest: bool) -> str:
    return "smallest wins (distances)" if smallest else "largest wins (scores)"
