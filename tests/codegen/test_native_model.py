"""The whole LeNet-5 through the native runtime on the host (same C, gcc): every output
byte equals the TFLM reference on all 10,000 MNIST test images and on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from native_util import build_driver, have_gcc, random_inputs, run_driver

from lenet_mcu import mnist
from lenet_mcu.codegen import generate, native
from lenet_mcu.interpreters import TflmInterpreter, run_tflm
from lenet_mcu.tflite_model import load_model

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed")

RANDOM_INPUTS = 3000


@pytest.fixture(scope="module")
def native_driver(fast_artifacts, tmp_path_factory):
    gen = tmp_path_factory.mktemp("native-lenet")
    generate("native", fast_artifacts / "lenet5_int8.tflite", gen)
    return build_driver(gen)


def test_lenet_plan_fuses_layers_and_fits_the_budget(fast_artifacts):
    plan = native.lower(load_model(fast_artifacts / "lenet5_int8.tflite"))
    # C1+tanh+S2, C3+tanh+S4, C5+tanh, F6+tanh, output FC, softmax: every layer on a fast kernel
    assert [(s.name, s.kind) for s in plan.steps] == [
        ("c1_s2", "conv_s16"),
        ("c3_s4", "conv_s16"),
        ("c5", "fc_pairs"),
        ("f6", "fc_pairs"),
        ("output", "fc_pairs"),
        ("softmax", "softmax"),
    ]
    c1, c3 = plan.steps[0].params, plan.steps[1].params
    assert c1["quad"] == 1 and c1["out_s16"] == 1 and c1["out_pairs"] == 1  # S2 handed over as int16 planes
    assert c3["in_s16"] == 1 and c3["in_pairs"] == 1 and c3["quad"] == 0
    assert plan.macs == 416_520
    assert plan.arena_bytes <= 2_752  # S2 as int16 (2,352 B) + S4 (400 B)


def test_all_test_images_equal_tflm(fast_artifacts, mnist_dir, native_driver):
    refs = np.load(fast_artifacts / "references.npz")
    images, labels = mnist.load_split("test", mnist_dir)
    x = mnist.quantize_input(mnist.preprocess(images), float(refs["input_scale"]), int(refs["input_zero_point"]))
    want = refs["tflm_int8"]
    assert want.shape == (10000, 10)
    got = run_driver(native_driver, x, 10)
    bad = np.nonzero(np.any(got != want, axis=1))[0]
    assert bad.size == 0, (
        f"{bad.size} of 10000 test images differ from TFLM; first #{bad[0]}: {want[bad[0]]} vs {got[bad[0]]}"
    )
    assert (np.argmax(got, axis=1) == labels).mean() > 0.9  # and it is a working classifier


def test_random_inputs_equal_tflm(fast_artifacts, native_driver):
    model = fast_artifacts / "lenet5_int8.tflite"
    rng = np.random.default_rng(2024)
    x = random_inputs(rng, RANDOM_INPUTS, TflmInterpreter(model).input_shape[1:])
    want = run_tflm(model, x).reshape(len(x), -1)
    got = run_driver(native_driver, x, want.shape[1])
    bad = np.nonzero(np.any(got != want, axis=1))[0]
    assert bad.size == 0, f"{bad.size} of {len(x)} random inputs differ from TFLM; first #{bad[0]}"
