"""The one .tflite reader and writer (lenet_mcu.tflite_model): what it reads back, and refusals."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest
from models import foreign_model
from native_util import conv_model

from lenet_mcu.errors import LenetMcuError
from lenet_mcu.extras import MissingExtra
from lenet_mcu.tflite_model import OperatorSpec, TensorSpec, build_model, load_model

pytest.importorskip("tflite_micro", reason="the reader uses the schema code tflite-micro ships (codegen extra)")


def write(tmp_path, data: bytes, name: str = "model.tflite"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_reads_back_what_was_written(tmp_path):
    rng = np.random.default_rng(3)
    weights = rng.integers(-127, 128, size=(4, 12), dtype=np.int8)
    bias = rng.integers(-1000, 1000, size=4).astype(np.int32)
    w_scales = [0.01, 0.02, 0.03, 0.04]
    model = build_model(
        [
            TensorSpec("x", (1, 12), "int8", 0.05, -3),
            TensorSpec("w", (4, 12), "int8", w_scales, 0, 0, weights),
            TensorSpec("b", (4,), "int32", [0.05 * s for s in w_scales], 0, 0, bias),
            TensorSpec("y", (1, 4), "int8", 0.1, 7),
            TensorSpec("p", (1, 4), "int8", 1 / 256, -128),
        ],
        [
            OperatorSpec("FULLY_CONNECTED", [0, 1, 2], [3], {"fusedActivationFunction": 1}),
            OperatorSpec("SOFTMAX", [3], [4], {"beta": 1.0}),
        ],
        [0],
        [4],
        description="round trip",
    )
    path = write(tmp_path, model)
    info = load_model(path)
    assert info.ops == ["FULLY_CONNECTED", "SOFTMAX"] and info.description == "round trip"
    assert info.operators[0].options["activation"] == "RELU" and info.operators[1].options["beta"] == 1.0
    assert info.operators[0].inputs == [0, 1, 2] and info.producer(3) is info.operators[0]
    assert info.consumers(3) == [info.operators[1]]
    np.testing.assert_array_equal(info.weights_of("FULLY_CONNECTED")[0], weights)
    np.testing.assert_array_equal(info.tensors[2].data, bias)
    assert info.tensors[1].scales.tolist() == pytest.approx(w_scales) and info.tensors[1].quantized_dimension == 0
    assert (info.input.name, info.input.shape, info.input.dtype) == ("x", (1, 12), "int8")
    assert info.input.scale == pytest.approx(0.05) and info.input.zero_point == -3
    assert info.output.zero_point == -128 and info.output.data is None
    assert info.sha256 == hashlib.sha256(model).hexdigest()
    assert info.sha256_prefix == hashlib.sha256(model).digest()[:8]


def test_reads_conv_and_pool_options(tmp_path):
    info = load_model(
        write(
            tmp_path,
            conv_model(
                np.random.default_rng(0), (12, 12, 3), 5, (3, 3), stride=(2, 1), tanh=True, pool=((2, 2), (2, 2))
            ),
        )
    )
    assert info.ops == ["CONV_2D", "TANH", "AVERAGE_POOL_2D"]
    conv, _, pool = info.operators
    assert (conv.options["padding"], conv.options["stride_h"], conv.options["stride_w"]) == ("VALID", 2, 1)
    assert (pool.options["filter_h"], pool.options["filter_w"], pool.options["stride_h"]) == (2, 2, 2)
    assert info.tensors[conv.inputs[1]].data.shape == (5, 3, 3, 3)


def test_reads_a_model_the_tensorflow_converter_wrote():
    info = load_model(foreign_model())  # the float sine model tflite-micro ships
    assert info.input.dtype == "float32" and not info.input.quantized
    assert "FULLY_CONNECTED" in info.ops and all(op.version >= 1 for op in info.operators)


def test_missing_non_tflite_and_truncated_files_are_one_line_errors(tmp_path):
    with pytest.raises(LenetMcuError, match=r"missing\.tflite not found"):
        load_model(tmp_path / "missing.tflite")
    with pytest.raises(LenetMcuError, match="not a TFLite flatbuffer"):
        load_model(write(tmp_path, b"\x00" * 64, "junk.tflite"))
    truncated = write(tmp_path, conv_model(np.random.default_rng(1))[:200], "truncated.tflite")
    with pytest.raises(LenetMcuError, match="truncated.tflite"):
        load_model(truncated)


def test_without_tflite_micro_the_reader_names_the_extra(tmp_path, monkeypatch):
    path = write(tmp_path, conv_model(np.random.default_rng(2)))
    monkeypatch.setitem(sys.modules, "tflite_micro.tensorflow.lite.micro.python.schema_py_generated", None)
    with pytest.raises(
        MissingExtra, match=r"needs tflite-micro \(the 'codegen' extra\).*pip install 'lenet-mcu\[codegen\]'"
    ):
        load_model(path)
