"""On-device accuracy over serial: stream the MNIST test set, compare with the TFLM reference.

The device must answer with exactly the int8 output bytes that the TFLite Micro
interpreter produced on the host (references.npz `tflm_int8`). Everything here
is numpy + pyserial: no TensorFlow, so a host-only install can run it.

Entry point for other code: `run_verify(artifacts, port=None, ...)`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lenet_mcu import boards
from lenet_mcu.artifacts import REFERENCES, verify_dir
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host import protocol as proto
from lenet_mcu.host.checkpoint import Checkpoint, Record
from lenet_mcu.host.device import Device, WorkQueue
from lenet_mcu.host.link import Link, LinkError, default_window
from lenet_mcu.host.references import References, load_test_images, model_sha256

CHECKPOINT_FILE = "checkpoint.jsonl"
#: Emulated boards the pipeline checks on at once (the fastest count measured by benchmarks/verify.py).
DEFAULT_EMULATORS = 3


class VerifyFailed(LenetMcuError):
    """The run finished but the device's bytes differ from the reference."""

    exit_code = 1


# --- the whole job ----------------------------------------------------------

#: Report files of a run; removed when a new run starts, so a report is this run's or absent.
REPORT_FILES = ("report.json", "report.md", "confusion.png", "misclassified.png")


def resolve_ports(artifacts: Path, ports, devices: int) -> list[str]:
    """The links to use: the --port URLs given, else (with no emulators to start) the QEMU of `flash`."""
    ports = [ports] if isinstance(ports, str) else list(ports or [])
    if ports or devices:
        return ports
    from lenet_mcu.host import flash

    state = flash.running_qemu(artifacts)
    if state is None:
        raise LenetMcuError(
            f"no --port given and no QEMU running for {artifacts} "
            "(start one with `lenet-mcu flash --target qemu`, pass --port URL, "
            "or --devices N to start N emulators)"
        )
    return [state["url"]]


def _clear_reports(out_dir: Path) -> None:
    for name in REPORT_FILES:
        try:
            (out_dir / name).unlink(missing_ok=True)
        except OSError as exc:
            raise LenetMcuError(f"cannot remove the earlier {out_dir / name}: {exc.strerror}") from None


def _open_checkpoint(path: Path, header: dict, resume: bool, log) -> Checkpoint:
    try:
        if resume:
            return Checkpoint.resume(path, header, log=log)
        if path.is_file():
            log(f"starting over: {path} from an earlier run is replaced (--resume continues it instead)")
        return Checkpoint.create(path, header)
    except OSError as exc:
        raise LenetMcuError(f"cannot write the checkpoint {path}: {exc.strerror}") from None


class _Shard:
    """One device of a run and what it did."""

    def __init__(self, url: str, link: Link, device: Device, window: int):
        self.url, self.link, self.device, self.window = url, link, device, window
        self.images = 0
        self.seconds = 0.0
        self.error: BaseException | None = None
        self.device_stats = None
        self.bytes0 = (link.bytes_out, link.bytes_in)

    def summary(self, baud: int) -> dict:
        hello = self.device.hello
        return {
            "url": self.url,
            "baud": baud,
            "window": self.window,
            "board": hello.board if hello else None,
            "runtime": hello.runtime if hello else None,
            "images": self.images,
            "seconds": self.seconds,
            "images_per_second": self.images / self.seconds if self.seconds > 0 and self.images else None,
            "bytes_out": self.link.bytes_out - self.bytes0[0],
            "bytes_in": self.link.bytes_in - self.bytes0[1],
            "link": self.device.stats.as_dict(),
            "device_stats": self.device_stats.__dict__ if self.device_stats else None,
            "stopped": str(self.error) if self.error else None,
        }


def _merge_link_stats(dicts: list[dict]) -> dict:
    out: dict = {}
    for d in dicts:
        for k, v in d.items():
            if isinstance(v, dict):
                merged = out.setdefault(k, {})
                for kk, vv in v.items():
                    merged[kk] = merged.get(kk, 0) + vv
            else:
                out[k] = out.get(k, 0) + v
    return out


def run_verify(
    artifacts,
    port=None,
    baud: int = 115200,
    limit: int | None = None,
    resume: bool = False,
    data_dir=None,
    window: int | None = None,
    timeout: float = 2.0,
    hello_timeout: float = 10.0,
    progress: bool = True,
    reports: bool = True,
    on_result: Callable[[int], None] | None = None,
    log: Callable[[str], None] | None = None,
    devices: int = 0,
    elf=None,
    machine: str | None = None,
    icount: bool = True,
    ctx: bool = True,
    board: str | None = None,
) -> dict:
    """Run the serial check on one or several devices; return the report dict (also written to artifacts/verify/).

    `port`: one URL or a list of them. `devices`: start that many emulated boards
    running `elf` (attached: they stop when the check ends), in addition to the
    ports. Images are dealt to the devices as they ask for work; a device that
    fails hands its open images to the others. One checkpoint, one report.
    `ctx=False` keeps to RAW/RLE even where the device offers CTX (benchmarks).
    `board`: every device must say it is that board, and emulators started here
    run its QEMU machine (default: the board of the QEMU that `flash` started,
    for that emulator's port; else any board, and the STM32F405's machine).

    Raises LenetMcuError for user errors (stale firmware, bad port...) and
    VerifyFailed (exit 1) if any device output byte differs from the TFLM reference.
    `on_result(index)` is called after each new checkpointed result (tests use it
    to interrupt a run).
    """
    import contextlib

    from lenet_mcu.host import report as report_mod

    artifacts = Path(artifacts)
    log = log or (lambda msg: print(msg, file=sys.stderr))
    refs = References.load(artifacts / REFERENCES)
    sha = model_sha256(artifacts)
    refs.check_model(sha, artifacts)
    images, inputs = load_test_images(refs, data_dir)
    total = refs.count if limit is None else max(0, min(int(limit), refs.count))
    urls = resolve_ports(artifacts, port, devices)
    out_dir = verify_dir(artifacts)
    header = {"model_sha256": sha, "count": refs.count, "output_count": refs.output_count}
    fill = refs.input_zero_point

    with contextlib.ExitStack() as stack:
        if devices:
            from lenet_mcu.host.qemu import DEFAULT_MACHINE, QemuBoard

            if elf is None:
                raise LenetMcuError("--devices needs the firmware to run (the ELF of `lenet-mcu build`)")
            record = boards.get(board) if board else None
            for k in range(devices):
                emulator = QemuBoard(
                    elf,
                    icount=icount,
                    machine=machine or (record.qemu_machine if record else DEFAULT_MACHINE),
                    extra_args=record.qemu_options if record else (),
                    log_path=out_dir / f"qemu-{k}.log",
                )
                stack.enter_context(emulator)
                urls.append(emulator.url)
        shards: list[_Shard] = []
        for url in urls:
            link = stack.enter_context(Link(url, baud))
            device = Device(
                link,
                sha,
                refs.output_count,
                int(inputs[0].size),
                refs.input_scale,
                refs.input_zero_point,
                timeout=timeout,
                hello_timeout=hello_timeout,
                log=lambda msg, url=url: log(f"{url}: {msg}" if len(urls) > 1 else msg),
            )
            shards.append(_Shard(url, link, device, window or default_window(url)))
        # Every device says HELLO before the checkpoint or the reports are touched:
        # a stale device changes nothing.
        _in_parallel([shard.device.handshake for shard in shards])
        for shard in shards:
            expected = board or _emulated_board(artifacts, shard.url)
            if expected and shard.device.hello.board != expected:
                raise LenetMcuError(
                    f"{shard.url} is a {shard.device.hello.board} device, expected board {expected}: "
                    f"flash the {expected} firmware or pass --board {shard.device.hello.board}"
                )
        hello = shards[0].device.hello
        bodies = _InferBodies(inputs, fill, hello.input_dims, log)
        ckpt_path = out_dir / CHECKPOINT_FILE
        _clear_reports(out_dir)
        ckpt = stack.enter_context(_open_checkpoint(ckpt_path, header, resume, log))
        todo = [i for i in range(total) if i not in ckpt.records]
        if ctx and any(proto.Encoding.CTX in s.device.hello.encodings for s in shards):
            bodies.code_ctx(todo)
            stack.callback(bodies.close)
        if resume:
            log(f"resuming: {total - len(todo)} of {total} results already in {ckpt_path}")
        bar = _progress(total, total - len(todo), progress)
        lock = threading.Lock()
        work = WorkQueue(todo)
        stop = threading.Event()

        def recorder(shard: _Shard):
            def got(index: int, result: proto.Result) -> None:
                with lock:
                    try:
                        added = ckpt.add(Record(index, result.ticks, result.argmax, result.outputs))
                    except OSError as exc:
                        raise LenetMcuError(
                            f"cannot write the checkpoint {ckpt_path}: {exc.strerror}; the "
                            f"{len(ckpt.records) - 1} results before are kept: free the space, "
                            "then verify --resume"
                        ) from None
                    if added:
                        shard.images += 1
                        bar.update(1)
                        if on_result is not None:
                            on_result(index)

            return got

        def serve(shard: _Shard) -> None:
            t0 = time.monotonic()
            try:
                shard.device.run(work, bodies.for_device(shard.device.hello), shard.window, recorder(shard), stop)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                shard.error = exc
                if not isinstance(exc, LenetMcuError) or len(shards) == 1:
                    stop.set()
                else:
                    log(f"{shard.url} stopped: {exc}; its open images go to the other devices")
            finally:
                shard.seconds = time.monotonic() - t0

        t0 = time.monotonic()
        threads = [
            threading.Thread(target=serve, args=(shard,), name=f"verify {shard.url}", daemon=True) for shard in shards
        ]
        try:
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(0.2)
                if all(s.error is not None for s in shards) and not work.finished():
                    stop.set()
        except BaseException:
            stop.set()
            for t in threads:
                t.join(5)
            bar.close()
            log(
                f"interrupted: {len(ckpt.records)} results are kept in {ckpt_path}; "
                f"finish with `lenet-mcu verify --resume`{f' --devices {devices}' if devices else ''}"
            )
            raise
        finally:
            bar.close()
        elapsed = time.monotonic() - t0
        failures = [s.error for s in shards if s.error is not None]
        if not work.finished():
            first = next((e for e in failures if not isinstance(e, LenetMcuError)), failures[0] if failures else None)
            if isinstance(first, KeyboardInterrupt):
                log(
                    f"interrupted: {len(ckpt.records)} results are kept in {ckpt_path}; "
                    f"finish with `lenet-mcu verify --resume`{f' --devices {devices}' if devices else ''}"
                )
            if first is not None:
                raise first
        for shard in shards:
            if shard.error is None:
                try:
                    shard.device_stats = shard.device.request_stats()
                except LinkError:
                    shard.device_stats = None
        profile = _profile(shards, bodies, refs, log)
        records = {i: r for i, r in ckpt.records.items() if i < total}
        per_device = [s.summary(baud) for s in shards]
    session = {
        "url": " ".join(urls),
        "baud": baud,
        "window": per_device[0]["window"],
        "timeout_s": timeout,
        "images": sum(d["images"] for d in per_device),
        "seconds": elapsed,
        "bytes_out": sum(d["bytes_out"] for d in per_device),
        "bytes_in": sum(d["bytes_in"] for d in per_device),
        "link": _merge_link_stats([d["link"] for d in per_device]),
        "resumed": resume,
        "device_stats": per_device[0]["device_stats"],
        "devices": per_device,
        "profile": profile,
    }
    rep = report_mod.build_report(refs, records, total, hello, sha, session)
    if reports:
        try:
            report_mod.write_reports(out_dir, rep, images, refs, records)
        except OSError as exc:
            raise LenetMcuError(
                f"cannot write the report into {out_dir}: {exc.strerror}; the results are "
                f"kept in {ckpt_path} (verify --resume writes the report)"
            ) from None
    bitexact = rep["bitexact"]
    if bitexact["images_differing"]:
        raise VerifyFailed(
            f"{bitexact['images_differing']} of {rep['images']} images differ from the TFLM reference "
            f"(largest difference {bitexact['max_abs_difference']}); see {out_dir / 'report.md'}"
        )
    return rep


class _InferBodies:
    """The INFER body of each image for each device: the shortest encoding that device decodes.

    CTX codes are made many images at a time (that is what makes them cheap), by
    a background thread in the order the images are dealt, while the devices
    already work: an image whose code is not ready yet goes as RLE. Devices that
    do not list CTX in HELLO get RLE or RAW."""

    FIRST_CHUNK, CHUNK = 200, 1000

    def __init__(self, inputs, fill: int, input_dims, log):
        self.inputs, self.fill, self.log = inputs, fill, log
        self.width = int(input_dims[2]) * int(input_dims[3])
        self.ctx: dict[int, bytes] = {}
        self.ctx_enabled = False
        self._plain: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def code_ctx(self, indices: list[int]) -> None:
        """Start coding `indices` with CTX in the background."""
        if not indices:
            return
        self.ctx_enabled = True
        self._thread = threading.Thread(target=self._code, args=(list(indices),), name="CTX coder", daemon=True)
        self._thread.start()

    def _code(self, indices: list[int]) -> None:
        from lenet_mcu.host import ctx_code

        t0 = time.monotonic()
        start, size = 0, self.FIRST_CHUNK
        while start < len(indices) and not self._stop.is_set():
            chunk = indices[start : start + size]
            codes = ctx_code.encode_batch(self.inputs[chunk], self.fill, self.width)
            self.ctx.update(zip(chunk, codes, strict=True))
            start, size = start + size, self.CHUNK
        self.log(f"coded {min(start, len(indices))} inputs with CTX in {time.monotonic() - t0:.1f} s")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def plain(self, index: int) -> bytes:
        body = self._plain.get(index)
        if body is None:
            body = self._plain[index] = proto.infer_body(self.inputs[index], self.fill)
        return body

    def for_device(self, hello: proto.Hello) -> Callable[[int], bytes]:
        if proto.Encoding.CTX not in hello.encodings or not self.ctx_enabled:
            return self.plain

        def body(index: int) -> bytes:
            code = self.ctx.get(index)
            if code is None:
                return self.plain(index)
            ctx = bytes([proto.Encoding.CTX, self.fill & 0xFF]) + code
            return ctx if len(ctx) <= 1 + self.inputs[index].size else self.plain(index)

        return body


def _profile(shards, bodies, refs, log, index: int = 0) -> dict | None:
    """Ticks per layer of test image `index` from the first healthy device (PROFILE_REQUEST);
    None if its firmware cannot profile. The profiled run's outputs must still equal TFLM's."""
    for shard in shards:
        if shard.error is not None:
            continue
        try:
            answer = shard.device.request_profile(bodies.plain(index))
        except LinkError:
            return None
        if answer is None:
            log("the firmware gives no per-layer profile")
            return None
        layers, result = answer
        return {
            "image": index,
            "device": shard.url,
            "total_ticks": result.ticks,
            "outputs_equal_tflm": bool(np.array_equal(result.outputs, refs.tflm_int8[index])),
            "layers": [{"name": layer.name, "ticks": layer.ticks} for layer in layers],
        }
    return None


def _in_parallel(calls) -> None:
    """Run the calls in threads; raise the first exception (in call order) once all are done."""
    if len(calls) == 1:
        calls[0]()
        return
    errors: list[BaseException | None] = [None] * len(calls)

    def run(k):
        try:
            calls[k]()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors[k] = exc

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for exc in errors:
        if exc is not None:
            raise exc


def _emulated_board(artifacts: Path, url: str) -> str | None:
    """The board of the QEMU `flash` started for these artifacts, if `url` is its serial port."""
    from lenet_mcu.host import qemu
    from lenet_mcu.host.flash import qemu_state_file

    state = qemu.read_state(qemu_state_file(artifacts)) or {}
    return state.get("board") if state.get("url") == url else None


def _progress(total: int, initial: int, enabled: bool):
    from lenet_mcu.progress import Progress

    return Progress(total, "verify", unit="images", initial=initial, enabled=enabled)
