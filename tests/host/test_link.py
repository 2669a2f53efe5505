"""Bad ports give one-line errors: missing, refused, busy, silent, another protocol, an echo."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fake_device import ChattyServer, SilentServer
from host_fixtures import make_synthetic

from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host.link import Link
from lenet_mcu.host.verify import run_verify

pytestmark = pytest.mark.base


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("synthetic"))


def _error(synth, url, **kw) -> str:
    with pytest.raises(LenetMcuError) as err:
        run_verify(
            synth.artifacts,
            port=url,
            data_dir=synth.data_dir,
            limit=5,
            hello_timeout=1.5,
            progress=False,
            reports=False,
            log=lambda m: None,
            **kw,
        )
    msg = err.value.message
    assert "\n" not in msg
    return msg


def test_missing_serial_port(synth):
    assert "serial port /dev/ttyNOPE0 does not exist: plug in the board" in _error(synth, "/dev/ttyNOPE0")


def test_nothing_listening(synth):
    with SilentServer() as server:
        url = server.url
    assert "nothing listens at" in _error(synth, url)


def test_busy_serial_port(synth):
    controller, device = os.openpty()
    try:
        path = os.ttyname(device)
        with Link(path):
            msg = _error(synth, path)
        assert f"serial port {path} is busy" in msg
    finally:
        os.close(controller)
        os.close(device)


def test_silent_device(synth):
    with SilentServer() as server:
        msg = _error(synth, server.url)
    assert "sent nothing within 1.5 s: is another verify connected" in msg


def test_port_that_speaks_something_else(synth):
    with ChattyServer() as server:
        msg = _error(synth, server.url)
    assert "but no lenet-mcu frame" in msg and "wrong port or baud rate" in msg


def test_loopback_port(synth):
    assert "echoes what the host sends" in _error(synth, "loop://")


def test_malformed_url(synth):
    assert "cannot open" in _error(synth, "nosuchscheme://x")


def test_cli_bad_port_is_one_line_exit_2(synth):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lenet_mcu.cli",
            "verify",
            "--artifacts",
            str(synth.artifacts),
            "--data",
            str(synth.data_dir),
            "--port",
            "/dev/ttyNOPE0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: serial port /dev/ttyNOPE0 does not exist: plug in the board "
        "(or pass --port with the right device, e.g. /dev/ttyACM0)"
    ]
