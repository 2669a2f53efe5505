"""Test doubles for the serial check: a simulated device, a lossy link, and bad ports.

`FakeDevice` is a TCP server that speaks protocol v1 like the firmware does
(boot HELLO, HELLO_REQUEST, INFER RAW/RLE, ERROR codes, in-order answers). Its
"model" is a lookup table from input bytes to output bytes, so a test decides
whether the check passes (answer the reference bytes) or fails (alter some).
`LossyProxy` sits between host and device and drops, corrupts and injects bytes.
"""

from __future__ import annotations

import random
import socket
import threading
import time

import numpy as np

from lenet_mcu.host import protocol as proto


class _Server:
    """A one-client-at-a-time TCP server on 127.0.0.1 running `serve(conn)` in a thread."""

    def __init__(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.connections = 0

    def start(self):
        self._thread.start()
        return self

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.settimeout(0.05)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.serve(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class FakeDevice(_Server):
    def __init__(
        self,
        table: dict[bytes, np.ndarray],
        sha_prefix: str,
        input_scale: float,
        input_zero_point: int,
        output_count: int = 10,
        boot_hello: bool = True,
        reset_after: int | None = None,
        delay_s: float = 0.0,
        answer_twice: bool = False,
        alter: dict[bytes, np.ndarray] | None = None,
        runtime: str = "fake",
        hang_after: int | None = None,
        reset_on_infer: bool = False,
        extra_encodings: int = 0,
        smallest_wins: bool = False,
    ):
        super().__init__()
        self.smallest_wins = smallest_wins  # reports the first minimum as the class, like an RBF model's firmware
        self.table = table
        self.alter = alter or {}
        self.boot_hello = boot_hello
        self.reset_after = reset_after
        self.delay_s = delay_s
        self.answer_twice = answer_twice  # a link that duplicates frames
        self.hang_after = hang_after  # after this many results: silent forever (a hung device)
        self.reset_on_infer = reset_on_infer  # crashes and reboots on every INFER
        self.hello = proto.Hello(
            protocol_version=1,
            boot=True,
            tick_kind=0,
            tick_hz=168_000_000,
            ram_static_bytes=12345,
            arena_bytes=6789,
            model_sha256_prefix=sha_prefix,
            input_scale=input_scale,
            input_zero_point=input_zero_point,
            output_scale=1 / 256,
            output_zero_point=-128,
            input_dims=(1, 32, 32, 1),
            output_count=output_count,
            max_payload=proto.MAX_PAYLOAD,
            board="fake-board",
            runtime=runtime,
            extra_encodings=extra_encodings,
        )
        self.results_sent = 0
        self.resets = 0
        self.infer_received = 0
        self.encodings_seen: dict[int, int] = {}  # INFER encoding byte -> frames
        self.requested: list[bytes] = []  # input tensors in the order INFERs arrived

    def _hello_frame(self, boot: bool, seq: int) -> bytes:
        h = proto.Hello(**{**self.hello.__dict__, "boot": boot})
        return proto.encode_frame(proto.MsgType.HELLO, seq, proto.pack_hello(h))

    def serve(self, conn: socket.socket) -> None:
        reader = proto.FrameReader()
        if self.boot_hello:
            conn.sendall(self._hello_frame(True, 0))
        size = int(np.prod(self.hello.input_dims))
        while not self.stopped():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            for item in reader.feed(data):
                if self.hang_after is not None and self.results_sent >= self.hang_after:
                    continue
                if isinstance(item, proto.FrameError):
                    code = proto.ErrorCode.BAD_CRC if "CRC" in str(item) else proto.ErrorCode.BAD_FRAME
                    conn.sendall(proto.encode_frame(proto.MsgType.ERROR, proto.NO_SEQ, bytes([code])))
                    continue
                if item.type == proto.MsgType.HELLO_REQUEST:
                    conn.sendall(self._hello_frame(False, item.seq))
                elif item.type == proto.MsgType.STATS_REQUEST:
                    stats = proto.Stats(
                        stack_peak_bytes=812,
                        stack_size_bytes=2048,
                        frames_ok=self.results_sent,
                        frames_bad=0,
                        rx_dropped=0,
                    )
                    conn.sendall(proto.encode_frame(proto.MsgType.STATS, item.seq, proto.pack_stats(stats)))
                elif item.type == proto.MsgType.INFER and self.reset_on_infer:
                    self.infer_received += 1
                    self.resets += 1
                    reader = proto.FrameReader()
                    conn.sendall(self._hello_frame(True, 0))
                    break
                elif item.type == proto.MsgType.INFER:
                    self.infer_received += 1
                    reply = self._infer(item, size)
                    if self.delay_s:
                        time.sleep(self.delay_s)
                    conn.sendall(reply * (2 if self.answer_twice else 1))
                    if self.reset_after is not None and self.results_sent == self.reset_after:
                        # Power cycle: the queued requests are lost, the device boots and says HELLO.
                        self.resets += 1
                        self.reset_after = None
                        reader = proto.FrameReader()
                        conn.sendall(self._hello_frame(True, 0))
                        break
                else:
                    conn.sendall(
                        proto.encode_frame(proto.MsgType.ERROR, item.seq, bytes([proto.ErrorCode.UNKNOWN_TYPE]))
                    )

    def _infer(self, frame: proto.Frame, size: int) -> bytes:
        body = frame.body
        if body:
            self.encodings_seen[body[0]] = self.encodings_seen.get(body[0], 0) + 1
        try:
            if body[:1] == bytes([proto.Encoding.CTX]) and not self.hello.extra_encodings:
                raise proto.FrameError("encoding not offered in HELLO")
            tensor = proto.decode_infer_body(body, size, self.hello.input_dims[2] * self.hello.input_dims[3])
        except proto.FrameError:
            return proto.encode_frame(proto.MsgType.ERROR, frame.seq, bytes([proto.ErrorCode.BAD_INPUT]))
        key = tensor.tobytes()
        self.requested.append(key)
        outputs = self.alter.get(key, self.table.get(key))
        if outputs is None:
            outputs = np.zeros(self.hello.output_count, np.int8)
        self.results_sent += 1
        ticks = 100_000 + (sum(key[:64]) % 997)
        return proto.encode_frame(
            proto.MsgType.RESULT,
            frame.seq,
            proto.pack_result(ticks, int(np.argmin(outputs) if self.smallest_wins else np.argmax(outputs)), outputs),
        )


class LossyProxy(_Server):
    """TCP proxy that drops, flips and injects bytes in both directions (seeded)."""

    def __init__(
        self, upstream_port: int, drop: float = 0.002, corrupt: float = 0.002, garbage: float = 0.01, seed: int = 1
    ):
        super().__init__()
        self.upstream_port = upstream_port
        self.drop, self.corrupt, self.garbage = drop, corrupt, garbage
        self.rng = random.Random(seed)
        self.damaged_bytes = 0

    def _mangle(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            r = self.rng.random()
            if r < self.drop:
                self.damaged_bytes += 1
                continue
            if r < self.drop + self.corrupt:
                self.damaged_bytes += 1
                b ^= 1 << self.rng.randrange(8)
            out.append(b)
        if self.rng.random() < self.garbage:  # a burst of line noise
            out += bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 40)))
        return bytes(out)

    def serve(self, conn: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", self.upstream_port))
        up.settimeout(0.05)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lock = threading.Lock()
        done = threading.Event()

        def pump(src, dst):
            while not done.is_set() and not self.stopped():
                try:
                    data = src.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                with lock:
                    data = self._mangle(data)
                try:
                    dst.sendall(data)
                except OSError:
                    break
            done.set()

        other = threading.Thread(target=pump, args=(up, conn), daemon=True)
        other.start()
        pump(conn, up)
        other.join(timeout=2)
        up.close()


class ClosingServer(_Server):
    """Accepts the connection and closes it at once."""

    def serve(self, conn):
        conn.close()


class ChattyServer(_Server):
    """Answers anything with text: a port that is not our firmware."""

    def serve(self, conn):
        while not self.stopped():
            conn.sendall(b"AT+OK\r\nwelcome to some other device\r\n")
            try:
                if not conn.recv(4096):
                    return
            except TimeoutError:
                pass
            time.sleep(0.1)


class SilentServer(_Server):
    """Accepts the connection and says nothing."""

    def serve(self, conn):
        while not self.stopped():
            try:
                if not conn.recv(4096):
                    return
            except TimeoutError:
                pass
