"""The native kernels' Cortex-M4 path (SMLAD, SMMLAR, the written-out inner loops) against
TFLM on the emulated STM32F405: models nobody tuned (random weights) and the LeNet-5 of the
fast pipeline, each fed random int8 inputs, every output byte compared."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from native_util import fc_model, lenet_convs_model, random_inputs, run_on_qemu

from lenet_mcu.codegen import generate
from lenet_mcu.firmware.build import build_firmware
from lenet_mcu.interpreters import TflmInterpreter, run_tflm

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
        reason="needs qemu-system-arm and the GNU Arm toolchain (gcc-arm-none-eabi)",
    ),
]


def check_on_qemu(model: bytes, tmp_path, rng, count: int):
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    generate("native", path, tmp_path / "gen")
    elf = build_firmware("native", tmp_path / "gen", tmp_path / "build")
    x = random_inputs(rng, count, TflmInterpreter(model).input_shape[1:])
    want = run_tflm(model, x).reshape(count, -1)
    got, _ = run_on_qemu(elf, x)
    bad = np.nonzero(np.any(got != want, axis=1))[0]
    assert bad.size == 0, (
        f"{bad.size} of {count} inputs differ; first #{bad[0]}: tflm {want[bad[0]][:12]} device {got[bad[0]][:12]}"
    )
    return want


@pytest.mark.parametrize("table", [False, True])
def test_lenet_convs_on_the_m4(tmp_path, table):
    from lenet_mcu.train.architecture import c3_connection_matrix

    rng = np.random.default_rng(41 if table else 40)
    want = check_on_qemu(lenet_convs_model(rng, c3_connection_matrix() if table else None), tmp_path, rng, 60)
    assert len(np.unique(want)) > 40


@pytest.mark.parametrize(
    "in_features,out_features,tanh", [(120, 84, True), (84, 10, False), (33, 6, False), (400, 64, True)]
)
def test_channel_pair_fully_connected_on_the_m4(tmp_path, in_features, out_features, tanh):
    rng = np.random.default_rng(in_features + out_features)
    model = fc_model(rng, in_features, out_features, tanh=tanh, in_shape=(1, 1, 1, in_features))
    check_on_qemu(model, tmp_path, rng, 200)


def test_lenet_on_random_inputs_on_the_m4(fast_artifacts, tmp_path):
    rng = np.random.default_rng(2026)
    check_on_qemu((fast_artifacts / "lenet5_int8.tflite").read_bytes(), tmp_path, rng, 300)
