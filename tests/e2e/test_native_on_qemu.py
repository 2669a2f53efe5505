"""End to end on the emulator: fast pipeline -> native firmware -> QEMU -> verify over the serial link.

The goal the project is judged by: on all 10,000 MNIST test images the int8
outputs of the firmware equal the TFLM reference byte for byte. One firmware
build and one emulator serve every test here.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time

import numpy as np
import pytest
from fake_device import LossyProxy

from lenet_mcu import mnist
from lenet_mcu.artifacts import read_manifest
from lenet_mcu.firmware.build import size_report
from lenet_mcu.host import flash, qemu
from lenet_mcu.host import protocol as P
from lenet_mcu.host.qemu import read_available, request_hello
from lenet_mcu.host.verify import run_verify
from lenet_mcu.pipeline import ensure_firmware

pytestmark = [
    pytest.mark.slow,
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
        reason="needs qemu-system-arm and the GNU Arm toolchain (gcc-arm-none-eabi)",
    ),
]

# What the pipeline made; the rest (codegen/, build/, verify/) this test makes in its own copy.
PIPELINE_FILES = ("lenet5_int8.tflite", "references.npz", "manifest.json", "metrics.json")
MAX_INSTRUCTIONS = 3_000_000  # per inference: the native runtime's budget on the Cortex-M4


@pytest.fixture(scope="module")
def qemu_native(fast_artifacts, tmp_path_factory):
    """A private copy of the fast artifacts with the native firmware running in QEMU."""
    art = tmp_path_factory.mktemp("e2e") / "artifacts"
    art.mkdir()
    for name in PIPELINE_FILES:
        if (fast_artifacts / name).exists():
            shutil.copy2(fast_artifacts / name, art / name)
    state = flash.flash_qemu(art, ensure_firmware(art, "native", echo=lambda m: None), "native", log=lambda m: None)
    yield art, state
    flash.stop_qemu(art)
    assert not qemu.alive(state["pid"]), "QEMU outlived stop_qemu"


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
    assert rep["ticks"]["tick_kind"] == 0  # TIM2 under -icount shift=0: one tick per instruction
    assert 100_000 < rep["ticks"]["min"] <= rep["ticks"]["max"] <= MAX_INSTRUCTIONS, rep["ticks"]
    assert (art / "verify" / "report.md").read_text().startswith("# On-device verification")
    profile = rep["profile"]  # ticks per layer, from the firmware's PROFILE answer
    assert [layer["name"] for layer in profile["layers"]] == ["c1_s2", "c3_s4", "c5", "f6", "output", "softmax"]
    assert profile["outputs_equal_tflm"]
    assert (art / "verify" / "profile.png").is_file() and "## Ticks per layer" in (
        art / "verify" / "report.md"
    ).read_text()


def test_native_firmware_fits_flash_and_ram(qemu_native):
    size = size_report(qemu_native[1]["elf"])
    assert size["flash_bytes"] <= 80 * 1024, size
    assert size["ram_static_bytes"] <= 8 * 1024, size


def test_raw_and_rle_frames_round_trip(qemu_native, fast_artifacts, mnist_dir):
    """Below verify: HELLO describes the model, RAW and RLE inputs give the same bytes as TFLM, STATS is sane."""
    serial = pytest.importorskip("serial")
    art, state = qemu_native
    count = 40
    ref = np.load(art / "references.npz")
    zp = int(ref["input_zero_point"])
    images, _ = mnist.load_split("test", mnist_dir)
    x = mnist.quantize_input(mnist.preprocess(images[:count]), float(ref["input_scale"]), zp)
    sha = hashlib.sha256((art / "lenet5_int8.tflite").read_bytes()).hexdigest()[:16]
    ser = serial.serial_for_url(state["url"], timeout=0.05)
    try:
        hello = request_hello(ser)
        assert (hello.runtime, hello.model_sha256_prefix) == ("native", sha)
        assert (hello.input_zero_point, hello.input_dims) == (zp, (1, 32, 32, 1))
        assert np.float32(hello.input_scale) == np.float32(ref["input_scale"])
        assert hello.ram_static_bytes == size_report(state["elf"])["ram_static_bytes"]
        reader, results = P.FrameReader(), {}
        for i in range(count):  # RAW and RLE alternately, one at a time
            ser.write(P.encode_frame(P.MsgType.INFER, i, P.infer_body(x[i], zp if i % 2 else None)))
            deadline = time.monotonic() + 30
            while i not in results and time.monotonic() < deadline:
                for f in reader.feed(read_available(ser)):
                    assert f.type == P.MsgType.RESULT, f
                    results[f.seq] = P.parse_result(f)
            assert i in results, f"no RESULT for image {i}"
        ser.write(P.encode_frame(P.MsgType.STATS_REQUEST, 1))
        stats, deadline = None, time.monotonic() + 10
        while stats is None and time.monotonic() < deadline:
            for f in reader.feed(read_available(ser)):
                stats = P.parse_stats(f)
    finally:
        ser.close()
    outputs = np.stack([results[i].outputs for i in range(count)])
    np.testing.assert_array_equal(outputs, ref["tflm_int8"][:count])
    assert [results[i].argmax for i in range(count)] == list(np.argmax(outputs, axis=1))
    assert stats is not None and 0 < stats.stack_peak_bytes < stats.stack_size_bytes and stats.rx_dropped == 0


def test_profile_costs_the_normal_inference_nothing(qemu_native, fast_artifacts, mnist_dir):
    """PROFILE: one frame per layer, then the RESULT; the layers add up to the inference, and an
    INFER before and after it takes exactly the same ticks (infer() has no measuring code)."""
    serial = pytest.importorskip("serial")
    art, state = qemu_native
    ref = np.load(art / "references.npz")
    zp = int(ref["input_zero_point"])
    images, _ = mnist.load_split("test", mnist_dir)
    x = mnist.quantize_input(mnist.preprocess(images[:1]), float(ref["input_scale"]), zp)[0]
    ser = serial.serial_for_url(state["url"], timeout=0.05)
    reader = P.FrameReader()

    def ask(msg_type, seq):
        ser.write(P.encode_frame(msg_type, seq, P.infer_body(x, None)))
        frames, deadline = [], time.monotonic() + 30
        while not any(f.type == P.MsgType.RESULT for f in frames) and time.monotonic() < deadline:
            frames += [f for f in reader.feed(read_available(ser)) if f.seq == seq]
        assert frames and frames[-1].type == P.MsgType.RESULT, frames
        return frames[:-1], P.parse_result(frames[-1])

    try:
        request_hello(ser)
        _, before = ask(P.MsgType.INFER, 501)
        layer_frames, profiled = ask(P.MsgType.PROFILE_REQUEST, 502)
        _, after = ask(P.MsgType.INFER, 503)
    finally:
        ser.close()
    layers = [P.parse_profile(f) for f in layer_frames]
    assert [(l.index, l.count) for l in layers] == [(i, 6) for i in range(6)]
    assert [l.name for l in layers] == ["c1_s2", "c3_s4", "c5", "f6", "output", "softmax"]
    assert before.ticks == after.ticks
    np.testing.assert_array_equal(profiled.outputs, ref["tflm_int8"][0])
    np.testing.assert_array_equal(before.outputs, profiled.outputs)
    total = sum(l.ticks for l in layers)
    assert total <= profiled.ticks and abs(total - before.ticks) < 0.01 * before.ticks


def test_lossy_link_to_qemu_gets_every_result_once(qemu_native, mnist_dir):
    art, state = qemu_native
    limit = 300
    with LossyProxy(state["port"], drop=0.001, corrupt=0.001, garbage=0.02, seed=3) as proxy:
        rep = run_verify(
            art,
            port=proxy.url,
            data_dir=mnist_dir,
            limit=limit,
            timeout=1.0,
            window=4,
            progress=False,
            reports=False,
            log=lambda m: None,
        )
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

    rep = run_verify(
        art,
        data_dir=mnist_dir,
        limit=150,
        timeout=1.0,
        progress=False,
        reports=False,
        on_result=restart_once,
        log=lambda m: None,
    )
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
            run_verify(
                art, data_dir=mnist_dir, limit=5, hello_timeout=2.0, progress=False, reports=False, log=lambda m: None
            )


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
    config = pipeline.config_for_later_stage(art)
    ctx = pipeline.StageContext(config=config, data_dir=mnist_dir, artifacts=art, echo=lambda m: None, verify_limit=100)
    tail = [stage for stage in pipeline.STAGES if stage[0] in ("codegen", "build", "verify")]
    result = pipeline.run_pipeline(ctx, tail)
    assert list(result["stages"]) == ["codegen", "build", "verify"]
    verify = read_manifest(art)["stages"]["verify"]
    assert verify["images"] == 100 and verify["images_differing_from_tflm"] == 0 and verify["result"] == "pass"
    assert result["stages"]["build"]["flash_bytes"] > 0
    assert flash.running_qemu(art) is None and not (art / "qemu.json").exists()
    assert (art / "verify" / "confusion.png").is_file()
    assert "verify/report.json" in read_manifest(art)["artifacts"]


@pytest.mark.tflm
@pytest.mark.skipif(
    not __import__("os").environ.get("TFLM_DIR"),
    reason="TFLM_DIR is not set: no TensorFlow Lite Micro tree to build the tflm firmware",
)
def test_flash_tflm_runtime_and_verify(fast_artifacts, mnist_dir, tmp_path):
    """`flash --runtime tflm` builds against $TFLM_DIR; the same check passes on 500 images."""
    from lenet_mcu.pipeline import verify_on_qemu

    art = _fresh_copy(fast_artifacts, tmp_path)
    rep = verify_on_qemu(art, "tflm", data_dir=mnist_dir, limit=500, progress=False, log=lambda m: None)
    assert rep["device"]["runtime"] == "tflm"
    assert rep["images"] == 500 and rep["bitexact"]["images_differing"] == 0
