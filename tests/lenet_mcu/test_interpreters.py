"""The host interpreters (lenet_mcu.interpreters): TFLM, desktop TFLite with reference kernels, batches."""

from __future__ import annotations

import numpy as np
import pytest
from native_util import conv_model, fc_model, random_inputs

from lenet_mcu import interpreters
from lenet_mcu.interpreters import TfliteInterpreter, TflmInterpreter, run_batch, run_tflm
from lenet_mcu.tflite_model import load_model

pytest.importorskip("tflite_micro", reason="TFLM's interpreter comes with the codegen extra")


def _desktop_rounds_once() -> str | None:
    """Why desktop TFLite cannot equal TFLM here, or None when it can."""
    module, dist = interpreters.tflite_package()
    version = TfliteInterpreter.version()
    if dist == "ai-edge-litert" and tuple(int(p) for p in version.split(".")[:2]) >= (1, 3):
        return (
            f"ai-edge-litert {version} is built with TFLITE_SINGLE_ROUNDING (requantization rounds once); "
            "TFLM rounds twice"
        )
    return None


def test_batch_outputs_equal_one_by_one_and_with_workers():
    model = fc_model(np.random.default_rng(5), in_features=30, out_features=7, tanh=True)
    x = random_inputs(np.random.default_rng(6), 1100, (1, 1, 30))
    one = TflmInterpreter(model)
    want = np.stack([one.run_one(v) for v in x]).reshape(len(x), -1)
    seen = []
    np.testing.assert_array_equal(run_tflm(model, x, workers=1), want)
    np.testing.assert_array_equal(run_batch("tflm", model, x, workers=2, on_progress=seen.append, chunk=300), want)
    assert seen == [300, 600, 900, 1100]


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: conv_model(rng, (14, 14, 6), 16, (5, 5), tanh=True, pool=((2, 2), (2, 2))),
        lambda rng: fc_model(rng, in_features=120, out_features=84, tanh=True),
        lambda rng: fc_model(rng, in_features=84, out_features=10, per_channel=False),
    ],
    ids=["conv_tanh_pool", "fc_tanh", "fc_per_tensor"],
)
def test_desktop_reference_kernels_equal_tflm(make):
    pytest.importorskip("tflite_runtime" if interpreters.extras.is_installed("tflite_runtime") else "ai_edge_litert")
    if reason := _desktop_rounds_once():
        pytest.skip(reason)
    rng = np.random.default_rng(11)
    model = make(rng)
    x = random_inputs(rng, 600, TflmInterpreter(model).input_shape[1:])
    tflm = run_tflm(model, x)
    desktop = run_batch("tflite", model, x)
    assert len(np.unique(tflm)) > 20  # outputs spread out, not all clamped
    np.testing.assert_array_equal(desktop, tflm)


@pytest.mark.slow
def test_tflite_runtime_and_ai_edge_litert_identical_on_the_test_set(fast_artifacts, mnist_dir):
    """Where both install, the two desktop packages give the same bytes on all 10,000 test images."""
    for module in ("tflite_runtime", "ai_edge_litert"):
        pytest.importorskip(module, reason="needs both desktop TFLite packages (test extra, Python 3.11 on Linux)")
    if reason := _desktop_rounds_once():
        pytest.skip(reason)
    from lenet_mcu import mnist

    model = fast_artifacts / "lenet5_int8.tflite"
    inp = load_model(model).input
    images, _ = mnist.load_split("test", mnist_dir)
    x = mnist.quantize_input(mnist.preprocess(images), inp.scale, inp.zero_point)
    a = run_batch("tflite_runtime", model, x, workers=2)
    b = run_batch("ai_edge_litert", model, x, workers=2)
    assert a.shape == (10000, 10)
    differ = np.flatnonzero(np.any(a != b, axis=1))
    assert differ.size == 0, f"{differ.size} images differ, first #{differ[0]}: {a[differ[0]]} vs {b[differ[0]]}"


def test_desktop_interpreter_uses_reference_kernels(monkeypatch):
    """The op resolver asked for is BUILTIN_REF: no XNNPACK delegate, no optimized kernels."""
    module, _ = interpreters.tflite_package()
    api = pytest.importorskip(f"{module}.interpreter")
    seen = {}
    real = api.Interpreter

    class Spy(real):
        def __init__(self, *args, **kwargs):
            seen.update(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(api, "Interpreter", Spy)
    TfliteInterpreter(fc_model(np.random.default_rng(1)))
    assert seen["experimental_op_resolver_type"] == api.OpResolverType.BUILTIN_REF


def test_a_model_tflm_rejects_is_one_line():
    with pytest.raises(interpreters.LenetMcuError, match="TFLM interpreter rejects the model"):
        TflmInterpreter(b"\x00\x00\x00\x00TFL3" + b"\x00" * 64)
