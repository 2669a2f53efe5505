"""End to end on the emulator: fast pipeline -> native firmware -> QEMU -> verify over the serial link.

The goal the project is judged by: on all 10,000 MNIST test images the int8
outputs of the firmware equal the TFLM reference byte for byte.
"""
from __future__ import annotations

import shutil
import threading

import pytest

from fake_device import LossyProxy
from lenet_mcu.host import flash
from lenet_mcu.host.verify import run_verify

pytestmark = [
    pytest.mark.slow,
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                       reason="needs qemu-system-arm and the GNU Arm toolchain (gcc-arm-none-eabi)"),
]

# What the pipeline made; the rest (codegen/, build/, verify/) this test makes in its own copy.
PIPELINE_FILES = ("lenet5_int8.tflite", "references.npz", "manifest.json", "metrics.json")


@pytest.fixture(scope="module")
def qemu_native(fast_artifacts, tmp_path_factory):
    """A private copy of the fast artifacts with the native firmware running in QEMU."""
    art = tmp_path_factory.mktemp("e2e") / "artifacts"
    art.mkdir()
    for name in PIPELINE_FILES:
        if (fast_artifacts / name).exists():
            shutil.copy2(fast_artifacts / name, art / name)
    state = flash.flash_qemu(art, "native", log=lambda m: None)  # codegen + build + start
    yield art, state
    flash.stop_qemu(art)
    assert not flash._alive(state["pid"]), "QEMU outlived stop_qemu"


def test_all_test_images_bit_exact_on_qemu(qemu_native, mnist_dir):
    art, state = qemu_native
    rep = run_verify(art, data_dir=mnist_dir, progress=False, log=lambda m: None)  # port: from the state file
    assert rep["images"] == 10000
    assert rep["bitexact"]["images_differing"] == 0, rep["bitexact"]
    assert rep["bitexact"]["max_abs_difference"] == 0
    assert rep["result"] == "pass"
    assert rep["device"]["runtime"] == "native" and rep["device"]["board"] == "stm32f405"
    assert rep["agreement"]["tflm_reference"] == 1.0
    assert rep["bitexact"]["device_argmax_inconsistent"] == 0
    assert rep["ticks"]["min"] > 0
    assert (art / "verify" / "report.md").read_text().startswith("# On-device verification")


def test_lossy_link_to_qemu_gets_every_result_once(qemu_native, mnist_dir):
    art, state = qemu_native
    limit = 300
    with LossyProxy(state["port"], drop=0.001, corrupt=0.001, garbage=0.02, seed=3) as proxy:
        rep = run_verify(art, port=proxy.url, data_dir=mnist_dir, limit=limit, timeout=1.0, window=4,
                         progress=False, reports=False, log=lambda m: None)
        assert proxy.damaged_bytes > 0
    assert rep["images"] == limit and rep["bitexact"]["images_differing"] == 0
    assert rep["link"]["retransmits"] > 0
    lines = (art / "verify" / "checkpoint.jsonl").read_text().splitlines()[1:]
    assert len(lines) == limit  # every result exactly once


def test_emulator_restart_mid_run_is_survived(qemu_native, mnist_dir):
    """QEMU killed and started again on the same port: verify reconnects, re-handshakes, finishes."""
    art, state = qemu_native
    restarted = threading.Event()
    new_state = {}

    def restart_once(index):
        if index >= 40 and not restarted.is_set():
            restarted.set()
            flash.stop_qemu(art)
            new_state.update(flash.start_qemu(art, state["elf"], port=state["port"]))

    rep = run_verify(art, data_dir=mnist_dir, limit=150, timeout=1.0, progress=False, reports=False,
                     on_result=restart_once, log=lambda m: None)
    assert restarted.is_set() and new_state["pid"] != state["pid"]
    assert rep["link"]["reconnects"] >= 1
    assert rep["images"] == 150 and rep["bitexact"]["images_differing"] == 0
    lines = (art / "verify" / "checkpoint.jsonl").read_text().splitlines()[1:]
    assert len(lines) == 150
    state.update(new_state)  # the fixture stops the new emulator


def test_second_client_on_a_busy_emulator_is_a_clear_error(qemu_native, mnist_dir):
    from lenet_mcu.errors import LenetMcuError
    from lenet_mcu.host.link import Link

    art, state = qemu_native
    with Link(state["url"]):  # someone else holds QEMU's only client slot
        with pytest.raises(LenetMcuError, match="is another verify connected"):
            run_verify(art, data_dir=mnist_dir, limit=5, hello_timeout=2.0, progress=False, reports=False,
                       log=lambda m: None)


def _fresh_copy(fast_artifacts, tmp_path):
    art = tmp_path / "artifacts"
    art.mkdir()
    for name in PIPELINE_FILES:
        if (fast_artifacts / name).exists():
            shutil.copy2(fast_artifacts / name, art / name)
    return art


def test_pipeline_device_stages_codegen_build_verify(fast_artifacts, mnist_dir, tmp_path, monkeypatch):
    """The tail of `lenet-mcu pipeline`: codegen, build, QEMU up, check, QEMU down, manifest updated."""
    from pathlib import Path

    from lenet_mcu import pipeline

    _fresh_copy(fast_artifacts, tmp_path)
    monkeypatch.chdir(tmp_path)
    art = Path("artifacts")  # relative, like the CLI's default
    config = pipeline.config_for_later_stage(art, None, None, False, None, None)
    ctx = pipeline.StageContext(config=config, data_dir=mnist_dir, artifacts=art, echo=lambda m: None,
                                verify_limit=100)
    tail = [stage for stage in pipeline.STAGES if stage[0] in ("codegen", "build", "verify")]
    result = pipeline.run_pipeline(ctx, tail)
    assert list(result["stages"]) == ["codegen", "build", "verify"]
    verify = pipeline.read_manifest(art)["stages"]["verify"]
    assert verify["images"] == 100 and verify["images_differing_from_tflm"] == 0 and verify["result"] == "pass"
    assert result["stages"]["build"]["flash_bytes"] > 0
    assert flash.running_qemu(art) is None and not (art / "qemu.json").exists()
    assert (art / "verify" / "confusion.png").is_file()
    assert "verify/report.json" in pipeline.read_manifest(art)["artifacts"]


@pytest.mark.tflm
@pytest.mark.skipif(not __import__("os").environ.get("TFLM_DIR"),
                    reason="TFLM_DIR is not set: no TensorFlow Lite Micro tree to build the tflm firmware")
def test_flash_tflm_runtime_and_verify(fast_artifacts, mnist_dir, tmp_path):
    """`flash --runtime tflm` builds against $TFLM_DIR; the same check passes on 500 images."""
    from lenet_mcu.host.verify import verify_on_qemu

    art = _fresh_copy(fast_artifacts, tmp_path)
    rep = verify_on_qemu(art, "tflm", data_dir=mnist_dir, limit=500, progress=False, log=lambda m: None)
    assert rep["device"]["runtime"] == "tflm"
    assert rep["images"] == 500 and rep["bitexact"]["images_differing"] == 0
