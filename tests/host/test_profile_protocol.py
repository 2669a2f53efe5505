"""PROFILE bodies (docs/protocol.md): what the host accepts and refuses."""

from __future__ import annotations

import pytest

from lenet_mcu.host import protocol as P


def test_profile_body_round_trip():
    body = P.pack_profile(2, 6, 123456, "c5")
    layer = P.parse_profile(P.Frame(P.MsgType.PROFILE, 9, body))
    assert layer == P.ProfileLayer(index=2, count=6, ticks=123456, name="c5")


@pytest.mark.parametrize(
    "body",
    [
        b"\x01\x00",  # too short
        bytes([2]) + P.pack_profile(0, 1, 5, "x")[1:],  # unknown format
        P.pack_profile(0, 1, 5, "abc")[:-1],  # name cut short
        P.pack_profile(3, 3, 5, "x"),  # index past count
    ],
)
def test_malformed_profile_bodies_are_refused(body):
    with pytest.raises(P.FrameError):
        P.parse_profile(P.Frame(P.MsgType.PROFILE, 9, body))
