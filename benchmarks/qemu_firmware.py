"""Benchmark the firmware on QEMU: serial link throughput, emulation speed
(-icount shift=0 instructions per second), and for the native runtime the
flash/RAM figures and instructions per inference.

    python benchmarks/qemu_firmware.py [--artifacts artifacts] [--images 300] [--out bench.json]

The link and emulation-speed figures use the echo test-fixture firmware
(tests/support/firmware_fixtures/echo): its "inference" is ~10k instructions, so the
serial link dominates, or ~10M on inputs starting with "SLOW" (pure compute).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from lenet_mcu import artifacts as art
from lenet_mcu import atomic, mnist
from lenet_mcu.firmware.build import build_firmware, size_report
from lenet_mcu.host import protocol as P
from lenet_mcu.host.qemu import QemuBoard, read_available, request_hello

REPO = Path(__file__).resolve().parents[1]
ECHO_DIR = REPO / "tests" / "support" / "firmware_fixtures" / "echo"


class Link:
    def __init__(self, url):
        import serial

        self.ser = serial.serial_for_url(url, timeout=0.02)
        self.reader = P.FrameReader()

    def pipeline(self, frames: list[bytes], window: int) -> tuple[list[P.Frame], float, int, int]:
        """Send frames keeping `window` unanswered; returns answers, seconds, bytes up, bytes down."""
        answers: list[P.Frame] = []
        sent = up = down = 0
        t0 = time.monotonic()
        while len(answers) < len(frames):
            while sent < len(frames) and sent - len(answers) < window:
                self.ser.write(frames[sent])
                up += len(frames[sent])
                sent += 1
            data = read_available(self.ser, wait=0.01)
            down += len(data)
            for f in self.reader.feed(data):
                if not isinstance(f, P.Frame):
                    raise RuntimeError(f"broken frame from the device: {f}")
                answers.append(f)
            if time.monotonic() - t0 > 600:
                raise RuntimeError("benchmark timed out")
        return answers, time.monotonic() - t0, up, down


def bench_link(elf: Path, count: int) -> dict:
    rng = np.random.default_rng(0)
    with QemuBoard(elf) as board:
        link = Link(board.url)
        request_hello(link.ser)
        raw = [
            P.encode_frame(P.MsgType.INFER, i, P.infer_body(rng.integers(-128, 128, 1024).astype(np.int8), None))
            for i in range(count)
        ]
        _, secs_up, up, _ = link.pipeline(raw, window=4)
        hellos = [P.encode_frame(P.MsgType.HELLO_REQUEST, i) for i in range(count * 4)]
        _, secs_down, _, down = link.pipeline(hellos, window=8)
    return {
        "host_to_device_bytes_per_s": round(up / secs_up),
        "host_to_device_frames_per_s": round(count / secs_up, 1),
        "device_to_host_bytes_per_s": round(down / secs_down),
        "raw_infer_frame_bytes": len(raw[0]),
    }


def serial_seconds(elf: Path, frames: list[bytes]) -> tuple[float, list[P.Frame]]:
    """Wall time for `frames` sent one at a time (window 1)."""
    with QemuBoard(elf) as board:
        link = Link(board.url)
        request_hello(link.ser)
        answers, secs, _, _ = link.pipeline(frames, window=1)
    return secs, answers


def bench_emulation(echo_elf: Path, count: int = 20) -> dict:
    """Instructions per wall second of QEMU -icount shift=0 on pure compute:
    `count` frames one at a time whose fixture inference spins ~10M
    instructions ("SLOW" inputs), minus the same frames without the spin."""
    rng = np.random.default_rng(1)
    xs = [rng.integers(-128, 128, 1024).astype(np.int8) for _ in range(count)]
    fast = [P.encode_frame(P.MsgType.INFER, i, P.infer_body(x, None)) for i, x in enumerate(xs)]
    for x in xs:
        x[:4] = np.frombuffer(b"SLOW", dtype=np.int8)
    slow = [P.encode_frame(P.MsgType.INFER, i, P.infer_body(x, None)) for i, x in enumerate(xs)]
    t_fast, a_fast = serial_seconds(echo_elf, fast)
    t_slow, a_slow = serial_seconds(echo_elf, slow)
    extra = sum(P.parse_result(f).ticks for f in a_slow) - sum(P.parse_result(f).ticks for f in a_fast)
    return {
        "instructions": extra,
        "seconds": round(t_slow - t_fast, 3),
        "emulated_instructions_per_s": round(extra / (t_slow - t_fast)),
    }


def bench_native(artifacts: Path, build_dir: Path, images: int, data_dir) -> dict:
    from lenet_mcu.pipeline import ensure_codegen

    gen = ensure_codegen("native", artifacts)
    elf = build_firmware("native", gen, build_dir)
    size = size_report(elf)
    ref = np.load(artifacts / art.REFERENCES)
    imgs, _ = mnist.load_split("test", data_dir)
    zp = int(ref["input_zero_point"])
    x = mnist.quantize_input(mnist.preprocess(imgs[:images]), float(ref["input_scale"]), zp)
    frames = [P.encode_frame(P.MsgType.INFER, i, P.infer_body(x[i], zp)) for i in range(images)]
    with QemuBoard(elf) as board:
        link = Link(board.url)
        hello = request_hello(link.ser)
        answers, secs, up, _ = link.pipeline(frames, window=4)
        stats_frame, *_ = link.pipeline([P.encode_frame(P.MsgType.STATS_REQUEST, 1)], window=1)[0]
    results = sorted((P.parse_result(f) for f in answers), key=lambda r: r.seq)
    outputs = np.stack([r.outputs for r in results])
    ticks = np.array([r.ticks for r in results], dtype=np.int64)
    stats = P.parse_stats(stats_frame)
    return {
        "elf": str(elf),
        "flash_bytes": size["flash_bytes"],
        "text_bytes": size["text_bytes"],
        "data_bytes": size["data_bytes"],
        "bss_bytes": size["bss_bytes"],
        "stack_reserved_bytes": size["stack_reserved_bytes"],
        "stack_peak_bytes": stats.stack_peak_bytes,
        "ram_used_bytes": size["data_bytes"] + size["bss_bytes"] + stats.stack_peak_bytes,
        "ram_static_bytes": size["ram_static_bytes"],
        "arena_bytes": hello.arena_bytes,
        "images": images,
        "bit_exact_vs_tflm": bool(np.array_equal(outputs, ref["tflm_int8"][:images])),
        "instructions_per_inference": {"min": int(ticks.min()), "mean": float(ticks.mean()), "max": int(ticks.max())},
        "inferences_per_s": round(images / secs, 1),
        "inference_instructions_per_wall_s": round(float(ticks.sum()) / secs),
        "bytes_per_infer_frame": round(up / images, 1),
    }


@click.command()
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="artifacts folder with lenet5_int8.tflite + references.npz (native runtime figures)",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="MNIST folder (default: LENET_MCU_MNIST_DIR)",
)
@click.option("--images", type=int, default=300, show_default=True)
@click.option("--frames", type=int, default=300, show_default=True, help="frames for the link benchmark")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(artifacts, data_dir, images, frames, out):
    with tempfile.TemporaryDirectory() as tmp:
        echo = build_firmware("echo", ECHO_DIR, Path(tmp) / "echo", make_vars={"RUNTIME_DIR": ""})
        report = {"qemu_link": bench_link(echo, frames), "qemu_compute": bench_emulation(echo)}
        if artifacts is not None:
            report["native"] = bench_native(artifacts, art.build_dir(artifacts, "native"), images, data_dir)
    text = json.dumps(report, indent=2)
    click.echo(text)
    if out:
        atomic.write_text(out, text + "\n")


if __name__ == "__main__":
    sys.exit(main())
