"""`lenet-mcu ports`: serial ports with known debug probes and boards named by USB id."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from lenet_mcu.host.ports import KNOWN_USB_IDS, format_ports, identify, list_ports

pytestmark = pytest.mark.base


def comport(device, vid=None, pid=None, description="n/a", serial_number=None):
    return SimpleNamespace(device=device, vid=vid, pid=pid, description=description, serial_number=serial_number)


def test_known_probes_are_named_and_listed_first():
    found = list_ports(
        [
            comport("/dev/ttyS0"),
            comport("/dev/ttyUSB0", 0x0403, 0x9999, "USB Serial"),
            comport("/dev/ttyACM1", 0x1366, 0x0105, "J-Link", "000123"),
            comport("/dev/ttyACM0", 0x0483, 0x374B, "STM32 STLink", "0668FF"),
        ]
    )
    assert [p.device for p in found] == ["/dev/ttyACM0", "/dev/ttyACM1", "/dev/ttyUSB0", "/dev/ttyS0"]
    assert found[0].usb_id == "0483:374b" and found[0].known_as.startswith("ST-LINK/V2-1")
    assert found[1].known_as.startswith("SEGGER J-Link")  # any product id of SEGGER
    assert found[2].known_as is None and found[2].description == "USB Serial"
    lines = format_ports(found)
    assert (
        lines[0]
        == "/dev/ttyACM0  0483:374b  ST-LINK/V2-1 (Nucleo/Discovery virtual COM port) [STM32 STLink], serial 0668FF"
    )
    assert lines[3] == "/dev/ttyS0    -          -"


@pytest.mark.parametrize(
    "vid,pid,name",
    [
        (0x0D28, 0x0204, "DAPLink"),
        (0x10C4, 0xEA60, "CP210x"),
        (0x0403, 0x6001, "FTDI"),
        (0x0483, 0x374E, "STLINK-V3"),
    ],
)
def test_usb_ids_of_common_probes(vid, pid, name):
    assert name in identify(vid, pid)


def test_every_known_id_is_a_16_bit_pair():
    assert all(0 < vid < 1 << 16 and (pid is None or 0 <= pid < 1 << 16) for vid, pid in KNOWN_USB_IDS)


def test_no_ports_says_what_to_check():
    assert format_ports([]) == ["no serial ports found (is the board plugged in, and its USB driver installed?)"]


def test_cli_lists_what_pyserial_finds():
    from serial.tools import list_ports as pyserial_ports

    expected = {p.device for p in pyserial_ports.comports()}
    proc = subprocess.run(
        [sys.executable, "-m", "lenet_mcu.cli", "ports", "--json"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert {p["device"] for p in json.loads(proc.stdout)} == expected
