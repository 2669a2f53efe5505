"""The C3 connection table survives quantization: absent connections are exact int8 zeros."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_cli

from lenet_mcu.quantize.tflite_check import check_lenet_int8
from lenet_mcu.train.architecture import c3_connection_matrix


@pytest.fixture(scope="module")
def c3_table_model(mnist_dir, tmp_path_factory):
    """A briefly trained --c3-table model, quantized (TensorFlow runs in the CLI subprocesses)."""
    folder = tmp_path_factory.mktemp("c3-table")
    for stage in ("train", "quantize"):
        proc = run_cli(stage, "--fast", "--epochs", "1", "--c3-table", "--data", mnist_dir, "--artifacts", folder)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return folder / "lenet5_int8.tflite"


@pytest.mark.slow
def test_absent_c3_connections_are_int8_zeros(c3_table_model):
    info = check_lenet_int8(c3_table_model)
    c3 = info.weights_of("CONV_2D")[1]  # TFLite filter layout [out=16, kh, kw, in=6]
    assert c3.shape == (16, 5, 5, 6) and c3.dtype == np.int8
    present = c3_connection_matrix().T.astype(bool)  # [out, in]
    per_pair_nonzero = (c3 != 0).any(axis=(1, 2))  # [out, in]
    # Every absent pair is all zeros, bit for bit...
    assert not per_pair_nonzero[~present].any()
    assert int((c3.transpose(0, 3, 1, 2)[~present] == 0).sum()) == 36 * 25
    # ...and every present pair has learnt weights.
    assert per_pair_nonzero[present].all()


@pytest.mark.slow
def test_full_c3_has_all_pairs(fast_artifacts):
    c3 = check_lenet_int8(fast_artifacts / "lenet5_int8.tflite").weights_of("CONV_2D")[1]
    assert (c3 != 0).any(axis=(1, 2)).all()
