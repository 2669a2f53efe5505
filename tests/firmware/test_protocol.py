"""Unit tests of firmware/protocol/ built for the host (gcc, ctypes) against
the Python reference (cobs package, zlib, lenet_mcu.host.protocol)."""

from __future__ import annotations

import ctypes
import shutil
import zlib

import numpy as np
import pytest
from cobs import cobs

from lenet_mcu.firmware.build import build_protocol_lib
from lenet_mcu.host import ctx_code, protocol

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("make") is None,
    reason="needs gcc and make for the host build of the protocol",
)

u8p = ctypes.POINTER(ctypes.c_uint8)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = build_protocol_lib(tmp_path_factory.mktemp("protolib"))
    lib = ctypes.CDLL(str(so))
    lib.crc32_update.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
    lib.crc32_update.restype = ctypes.c_uint32
    lib.cobs_encode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
    lib.cobs_encode.restype = ctypes.c_size_t
    lib.cobs_decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
    lib.cobs_decode.restype = ctypes.c_long
    lib.rle_decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    lib.rle_decode.restype = ctypes.c_int
    lib.ctx_decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t]
    lib.ctx_decode.restype = ctypes.c_int
    return lib


def c_encode(lib, data: bytes) -> bytes:
    out = ctypes.create_string_buffer(len(data) + len(data) // 254 + 2)
    n = lib.cobs_encode(data, len(data), out)
    return out.raw[:n]


def c_decode(lib, data: bytes) -> bytes | None:
    out = ctypes.create_string_buffer(len(data) + 1)
    n = lib.cobs_decode(data, len(data), out)
    return None if n < 0 else out.raw[:n]


def py_decode(data: bytes) -> bytes | None:
    try:
        return cobs.decode(data)
    except cobs.DecodeError:
        return None


def c_rle(lib, body: bytes, size: int) -> np.ndarray | None:
    out = ctypes.create_string_buffer(size)
    if lib.rle_decode(body, len(body), out, size) != 0:
        return None
    return np.frombuffer(out.raw, dtype=np.int8)


def py_rle(body: bytes, size: int) -> np.ndarray | None:
    try:
        return protocol.rle_decode(body, size)
    except protocol.FrameError:
        return None


def sample_payloads(rng):
    """Edge lengths around COBS's 254-byte blocks, zero-heavy and zero-free data."""
    for n in (0, 1, 2, 253, 254, 255, 256, 507, 508, 509, 1104):
        yield bytes(n)
        yield bytes(rng.integers(1, 256, n, dtype=np.uint8))
        yield bytes(np.where(rng.random(n) < 0.3, 0, rng.integers(1, 256, n)).astype(np.uint8))
    for _ in range(200):
        yield bytes(rng.integers(0, 256, int(rng.integers(0, 1200)), dtype=np.uint8))


def test_crc32_equals_zlib(lib):
    rng = np.random.default_rng(1)
    assert lib.crc32_update(0, b"123456789", 9) == 0xCBF43926  # the standard check value
    for data in sample_payloads(rng):
        assert lib.crc32_update(0, data, len(data)) == zlib.crc32(data)
        cut = len(data) // 3  # chaining, as the firmware may do
        assert lib.crc32_update(lib.crc32_update(0, data[:cut], cut), data[cut:], len(data) - cut) == zlib.crc32(data)


def test_cobs_encode_equals_python_and_round_trips(lib):
    rng = np.random.default_rng(2)
    for data in sample_payloads(rng):
        enc = c_encode(lib, data)
        assert enc == cobs.encode(data), len(data)
        assert b"\x00" not in enc
        assert c_decode(lib, enc) == data


def test_cobs_decode_rejects_exactly_what_python_rejects(lib):
    rng = np.random.default_rng(3)
    cases = [b"", b"\x01", b"\x02", b"\x05ab", b"\x03a\x00", b"\xff" + b"a" * 253, b"\x00", b"\x02a\x01\x01"]
    for _ in range(3000):  # random garbage, mostly zero-free (zeros are delimiters on the wire)
        n = int(rng.integers(0, 40))
        cases.append(bytes(rng.integers(1 if rng.random() < 0.8 else 0, 256, n, dtype=np.uint8)))
    for enc in cases:
        assert c_decode(lib, enc) == py_decode(enc), enc


def test_rle_decode_equals_host_reference(lib):
    rng = np.random.default_rng(4)
    size = 1024
    for _ in range(300):
        x = np.full(size, -128, dtype=np.int8)
        mask = rng.random(size) < rng.random()
        x[mask] = rng.integers(-128, 128, int(mask.sum()))
        body = protocol.rle_encode(x, -128)
        assert np.array_equal(c_rle(lib, body, size), x)
        assert np.array_equal(py_rle(body, size), x)


def test_rle_decode_rejects_malformed_bodies_like_the_host(lib):
    rng = np.random.default_rng(5)
    size = 1024
    x = rng.integers(-128, 128, size).astype(np.int8)
    x[100:600] = 0
    good = protocol.rle_encode(x, 0)
    bad = [
        b"",  # no fill byte
        good[:-1],  # truncated literal
        good[: len(good) - 1 - 1],  # truncated differently
        good + b"\x00",  # dangling half run header
        good + b"\x01\x00",  # one element too many
        b"\x00" + b"\xff\x00" * 4,  # 1020 elements: too few
        b"\x00" + b"\xff\x00" * 5,  # 1275: past the tensor
        b"\x00\x00\x05abc",  # literal count past the body
    ]
    for _ in range(2000):
        bad.append(bytes(rng.integers(0, 256, int(rng.integers(1, 60)), dtype=np.uint8)))
    for body in bad:
        c, py = c_rle(lib, body, size), py_rle(body, size)
        if py is None:
            assert c is None, body
        else:
            assert np.array_equal(c, py), body
    assert c_rle(lib, b"\x00" + b"\xff\x00" * 4, size) is None


# --- CTX: the context-modelled arithmetic code --------------------------------


def c_ctx(lib, body: bytes, size: int, width: int) -> np.ndarray | None:
    out = ctypes.create_string_buffer(size)
    if lib.ctx_decode(body, len(body), out, size, width) != 0:
        return None
    return np.frombuffer(out.raw, dtype=np.int8)


def py_ctx(body: bytes, size: int, width: int) -> np.ndarray | None:
    try:
        return ctx_code.decode(body[1:], body[0], size, width)
    except ValueError:
        return None


def _digits(rng, n):
    """Digit-like int8 inputs: a bright blob with soft edges on a background of -128."""
    x = np.full((n, 32, 32, 1), -128, np.int8)
    for k in range(n):
        r, c = rng.integers(4, 20, size=2)
        h, w = rng.integers(4, 10, size=2)
        x[k, r : r + h, c : c + w, 0] = rng.integers(-128, 128, size=(h, w))
        x[k, r + 1 : r + h - 1, c + 1 : c + w - 1, 0] = 127
    return x


def test_ctx_decode_equals_host_reference_and_beats_rle(lib):
    rng = np.random.default_rng(5)
    size, width = 32 * 32, 32
    digits = _digits(rng, 40)
    codes = ctx_code.encode_batch(digits, -128, width)
    assert codes == [ctx_code.encode(x, -128, width) for x in digits]  # the batch coder is the reference's twin
    for x, code in zip(digits, codes, strict=True):
        body = bytes([0x80]) + code
        assert np.array_equal(c_ctx(lib, body, size, width), x.ravel())
        assert np.array_equal(py_ctx(body, size, width), x.ravel())
        assert len(code) + 1 < len(protocol.rle_encode(x, -128))
    # Inputs nobody tuned for: random int8 with any fill value, and tensors of another shape.
    for fill in (-128, 0, 57):
        x = rng.integers(-128, 128, size=size).astype(np.int8)
        body = bytes([fill & 0xFF]) + ctx_code.encode(x, fill, width)
        assert np.array_equal(c_ctx(lib, body, size, width), x)
    x = rng.integers(-3, 3, size=6 * 7).astype(np.int8)
    body = bytes([0]) + ctx_code.encode(x, 0, 7)
    assert np.array_equal(c_ctx(lib, body, 42, 7), x) and np.array_equal(py_ctx(body, 42, 7), x)


def test_ctx_decode_rejects_malformed_bodies_like_the_host(lib):
    rng = np.random.default_rng(6)
    size, width = 32 * 32, 32
    good = bytes([0x80]) + ctx_code.encode(_digits(rng, 1)[0], -128, width)
    assert c_ctx(lib, good + b"\x01\x02\x03\x04", size, width) is None  # bytes the decoder never reads
    assert c_ctx(lib, b"", size, width) is None
    assert c_ctx(lib, good, size, 33) is None  # size not a multiple of the row width
    rejected = 0
    for k in range(600):
        if k % 2:
            body = bytearray(good)
            for _ in range(int(rng.integers(1, 4))):
                body[int(rng.integers(0, len(body)))] ^= 1 << int(rng.integers(0, 8))
            body = bytes(body[: int(rng.integers(1, len(body) + 8))])
        else:
            body = rng.integers(0, 256, size=int(rng.integers(1, 400))).astype(np.uint8).tobytes()
        c, py = c_ctx(lib, body, size, width), py_ctx(body, size, width)
        assert (c is None) == (py is None), body.hex()
        if c is not None:
            assert np.array_equal(c, py)
        rejected += c is None
    assert 0 < rejected < 600
