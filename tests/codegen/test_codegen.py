"""Codegen: model_info.h, TFLM's constant arithmetic, and refusals.

A model the native runtime cannot run must fail at codegen time with a one-line
LenetMcuError that names the operator and what is expected; no file is written.
"""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import numpy as np
import pytest

from lenet_mcu.codegen import generate
from lenet_mcu.codegen.model_info import c_float, render_model_info_h
from lenet_mcu.codegen.native import tflm_arithmetic
from lenet_mcu.tflite_model import OperatorSpec, TensorSpec, build_model, load_model
from lenet_mcu.errors import LenetMcuError

from native_util import conv_model, fc_model, unary_model


def write(tmp_path, model: bytes, name="lenet5_int8.tflite"):
    path = tmp_path / name
    path.write_bytes(model)
    return path


def test_model_info_reads_tensors_ops_and_sha256(tmp_path):
    rng = np.random.default_rng(0)
    path = write(tmp_path, conv_model(rng, (12, 12, 3), 5, (3, 3), tanh=True, pool=((2, 2), (2, 2))))
    info = load_model(path)
    assert [op.op for op in info.operators] == ["CONV_2D", "TANH", "AVERAGE_POOL_2D"]
    assert info.operators[0].options["padding"] == "VALID"
    assert info.operators[2].options["filter_h"] == 2
    assert info.input.shape == (1, 12, 12, 3) and info.output.shape == (1, 5, 5, 5)
    assert info.tensors[1].data.shape == (5, 3, 3, 3) and info.tensors[1].scales.size == 5
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    header = render_model_info_h(info)
    defines = dict(re.findall(r"#define (MODEL_\w+) (.+)", header))
    assert defines["MODEL_INPUT_BYTES"] == "432" and defines["MODEL_OUTPUT_COUNT"] == "125"
    assert (defines["MODEL_INPUT_H"], defines["MODEL_INPUT_W"], defines["MODEL_INPUT_C"]) == ("12", "12", "3")
    assert int(defines["MODEL_INPUT_ZERO_POINT"]) == info.input.zero_point
    assert np.float32(float(defines["MODEL_INPUT_SCALE"].rstrip("f"))) == np.float32(info.input.scale)
    prefix = bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", defines["MODEL_SHA256_PREFIX_BYTES"]))
    assert prefix == bytes.fromhex(info.sha256)[:8]
    assert defines["MODEL_NAME"] == '"lenet5_int8.tflite"'
    assert defines["MODEL_SMALLEST_WINS"] == "0"  # no distance (RBF) output: the largest output wins


@pytest.mark.parametrize("value", [0.003921569, 1 / 256, 1e-30, 3.0, 123456789.0, 2.5e-7, 0.0078125])
def test_c_float_reads_back_as_the_same_float32(value):
    text = c_float(value)
    assert text.endswith("f")
    assert np.float32(float(text[:-1])) == np.float32(value)


def test_quantize_multiplier_follows_tflm():
    # 0.5 -> q = 2^30, shift 0; the q == 2^31 rounding case moves into the exponent
    assert tflm_arithmetic.quantize_multiplier(0.5) == (1 << 30, 0)
    assert tflm_arithmetic.quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)
    assert tflm_arithmetic.quantize_multiplier(0.0) == (0, 0)
    assert tflm_arithmetic.quantize_multiplier(2.0 ** -40) == (0, 0)  # flushed below 2^-31 like TFLM
    m, s = tflm_arithmetic.quantize_multiplier(0.0123)
    assert abs(m * 2.0 ** (s - 31) - 0.0123) < 1e-9
    assert tflm_arithmetic.round_half_away(2.5) == 3 and tflm_arithmetic.round_half_away(-2.5) == -3


def refused(tmp_path, model: bytes) -> str:
    path = write(tmp_path, model)
    out = tmp_path / "gen"
    with pytest.raises(LenetMcuError) as exc:
        generate("native", path, out)
    assert not out.exists(), "nothing may be written for a refused model"
    message = exc.value.message
    assert "\n" not in message and str(path) in message
    return message


def test_refuses_unsupported_operator(tmp_path):
    model = build_model(
        [TensorSpec("a", (1, 4, 4, 2), "int8", 0.1, 0), TensorSpec("b", (1, 4, 4, 2), "int8", 1 / 256, -128)],
        [OperatorSpec("LOGISTIC", [0], [1])], [0], [1])
    message = refused(tmp_path, model)
    assert "operator 0 (LOGISTIC) is not supported by the native runtime" in message
    assert "CONV_2D" in message  # lists what is supported


def test_refuses_float_model(tmp_path):
    model = build_model([TensorSpec("a", (1, 1, 1, 4), "float32"), TensorSpec("b", (1, 1, 1, 4), "float32")],
                        [OperatorSpec("TANH", [0], [1])], [0], [1])
    assert "float32, expected int8" in refused(tmp_path, model)


def test_refuses_same_padding_convolution(tmp_path):
    rng = np.random.default_rng(2)
    model = bytearray(conv_model(rng, (8, 8, 1), 2, (3, 3)))
    path = write(tmp_path, bytes(model), "valid.tflite")
    # rebuild the same conv with SAME padding and the matching output shape
    info = load_model(path)
    t = info.tensors
    same = build_model(
        [TensorSpec("input", t[0].shape, "int8", t[0].scale, t[0].zero_point),
         TensorSpec("filter", t[1].shape, "int8", list(t[1].scales), 0, 0, t[1].data),
         TensorSpec("bias", t[2].shape, "int32", list(t[2].scales), 0, 0, t[2].data),
         TensorSpec("conv", (1, 8, 8, 2), "int8", t[3].scale, t[3].zero_point)],
        [OperatorSpec("CONV_2D", [0, 1, 2], [3], {"padding": 0, "strideW": 1, "strideH": 1,
                                                   "dilationWFactor": 1, "dilationHFactor": 1})], [0], [3])
    assert "SAME padding" in refused(tmp_path, same)


def test_refuses_softmax_with_other_output_quantization(tmp_path):
    model = unary_model("SOFTMAX", (1, 1, 1, 10), 0.05, 0, 1.0 / 128, 0, {"beta": 1.0})
    assert "requires 1/256 and -128" in refused(tmp_path, model)


def test_refuses_int16_activations(tmp_path):
    model = build_model([TensorSpec("a", (1, 1, 1, 8), "int16", 1 / 4096, 0),
                         TensorSpec("b", (1, 1, 1, 8), "int16", 1 / 32768, 0)],
                        [OperatorSpec("TANH", [0], [1])], [0], [1])
    assert "int16" in refused(tmp_path, model)


def test_generate_writes_readable_c(tmp_path):
    rng = np.random.default_rng(3)
    path = write(tmp_path, fc_model(rng, 20, 6, tanh=True))
    files = generate("native", path, tmp_path / "gen")
    assert sorted(p.name for p in files) == ["model_info.h", "native_model.c", "native_model.h",
                                             "native_weights.c", "native_weights.h"]
    source = (tmp_path / "gen" / "native_model.c").read_text()
    assert "FULLY_CONNECTED 'fc'" in source and "TANH 'tanh'" in source  # layers named in comments
    assert "void infer(const int8_t *in, int8_t *out)" in source
    weights = (tmp_path / "gen" / "native_weights.c").read_text()
    # the layer's name; weights in their own file, laid out for the kernel by a readable macro
    assert "const uint32_t fc_weights[30]" in weights and "NN_CHANNEL_PAIR(" in weights


def test_cli_codegen_refusal_is_one_line(tmp_path):
    model = unary_model("SOFTMAX", (1, 1, 1, 10), 0.05, 0, 1.0 / 128, 0, {"beta": 1.0})
    write(tmp_path, model)
    proc = subprocess.run([sys.executable, "-m", "lenet_mcu.cli", "codegen", "--runtime", "native",
                           "--artifacts", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: model ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_cli_codegen_writes_the_artifacts_folder(tmp_path):
    rng = np.random.default_rng(4)
    write(tmp_path, conv_model(rng, tanh=True))
    proc = subprocess.run([sys.executable, "-m", "lenet_mcu.cli", "codegen", "--runtime", "native",
                           "--artifacts", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "codegen" / "native" / "native_model.c").is_file()
    assert "MACs per inference" in proc.stdout
