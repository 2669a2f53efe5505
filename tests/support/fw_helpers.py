"""Helpers shared by the firmware tests (host build and QEMU)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from lenet_mcu.host import protocol as P

FIXTURES = Path(__file__).resolve().parent / "firmware_fixtures"
sys.path.insert(0, str(FIXTURES / "echo"))
from reference import ECHO_DIR, echo_outputs  # noqa: E402, F401  (re-exported: test fixture, not shipped)

ECHO_MAKE_VARS = {"RUNTIME_DIR": ""}  # the fixture dir brings its own runtime


def frame(msg_type, seq, body=b"", version=P.PROTOCOL_VERSION) -> bytes:
    return P.encode_frame(msg_type, seq, body, version=version)


def raw_frame(payload: bytes, crc_ok: bool = True) -> bytes:
    """A frame from an arbitrary payload (bypasses encode_frame's size check)."""
    import zlib

    from cobs import cobs

    crc = zlib.crc32(payload) ^ (0 if crc_ok else 1)
    return cobs.encode(payload + crc.to_bytes(4, "little")) + b"\x00"


def infer_frame(seq: int, x: np.ndarray, rle: bool) -> bytes:
    return frame(P.MsgType.INFER, seq, P.infer_body(x, -128 if rle else None))


def random_input(rng, sparse: bool = False) -> np.ndarray:
    x = rng.integers(-128, 128, 1024).astype(np.int8)
    if sparse:
        x[rng.random(1024) < 0.8] = -128
    return x


def bad_cases(rng):
    """(name, bytes, expected error code or None for 'dropped silently', seq of the answer)."""
    good_hdr = lambda t, seq, body=b"": P.HEADER.pack(1, t, seq) + body  # noqa: E731
    x = random_input(rng)
    ok_rle = P.rle_encode(x, -128)
    return [
        # A damaged frame whose header survived names its seq as a hint; without the version byte it cannot.
        ("bad CRC", raw_frame(good_hdr(P.MsgType.HELLO_REQUEST, 5), crc_ok=False), P.ErrorCode.BAD_CRC, 5),
        (
            "bad CRC and version",
            raw_frame(P.HEADER.pack(7, P.MsgType.INFER, 6), crc_ok=False),
            P.ErrorCode.BAD_CRC,
            P.NO_SEQ,
        ),
        ("not COBS", b"\x05ab\x00", P.ErrorCode.BAD_FRAME, P.NO_SEQ),
        ("shorter than header+CRC", raw_frame(b"\x01\x01"), P.ErrorCode.BAD_FRAME, P.NO_SEQ),
        ("oversize", bytes(rng.integers(1, 256, 3000, dtype=np.uint8)) + b"\x00", P.ErrorCode.TOO_LONG, P.NO_SEQ),
        (
            "payload one byte over MAX_PAYLOAD",
            raw_frame(good_hdr(P.MsgType.INFER, 9, bytes(P.MAX_PAYLOAD - 3))),
            P.ErrorCode.TOO_LONG,
            P.NO_SEQ,
        ),
        ("bad version", frame(P.MsgType.HELLO_REQUEST, 11, version=2), P.ErrorCode.BAD_VERSION, 11),
        ("unknown type", frame(0x42, 12), P.ErrorCode.UNKNOWN_TYPE, 12),
        ("device-only type", frame(P.MsgType.RESULT, 13), P.ErrorCode.UNKNOWN_TYPE, 13),
        ("HELLO_REQUEST with a body", frame(P.MsgType.HELLO_REQUEST, 14, b"x"), P.ErrorCode.BAD_LENGTH, 14),
        ("STATS_REQUEST with a body", frame(P.MsgType.STATS_REQUEST, 15, b"x"), P.ErrorCode.BAD_LENGTH, 15),
        ("INFER without body", frame(P.MsgType.INFER, 16), P.ErrorCode.BAD_LENGTH, 16),
        ("INFER RAW short", frame(P.MsgType.INFER, 17, b"\x00" + x.tobytes()[:-1]), P.ErrorCode.BAD_INPUT, 17),
        ("INFER RAW long", frame(P.MsgType.INFER, 18, b"\x00" + x.tobytes() + b"\x01"), P.ErrorCode.BAD_INPUT, 18),
        ("INFER unknown encoding", frame(P.MsgType.INFER, 19, b"\x07" + x.tobytes()), P.ErrorCode.BAD_INPUT, 19),
        ("INFER RLE truncated", frame(P.MsgType.INFER, 20, b"\x01" + ok_rle[:-1]), P.ErrorCode.BAD_INPUT, 20),
        ("INFER RLE too few", frame(P.MsgType.INFER, 21, b"\x01\x80" + b"\xff\x00" * 4), P.ErrorCode.BAD_INPUT, 21),
        ("runtime failure", frame(P.MsgType.INFER, 22, b"\x00" + bytes([0x80]) * 1024), P.ErrorCode.RUNTIME, 22),
        ("empty frames", b"\x00\x00\x00", None, None),
    ]


def decode_stream(data: bytes) -> list:
    return P.FrameReader().feed(data)
