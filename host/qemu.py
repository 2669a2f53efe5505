"""Run firmware on QEMU's netduinoplus2 (STM32F405) with USART1 on a TCP port.

    with QemuBoard(elf) as board:
        ser = serial.serial_for_url(board.url, timeout=1)
        hello = request_hello(ser)

QEMU runs in its own process group and is killed as a group on stop(), at
interpreter exit and when the object is collected: no orphans. With
`icount=True` (-icount shift=0) TIM2 advances one tick per guest instruction,
so the firmware's RESULT ticks count instructions exactly.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host import protocol

QEMU = "qemu-system-arm"
MACHINE = "netduinoplus2"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=3)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait(timeout=3)


class QemuBoard:
    """One QEMU instance running `elf`; serial link at `.url` once started."""

    def __init__(self, elf: str | os.PathLike, icount: bool = True, *, qemu: str = QEMU,
                 machine: str = MACHINE, log_path: str | os.PathLike | None = None,
                 extra_args: tuple[str, ...] = ()):
        self.elf = Path(elf)
        self.icount = icount
        self.qemu = qemu
        self.machine = machine
        self.log_path = Path(log_path) if log_path else None
        self.extra_args = tuple(extra_args)
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._finalizer = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("QemuBoard not started")
        return f"socket://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self, port: int) -> list[str]:
        cmd = [self.qemu, "-M", self.machine, "-nographic"]
        if self.icount:
            cmd += ["-icount", "shift=0"]
        cmd += ["-semihosting", "-kernel", str(self.elf),
                "-serial", f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on",
                "-monitor", "none", *self.extra_args]
        return cmd

    def start(self, timeout: float = 15.0) -> "QemuBoard":
        if self._proc is not None:
            raise RuntimeError("QemuBoard already started")
        if not self.elf.is_file():
            raise LenetMcuError(f"firmware {self.elf} not found: build it first (`lenet-mcu build`)")
        if shutil.which(self.qemu) is None:
            raise LenetMcuError(f"{self.qemu} not found: install qemu-system-arm")
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "wb")
        else:
            self._log = tempfile.TemporaryFile()
        for _attempt in range(5):  # the free port may be taken before QEMU binds it
            self.port = _free_port()
            self._proc = subprocess.Popen(
                self.command(self.port), stdin=subprocess.DEVNULL, stdout=self._log,
                stderr=subprocess.STDOUT, start_new_session=True)
            self._finalizer = weakref.finalize(self, _kill_group, self._proc)
            if self._wait_listening(timeout):
                return self
            if self._proc.poll() is None:
                break
            self._finalizer()
        tail = self._log_tail()
        self.stop()
        raise LenetMcuError(f"QEMU did not open its serial port within {timeout:.0f} s: {tail}")

    def _wait_listening(self, timeout: float) -> bool:
        """True once QEMU listens on the port; False if it exited or timed out.

        Checks /proc for the listening socket instead of connecting, because
        QEMU's server takes the first connection as its one client."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if _listening(self.port):
                return True
            time.sleep(0.02)
        return False

    def _log_tail(self) -> str:
        try:
            self._log.flush()
            if self.log_path:
                text = self.log_path.read_bytes()
            else:
                self._log.seek(0)
                text = self._log.read()
            lines = text.decode(errors="replace").strip().splitlines()
            return lines[-1] if lines else "no output"
        except (OSError, ValueError):
            return "no output"

    def stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # kills the process group once
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "QemuBoard":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _listening(port: int) -> bool:
    """Is some socket listening on 127.0.0.1:port? (Linux /proc/net/tcp)."""
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":  # 0A = LISTEN
                    return True
    except OSError:
        # No /proc: fall back to a connect probe (costs QEMU's first client slot).
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0
    return False


def read_available(ser, wait: float = 0.05, limit: int = 65536) -> bytes:
    """Up to `limit` bytes: waits at most `wait` s for the first, then takes
    whatever else is already there without waiting.

    (pyserial's `in_waiting` on socket:// URLs is 0 or 1, and `read(n)` with
    a timeout blocks until n bytes or the timeout, so neither does this.)"""
    old = ser.timeout
    try:
        ser.timeout = wait
        first = ser.read(1)
        if not first:
            return b""
        ser.timeout = 0
        return first + ser.read(limit - 1)
    finally:
        ser.timeout = old


def request_hello(ser, timeout: float = 10.0, interval: float = 0.25) -> protocol.Hello:
    """Return the device's HELLO on an open pyserial link.

    Takes the boot HELLO if it arrives, otherwise sends HELLO_REQUEST every
    `interval` s: QEMU drops bytes until the firmware enables USART1, and a
    boot HELLO sent before the host connected is lost."""
    reader = protocol.FrameReader()
    deadline = time.monotonic() + timeout
    next_request = time.monotonic()
    seq = 0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_request:
            ser.write(protocol.encode_frame(protocol.MsgType.HELLO_REQUEST, seq))
            seq = (seq + 1) & 0x7FFF
            next_request = time.monotonic() + interval
        for item in reader.feed(read_available(ser, wait=0.02)):
            if isinstance(item, protocol.Frame) and item.type == protocol.MsgType.HELLO:
                return protocol.parse_hello(item.body)
    raise LenetMcuError(f"no HELLO from the device within {timeout:.0f} s")
