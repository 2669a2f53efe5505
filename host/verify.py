"""On-device accuracy over serial: stream the MNIST test set, compare with the TFLM reference.

The device must answer with exactly the int8 output bytes that the TFLite Micro
interpreter produced on the host (references.npz `tflm_int8`). Everything here
is numpy + pyserial: no TensorFlow, so a host-only install can run it.

Entry point for other code: `run_verify(artifacts, port=None, ...)`.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

from lenet_mcu.artifacts import REFERENCES, verify_dir
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host import protocol as proto
from lenet_mcu.host.checkpoint import Checkpoint, Record
from lenet_mcu.host.device import Device
from lenet_mcu.host.link import Link, LinkError, default_window
from lenet_mcu.host.references import References, load_test_images, model_sha256

CHECKPOINT_FILE = "checkpoint.jsonl"


class VerifyFailed(LenetMcuError):
    """The run finished but the device's bytes differ from the reference."""

    exit_code = 1


# --- the whole job ----------------------------------------------------------

def resolve_port(artifacts: Path, port: str | None) -> str:
    if port:
        return port
    from lenet_mcu.host import flash

    state = flash.running_qemu(artifacts)
    if state is None:
        raise LenetMcuError(f"no --port given and no QEMU running for {artifacts} "
                            "(start one with `lenet-mcu flash --target qemu`, or pass --port URL)")
    return state["url"]


def run_verify(artifacts, port: str | None = None, baud: int = 115200, limit: int | None = None,
               resume: bool = False, data_dir=None, window: int | None = None, timeout: float = 2.0,
               hello_timeout: float = 10.0, progress: bool = True, reports: bool = True,
               on_result: Callable[[int], None] | None = None, log: Callable[[str], None] | None = None,
               board: str | None = None) -> dict:
    """Run the serial check; return the report dict (also written to artifacts/verify/).

    `board`: the device must say it is that board (default: the board of the
    QEMU that `flash` started, if the port is that emulator's; else any).

    Raises LenetMcuError for user errors (stale firmware, bad port...) and
    VerifyFailed (exit 1) if any device output byte differs from the TFLM reference.
    `on_result(index)` is called after each new checkpointed result (tests use it
    to interrupt a run).
    """
    from lenet_mcu.host import report as report_mod

    artifacts = Path(artifacts)
    log = log or (lambda msg: print(msg, file=sys.stderr))
    refs = References.load(artifacts / REFERENCES)
    sha = model_sha256(artifacts)
    images, inputs = load_test_images(refs, data_dir)
    total = refs.count if limit is None else max(0, min(int(limit), refs.count))
    url = resolve_port(artifacts, port)
    window = window or default_window(url)
    out_dir = verify_dir(artifacts)
    header = {"model_sha256": sha, "count": refs.count, "output_count": refs.output_count}

    with Link(url, baud) as link:
        device = Device(link, sha, refs.output_count, int(inputs[0].size), refs.input_scale, refs.input_zero_point,
                        timeout=timeout, hello_timeout=hello_timeout, log=log)
        hello = device.handshake()  # before touching the checkpoint: a stale device changes nothing
        expected_board = board or _emulated_board(artifacts, url)
        if expected_board and hello.board != expected_board:
            raise LenetMcuError(f"{url} is a {hello.board} device, expected board {expected_board}: "
                                f"flash the {expected_board} firmware or pass --board {hello.board}")
        ckpt_path = out_dir / CHECKPOINT_FILE
        if not resume and ckpt_path.is_file():
            log(f"starting over: {ckpt_path} from an earlier run is replaced (--resume continues it instead)")
        ckpt = Checkpoint.resume(ckpt_path, header) if resume else Checkpoint.create(ckpt_path, header)
        with ckpt:
            todo = [i for i in range(total) if i not in ckpt.records]
            if resume:
                log(f"resuming: {total - len(todo)} of {total} results already in {ckpt_path}")
            fill = refs.input_zero_point

            def body(index: int) -> bytes:
                return proto.infer_body(inputs[index], fill)

            bar = _progress(total, total - len(todo), progress)
            t0 = time.monotonic()
            done_here = 0

            def got(index: int, result: proto.Result) -> None:
                nonlocal done_here
                if ckpt.add(Record(index, result.ticks, result.argmax, result.outputs)):
                    done_here += 1
                    bar.update(1)
                    if on_result is not None:
                        on_result(index)

            bytes0 = (link.bytes_out, link.bytes_in)
            try:
                device.run(todo, body, window, got)
            except KeyboardInterrupt:
                bar.close()
                log(f"interrupted: {len(ckpt.records)} results are kept in {ckpt_path}; finish with `lenet-mcu verify --resume`")
                raise
            finally:
                bar.close()
            elapsed = time.monotonic() - t0
            try:
                device_stats = device.request_stats()
            except LinkError:
                device_stats = None
            records = {i: r for i, r in ckpt.records.items() if i < total}
        session = {
            "url": url, "baud": baud, "window": window, "timeout_s": timeout,
            "images": done_here, "seconds": elapsed,
            "bytes_out": link.bytes_out - bytes0[0], "bytes_in": link.bytes_in - bytes0[1],
            "link": device.stats.as_dict(), "resumed": resume,
            "device_stats": device_stats.__dict__ if device_stats else None,
        }
    rep = report_mod.build_report(refs, records, total, hello, sha, session)
    if reports:
        report_mod.write_reports(out_dir, rep, images, refs, records)
    bitexact = rep["bitexact"]
    if bitexact["images_differing"]:
        raise VerifyFailed(f"{bitexact['images_differing']} of {rep['images']} images differ from the TFLM reference "
                           f"(largest difference {bitexact['max_abs_difference']}); see {out_dir / 'report.md'}")
    return rep


def _emulated_board(artifacts: Path, url: str) -> str | None:
    """The board of the QEMU `flash` started for these artifacts, if `url` is its serial port."""
    from lenet_mcu.host import qemu
    from lenet_mcu.host.flash import qemu_state_file

    state = qemu.read_state(qemu_state_file(artifacts)) or {}
    return state.get("board") if state.get("url") == url else None


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="img", desc="verify", disable=(not enabled) or None,
                file=sys.stderr, dynamic_ncols=True)
