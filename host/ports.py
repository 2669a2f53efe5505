"""Serial ports of this computer, with the debug probes and boards known by their USB ids.

`list_ports()` asks pyserial (`serial.tools.list_ports`); a port whose USB
vendor:product id is in KNOWN_USB_IDS says what it is, so the right `--port`
for `lenet-mcu verify` is easy to pick on any OS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: (vendor id, product id or None for any product of the vendor) -> what it is
KNOWN_USB_IDS: dict[tuple[int, int | None], str] = {
    (0x0483, 0x3748): "ST-LINK/V2",
    (0x0483, 0x374B): "ST-LINK/V2-1 (Nucleo/Discovery virtual COM port)",
    (0x0483, 0x374E): "STLINK-V3",
    (0x0483, 0x374F): "STLINK-V3 (virtual COM port)",
    (0x0483, 0x3752): "STLINK-V3",
    (0x0483, 0x3753): "STLINK-V3 (virtual COM port)",
    (0x0483, 0x3754): "STLINK-V3 (virtual COM port)",
    (0x0483, 0x5740): "STM32 USB CDC virtual COM port",
    (0x1366, None): "SEGGER J-Link (virtual COM port)",
    (0x0D28, 0x0204): "Arm DAPLink / CMSIS-DAP (micro:bit, mbed boards)",
    (0x2E8A, 0x000C): "Raspberry Pi Debug Probe (CMSIS-DAP)",
    (0x1D50, 0x6018): "Black Magic Probe",
    (0x03EB, 0x2141): "Atmel-ICE (CMSIS-DAP)",
    (0x10C4, 0xEA60): "Silicon Labs CP210x USB-UART",
    (0x0403, 0x6001): "FTDI FT232R USB-UART",
    (0x0403, 0x6010): "FTDI FT2232 (USB-UART / JTAG)",
    (0x0403, 0x6014): "FTDI FT232H USB-UART",
    (0x0403, 0x6015): "FTDI FT-X USB-UART",
    (0x1A86, 0x7523): "WCH CH340 USB-UART",
    (0x067B, 0x2303): "Prolific PL2303 USB-UART",
}


@dataclass
class Port:
    device: str  # what `--port` takes: /dev/ttyACM0, COM3, /dev/cu.usbmodem1103
    description: str
    usb_id: str | None  # "0483:374b"
    serial_number: str | None
    known_as: str | None  # from KNOWN_USB_IDS

    def as_dict(self) -> dict:
        return asdict(self)


def identify(vid: int | None, pid: int | None) -> str | None:
    if vid is None:
        return None
    return KNOWN_USB_IDS.get((vid, pid)) or KNOWN_USB_IDS.get((vid, None))


def list_ports(comports=None) -> list[Port]:
    """Every serial port pyserial finds, known debug probes and boards first."""
    if comports is None:
        from serial.tools import list_ports

        comports = list_ports.comports()
    ports = []
    for p in comports:
        usb_id = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else None
        description = p.description if p.description and p.description != "n/a" else ""
        ports.append(Port(p.device, description, usb_id, p.serial_number, identify(p.vid, p.pid)))
    return sorted(ports, key=lambda port: (port.known_as is None, port.usb_id is None, port.device))


def format_ports(ports: list[Port]) -> list[str]:
    """One line per port: device, USB id, what it is (or pyserial's description)."""
    if not ports:
        return ["no serial ports found (is the board plugged in, and its USB driver installed?)"]
    width = max(len(p.device) for p in ports)
    lines = []
    for p in ports:
        what = p.known_as or p.description or "-"
        if p.known_as and p.description and p.description != p.known_as:
            what += f" [{p.description}]"
        serial = f", serial {p.serial_number}" if p.serial_number else ""
        lines.append(f"{p.device:<{width}}  {p.usb_id or '-':<9}  {what}{serial}")
    return lines
