"""Every board beside the STM32F405 (tests/e2e/test_native_on_qemu.py covers that one) on its
QEMU machine, sharing the session's one trained model:

- the native runtime is bit-exact with the TFLM reference on the first 1,000 MNIST test images
  (the serial check) and on 2,000 random int8 inputs nobody tuned for (against a fresh run of
  the tflite-micro interpreter);
- the TFLM runtime (with TFLM_DIR, a tree made by create_tflm_tree.py) is bit-exact on 1,000
  images where it fits the board's memory, and where it does not, `build` says so in one line
  with the bytes it needs and the bytes the board has.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from lenet_mcu import boards
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host import flash
from lenet_mcu.pipeline import ensure_firmware

pytestmark = [
    pytest.mark.slow,
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                       reason="needs qemu-system-arm and the GNU Arm toolchain (gcc-arm-none-eabi)"),
]

IMAGES = 1000
RANDOM_INPUTS = 2000
PIPELINE_FILES = ("lenet5_int8.tflite", "references.npz", "manifest.json", "metrics.json")
BOARDS = [name for name, b in boards.BOARDS.items() if b.emulated and name != boards.DEFAULT_BOARD]


def _copy_model(fast_artifacts: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in PIPELINE_FILES:
        if (fast_artifacts / name).exists():
            shutil.copy2(fast_artifacts / name, dest / name)
    return dest


@pytest.fixture(scope="module", params=BOARDS)
def native_on_board(request, fast_artifacts, tmp_path_factory):
    """A copy of the session's artifacts with the native firmware of one board running in QEMU."""
    board = request.param
    art = _copy_model(fast_artifacts, tmp_path_factory.mktemp(f"board-{board}") / "artifacts")
    elf = ensure_firmware(art, "native", board=board, echo=lambda m: None)
    state = flash.flash_qemu(art, elf, "native", board=board, log=lambda m: None)
    yield art, boards.get(board), state
    flash.stop_qemu(art)


def test_native_is_bit_exact_on_1000_test_images(native_on_board, mnist_dir):
    from lenet_mcu.host.verify import run_verify

    art, board, _ = native_on_board
    rep = run_verify(art, data_dir=mnist_dir, limit=IMAGES, progress=False, log=lambda m: None, board=board.name)
    assert rep["images"] == IMAGES
    assert rep["bitexact"]["images_differing"] == 0, rep["bitexact"]
    assert rep["bitexact"]["max_abs_difference"] == 0
    assert rep["device"]["board"] == board.name and rep["device"]["runtime"] == "native"
    ticks = rep["ticks"]
    assert ticks["tick_kind"] == board.counter.tick_kind
    insns = ticks["instructions_under_qemu"]
    assert insns["resolution"] == board.counter.instructions_per_tick
    # LeNet-5 is ~0.4 M multiply-accumulates: more than one instruction each even with
    # two per SMLAD, fewer than 20 each on the Cortex-M0's portable C path.
    assert 300_000 < insns["min"] <= insns["median"] <= insns["max"] < 8_000_000, insns


def test_native_is_bit_exact_on_2000_random_int8_inputs(native_on_board):
    """RAW frames, two in flight, on a fresh emulator of its own; every output byte against a
    fresh run of the tflite-micro interpreter."""
    serial = pytest.importorskip("serial")
    from lenet_mcu.host import protocol as proto
    from lenet_mcu.host.qemu import QemuBoard, read_available, request_hello
    from lenet_mcu.interpreters import TflmInterpreter, run_tflm

    art, board, state = native_on_board
    model = art / "lenet5_int8.tflite"
    rng = np.random.default_rng(20261202)
    inputs = rng.integers(-128, 128, size=(RANDOM_INPUTS,) + TflmInterpreter(model).input_shape[1:], dtype=np.int8)
    outputs: dict[int, np.ndarray] = {}
    with QemuBoard(state["elf"], machine=board.qemu_machine, extra_args=board.qemu_options,
                   log_path=art / "qemu-random.log") as emulator:
        ser = serial.serial_for_url(emulator.url, timeout=0.05, write_timeout=30)
        try:
            assert request_hello(ser).board == board.name
            reader = proto.FrameReader()
            sent, last = 0, time.monotonic()
            while len(outputs) < RANDOM_INPUTS:
                assert time.monotonic() - last < 60, f"no RESULT for 60 s after {len(outputs)} of {RANDOM_INPUTS}"
                while sent < RANDOM_INPUTS and sent - len(outputs) < 2:
                    ser.write(proto.encode_frame(proto.MsgType.INFER, sent, proto.infer_body(inputs[sent], None)))
                    sent += 1
                for f in reader.feed(read_available(ser)):
                    if isinstance(f, proto.Frame) and f.type == proto.MsgType.RESULT:
                        outputs[f.seq] = proto.parse_result(f).outputs
                        last = time.monotonic()
        finally:
            ser.close()
    device = np.stack([outputs[i] for i in range(RANDOM_INPUTS)])
    np.testing.assert_array_equal(device, run_tflm(model, inputs).reshape(RANDOM_INPUTS, -1))


# ---------------------------------------------------------------- TFLM runtime

def _tflm_tree() -> Path:
    value = os.environ.get("TFLM_DIR")
    if not value:
        pytest.skip("TFLM_DIR is not set: no TensorFlow Lite Micro tree to build against (a tree made by "
                    "tflite-micro's create_tflm_tree.py; README: TensorFlow Lite Micro runtime)")
    return Path(value)


@pytest.mark.tflm
@pytest.mark.parametrize("board", BOARDS)
def test_tflm_runs_bit_exact_where_it_fits_and_build_says_why_where_not(board, fast_artifacts, mnist_dir,
                                                                        tmp_path):
    from lenet_mcu.host.qemu import QemuBoard
    from lenet_mcu.host.verify import run_verify

    tree = _tflm_tree()
    record = boards.get(board)
    art = _copy_model(fast_artifacts, tmp_path / "artifacts")
    try:
        elf = ensure_firmware(art, "tflm", board=board, tflm_dir=tree, echo=lambda m: None)
    except LenetMcuError as exc:
        # TFLM's arena alone is larger than the RAM of the small boards.
        msg = exc.message
        m = re.search(rf"does not fit board {board}: needs ([\d,]+) bytes of RAM, the board has ([\d,]+)", msg)
        assert m and "\n" not in msg, msg
        needed, available = (int(g.replace(",", "")) for g in m.groups())
        assert available == record.ram_bytes < needed
        assert record.ram_bytes <= 16 * 1024, "only the 8/16 KiB boards may be too small for TFLM"
        return
    with QemuBoard(elf, machine=record.qemu_machine, extra_args=record.qemu_options) as emulator:
        rep = run_verify(art, port=emulator.url, limit=IMAGES, data_dir=mnist_dir, progress=False, reports=False,
                         log=lambda m: None, board=board)
    assert rep["images"] == IMAGES and rep["device"]["runtime"] == "tflm"
    assert rep["bitexact"]["images_differing"] == 0, rep["bitexact"]
