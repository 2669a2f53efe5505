"""Quantization fails loudly on a graph the MCU runtimes cannot run, and writes no .tflite then.

A dynamic-batch conversion of the same Keras model is exactly such a graph
(the Flatten becomes SHAPE/STRIDED_SLICE/PACK/RESHAPE); the pipeline's batch-1
conversion must not be.
"""
from __future__ import annotations

import pytest

from conftest import run_python


@pytest.mark.slow
def test_dynamic_batch_graph_is_refused(mnist_dir):
    facts = run_python(f"""
        import json, tempfile, numpy as np
        from pathlib import Path
        from lenet_mcu.tf_import import import_tensorflow
        tf = import_tensorflow()
        from lenet_mcu.train.model import build_lenet5
        from lenet_mcu.quantize import convert
        from lenet_mcu.quantize.tflite_check import op_problems
        from lenet_mcu.tflite_model import load_model
        from lenet_mcu.config import make_config
        from lenet_mcu.errors import LenetMcuError

        def dynamic_batch_int8(model, calibration):
            def rep():
                for i in range(len(calibration)):
                    yield [calibration[i:i + 1]]
            c = tf.lite.TFLiteConverter.from_keras_model(model)  # batch dimension left open
            c.optimizations = [tf.lite.Optimize.DEFAULT]
            c.representative_dataset = rep
            c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            c.inference_input_type = tf.int8
            c.inference_output_type = tf.int8
            with convert.quiet_converter():
                return c.convert()

        out = {{}}
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            config = make_config(fast=True)
            model = build_lenet5(subsampling=config.subsampling, output=config.output)
            model.save(d / "lenet5.keras")
            calibration = np.random.default_rng(0).random((8, 32, 32, 1), dtype=np.float32)
            fixed = d / "fixed.tflite"
            fixed.write_bytes(convert.convert_to_int8(model, calibration))
            out["batch1_ops"] = load_model(fixed).ops
            convert.convert_to_int8 = dynamic_batch_int8
            try:
                convert.quantize(config, {str(mnist_dir)!r}, d, echo=lambda s: None)
                out["error"] = None
            except LenetMcuError as exc:
                out["error"] = exc.message
            out["written"] = sorted(p.name for p in d.iterdir())
        print(json.dumps(out))
    """)
    assert op_problems_free(facts["batch1_ops"])
    assert facts["error"] is not None and "converted graph is not the int8 max-softmax LeNet-5" in facts["error"]
    assert "SHAPE" in facts["error"] and "STRIDED_SLICE" in facts["error"] and "PACK" in facts["error"]
    assert "lenet5_int8.tflite" not in facts["written"]
    assert not [n for n in facts["written"] if n.startswith(".")]  # no temporary left behind


def op_problems_free(ops):
    from lenet_mcu.quantize.tflite_check import op_problems

    return op_problems(ops) == [] and "SHAPE" not in ops


AVG_SOFTMAX = ["CONV_2D", "TANH", "AVERAGE_POOL_2D", "CONV_2D", "TANH", "AVERAGE_POOL_2D", "CONV_2D", "TANH",
               "FULLY_CONNECTED", "TANH", "FULLY_CONNECTED", "SOFTMAX"]


def variant_graph(subsampling: str, output: str) -> list[str]:
    """The op list the converter writes for a variant (as measured on converted models)."""
    pool = {"avg": ["AVERAGE_POOL_2D"], "lecun": ["DEPTHWISE_CONV_2D", "TANH"], "max": ["MAX_POOL_2D"]}[subsampling]
    body = ["CONV_2D", "TANH", *pool, "CONV_2D", "TANH", *pool, "CONV_2D", "TANH", "FULLY_CONNECTED", "TANH"]
    head = ["FULLY_CONNECTED", "SOFTMAX"] if output == "softmax" else ["RESHAPE", "SQUARED_DIFFERENCE", "SUM"]
    return body + head


@pytest.mark.parametrize("subsampling", ["avg", "lecun", "max"])
@pytest.mark.parametrize("output", ["softmax", "rbf"])
def test_op_check_admits_exactly_the_variants_ops(subsampling, output):
    from lenet_mcu.quantize.tflite_check import op_problems

    ops = variant_graph(subsampling, output)
    assert op_problems(ops, subsampling, output) == []
    assert op_problems(ops) == []  # any variant passes the generic check
    for other_sub in {"avg", "lecun", "max"} - {subsampling}:
        assert op_problems(ops, other_sub, output), f"{subsampling} graph passed as {other_sub}"
    other_out = "rbf" if output == "softmax" else "softmax"
    assert op_problems(ops, subsampling, other_out)
    # an op no variant needs is refused, as is a graph mixing two subsamplings
    assert any("CONCATENATION" in p for p in op_problems(ops + ["CONCATENATION"], subsampling, output))
    extra = "MAX_POOL_2D" if subsampling != "max" else "AVERAGE_POOL_2D"
    assert any(extra in p for p in op_problems(ops[:3] + [extra] + ops[3:], subsampling, output))


def test_op_check_wants_one_output_layer():
    from lenet_mcu.quantize.tflite_check import op_problems

    assert any("output layer" in p for p in op_problems(AVG_SOFTMAX[:-1]))
    assert any("output layer" in p for p in op_problems(AVG_SOFTMAX + ["SQUARED_DIFFERENCE", "SUM"]))
    assert op_problems(AVG_SOFTMAX + ["RESHAPE", "RESHAPE"], "avg", "softmax") == ["2 RESHAPE ops (at most 1)"]
