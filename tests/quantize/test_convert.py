"""The int8 .tflite and the references from the fast pipeline; .tflite validation (no TensorFlow here)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import foreign_model

from lenet_mcu import mnist
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.quantize import tflite_check
from lenet_mcu.plots import confusion_matrix
from lenet_mcu.quantize.evaluate import REFERENCE_KEYS, build_metrics, compare_int8, format_table
from lenet_mcu.train.architecture import c3_connection_matrix

TFLITE = "lenet5_int8.tflite"


# ---------------------------------------------------------------- the converted graph
def test_graph_has_only_plain_int8_ops(fast_artifacts):
    info = tflite_check.check_lenet_int8(fast_artifacts / TFLITE)
    assert set(info.ops) <= tflite_check.ALLOWED_OPS
    assert info.ops.count("RESHAPE") <= 1
    assert not {"SHAPE", "STRIDED_SLICE", "PACK", "QUANTIZE", "DEQUANTIZE"} & set(info.ops)
    assert info.ops.count("CONV_2D") == 3 and info.ops.count("MAX_POOL_2D") == 2  # the default: max pooling
    assert info.ops.count("FULLY_CONNECTED") == 2 and info.ops[-1] == "SOFTMAX"


def test_int8_input_and_output(fast_artifacts):
    info = tflite_check.check_lenet_int8(fast_artifacts / TFLITE)
    assert info.input.dtype == "int8" and info.input.shape == (1, 32, 32, 1)
    assert info.output.dtype == "int8" and info.output.shape == (1, 10)
    # Inputs span 0..1, so calibration gives scale 1/255 and zero point -128: pixel p -> p - 128.
    assert info.input.scales[0] == pytest.approx(1 / 255) and info.input.zero_points == [-128]
    assert info.output.scales[0] == pytest.approx(1 / 256) and info.output.zero_points == [-128]


def test_weights_are_int8_per_channel(fast_artifacts):
    info = tflite_check.check_lenet_int8(fast_artifacts / TFLITE)
    convs = info.weights_of("CONV_2D")
    assert [w.shape for w in convs] == [(6, 5, 5, 1), (16, 5, 5, 6), (120, 5, 5, 16)]
    assert all(w.dtype == np.int8 for w in convs)
    fcs = info.weights_of("FULLY_CONNECTED")
    assert [w.shape for w in fcs] == [(84, 120), (10, 84)]


# ---------------------------------------------------------------- bad model files
def test_corrupt_tflite_is_one_clear_error(tmp_path):
    bad = tmp_path / "junk.tflite"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(LenetMcuError, match=r"junk.tflite is not a TFLite flatbuffer"):
        tflite_check.check_lenet_int8(bad)


def test_empty_and_missing_tflite(tmp_path):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(LenetMcuError, match="not a TFLite flatbuffer"):
        tflite_check.check_lenet_int8(empty)
    with pytest.raises(LenetMcuError, match="not found"):
        tflite_check.check_lenet_int8(tmp_path / "absent.tflite")


def test_truncated_tflite(fast_artifacts, tmp_path):
    data = (fast_artifacts / TFLITE).read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(LenetMcuError, match="cut.tflite"):
        tflite_check.check_lenet_int8(cut)


def test_foreign_tflite_is_rejected():
    with pytest.raises(LenetMcuError, match=r"is not the int8 LeNet-5 model: .*input is float32"):
        tflite_check.check_lenet_int8(foreign_model())


def test_op_problems():
    good = ["CONV_2D", "TANH", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    assert tflite_check.op_problems(good) == []
    assert tflite_check.op_problems(good, "avg", "softmax") == []
    assert "ops PACK, SHAPE, STRIDED_SLICE are not in LeNet-5" in tflite_check.op_problems(
        good + ["SHAPE", "STRIDED_SLICE", "PACK"])
    assert any("2 RESHAPE" in p for p in tflite_check.op_problems(good + ["RESHAPE"], "avg", "softmax"))
    assert any("no SOFTMAX" in p for p in tflite_check.op_problems(good[:-1], "avg", "softmax"))
    assert any("output layer" in p for p in tflite_check.op_problems(good[:-1]))


# ---------------------------------------------------------------- references.npz and metrics.json
@pytest.fixture(scope="module")
def references(fast_artifacts):
    with np.load(fast_artifacts / "references.npz") as z:
        return {k: z[k] for k in z.files}


def test_references_format(references, mnist_dir):
    assert set(REFERENCE_KEYS) <= set(references)
    assert references["labels"].dtype == np.uint8 and references["labels"].shape == (10000,)
    assert references["float_pred"].dtype == np.uint8 and references["float_pred"].shape == (10000,)
    assert references["tflite_int8"].dtype == np.int8 and references["tflite_int8"].shape == (10000, 10)
    assert references["tflm_int8"].dtype == np.int8 and references["tflm_int8"].shape == (10000, 10)
    assert references["input_scale"].dtype == np.float32 and references["input_scale"].shape == ()
    assert references["input_zero_point"].dtype == np.int32 and references["input_zero_point"].shape == ()
    _, labels = mnist.load_split("test", mnist_dir)
    np.testing.assert_array_equal(references["labels"], labels)


def test_references_are_real_interpreter_outputs(fast_artifacts, references, mnist_dir, tmp_path):
    """Re-run both interpreters (TF-free subprocess) on the first 300 images: identical bytes."""
    out = tmp_path / "again.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "lenet_mcu.quantize.reference", str(fast_artifacts / TFLITE), "--data",
         str(mnist_dir), "--out", str(out), "--limit", "300", "--workers", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as again:
        np.testing.assert_array_equal(again["tflm_int8"], references["tflm_int8"][:300])
        np.testing.assert_array_equal(again["tflite_int8"], references["tflite_int8"][:300])


def test_tflm_reference_in_process_matches(fast_artifacts, references, mnist_dir):
    """The golden outputs are what the TFLM interpreter computes for mnist.quantize_input pixels."""
    from lenet_mcu.interpreters import run_tflm
    from lenet_mcu.quantize.reference import quantized_test_inputs

    inputs, _ = quantized_test_inputs(mnist_dir, float(references["input_scale"]),
                                      int(references["input_zero_point"]), limit=50)
    np.testing.assert_array_equal(run_tflm(fast_artifacts / TFLITE, inputs, workers=1), references["tflm_int8"][:50])


def test_metrics_match_references(fast_artifacts, references):
    metrics = json.loads((fast_artifacts / "metrics.json").read_text())
    labels = references["labels"]
    assert metrics["test_images"] == 10000
    assert metrics["accuracy"]["tflm_int8"] == pytest.approx((references["tflm_int8"].argmax(1) == labels).mean())
    assert metrics["accuracy"]["tflite_int8"] == pytest.approx((references["tflite_int8"].argmax(1) == labels).mean())
    assert metrics["accuracy"]["float"] == pytest.approx((references["float_pred"] == labels).mean())
    # Well above chance (10%) even for the 2-epoch fast model, and int8 tracks float.
    assert min(metrics["accuracy"].values()) > 0.8
    assert metrics["agreement"]["float_vs_tflm_int8"] > 0.97
    d = metrics["tflite_vs_tflm_outputs"]
    assert d["images_differing"] == int(np.any(references["tflite_int8"] != references["tflm_int8"], axis=1).sum())
    assert sum(map(sum, metrics["confusion_tflm_int8"])) == 10000
    assert (fast_artifacts / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- report helpers
def test_compare_int8_counts_differences():
    a = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.int8)
    b = np.array([[1, 2, 3], [4, 3, 6], [7, 8, 12]], dtype=np.int8)
    d = compare_int8(a, b)
    assert d["images_differing"] == 2 and d["elements_differing"] == 2 and d["elements_total"] == 9
    assert d["max_abs_difference"] == 3 and d["abs_difference_histogram"] == {"2": 1, "3": 1}
    assert d["argmax_disagreements"] == 0


def test_compare_int8_no_overflow_at_extremes():
    d = compare_int8(np.array([[127]], np.int8), np.array([[-128]], np.int8))
    assert d["max_abs_difference"] == 255


def test_confusion_matrix_and_table():
    labels = np.array([0, 1, 2, 2], dtype=np.uint8)
    pred = np.array([0, 2, 2, 2])
    cm = confusion_matrix(labels, pred)
    assert cm[0, 0] == 1 and cm[1, 2] == 1 and cm[2, 2] == 2 and cm.sum() == 4
    outputs = np.zeros((4, 10), dtype=np.int8)
    outputs[np.arange(4), pred] = 100
    refs = {"labels": labels, "tflite_int8": outputs, "tflm_int8": outputs, "input_scale": 1 / 255,
            "input_zero_point": -128, "output_scale": 1 / 256, "output_zero_point": -128}
    metrics = build_metrics(refs, pred.astype(np.uint8))
    assert metrics["accuracy"] == {"float": 0.75, "tflite_int8": 0.75, "tflm_int8": 0.75}
    table = format_table(metrics)
    assert "int8 TFLM (golden)" in table and "75.00%" in table and "0 images differ" in table


def test_c3_table_constant_is_shared():
    # The codegen and firmware sides can rely on the same table without TensorFlow.
    assert c3_connection_matrix().sum() == 60
