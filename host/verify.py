"""On-device accuracy over serial: stream the MNIST test set, compare with the TFLM reference.

The device must answer with exactly the int8 output bytes that the TFLite Micro
interpreter produced on the host (references.npz `tflm_int8`). Everything here
is numpy + pyserial: no TensorFlow, so a host-only install can run it.

Entry point for other code: `run_verify(artifacts, port=None, ...)`.
"""
from __future__ import annotations

import collections
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from lenet_mcu.atomic import sha256_file
from lenet_mcu.artifacts import REFERENCES, TFLITE_MODEL, verify_dir
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host import protocol as proto
from lenet_mcu.host.checkpoint import Checkpoint, Record
from lenet_mcu.host.link import Link, LinkError, default_window

CHECKPOINT_FILE = "checkpoint.jsonl"
REFERENCE_KEYS = ("labels", "float_pred", "tflite_int8", "tflm_int8", "input_scale", "input_zero_point")


class VerifyFailed(LenetMcuError):
    """The run finished but the device's bytes differ from the reference."""

    exit_code = 1


# --- inputs from the artifacts folder --------------------------------------

@dataclass
class References:
    labels: np.ndarray       # uint8 [N]
    float_pred: np.ndarray   # uint8 [N]  predictions of the float Keras model
    tflite_int8: np.ndarray  # int8 [N, C] tflite-runtime outputs on the host
    tflm_int8: np.ndarray    # int8 [N, C] TFLM outputs: the golden reference
    input_scale: float
    input_zero_point: int

    @property
    def count(self) -> int:
        return int(self.tflm_int8.shape[0])

    @property
    def output_count(self) -> int:
        return int(self.tflm_int8.shape[1])

    @classmethod
    def load(cls, path: Path) -> "References":
        if not path.is_file():
            raise LenetMcuError(f"{path} not found: run the pipeline (lenet-mcu pipeline / evaluate) to make the host references first")
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [k for k in REFERENCE_KEYS if k not in npz.files]
                if missing:
                    raise LenetMcuError(f"{path} lacks {', '.join(missing)} (expected keys {', '.join(REFERENCE_KEYS)})")
                arrays = {k: npz[k] for k in REFERENCE_KEYS}
        except LenetMcuError:
            raise
        except Exception as exc:  # zip/npy corruption
            raise LenetMcuError(f"{path} cannot be read as an .npz file: {exc}") from None
        tflm = arrays["tflm_int8"]
        if tflm.ndim != 2 or tflm.dtype != np.int8 or tflm.shape[0] == 0:
            raise LenetMcuError(f"{path}: tflm_int8 has shape {tflm.shape} and type {tflm.dtype}, expected int8 [N, classes]")
        n = tflm.shape[0]
        for key in ("labels", "float_pred"):
            if arrays[key].ndim != 1 or arrays[key].shape[0] < n:
                raise LenetMcuError(f"{path}: {key} has shape {arrays[key].shape}, expected at least [{n}]")
        if arrays["tflite_int8"].shape != tflm.shape:
            raise LenetMcuError(f"{path}: tflite_int8 has shape {arrays['tflite_int8'].shape}, expected {tflm.shape} like tflm_int8")
        scale = float(arrays["input_scale"])
        if not np.isfinite(scale) or scale <= 0:
            raise LenetMcuError(f"{path}: input_scale is {scale}, expected a positive number")
        return cls(arrays["labels"][:n].astype(np.uint8), arrays["float_pred"][:n].astype(np.uint8),
                   arrays["tflite_int8"].astype(np.int8), tflm, scale, int(arrays["input_zero_point"]))


def model_sha256(artifacts: Path) -> str:
    path = Path(artifacts) / TFLITE_MODEL
    if not path.is_file():
        raise LenetMcuError(f"{path} not found: the artifacts folder has no int8 model (run lenet-mcu pipeline)")
    return sha256_file(path)


def load_test_images(refs: References, data_dir) -> tuple[np.ndarray, np.ndarray]:
    """(raw uint8 [N,28,28], int8 inputs [N,32,32,1]) exactly as the host evaluation made them."""
    from lenet_mcu import mnist

    folder = mnist.resolve_data_dir(data_dir)
    if folder is None:  # load_split would fall back to Keras, i.e. TensorFlow: not on the host side
        raise LenetMcuError(f"no MNIST folder given: pass --data DIR or set {mnist.DATA_ENV} "
                            "(verify streams the MNIST test images)")
    images, labels = mnist.load_split("test", folder)
    n = refs.count
    if len(images) < n:
        raise LenetMcuError(f"references.npz covers {n} images but the MNIST test split has {len(images)}")
    images, labels = images[:n], labels[:n]
    if not np.array_equal(labels, refs.labels):
        bad = int(np.argmax(labels != refs.labels))
        raise LenetMcuError(f"MNIST test label {bad} is {labels[bad]} but references.npz says {refs.labels[bad]}: "
                            "the references were made from other data (check --data)")
    inputs = mnist.quantize_input(mnist.preprocess(images), refs.input_scale, refs.input_zero_point)
    return images, inputs


# --- the protocol engine ----------------------------------------------------

@dataclass
class LinkStats:
    frames_sent: int = 0
    infer_sent: int = 0
    retransmits: int = 0
    timeouts: int = 0
    resent_out_of_order: int = 0
    resent_after_error: int = 0
    bad_frames_received: int = 0
    duplicates_dropped: int = 0
    device_errors: dict = field(default_factory=dict)
    resets_detected: int = 0
    reconnects: int = 0

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["device_errors"] = {proto.ErrorCode(k).name if k in proto.ErrorCode._value2member_map_ else str(k): v
                              for k, v in self.device_errors.items()}
        return d


@dataclass
class _Request:
    index: int
    frame: bytes
    sent_at: float = 0.0
    send_no: int = 0
    tries: int = 0
    rejections: int = 0


_FATAL_ERRORS = {
    proto.ErrorCode.BAD_INPUT: "firmware and host disagree on the input format",
    proto.ErrorCode.BAD_LENGTH: "firmware and host disagree on the input format",
    proto.ErrorCode.UNKNOWN_TYPE: "the firmware does not know INFER",
    proto.ErrorCode.BAD_VERSION: "the firmware speaks another protocol version",
    proto.ErrorCode.RUNTIME: "the inference runtime on the device fails (see its runtime_init/runtime_infer)",
}


class Device:
    """One device on a link: handshake, then pipelined INFER requests with retries.

    Lost or corrupt frames are resent after `timeout` seconds, or at once when a
    later request is answered first (the device answers in order, so an older
    request still open was lost). A boot HELLO mid-run means the device reset:
    every open request is sent again. Answers to requests no longer open are
    dropped, so each image is reported once.
    """

    def __init__(self, link: Link, expected_sha256: str, output_count: int, input_size: int,
                 input_scale: float | None = None, input_zero_point: int | None = None,
                 timeout: float = 2.0, hello_timeout: float = 10.0, max_tries: int = 20,
                 reconnect_s: float = 10.0, log: Callable[[str], None] | None = None):
        self.link = link
        self.expected_sha256 = expected_sha256
        self.output_count = output_count
        self.input_size = input_size
        self.input_scale = input_scale
        self.input_zero_point = input_zero_point
        self.timeout = timeout
        self.hello_timeout = hello_timeout
        self.max_tries = max_tries
        self.reconnect_s = reconnect_s
        self.log = log or (lambda msg: None)
        self.stats = LinkStats()
        self.hello: proto.Hello | None = None
        self._reader = proto.FrameReader()
        # A random first seq keeps late answers from an earlier session from matching ours.
        self._seq = random.randrange(0, proto.NO_SEQ)
        self._send_counter = 0
        self._latency: float | None = None  # moving average of request -> answer time
        self._last_frame_at = time.monotonic()  # when the device last sent a valid frame

    #: The answer timeout adapts to the link: ten times the usual answer time,
    #: at least MIN_TIMEOUT_S and at most the `timeout` given.
    MIN_TIMEOUT_S = 0.2

    def effective_timeout(self) -> float:
        if self._latency is None:
            return self.timeout
        return min(self.timeout, max(self.MIN_TIMEOUT_S, 10 * self._latency))

    # -- helpers --------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % proto.NO_SEQ  # never NO_SEQ (0xFFFF)
        return self._seq

    def _send(self, frame: bytes) -> None:
        self.link.write(frame)
        self.stats.frames_sent += 1

    def _frames(self, wait: float):
        for item in self._reader.feed(self.link.read(wait)):
            if isinstance(item, proto.FrameError):
                self.stats.bad_frames_received += 1
                continue
            self._last_frame_at = time.monotonic()
            yield item

    # -- HELLO ----------------------------------------------------------------
    def handshake(self) -> proto.Hello:
        """Wait for the boot HELLO or ask for one; check it is our model."""
        start = time.monotonic()
        deadline = start + self.hello_timeout
        next_ask = start + 0.1  # give a booting device the chance to speak first
        valid_frames = 0
        echoed = 0
        bytes_before = self.link.bytes_in
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_ask:
                self._send(proto.encode_frame(proto.MsgType.HELLO_REQUEST, self._next_seq()))
                next_ask = now + 0.25
            for frame in self._frames(min(0.05, max(0.0, deadline - now))):
                valid_frames += 1
                echoed += frame.type < 0x80  # host->device types coming back: an echo or loopback
                if frame.type == proto.MsgType.HELLO:
                    hello = self._accept_hello(frame)
                    return hello
        received = self.link.bytes_in - bytes_before
        url = self.link.url
        if received == 0:
            if url.startswith("socket://"):
                raise LenetMcuError(f"{url} sent nothing within {self.hello_timeout:g} s: is another verify "
                                    "connected (QEMU serves one client), or did the firmware not boot (see qemu.log)?")
            raise LenetMcuError(f"{url} sent nothing within {self.hello_timeout:g} s: is the firmware running "
                                "(reset the board, check the port and --baud)?")
        if valid_frames == 0:
            raise LenetMcuError(f"{url} answered {received} bytes but no lenet-mcu frame within {self.hello_timeout:g} s: "
                                "wrong port or baud rate, or another firmware")
        if echoed == valid_frames:
            raise LenetMcuError(f"{url} echoes what the host sends and never answers HELLO: "
                                "a loopback or a terminal, not the board's UART")
        raise LenetMcuError(f"{url} answered {valid_frames} protocol frames but no HELLO within {self.hello_timeout:g} s: "
                            "firmware speaks another protocol version?")

    def _accept_hello(self, frame: proto.Frame) -> proto.Hello:
        try:
            hello = proto.parse_hello(frame.body)
        except proto.FrameError as exc:
            raise LenetMcuError(f"{self.link.url}: malformed HELLO ({exc}): firmware and host disagree on the protocol") from None
        if hello.protocol_version != proto.PROTOCOL_VERSION:
            raise LenetMcuError(f"device speaks protocol {hello.protocol_version}, this host speaks {proto.PROTOCOL_VERSION}")
        expected = self.expected_sha256[:16]
        if hello.model_sha256_prefix != expected:
            raise LenetMcuError(
                f"stale firmware: the device runs model sha256 {hello.model_sha256_prefix}..., "
                f"the artifacts model {TFLITE_MODEL} is {expected}...: rebuild and flash (lenet-mcu build, lenet-mcu flash)")
        if hello.output_count != self.output_count or hello.input_size != self.input_size:
            raise LenetMcuError(
                f"device model has {hello.input_size} inputs / {hello.output_count} outputs, "
                f"the references have {self.input_size} / {self.output_count}")
        if self.input_zero_point is not None and (
                hello.input_zero_point != self.input_zero_point
                or not np.isclose(hello.input_scale, self.input_scale, rtol=1e-6)):
            raise LenetMcuError(
                f"device input quantization (scale {hello.input_scale:g}, zero point {hello.input_zero_point}) "
                f"differs from references.npz (scale {self.input_scale:g}, zero point {self.input_zero_point})")
        if self.hello is not None and (hello.runtime, hello.board) != (self.hello.runtime, self.hello.board):
            raise LenetMcuError(f"device changed from {self.hello.runtime}/{self.hello.board} to "
                                f"{hello.runtime}/{hello.board} during the run")
        self.hello = hello
        return hello

    # -- inference stream -----------------------------------------------------
    def run(self, todo: list[int], infer_body: Callable[[int], bytes], window: int,
            on_result: Callable[[int, proto.Result], None]) -> None:
        """Send INFER for every index in `todo`; call on_result once per index."""
        if self.hello is None:
            self.handshake()
        pending = collections.deque(todo)
        open_: dict[int, _Request] = {}

        def send(req: _Request, now: float) -> None:
            self._send_counter += 1
            req.send_no = self._send_counter
            req.sent_at = now
            req.tries += 1
            if req.tries > self.max_tries:
                # Keep trying while the device still says something valid: then it is the link.
                silent = now - self._last_frame_at
                if silent > max(2.0, 3 * self.effective_timeout()):
                    raise LenetMcuError(f"image {req.index}: the device stopped answering ({silent:.1f} s without a "
                                        f"valid frame, {req.tries - 1} tries): it hangs; results so far are "
                                        "checkpointed (reset the device, then verify --resume)")
                if req.tries > 10 * self.max_tries:
                    raise LenetMcuError(f"image {req.index}: no valid answer after {req.tries - 1} tries: the link "
                                        "corrupts too much; results so far are checkpointed (fix the cable or "
                                        "lower --baud, then verify --resume)")
            if req.tries > 1:
                self.stats.retransmits += 1
            self._send(req.frame)
            self.stats.infer_sent += 1

        while pending or open_:
            try:
                now = time.monotonic()
                while pending and len(open_) < window:
                    index = pending.popleft()
                    seq = self._next_seq()
                    body = infer_body(index)
                    if proto.HEADER.size + len(body) > self.hello.max_payload:
                        raise LenetMcuError(f"image {index}: INFER payload of {proto.HEADER.size + len(body)} bytes "
                                            f"exceeds the device's max_payload {self.hello.max_payload}")
                    req = _Request(index, proto.encode_frame(proto.MsgType.INFER, seq, body))
                    open_[seq] = req
                    send(req, now)
                timeout = self.effective_timeout()
                oldest = min(r.sent_at for r in open_.values())
                wait = max(0.0, min(0.05, oldest + timeout - time.monotonic()))
                for frame in self._frames(wait):
                    self._handle(frame, open_, send, on_result)
                now = time.monotonic()
                for req in sorted(open_.values(), key=lambda r: r.send_no):
                    if now - req.sent_at > timeout:
                        self.stats.timeouts += 1
                        send(req, now)
            except LinkError as exc:
                self._reconnect(exc)
                now = time.monotonic()
                for req in sorted(open_.values(), key=lambda r: r.send_no):
                    send(req, now)

    def _handle(self, frame: proto.Frame, open_: dict[int, _Request], send, on_result) -> None:
        if frame.type == proto.MsgType.RESULT:
            req = open_.get(frame.seq)
            if req is None:
                self.stats.duplicates_dropped += 1
                return
            try:
                result = proto.parse_result(frame)
            except proto.FrameError:
                self.stats.bad_frames_received += 1
                return  # resent on timeout
            if result.outputs.size != self.output_count:
                raise LenetMcuError(f"device answered {result.outputs.size} outputs for image {req.index}, expected {self.output_count}")
            del open_[frame.seq]
            if req.tries == 1:  # a resent request's time says nothing about the link
                latency = time.monotonic() - req.sent_at
                self._latency = latency if self._latency is None else 0.9 * self._latency + 0.1 * latency
            on_result(req.index, result)
            # In-order device: anything sent before this request and still open was lost.
            now = time.monotonic()
            for other in sorted(open_.values(), key=lambda r: r.send_no):
                if other.send_no < req.send_no:
                    self.stats.resent_out_of_order += 1
                    send(other, now)
        elif frame.type == proto.MsgType.HELLO:
            try:
                boot = proto.parse_hello(frame.body).boot
            except proto.FrameError:
                self.stats.bad_frames_received += 1
                return
            if boot:  # the device reset: whatever it had queued is gone
                self.stats.resets_detected += 1
                self.log(f"device reset detected (boot HELLO); resending {len(open_)} open requests")
                self._accept_hello(frame)
                now = time.monotonic()
                for req in sorted(open_.values(), key=lambda r: r.send_no):
                    send(req, now)
        elif frame.type == proto.MsgType.ERROR:
            try:
                code = proto.parse_error(frame)
            except proto.FrameError:
                self.stats.bad_frames_received += 1
                return
            self.stats.device_errors[code] = self.stats.device_errors.get(code, 0) + 1
            req = open_.get(frame.seq)
            if req is None:
                # The device could not read a frame (seq unknown). With one request open it was
                # probably that one: resend now (a duplicate answer would be dropped). With more
                # open, the in-order rule or the timeout finds the lost one.
                if frame.seq == proto.NO_SEQ and len(open_) == 1:
                    only = next(iter(open_.values()))
                    self.stats.resent_after_error += 1
                    send(only, time.monotonic())
                return
            req.rejections += 1
            if req.rejections >= 3 and code in _FATAL_ERRORS:
                name = proto.ErrorCode(code).name
                raise LenetMcuError(f"device rejects INFER for image {req.index} with ERROR {name} three times: "
                                    + _FATAL_ERRORS[code])
            send(req, time.monotonic())
        elif frame.type != proto.MsgType.STATS:
            self.stats.bad_frames_received += 1

    def request_stats(self, tries: int = 3, wait: float = 0.5) -> proto.Stats | None:
        """The device's counters (stack high-water mark, dropped bytes); None if it does not answer."""
        for _ in range(tries):
            seq = self._next_seq()
            self._send(proto.encode_frame(proto.MsgType.STATS_REQUEST, seq))
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                for frame in self._frames(max(0.0, min(0.05, deadline - time.monotonic()))):
                    if frame.type == proto.MsgType.STATS and frame.seq == seq:
                        try:
                            return proto.parse_stats(frame)
                        except proto.FrameError:
                            break
                    if frame.type == proto.MsgType.ERROR and frame.seq == seq:
                        return None  # firmware without STATS
        return None

    def _reconnect(self, exc: LinkError) -> None:
        """A USB serial port vanishes while a board resets; QEMU may restart: reopen and re-handshake."""
        self.log(f"link lost ({exc}); reconnecting")
        deadline = time.monotonic() + self.reconnect_s
        last: Exception = exc
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                self.link.reopen()
            except LenetMcuError as err:
                last = err
                continue
            self.stats.reconnects += 1
            self._reader = proto.FrameReader()
            self.handshake()
            return
        raise LenetMcuError(f"lost the link to {self.link.url} ({last}); results so far are checkpointed: "
                            "rerun verify with --resume")


# --- the whole job ----------------------------------------------------------

def resolve_port(artifacts: Path, port: str | None) -> str:
    if port:
        return port
    from lenet_mcu.host import flash

    state = flash.running_qemu(artifacts)
    if state is None:
        raise LenetMcuError(f"no --port given and no QEMU running for {artifacts} "
                            "(start one with `lenet-mcu flash --target qemu-stm32f405`, or pass --port URL)")
    return state["url"]


def run_verify(artifacts, port: str | None = None, baud: int = 115200, limit: int | None = None,
               resume: bool = False, data_dir=None, window: int | None = None, timeout: float = 2.0,
               hello_timeout: float = 10.0, progress: bool = True, reports: bool = True,
               on_result: Callable[[int], None] | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Run the serial check; return the report dict (also written to artifacts/verify/).

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


def _progress(total: int, initial: int, enabled: bool):
    from lenet_mcu.progress import Progress

    return Progress(total, "verify", unit="images", initial=initial, enabled=enabled)
