"""The protocol engine for one device on one link: handshake, then pipelined INFER requests with retries.

Knows frames and requests, not files: the caller hands it the INFER bodies and
takes the results (lenet_mcu.host.verify does the bookkeeping).
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lenet_mcu.artifacts import TFLITE_MODEL
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host import protocol as proto
from lenet_mcu.host.link import Link, LinkError


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
        d["device_errors"] = {
            proto.ErrorCode(k).name if k in proto.ErrorCode._value2member_map_ else str(k): v
            for k, v in self.device_errors.items()
        }
        return d


@dataclass
class _Request:
    index: int
    frame: bytes
    seq: int = 0
    sent_at: float = 0.0
    send_no: int = 0
    tries: int = 0
    rejections: int = 0
    copies: int = 0  # copies sent and not yet answered (by RESULT or ERROR)


_FATAL_ERRORS = {
    proto.ErrorCode.BAD_INPUT: "firmware and host disagree on the input format",
    proto.ErrorCode.BAD_LENGTH: "firmware and host disagree on the input format",
    proto.ErrorCode.UNKNOWN_TYPE: "the firmware does not know INFER",
    proto.ErrorCode.BAD_VERSION: "the firmware speaks another protocol version",
    proto.ErrorCode.RUNTIME: "the inference runtime on the device fails (see its runtime_init/runtime_infer)",
}


class WorkQueue:
    """The images still to check, dealt to devices as they ask for work.

    A device takes one image at a time (so a slow device gets fewer), reports it
    finished once its result is recorded, and gives back what it had open if it
    fails, for the other devices to take. Thread-safe."""

    def __init__(self, todo):
        self._lock = threading.Lock()
        self._pending = collections.deque(todo)
        self._open = 0

    def take(self) -> int | None:
        with self._lock:
            if not self._pending:
                return None
            self._open += 1
            return self._pending.popleft()

    def finish(self, index: int) -> None:
        with self._lock:
            self._open -= 1

    def give_back(self, indices) -> None:
        with self._lock:
            self._pending.extendleft(sorted(indices, reverse=True))
            self._open -= len(indices)

    def finished(self) -> bool:
        with self._lock:
            return not self._pending and self._open == 0

    def pending(self) -> int:
        with self._lock:
            return len(self._pending) + self._open


class Device:
    """One device on a link: handshake, then pipelined INFER requests with retries.

    Lost or corrupt frames are resent after `timeout` seconds, or at once when a
    later request is answered first (the device answers in order, so an older
    request still open was lost). A boot HELLO mid-run means the device reset:
    every open request is sent again. Answers to requests no longer open are
    dropped, so each image is reported once.
    """

    def __init__(
        self,
        link: Link,
        expected_sha256: str,
        output_count: int,
        input_size: int,
        input_scale: float | None = None,
        input_zero_point: int | None = None,
        timeout: float = 2.0,
        hello_timeout: float = 10.0,
        max_tries: int = 50,
        reconnect_s: float = 10.0,
        log: Callable[[str], None] | None = None,
    ):
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
        self._resets_without_result = 0
        self._answer_gap: float | None = None  # moving average of the time between the device's frames

    #: The answer timeout adapts to the link: three times the usual answer time
    #: (which includes waiting behind the other requests in the window), at
    #: least MIN_TIMEOUT_S and at most the `timeout` given.
    MIN_TIMEOUT_S = 0.2
    #: Boot HELLOs in a row, with requests open and no RESULT between them, that
    #: mean the device crashes on INFER rather than a flaky cable resetting it.
    RESETS_IN_A_ROW = 5

    def effective_timeout(self) -> float:
        if self._latency is None:
            return self.timeout
        return min(self.timeout, max(self.MIN_TIMEOUT_S, 3 * self._latency))

    # -- helpers --------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % proto.NO_SEQ  # never NO_SEQ (0xFFFF)
        return self._seq

    def _send(self, frame: bytes) -> None:
        # A delimiter before the frame too: a lost delimiter then costs one frame, not two.
        self.link.write(b"\x00" + frame)
        self.stats.frames_sent += 1

    def _frames(self, wait: float):
        for item in self._reader.feed(self.link.read(wait)):
            if isinstance(item, proto.FrameError):
                self.stats.bad_frames_received += 1
                continue
            now = time.monotonic()
            gap = now - self._last_frame_at
            self._answer_gap = gap if self._answer_gap is None else 0.9 * self._answer_gap + 0.1 * min(gap, 1.0)
            self._last_frame_at = now
            yield item

    # -- HELLO ----------------------------------------------------------------
    def handshake(self) -> proto.Hello:
        """Wait for the boot HELLO or ask for one; check it is our model."""
        try:
            return self._handshake()
        except LinkError as exc:
            raise LenetMcuError(
                f"{self.link.url} failed before answering HELLO ({exc}): is the device "
                "there and not used by another program?"
            ) from None

    def _handshake(self) -> proto.Hello:
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
                raise LenetMcuError(
                    f"{url} sent nothing within {self.hello_timeout:g} s: is another verify "
                    "connected (QEMU serves one client), or did the firmware not boot (see qemu.log)?"
                )
            raise LenetMcuError(
                f"{url} sent nothing within {self.hello_timeout:g} s: is the firmware running "
                "(reset the board, check the port and --baud)?"
            )
        if valid_frames == 0:
            raise LenetMcuError(
                f"{url} answered {received} bytes but no lenet-mcu frame within {self.hello_timeout:g} s: "
                "wrong port or baud rate, or another firmware"
            )
        if echoed == valid_frames:
            raise LenetMcuError(
                f"{url} echoes what the host sends and never answers HELLO: "
                "a loopback or a terminal, not the board's UART"
            )
        raise LenetMcuError(
            f"{url} answered {valid_frames} protocol frames but no HELLO within {self.hello_timeout:g} s: "
            "firmware speaks another protocol version?"
        )

    def _accept_hello(self, frame: proto.Frame) -> proto.Hello:
        try:
            hello = proto.parse_hello(frame.body)
        except proto.FrameError as exc:
            raise LenetMcuError(
                f"{self.link.url}: malformed HELLO ({exc}): firmware and host disagree on the protocol"
            ) from None
        if hello.protocol_version != proto.PROTOCOL_VERSION:
            raise LenetMcuError(
                f"device speaks protocol {hello.protocol_version}, this host speaks {proto.PROTOCOL_VERSION}"
            )
        expected = self.expected_sha256[:16]
        if hello.model_sha256_prefix != expected:
            raise LenetMcuError(
                f"stale firmware: the device runs model sha256 {hello.model_sha256_prefix}..., "
                f"the artifacts model {TFLITE_MODEL} is {expected}...: rebuild and flash (lenet-mcu build, lenet-mcu flash)"
            )
        if hello.output_count != self.output_count or hello.input_size != self.input_size:
            raise LenetMcuError(
                f"device model has {hello.input_size} inputs / {hello.output_count} outputs, "
                f"the references have {self.input_size} / {self.output_count}"
            )
        if self.input_zero_point is not None and (
            hello.input_zero_point != self.input_zero_point
            or not np.isclose(hello.input_scale, self.input_scale, rtol=1e-6)
        ):
            raise LenetMcuError(
                f"device input quantization (scale {hello.input_scale:g}, zero point {hello.input_zero_point}) "
                f"differs from references.npz (scale {self.input_scale:g}, zero point {self.input_zero_point})"
            )
        if self.hello is not None and (hello.runtime, hello.board) != (self.hello.runtime, self.hello.board):
            raise LenetMcuError(
                f"device changed from {self.hello.runtime}/{self.hello.board} to "
                f"{hello.runtime}/{hello.board} during the run"
            )
        self.hello = hello
        return hello

    # -- inference stream -----------------------------------------------------
    def run(
        self,
        work: WorkQueue | list[int],
        infer_body: Callable[[int], bytes],
        window: int,
        on_result: Callable[[int, proto.Result], None],
        stop: threading.Event | None = None,
    ) -> None:
        """Send INFER for the images `work` deals out; call on_result once per image.

        Returns when `work` is finished (this device's and every other device's
        images answered) or `stop` is set. If it raises, the images it had open
        go back to `work` for other devices."""
        if isinstance(work, list):
            work = WorkQueue(work)
        if self.hello is None:
            self.handshake()
        open_: dict[int, _Request] = {}
        self._resets_without_result = 0
        # Every INFER copy sent, in order: the device answers each frame it receives exactly
        # once and in order (RESULT, or ERROR when damaged), so each answer accounts for the
        # oldest copies, and a copy skipped over was lost on the way.
        self._in_flight: collections.deque[_Request] = collections.deque()

        def send(req: _Request, now: float) -> None:
            self._in_flight.append(req)
            req.copies += 1
            self._send_counter += 1
            req.send_no = self._send_counter
            req.sent_at = now
            req.tries += 1
            if req.tries > self.max_tries:
                # Keep trying while the device still says something valid: then it is the link.
                silent = now - self._last_frame_at
                if silent > max(5.0, 3 * self.effective_timeout()):
                    raise LenetMcuError(
                        f"image {req.index}: the device stopped answering ({silent:.1f} s without a "
                        f"valid frame, {req.tries - 1} tries): it hangs; results so far are "
                        "checkpointed (reset the device, then verify --resume)"
                    )
                if req.tries > 10 * self.max_tries:
                    raise LenetMcuError(
                        f"image {req.index}: no valid answer after {req.tries - 1} tries: the link "
                        "corrupts too much; results so far are checkpointed (fix the cable or "
                        "lower --baud, then verify --resume)"
                    )
            if req.tries > 1:
                self.stats.retransmits += 1
            self._send(req.frame)
            self.stats.infer_sent += 1

        def answered(index: int, result: proto.Result) -> None:
            on_result(index, result)
            work.finish(index)

        try:
            while True:
                if stop is not None and stop.is_set():
                    return
                try:
                    now = time.monotonic()
                    while len(open_) < window:
                        index = work.take()
                        if index is None:
                            break
                        seq = self._next_seq()
                        req = _Request(index, b"", seq)
                        open_[seq] = req
                        body = infer_body(index)
                        if proto.HEADER.size + len(body) > self.hello.max_payload:
                            raise LenetMcuError(
                                f"image {index}: INFER payload of {proto.HEADER.size + len(body)} "
                                f"bytes exceeds the device's max_payload {self.hello.max_payload}"
                            )
                        req.frame = proto.encode_frame(proto.MsgType.INFER, seq, body)
                        send(req, now)
                    if not open_:
                        if work.finished():
                            return
                        time.sleep(0.01)  # another device may still hand images back
                        continue
                    timeout = self.effective_timeout()
                    oldest = min(r.sent_at for r in open_.values())
                    wait = max(0.0, min(0.05, oldest + timeout - time.monotonic()))
                    for frame in self._frames(wait):
                        self._handle(frame, open_, send, answered)
                    now = time.monotonic()
                    for req in sorted(open_.values(), key=lambda r: r.send_no):
                        # While the device keeps answering, a request may just be waiting its turn
                        # (answers come in order; a lost one shows when a later one is answered):
                        # time out only on silence.
                        if now - max(req.sent_at, self._last_frame_at) > timeout:
                            self.stats.timeouts += 1
                            self._forget_in_flight()
                            send(req, now)
                except LinkError as exc:
                    self._reconnect(exc)
                    self._forget_in_flight()
                    now = time.monotonic()
                    for req in sorted(open_.values(), key=lambda r: r.send_no):
                        send(req, now)
        finally:
            if open_:
                work.give_back([r.index for r in open_.values()])

    def _forget_in_flight(self) -> None:
        """Copies in flight are lost (timeout on silence, reset, reconnect)."""
        for req in self._in_flight:
            req.copies = 0
        self._in_flight.clear()

    def _account(self, seq: int | None, open_: dict[int, _Request], send) -> _Request | None:
        """An answer arrived for the copy of `seq` (None: for the oldest copy in flight, seq unknown).

        Takes that copy off the in-flight list; copies sent before it that got no answer
        were lost: their requests are sent again unless another copy is still on its way.
        Returns the request the answer was for, if it is known and still in flight."""
        if seq is not None and not any(r.seq == seq for r in self._in_flight):
            return None  # an answer to a copy we no longer track (a late duplicate)
        now = time.monotonic()
        while self._in_flight:
            req = self._in_flight.popleft()
            req.copies -= 1
            if seq is None or req.seq == seq:
                return req
            if req.copies == 0 and open_.get(req.seq) is req:
                self.stats.resent_out_of_order += 1
                send(req, now)
        return None

    def _handle(self, frame: proto.Frame, open_: dict[int, _Request], send, on_result) -> None:
        if frame.type == proto.MsgType.RESULT:
            self._account(frame.seq, open_, send)
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
                raise LenetMcuError(
                    f"device answered {result.outputs.size} outputs for image {req.index}, expected {self.output_count}"
                )
            del open_[frame.seq]
            self._resets_without_result = 0
            if req.tries == 1:  # a resent request's time says nothing about the link
                latency = time.monotonic() - req.sent_at
                self._latency = latency if self._latency is None else 0.9 * self._latency + 0.1 * latency
            on_result(req.index, result)
        elif frame.type == proto.MsgType.HELLO:
            try:
                boot = proto.parse_hello(frame.body).boot
            except proto.FrameError:
                self.stats.bad_frames_received += 1
                return
            if boot:  # the device reset: whatever it had queued is gone
                self.stats.resets_detected += 1
                self._resets_without_result += 1
                if self._resets_without_result >= self.RESETS_IN_A_ROW and open_:
                    raise LenetMcuError(
                        f"{self.link.url}: the device reset {self._resets_without_result} times in a row while "
                        f"INFER requests were open, without answering one: it resets when it infers (a crash in "
                        f"its runtime: stack or arena too small? see the emulator log or a debugger), "
                        f"not a bad cable"
                    )
                self.log(f"device reset detected (boot HELLO); resending {len(open_)} open requests")
                self._accept_hello(frame)
                self._forget_in_flight()
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
            # A damaged frame names its seq when its header survived (a hint: it may be wrong).
            # Without one the error says little: line noise and a frame split by a corrupted
            # byte give errors of their own. Only with a single copy in flight is it that one;
            # otherwise the next answer shows which copy was lost.
            copy = self._account(frame.seq, open_, send) if frame.seq != proto.NO_SEQ else None
            if copy is None and len(self._in_flight) == 1:
                copy = self._account(None, open_, send)
            if copy is None or open_.get(copy.seq) is not copy:
                return  # garbage the device took for a frame, or a request already answered
            if code in (proto.ErrorCode.BAD_CRC, proto.ErrorCode.BAD_FRAME, proto.ErrorCode.TOO_LONG):
                if copy.copies == 0:
                    self.stats.resent_after_error += 1
                    send(copy, time.monotonic())
                return
            copy.rejections += 1
            if copy.rejections >= 3 and code in _FATAL_ERRORS:
                name = proto.ErrorCode(code).name
                raise LenetMcuError(
                    f"device rejects INFER for image {copy.index} with ERROR {name} three times: " + _FATAL_ERRORS[code]
                )
            if copy.copies == 0:
                send(copy, time.monotonic())
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

    def request_profile(self, body: bytes, tries: int = 3, wait: float = 5.0):
        """One inference through the device's per-layer profile: (layers, RESULT) for an
        INFER-style body, or None if the firmware cannot profile (ERROR answer)."""
        for _ in range(tries):
            seq = self._next_seq()
            self._send(proto.encode_frame(proto.MsgType.PROFILE_REQUEST, seq, body))
            layers: dict[int, proto.ProfileLayer] = {}
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                for frame in self._frames(max(0.0, min(0.05, deadline - time.monotonic()))):
                    if frame.seq != seq:
                        continue
                    if frame.type == proto.MsgType.ERROR:
                        return None  # firmware or runtime without profiling
                    try:
                        if frame.type == proto.MsgType.PROFILE:
                            layer = proto.parse_profile(frame)
                            layers[layer.index] = layer
                        elif frame.type == proto.MsgType.RESULT:
                            result = proto.parse_result(frame)
                            count = next(iter(layers.values())).count if layers else 0
                            if count and len(layers) == count:
                                return [layers[i] for i in range(count)], result
                            deadline = 0  # a PROFILE frame was lost: ask again
                    except proto.FrameError:
                        deadline = 0
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
        raise LenetMcuError(
            f"lost the link to {self.link.url} ({last}); results so far are checkpointed: rerun verify with --resume"
        )
