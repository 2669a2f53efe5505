"""A byte link to the device: any URL pyserial opens, with one-line errors.

`/dev/ttyACM0`, `socket://127.0.0.1:4321` (QEMU's USART1), `rfc2217://host:port`,
`loop://`. Reads never block longer than asked, so the verify loop can keep a
window of requests in flight and still notice timeouts.
"""

from __future__ import annotations

import os
import select
import time

import serial

from lenet_mcu.errors import LenetMcuError

#: Largest chunk read in one call.
READ_CHUNK = 65536
#: A write that cannot finish in this time means the link is stuck.
WRITE_TIMEOUT_S = 10.0


class LinkError(Exception):
    """The link failed after it was opened (disconnect, I/O error)."""


def describe_open_error(url: str, exc: Exception) -> str:
    """Turn pyserial's open failures into a one-line hint."""
    text = str(exc)
    low = text.lower()
    if url.startswith("socket://"):
        if "refused" in low:
            return f"nothing listens at {url} (connection refused): is QEMU running? start it with `lenet-mcu flash --target qemu`"
        return f"cannot connect to {url}: {text}"
    if "could not exclusively lock" in low or "busy" in low or "resource temporarily unavailable" in low:
        return f"serial port {url} is busy (another program has it open: a terminal, another verify, ModemManager?)"
    if "no such file" in low or "errno 2" in low:
        return f"serial port {url} does not exist: plug in the board (or pass --port with the right device, e.g. /dev/ttyACM0)"
    if "permission denied" in low or "errno 13" in low:
        return f"no permission to open serial port {url}: add yourself to the 'dialout' group (then log in again)"
    if "invalid url" in low or ("expected" in low and "://" in url):
        return f"cannot open {url}: {text}"
    return f"cannot open serial port {url}: {text}"


def check_url(url: str) -> None:
    """One-line error for a port name that cannot be a link, before pyserial tries it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        if os.path.isdir(url):
            raise LenetMcuError(
                f"--port {url} is a directory, expected a serial port such as /dev/ttyACM0 "
                "or a URL such as socket://HOST:PORT"
            )
        return
    if scheme in ("socket", "rfc2217"):
        hostport = rest.split("/", 1)[0].split("?", 1)[0]
        host, colon, port = hostport.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise LenetMcuError(f"--port {url}: expected {scheme}://HOST:PORT with a port number 1-65535")


class Link:
    """Non-blocking byte link over a pyserial port, counting bytes on the wire."""

    def __init__(self, url: str, baud: int = 115200):
        self.url = url
        self.baud = baud
        self.bytes_out = 0
        self.bytes_in = 0
        self._ser = self._open()

    def _open(self) -> serial.SerialBase:
        check_url(self.url)
        try:
            ser = serial.serial_for_url(self.url, do_not_open=True)
            ser.baudrate = self.baud
            ser.timeout = 0  # reads return what is there; waiting is done in wait_readable
            ser.write_timeout = WRITE_TIMEOUT_S
            if isinstance(ser, serial.Serial) and not self.url.startswith(("socket://", "rfc2217://", "loop://")):
                ser.exclusive = True  # a second program on the same UART would steal our bytes
            ser.open()
        except (serial.SerialException, ValueError, OSError) as exc:
            raise LenetMcuError(describe_open_error(self.url, exc)) from None
        return ser

    # -- I/O ------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        try:
            self._ser.write(data)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"write to {self.url} failed: {exc}") from None
        self.bytes_out += len(data)

    def read(self, wait: float) -> bytes:
        """Whatever has arrived, waiting at most `wait` seconds for the first byte."""
        try:
            data = self._ser.read(READ_CHUNK)
            if not data and wait > 0:
                self._wait_readable(wait)
                data = self._ser.read(READ_CHUNK)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"read from {self.url} failed: {exc}") from None
        self.bytes_in += len(data)
        return data

    def _wait_readable(self, wait: float) -> None:
        try:
            fd = self._ser.fileno()
        except Exception:  # rfc2217://, loop:// have no descriptor: poll
            time.sleep(min(wait, 0.002))
            return
        select.select([fd], [], [], wait)

    # -- lifetime -------------------------------------------------------------
    def reopen(self) -> None:
        """Close and open again (a USB CDC port vanishes while a board resets)."""
        self.close()
        self._ser = self._open()

    def close(self) -> None:
        try:
            self._ser.close()
        except Exception:
            pass

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def default_window(url: str) -> int:
    """INFER frames in flight by default.

    Over QEMU's TCP socket bytes queue up while the firmware computes, so a
    window hides round-trip latency. On a real UART the firmware masks the RX
    interrupt during inference: bytes arriving then would overrun the USART, so
    the default is one request at a time.
    """
    return 4 if url.startswith("socket://") else 1
