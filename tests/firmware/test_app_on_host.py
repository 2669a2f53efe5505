"""The firmware's app + protocol + (fixture) runtime built with gcc for the PC,
stdin/stdout as the serial link: parser and dispatch under garbage."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from fw_helpers import (
    ECHO_DIR,
    ECHO_MAKE_VARS,
    bad_cases,
    decode_stream,
    echo_outputs,
    frame,
    infer_frame,
    random_input,
)

from lenet_mcu.firmware.build import build_host
from lenet_mcu.host import protocol as P

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("make") is None,
    reason="needs gcc and make for the host build of the firmware",
)


@pytest.fixture(scope="module")
def host_fw(tmp_path_factory):
    return build_host(ECHO_DIR, tmp_path_factory.mktemp("host-fw"), runtime="echo", make_vars=ECHO_MAKE_VARS)


def run(host_fw, data: bytes) -> list:
    proc = subprocess.run([str(host_fw)], input=data, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = decode_stream(proc.stdout)
    assert all(isinstance(f, P.Frame) for f in out), "device sent a broken frame"
    hello = out[0]
    assert hello.type == P.MsgType.HELLO and P.parse_hello(hello.body).boot
    return out[1:]


def test_boot_hello_describes_the_build(host_fw):
    (frame_,) = [
        f for f in [*decode_stream(subprocess.run([str(host_fw)], input=b"", capture_output=True, timeout=60).stdout)]
    ]
    h = P.parse_hello(frame_.body)
    assert (h.protocol_version, h.boot, h.tick_kind, h.board, h.runtime) == (1, True, 2, "host", "echo-fixture")
    assert frame_.seq == P.NO_SEQ
    assert h.input_dims == (1, 32, 32, 1) and h.output_count == 10 and h.max_payload == P.MAX_PAYLOAD
    assert h.model_sha256_prefix == "ec40f17e00010203"
    assert h.input_zero_point == -128 and abs(h.input_scale - 1 / 255) < 1e-9


def test_hello_request_and_stats_answer_with_the_request_seq(host_fw):
    out = run(host_fw, frame(P.MsgType.HELLO_REQUEST, 1234) + frame(P.MsgType.STATS_REQUEST, 77))
    assert [(f.type, f.seq) for f in out] == [(P.MsgType.HELLO, 1234), (P.MsgType.STATS, 77)]
    assert not P.parse_hello(out[0].body).boot
    assert P.parse_stats(out[1]).frames_ok == 2  # the HELLO_REQUEST and this STATS_REQUEST


def test_infer_raw_and_rle_give_the_runtime_outputs(host_fw):
    rng = np.random.default_rng(0)
    xs = [random_input(rng, sparse=i % 2 == 1) for i in range(20)]
    data = b"".join(infer_frame(i, x, rle=i % 3 != 0) for i, x in enumerate(xs))
    out = run(host_fw, data)
    assert len(out) == len(xs)
    for i, (f, x) in enumerate(zip(out, xs)):
        r = P.parse_result(f)
        expected = echo_outputs(x)
        assert r.seq == i
        assert np.array_equal(r.outputs, expected)
        assert r.argmax == int(np.argmax(expected))


def test_every_bad_frame_is_answered_and_the_next_good_frame_served(host_fw):
    rng = np.random.default_rng(1)
    x = random_input(rng)
    for name, bad, code, seq in bad_cases(rng):
        out = run(host_fw, bad + infer_frame(500, x, rle=False))
        if code is None:
            assert [f.type for f in out] == [P.MsgType.RESULT], name
        else:
            assert [(f.type, f.seq) for f in out] == [(P.MsgType.ERROR, seq), (P.MsgType.RESULT, 500)], name
            assert P.parse_error(out[0]) == code, name
        assert np.array_equal(P.parse_result(out[-1]).outputs, echo_outputs(x)), name


def test_truncated_frames_at_every_cut_point_never_block_the_next_frame(host_fw):
    rng = np.random.default_rng(2)
    x = random_input(rng, sparse=True)
    good = infer_frame(1, x, rle=True)
    data = b"".join(good[:cut] + b"\x00" + infer_frame(1000 + cut, x, rle=False) for cut in range(1, len(good) - 1))
    out = run(host_fw, data)
    results = [f for f in out if f.type == P.MsgType.RESULT]
    assert [r.seq for r in results] == [1000 + cut for cut in range(1, len(good) - 1)]
    errors = [P.parse_error(f) for f in out if f.type == P.MsgType.ERROR]
    assert len(errors) == len(good) - 2  # every truncated frame answered
    assert set(errors) <= {P.ErrorCode.BAD_FRAME, P.ErrorCode.BAD_CRC}


def test_random_garbage_between_good_frames(host_fw):
    rng = np.random.default_rng(3)
    xs, data = [], b""
    for i in range(200):
        data += bytes(rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8)) + b"\x00"
        x = random_input(rng, sparse=bool(i % 2))
        xs.append(x)
        data += infer_frame(i, x, rle=bool(i % 2))
    out = run(host_fw, data)
    results = {f.seq: P.parse_result(f) for f in out if f.type == P.MsgType.RESULT}
    assert sorted(results) == list(range(200))
    for i, x in enumerate(xs):
        assert np.array_equal(results[i].outputs, echo_outputs(x))
    assert all(f.type in (P.MsgType.RESULT, P.MsgType.ERROR) for f in out)


def test_a_megabyte_of_noise_only_produces_error_frames(host_fw):
    rng = np.random.default_rng(4)
    noise = bytes(rng.integers(0, 256, 1 << 20, dtype=np.uint8))
    out = run(host_fw, noise + b"\x00" + frame(P.MsgType.STATS_REQUEST, 9))
    assert {f.type for f in out[:-1]} <= {P.MsgType.ERROR}
    stats = P.parse_stats(out[-1])
    assert stats.frames_bad == len(out) - 1 > 1000


def test_a_frame_that_lost_a_byte_is_named_by_its_seq(host_fw):
    """A lost byte breaks COBS or the CRC, but the header usually survives: the ERROR names the
    request so the host can resend just that one."""
    rng = np.random.default_rng(4)
    x = random_input(rng, sparse=True)
    good = infer_frame(321, x, rle=True)
    named = 0
    cuts = range(8, len(good) - 2, 7)
    for cut in cuts:
        out = run(host_fw, good[:cut] + good[cut + 1 :] + infer_frame(322, x, rle=True))
        assert [f.type for f in out] == [P.MsgType.ERROR, P.MsgType.RESULT] and out[1].seq == 322
        assert P.parse_error(out[0]) in (P.ErrorCode.BAD_FRAME, P.ErrorCode.BAD_CRC)
        named += out[0].seq == 321
    assert named == len(cuts)


def test_profile_request_to_a_runtime_without_a_profile_is_refused(host_fw):
    x = random_input(np.random.default_rng(4))
    out = run(
        host_fw, frame(P.MsgType.PROFILE_REQUEST, 31, P.infer_body(x, None)) + frame(P.MsgType.PROFILE_REQUEST, 32)
    )
    assert [(f.type, f.seq) for f in out] == [(P.MsgType.ERROR, 31), (P.MsgType.ERROR, 32)]
    assert [P.parse_error(f) for f in out] == [P.ErrorCode.UNKNOWN_TYPE, P.ErrorCode.BAD_LENGTH]
