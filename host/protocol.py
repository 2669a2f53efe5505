"""Host side of the serial protocol (see docs/protocol.md).

Frames are COBS-encoded payloads with a CRC32 trailer and a 0x00 delimiter.
This module knows bytes and messages only; links and retries live in verify.py.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from cobs import cobs

PROTOCOL_VERSION = 1
MAX_PAYLOAD = 1100
HEADER = struct.Struct("<BBH")  # version, type, seq
CRC = struct.Struct("<I")
NO_SEQ = 0xFFFF


class MsgType(enum.IntEnum):
    HELLO_REQUEST = 0x01
    INFER = 0x02
    STATS_REQUEST = 0x03
    PROFILE_REQUEST = 0x04
    HELLO = 0x81
    RESULT = 0x82
    STATS = 0x83
    PROFILE = 0x84
    ERROR = 0xEE


class ErrorCode(enum.IntEnum):
    BAD_CRC = 1
    BAD_FRAME = 2
    TOO_LONG = 3
    BAD_VERSION = 4
    UNKNOWN_TYPE = 5
    BAD_LENGTH = 6
    BAD_INPUT = 7
    RUNTIME = 8


class Encoding(enum.IntEnum):
    RAW = 0
    RLE = 1
    CTX = 2  # only if the device lists it in HELLO


#: Encodings every device of protocol version 1 decodes; HELLO lists any others.
BASE_ENCODINGS = frozenset({Encoding.RAW, Encoding.RLE})


class FrameError(ValueError):
    """A received frame that fails COBS, CRC, version or length checks."""


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    body: bytes


def encode_frame(msg_type: int, seq: int, body: bytes = b"", version: int = PROTOCOL_VERSION) -> bytes:
    payload = HEADER.pack(version, int(msg_type), seq & 0xFFFF) + bytes(body)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD={MAX_PAYLOAD}")
    return cobs.encode(payload + CRC.pack(zlib.crc32(payload))) + b"\x00"


def decode_frame(encoded: bytes) -> Frame:
    """Decode one frame without its 0x00 delimiter."""
    try:
        raw = cobs.decode(encoded)
    except cobs.DecodeError as exc:
        raise FrameError(f"bad COBS: {exc}") from None
    if len(raw) < HEADER.size + CRC.size:
        raise FrameError(f"frame of {len(raw)} bytes is shorter than header + CRC")
    payload, (crc,) = raw[: -CRC.size], CRC.unpack(raw[-CRC.size :])
    if zlib.crc32(payload) != crc:
        raise FrameError("CRC mismatch")
    version, msg_type, seq = HEADER.unpack_from(payload)
    if version != PROTOCOL_VERSION:
        raise FrameError(f"protocol version {version}, expected {PROTOCOL_VERSION}")
    return Frame(msg_type, seq, payload[HEADER.size :])


class FrameReader:
    """Splits a byte stream at 0x00 delimiters; survives garbage between frames."""

    def __init__(self, max_encoded: int = MAX_PAYLOAD + CRC.size + MAX_PAYLOAD // 254 + 2):
        self._buf = bytearray()
        self._max = max_encoded
        self._overflow = False

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        out: list[Frame | FrameError] = []
        start = 0
        while True:
            end = data.find(b"\x00", start)
            if end < 0:
                self._append(data[start:])
                break
            self._append(data[start:end])
            if self._overflow:
                out.append(FrameError("frame too long"))
            elif self._buf:
                try:
                    out.append(decode_frame(bytes(self._buf)))
                except FrameError as exc:
                    out.append(exc)
            self._buf.clear()
            self._overflow = False
            start = end + 1
        return out

    def _append(self, data: bytes) -> None:
        if self._overflow:
            return
        self._buf += data
        if len(self._buf) > self._max:
            self._buf.clear()
            self._overflow = True


# --- messages -------------------------------------------------------------

_HELLO_FIXED = struct.Struct("<BBBBIII8sfifi4HHH")


@dataclass(frozen=True)
class Hello:
    protocol_version: int
    boot: bool
    tick_kind: int
    tick_hz: int
    ram_static_bytes: int
    arena_bytes: int
    model_sha256_prefix: str  # 16 hex digits
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    input_dims: tuple[int, int, int, int]
    output_count: int
    max_payload: int
    board: str
    runtime: str
    #: bit k set: the device decodes INFER encoding k besides RAW and RLE (0 on older firmware)
    extra_encodings: int = 0

    @property
    def encodings(self) -> frozenset:
        extra = {e for e in Encoding if self.extra_encodings >> int(e) & 1}
        return BASE_ENCODINGS | extra

    @property
    def input_size(self) -> int:
        n, h, w, c = self.input_dims
        return n * h * w * c

    @property
    def tick_unit(self) -> str:
        return {
            0: "TIM2 ticks (instructions under QEMU -icount shift=0)",
            1: "CPU cycles (DWT)",
            2: "nanoseconds (host test build)",
            3: "SysTick ticks (CPU clock)",
            4: "CMSDK timer ticks (peripheral clock)",
            5: "nRF TIMER ticks (16 MHz)",
        }.get(self.tick_kind, f"unknown tick kind {self.tick_kind}")


def _pack_str(s: str) -> bytes:
    b = s.encode()
    return bytes([len(b)]) + b


def _unpack_str(body: bytes, offset: int) -> tuple[str, int]:
    if offset >= len(body) or offset + 1 + body[offset] > len(body):
        raise FrameError("HELLO string runs past the end of the body")
    n = body[offset]
    return body[offset + 1 : offset + 1 + n].decode(errors="replace"), offset + 1 + n


def pack_hello(h: Hello) -> bytes:
    return (
        _HELLO_FIXED.pack(
            h.protocol_version,
            1 if h.boot else 0,
            h.tick_kind,
            h.extra_encodings,
            h.tick_hz,
            h.ram_static_bytes,
            h.arena_bytes,
            bytes.fromhex(h.model_sha256_prefix),
            h.input_scale,
            h.input_zero_point,
            h.output_scale,
            h.output_zero_point,
            *h.input_dims,
            h.output_count,
            h.max_payload,
        )
        + _pack_str(h.board)
        + _pack_str(h.runtime)
    )


def parse_hello(body: bytes) -> Hello:
    if len(body) < _HELLO_FIXED.size:
        raise FrameError(f"HELLO body of {len(body)} bytes, expected at least {_HELLO_FIXED.size}")
    (
        ver,
        flags,
        tick_kind,
        extra_encodings,
        tick_hz,
        ram,
        arena,
        sha,
        in_scale,
        in_zp,
        out_scale,
        out_zp,
        n,
        h,
        w,
        c,
        out_count,
        max_payload,
    ) = _HELLO_FIXED.unpack_from(body)
    board, off = _unpack_str(body, _HELLO_FIXED.size)
    runtime, _ = _unpack_str(body, off)
    return Hello(
        ver,
        bool(flags & 1),
        tick_kind,
        tick_hz,
        ram,
        arena,
        sha.hex(),
        in_scale,
        in_zp,
        out_scale,
        out_zp,
        (n, h, w, c),
        out_count,
        max_payload,
        board,
        runtime,
        extra_encodings,
    )


@dataclass(frozen=True)
class Result:
    seq: int
    ticks: int
    argmax: int
    outputs: np.ndarray  # int8


_RESULT_HEAD = struct.Struct("<IBB")


def pack_result(ticks: int, argmax: int, outputs: np.ndarray) -> bytes:
    outputs = np.asarray(outputs, dtype=np.int8)
    return _RESULT_HEAD.pack(ticks, argmax, outputs.size) + outputs.tobytes()


def parse_result(frame: Frame) -> Result:
    body = frame.body
    if len(body) < _RESULT_HEAD.size:
        raise FrameError(f"RESULT body of {len(body)} bytes is too short")
    ticks, argmax, count = _RESULT_HEAD.unpack_from(body)
    if len(body) != _RESULT_HEAD.size + count:
        raise FrameError(f"RESULT body of {len(body)} bytes, expected {_RESULT_HEAD.size + count}")
    outputs = np.frombuffer(body, dtype=np.int8, offset=_RESULT_HEAD.size).copy()
    return Result(frame.seq, ticks, argmax, outputs)


@dataclass(frozen=True)
class Stats:
    stack_peak_bytes: int
    stack_size_bytes: int
    frames_ok: int
    frames_bad: int
    rx_dropped: int


_STATS = struct.Struct("<5I")


def pack_stats(s: Stats) -> bytes:
    return _STATS.pack(s.stack_peak_bytes, s.stack_size_bytes, s.frames_ok, s.frames_bad, s.rx_dropped)


def parse_stats(frame: Frame) -> Stats:
    if len(frame.body) != _STATS.size:
        raise FrameError(f"STATS body of {len(frame.body)} bytes, expected {_STATS.size}")
    return Stats(*_STATS.unpack(frame.body))


#: Layout version of a PROFILE body (PROFILE_FORMAT in protocol.h).
PROFILE_FORMAT = 1


@dataclass(frozen=True)
class ProfileLayer:
    index: int
    count: int  # layers in the profile
    ticks: int
    name: str


_PROFILE_HEAD = struct.Struct("<BBBxIB")


def pack_profile(index: int, count: int, ticks: int, name: str) -> bytes:
    raw = name.encode()
    return _PROFILE_HEAD.pack(PROFILE_FORMAT, index, count, ticks, len(raw)) + raw


def parse_profile(frame: Frame) -> ProfileLayer:
    body = frame.body
    if len(body) < _PROFILE_HEAD.size:
        raise FrameError(f"PROFILE body of {len(body)} bytes is too short")
    fmt, index, count, ticks, n = _PROFILE_HEAD.unpack_from(body)
    if fmt != PROFILE_FORMAT:
        raise FrameError(f"PROFILE body format {fmt}, expected {PROFILE_FORMAT}")
    if len(body) != _PROFILE_HEAD.size + n or index >= count:
        raise FrameError(f"PROFILE body of {len(body)} bytes for layer {index} of {count} is malformed")
    return ProfileLayer(index, count, ticks, body[_PROFILE_HEAD.size :].decode(errors="replace"))


def parse_error(frame: Frame) -> int:
    if len(frame.body) != 1:
        raise FrameError(f"ERROR body of {len(frame.body)} bytes, expected 1")
    return frame.body[0]


# --- INFER ----------------------------------------------------------------


def rle_encode(tensor: np.ndarray, fill: int) -> bytes:
    """Runs of `skip` fill elements followed by `count` literals (docs/protocol.md)."""
    flat = np.asarray(tensor, dtype=np.int8).reshape(-1)
    is_fill = flat == np.int8(fill)
    out = bytearray([np.uint8(np.int8(fill))])
    i, n = 0, flat.size
    while i < n:
        skip = 0
        while i < n and is_fill[i] and skip < 255:
            skip += 1
            i += 1
        start = i
        while i < n and not is_fill[i] and i - start < 255:
            i += 1
        out += bytes([skip, i - start]) + flat[start:i].tobytes()
    return bytes(out)


def rle_decode(body: bytes, size: int) -> np.ndarray:
    """Reference decoder (the firmware has its own in C); raises FrameError."""
    if len(body) < 1:
        raise FrameError("RLE body without fill byte")
    fill = np.frombuffer(body[:1], dtype=np.int8)[0]
    out = np.full(size, fill, dtype=np.int8)
    pos, i = 0, 1
    while i < len(body):
        if i + 2 > len(body):
            raise FrameError("RLE run header truncated")
        skip, count = body[i], body[i + 1]
        i += 2
        pos += skip
        if pos + count > size or i + count > len(body):
            raise FrameError("RLE runs past the tensor or the body")
        out[pos : pos + count] = np.frombuffer(body[i : i + count], dtype=np.int8)
        pos += count
        i += count
    if pos != size:
        raise FrameError(f"RLE covers {pos} elements, expected {size}")
    return out


def infer_body(tensor: np.ndarray, fill: int | None, ctx_code: bytes | None = None) -> bytes:
    """The shortest INFER body: RAW, RLE (fill given) or CTX (its code given, see ctx_code.py)."""
    bodies = [bytes([Encoding.RAW]) + np.asarray(tensor, dtype=np.int8).tobytes()]
    if fill is not None:
        bodies.append(bytes([Encoding.RLE]) + rle_encode(tensor, fill))
        if ctx_code is not None:
            bodies.append(bytes([Encoding.CTX, int(fill) & 0xFF]) + ctx_code)
    return min(bodies, key=len)


def decode_infer_body(body: bytes, size: int, width: int) -> np.ndarray:
    """The input tensor of an INFER body (host reference of the device's decoders); FrameError if malformed."""
    from lenet_mcu.host import ctx_code

    if body[:1] == bytes([Encoding.RAW]) and len(body) == 1 + size:
        return np.frombuffer(body[1:], dtype=np.int8).copy()
    if body[:1] == bytes([Encoding.RLE]):
        return rle_decode(body[1:], size)
    if body[:1] == bytes([Encoding.CTX]) and len(body) >= 2:
        try:
            return ctx_code.decode(body[2:], body[1], size, width)
        except ValueError as exc:
            raise FrameError(f"CTX body: {exc}") from None
    raise FrameError("unknown encoding or wrong length")
