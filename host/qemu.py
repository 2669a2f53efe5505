"""The QEMU emulator: its command line, starting and stopping it, and finding out whether it runs.

Two ways to run it, one launcher underneath:

    with QemuBoard(elf) as board:              # attached: dies with this process
        ser = serial.serial_for_url(board.url, timeout=1)
        hello = request_hello(ser)

    state = start_detached(state_file, log_file, elf)   # `lenet-mcu flash`: outlives the command
    stop_detached(state_file)                           # `lenet-mcu stop`

QEMU runs in its own process group and is killed as a group. An attached
board is killed on stop(), when the object is collected and at interpreter
exit (the CLI turns SIGTERM and SIGHUP into an orderly exit). A detached one
is recorded in a state file (pid, port, ELF and its sha256) so a later
command can find or stop it.

The serial port is USART1 on a TCP port of 127.0.0.1. Whether QEMU listens is
read from /proc/net/tcp, never by connecting: QEMU's server takes the first
connection as its one client, and the firmware's boot HELLO would go to the
probe. Only without /proc does it fall back to a connect probe.

With `icount=True` (-icount shift=0) TIM2 advances one tick per guest
instruction, so the firmware's RESULT ticks count instructions exactly.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

from lenet_mcu.atomic import sha256_file, write_json
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host import protocol

QEMU = "qemu-system-arm"
#: The machine of the default board (STM32F405). Other boards pass their own.
DEFAULT_MACHINE = "netduinoplus2"
#: After the port listens, QEMU must still run this long: a kernel it cannot
#: load makes it exit just after opening its sockets.
SETTLE_S = 0.3


# --- the command line and the process ------------------------------------------


def command(
    elf: str | os.PathLike,
    port: int,
    icount: bool = True,
    *,
    machine: str = DEFAULT_MACHINE,
    extra_args: tuple[str, ...] = (),
    qemu: str = QEMU,
) -> list[str]:
    """The emulator command line: `machine` with USART1 on TCP `port` of 127.0.0.1."""
    cmd = [qemu, "-M", machine, "-nographic"]
    if icount:
        cmd += ["-icount", "shift=0"]  # one TIM2 tick per instruction: deterministic tick counts
    cmd += [
        "-semihosting",
        "-kernel",
        str(elf),
        "-serial",
        f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on",
        "-monitor",
        "none",
        *extra_args,
    ]
    return cmd


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    """Is some socket listening on 127.0.0.1:port? (/proc/net/tcp; no connection made)."""
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":  # 0A = LISTEN
                    return True
    except OSError:
        # No /proc (not Linux): a connect probe, which costs QEMU's first client slot.
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0
    return False


def alive(pid: int) -> bool:
    """True if `pid` runs (reaps it first if it is our own finished child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: the normal case after `flash` exited
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def kill_group(pgid: int, grace: float = 3.0) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not alive(pgid):
                return
            time.sleep(0.02)


def _check_installed(qemu: str) -> None:
    if shutil.which(qemu) is None:
        raise LenetMcuError(f"{qemu} not found: install it (Debian/Ubuntu: sudo apt install qemu-system-arm)")


def _launch(cmd: list[str], log) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True
    )


def _wait_listening(proc: subprocess.Popen, port: int, timeout: float) -> bool:
    """True once QEMU listens on `port` and still runs SETTLE_S later; False if it exited or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if listening(port):
            settle = time.monotonic() + SETTLE_S
            while time.monotonic() < settle:
                if proc.poll() is not None:
                    return False
                time.sleep(0.02)
            return True
        time.sleep(0.02)
    return False


def _what_qemu_said(text: str, returncode: int | None) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith(("qemu", QEMU))] or lines[-1:]
    if said:
        return said[0]
    return f"it exited with code {returncode}" if returncode is not None else "no output"


# --- attached: lives and dies with this process ----------------------------------


class QemuBoard:
    """One QEMU instance running `elf`; serial link at `.url` once started."""

    def __init__(
        self,
        elf: str | os.PathLike,
        icount: bool = True,
        *,
        qemu: str = QEMU,
        machine: str = DEFAULT_MACHINE,
        log_path: str | os.PathLike | None = None,
        extra_args: tuple[str, ...] = (),
    ):
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
        return command(self.elf, port, self.icount, machine=self.machine, extra_args=self.extra_args, qemu=self.qemu)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> QemuBoard:
        if self._proc is not None:
            raise RuntimeError("QemuBoard already started")
        if not self.elf.is_file():
            raise LenetMcuError(f"firmware {self.elf} not found: build it first (`lenet-mcu build`)")
        _check_installed(self.qemu)
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "wb")
        else:
            self._log = tempfile.TemporaryFile()
        for _attempt in range(5):  # the free port may be taken before QEMU binds it
            self.port = free_port()
            self._proc = _launch(self.command(self.port), self._log)
            self._finalizer = weakref.finalize(self, kill_group, self._proc.pid)
            if _wait_listening(self._proc, self.port, timeout):
                return self
            if self._proc.poll() is None:
                break
            self._finalizer()
            if "address already in use" not in self._log_text().lower():
                break
        said = _what_qemu_said(self._log_text(), self._proc.poll())
        self.stop()
        raise LenetMcuError(f"QEMU did not start {self.elf}: {said}")

    def _log_text(self) -> str:
        try:
            self._log.flush()
            if self.log_path:
                return self.log_path.read_bytes().decode(errors="replace")
            self._log.seek(0)
            return self._log.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # kills the process group once
            if self._proc is not None and self._proc.poll() is None:
                self._proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> QemuBoard:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- detached: `lenet-mcu flash` ... `lenet-mcu stop` ------------------------------


def read_state(state_file: Path) -> dict | None:
    """The state file of a detached QEMU; None if there is none or it is unreadable."""
    state_file = Path(state_file)
    if not state_file.is_file():
        return None
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _is_that_qemu(state: dict) -> bool:
    """The pid in the state file is still that QEMU (not a recycled pid)."""
    try:
        pid = int(state.get("pid", 0))
    except (TypeError, ValueError):
        return False
    if pid <= 0 or not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid
    return any(QEMU.encode() in arg for arg in cmdline) and f"127.0.0.1:{state.get('port')}".encode() in b" ".join(
        cmdline
    )


def running_detached(state_file: Path) -> dict | None:
    """The state of the detached QEMU recorded in `state_file`, if it still runs."""
    state = read_state(state_file)
    if state is not None and _is_that_qemu(state):
        return state
    Path(state_file).unlink(missing_ok=True)  # it died (or the file is damaged): stale
    return None


def start_detached(
    state_file: Path,
    log_file: Path,
    elf: Path,
    icount: bool = True,
    boot_timeout: float = 10.0,
    port: int | None = None,
    machine: str = DEFAULT_MACHINE,
    extra_args: tuple[str, ...] = (),
    **record,
) -> dict:
    """Start QEMU detached, wait until its serial port listens, write the state file.

    `port` fixes the TCP port (default: a free one), e.g. to restart the emulator
    under a running verify. `record` adds entries to the state file."""
    _check_installed(QEMU)
    elf = Path(elf).resolve()
    state_file, log_file = Path(state_file), Path(log_file)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    fixed_port = port
    said, cmd = "", []
    for _attempt in range(3 if fixed_port is None else 1):  # a free port can be taken between probe and bind
        port = fixed_port or free_port()
        cmd = command(elf, port, icount, machine=machine, extra_args=extra_args)
        with open(log_file, "wb") as log:
            proc = _launch(cmd, log)
        state = {
            "pid": proc.pid,
            "pgid": proc.pid,
            "port": port,
            "url": f"socket://127.0.0.1:{port}",
            "elf": str(elf),
            "elf_sha256": sha256_file(elf),
            "icount": icount,
            "machine": machine,
            "command": cmd,
            "log": str(log_file),
            "started_at": time.time(),
            **record,
        }
        try:
            # Written at once: if this process dies while waiting, `stop` still finds the emulator.
            write_json(state_file, state)
        except BaseException:
            kill_group(proc.pid)
            raise
        try:
            if _wait_listening(proc, port, boot_timeout):
                return state
        except BaseException:  # interrupted while waiting: leave nothing behind
            kill_group(proc.pid)
            state_file.unlink(missing_ok=True)
            raise
        if proc.poll() is None:  # never listened: do not leave it behind
            kill_group(proc.pid)
        state_file.unlink(missing_ok=True)
        text = log_file.read_text(errors="replace") if log_file.exists() else ""
        said = _what_qemu_said(text, proc.poll())
        if "address already in use" not in said.lower():
            break
    raise LenetMcuError(f"QEMU did not start {elf}: {said} (command: {shlex.join(cmd)})")


def stop_detached(state_file: Path) -> dict | None:
    """Kill the detached QEMU of `state_file` (its whole process group); None if none ran."""
    state = read_state(state_file)
    running = state is not None and _is_that_qemu(state)
    if running:
        kill_group(int(state.get("pgid", state["pid"])))
    Path(state_file).unlink(missing_ok=True)
    return state if running else None


# --- talking to a fresh emulator (tests, benchmarks) --------------------------------


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
