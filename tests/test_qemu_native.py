"""The real thing on QEMU: native int8 runtime + generated LeNet-5, MNIST test
images over the serial protocol, outputs equal to the TFLM reference byte for byte."""
from __future__ import annotations

import hashlib
import shutil
import time

import numpy as np
import pytest

from lenet_mcu import mnist
from lenet_mcu.firmware.build import build_firmware
from lenet_mcu.host import protocol as P
from lenet_mcu.host.qemu import QemuBoard, read_available, request_hello

serial = pytest.importorskip("serial")

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                       reason="needs qemu-system-arm and gcc-arm-none-eabi"),
]

IMAGES = 100


@pytest.fixture(scope="module")
def native_elf(fast_artifacts, tmp_path_factory):
    from lenet_mcu.codegen import generate
    out = tmp_path_factory.mktemp("native")
    generate("native", fast_artifacts / "lenet5_int8.tflite", out / "codegen")
    return build_firmware("native", out / "codegen", out / "build")


def test_native_firmware_matches_tflm_on_mnist(native_elf, fast_artifacts, mnist_dir):
    ref = np.load(fast_artifacts / "references.npz")
    zp = int(ref["input_zero_point"])
    images, _ = mnist.load_split("test", mnist_dir)
    x = mnist.quantize_input(mnist.preprocess(images[:IMAGES]), float(ref["input_scale"]), zp)
    sha = hashlib.sha256((fast_artifacts / "lenet5_int8.tflite").read_bytes()).hexdigest()[:16]

    with QemuBoard(native_elf) as board:
        ser = serial.serial_for_url(board.url, timeout=0.05)
        hello = request_hello(ser)
        assert (hello.runtime, hello.model_sha256_prefix) == ("native", sha)
        assert (hello.input_zero_point, hello.input_dims) == (zp, (1, 32, 32, 1))
        assert np.float32(hello.input_scale) == np.float32(ref["input_scale"])
        reader, results = P.FrameReader(), {}
        for i in range(IMAGES):  # RAW and RLE alternately, one at a time
            ser.write(P.encode_frame(P.MsgType.INFER, i, P.infer_body(x[i], zp if i % 2 else None)))
            deadline = time.monotonic() + 30
            while i not in results and time.monotonic() < deadline:
                for f in reader.feed(read_available(ser)):
                    assert f.type == P.MsgType.RESULT, f
                    results[f.seq] = P.parse_result(f)
            assert i in results, f"no RESULT for image {i}"
        ser.write(P.encode_frame(P.MsgType.STATS_REQUEST, 1))
        stats = None
        while stats is None:
            for f in reader.feed(read_available(ser)):
                stats = P.parse_stats(f)

    outputs = np.stack([results[i].outputs for i in range(IMAGES)])
    np.testing.assert_array_equal(outputs, ref["tflm_int8"][:IMAGES])
    assert [results[i].argmax for i in range(IMAGES)] == list(np.argmax(outputs, axis=1))
    ticks = np.array([results[i].ticks for i in range(IMAGES)])
    assert ticks.min() > 100_000, "a LeNet-5 inference is far more than 100k instructions"
    assert 0 < stats.stack_peak_bytes < stats.stack_size_bytes and stats.rx_dropped == 0
