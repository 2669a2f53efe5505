"""Which class the outputs name: largest score (softmax) or smallest distance (RBF), ties to the first."""

from __future__ import annotations

import numpy as np

from lenet_mcu.decision import predict, rule_name, smallest_wins


def test_rule_follows_the_graphs_last_op():
    assert smallest_wins(["CONV_2D", "FULLY_CONNECTED", "TANH", "RESHAPE", "SQUARED_DIFFERENCE", "SUM"])
    assert not smallest_wins(["CONV_2D", "FULLY_CONNECTED", "SOFTMAX"])
    assert not smallest_wins([])
    assert "smallest" in rule_name(True) and "largest" in rule_name(False)


def test_predict_picks_the_first_extreme():
    out = np.array([[3, 9, 9, -5], [-7, -7, 0, 4]], dtype=np.int8)
    np.testing.assert_array_equal(predict(out, smallest=False), [1, 3])
    np.testing.assert_array_equal(predict(out, smallest=True), [3, 0])
