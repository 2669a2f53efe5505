"""The TFLM firmware on QEMU: built against a TFLM tree, checked byte for byte.

Needs a TensorFlow Lite Micro tree made by TFLM's create_tflm_tree.py:
  TFLM_DIR        tree for TARGET=cortex_m_generic TARGET_ARCH=cortex-m4 (reference kernels)
  TFLM_CMSIS_DIR  optional second tree made with OPTIMIZED_KERNEL_DIR=cmsis_nn
Without them these tests skip (CI has no TFLM). With them: the firmware is built
with RUNTIME=tflm, run in QEMU, and the first 1,000 MNIST test images go through
the same serial check as the native runtime; every output byte must equal the
tflite-micro Python interpreter's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lenet_mcu import mnist
from lenet_mcu.codegen import generate, tflm
from lenet_mcu.firmware import FIRMWARE_DIR
from lenet_mcu.firmware.build import build_firmware

IMAGES = 1000
MODEL = "lenet5_int8.tflite"
TREES = {"reference": "TFLM_DIR", "cmsis_nn": "TFLM_CMSIS_DIR"}
HOWTO = "point it at a tree made by tflite-micro's create_tflm_tree.py (README: TensorFlow Lite Micro runtime)"

pytestmark = [
    pytest.mark.tflm,
    pytest.mark.qemu,
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("TFLM_DIR"),
        reason=f"TFLM_DIR is not set: no TensorFlow Lite Micro tree to build against; {HOWTO}",
    ),
    pytest.mark.skipif(
        shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
        reason="needs qemu-system-arm and gcc-arm-none-eabi",
    ),
]


def _tree(kind: str) -> Path:
    var = TREES[kind]
    value = os.environ.get(var)
    if not value:
        pytest.skip(f"{var} is not set: no {kind} TFLM tree; {HOWTO}")
    return Path(value)


@pytest.fixture(scope="module", params=list(TREES))
def tflm_firmware(request, fast_artifacts, tmp_path_factory):
    """(work artifacts folder, firmware.elf, codegen dir, kind) for one TFLM tree."""
    kind = request.param
    tree = _tree(kind)
    work = tmp_path_factory.mktemp(f"tflm-{kind}") / "artifacts"
    work.mkdir()
    for name in (MODEL, "references.npz"):
        shutil.copy(fast_artifacts / name, work / name)
    gen = work / "codegen" / "tflm"
    generate("tflm", work / MODEL, gen)
    elf = build_firmware("tflm", gen, work / "build" / "tflm", make_vars={"TFLM_DIR": str(tree)})
    return work, elf, gen, kind


def test_tflm_firmware_matches_the_tflm_interpreter_on_1000_images(tflm_firmware, mnist_dir):
    from lenet_mcu.artifacts import VERIFY_DIR
    from lenet_mcu.host import checkpoint
    from lenet_mcu.host.qemu import QemuBoard
    from lenet_mcu.host.verify import CHECKPOINT_FILE, run_verify
    from lenet_mcu.interpreters import run_tflm

    work, elf, gen, kind = tflm_firmware
    with QemuBoard(elf, icount=True) as board:
        report = run_verify(
            work, port=board.url, limit=IMAGES, data_dir=mnist_dir, progress=False, reports=False, log=lambda msg: None
        )
    assert report["images"] == IMAGES
    assert report["device"]["runtime"] == "tflm"
    assert report["bitexact"]["images_differing"] == 0, report["bitexact"]
    assert report["result"] == "pass"

    # Every output byte against a fresh run of the tflite-micro interpreter (not
    # only the stored references the serial check used).
    records, _, _, _ = checkpoint.read(work / VERIFY_DIR / CHECKPOINT_FILE)
    device = np.stack([records[i].outputs for i in range(IMAGES)])
    refs = np.load(work / "references.npz")
    images, _ = mnist.load_split("test", mnist_dir)
    x = mnist.quantize_input(
        mnist.preprocess(images[:IMAGES]), float(refs["input_scale"]), int(refs["input_zero_point"])
    )
    interpreter = run_tflm(work / MODEL, x).reshape(IMAGES, -1)
    np.testing.assert_array_equal(device, interpreter)
    assert [records[i].argmax for i in range(IMAGES)] == list(np.argmax(device, axis=1))

    # The arena margin, checked on the target: what TFLM really uses fits, and
    # the generated arena is the host measurement plus the stated margin.
    used = report["device"]["arena_bytes"]
    described = tflm.describe(gen)
    assert 0 < used <= described["arena_size"]
    print(
        f"\n{kind}: arena used on the device {used} B of {described['arena_size']} B "
        f"(host measurement {described['arena_measured']} B); "
        f"median {report['ticks']['median']:.0f} instructions per inference"
    )


def _tflm_info(gen: Path, build: Path, tree: Path) -> dict:
    proc = subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(FIRMWARE_DIR),
            "RUNTIME=tflm",
            f"MODEL_DIR={gen}",
            f"BUILD_DIR={build}",
            f"TFLM_DIR={tree}",
            "tflm-info",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(re.findall(r"^([\w ]+):\s+(.*)$", proc.stdout, re.M))


def test_only_the_models_kernels_are_compiled_and_cached(tflm_firmware, tmp_path):
    work, elf, gen, kind = tflm_firmware
    tree = _tree(kind)
    kernels = _tflm_info(gen, tmp_path / "b", tree)["kernels"].split()
    # one kernel file (+ its _common.cc) per operator of the model, nothing else
    stems = {k.removesuffix(".cc").removesuffix("_common") for k in kernels}
    assert stems == {"conv", "tanh", "pooling", "fully_connected", "softmax"}, kernels
    # a second build (new BUILD_DIR, regenerated sources) compiles no TFLM object again
    gen2 = tmp_path / "gen"
    generate("tflm", work / MODEL, gen2)
    build_firmware("tflm", gen2, tmp_path / "build2", make_vars={"TFLM_DIR": str(tree)})
    log = (tmp_path / "build2" / "build.log").read_text()
    assert "(tflm cache)" not in log, "TFLM objects were recompiled despite the cache"
    assert re.search(r"CXX tflm_runtime\.cc", log)


def test_a_changed_model_is_refused_until_regenerated(tflm_firmware, tmp_path):
    work, elf, gen, kind = tflm_firmware
    model = tmp_path / MODEL
    shutil.copy(work / MODEL, model)
    generate("tflm", model, tmp_path / "gen")
    model.write_bytes(model.read_bytes() + b"\0")  # the .tflite changes after codegen
    proc = subprocess.run(
        [
            "make",
            "-C",
            str(FIRMWARE_DIR),
            "RUNTIME=tflm",
            f"MODEL_DIR={tmp_path / 'gen'}",
            f"BUILD_DIR={tmp_path / 'build'}",
            f"TFLM_DIR={_tree(kind)}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert f"{model} changed since" in proc.stderr and "lenet-mcu codegen --runtime tflm" in proc.stderr
