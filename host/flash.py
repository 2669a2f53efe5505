"""Put the firmware on a target: the board's QEMU emulator (detached) or the real board via a debug probe.

QEMU (`--target qemu`) runs detached in its own process group so it outlives
the `flash` command; `artifacts/qemu.json` records pid, port, board, ELF and
its sha256, and `stop` kills that process group. Verify finds the serial URL
there. The machine and its options come from the board's record
(lenet_mcu.boards).

Real boards (`--target board`) are programmed with openocd (program + verify +
reset), st-flash or pyocd, with the target names of the board's record.
`dry_run=True` returns the exact command line without running it.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lenet_mcu import boards
from lenet_mcu.artifacts import QEMU_LOG, QEMU_STATE
from lenet_mcu.atomic import sha256_file, write_json
from lenet_mcu.boards import DEFAULT_BOARD
from lenet_mcu.errors import LenetMcuError

QEMU_TARGET = "qemu"
BOARD_TARGET = "board"
TARGETS = (QEMU_TARGET, BOARD_TARGET)
PROBES = ("openocd", "st-flash", "pyocd")
QEMU_BINARY = "qemu-system-arm"


# --- QEMU ------------------------------------------------------------------

def qemu_command(elf: Path, port: int, icount: bool = True, board: str = DEFAULT_BOARD) -> list[str]:
    """The emulator command line: the board's machine, its UART on a TCP port."""
    cmd = [QEMU_BINARY, *boards.get(board).qemu_args(), "-nographic"]
    if icount:
        cmd += ["-icount", "shift=0"]  # 1 ns of emulated time per instruction: deterministic tick counts
    cmd += ["-semihosting", "-kernel", str(elf),
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on", "-monitor", "none"]
    return cmd


def check_arm_elf(path: Path) -> None:
    """One-line error unless `path` is a 32-bit little-endian ARM ELF file."""
    try:
        head = Path(path).read_bytes()[:20]
    except OSError as exc:
        raise LenetMcuError(f"firmware {path} cannot be read: {exc.strerror}") from None
    if head[:4] != b"\x7fELF":
        raise LenetMcuError(f"firmware {path} is not an ELF file (expected the firmware.elf of `lenet-mcu build`)")
    if head[4] != 1 or head[5] != 1 or int.from_bytes(head[18:20], "little") != 40:  # ELFCLASS32, LSB, EM_ARM
        raise LenetMcuError(f"firmware {path} is an ELF file for another machine, expected 32-bit ARM (Cortex-M)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
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


def _is_our_qemu(state: dict) -> bool:
    """The pid in the state file is still that QEMU (not a recycled pid)."""
    pid = int(state.get("pid", 0))
    if pid <= 0 or not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid
    return any(QEMU_BINARY.encode() in arg for arg in cmdline) and f"127.0.0.1:{state.get('port')}".encode() in b" ".join(cmdline)


def state_path(artifacts: Path) -> Path:
    return Path(artifacts) / QEMU_STATE


def read_state(artifacts: Path) -> dict | None:
    path = state_path(artifacts)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def running_qemu(artifacts: Path) -> dict | None:
    """The state of the QEMU started by `flash` for this artifacts folder, if it still runs."""
    state = read_state(artifacts)
    if state is None:
        return None
    if _is_our_qemu(state):
        return state
    state_path(artifacts).unlink(missing_ok=True)  # it died: the state file is stale
    return None


def start_qemu(artifacts: Path, elf: Path, icount: bool = True, boot_timeout: float = 10.0,
               port: int | None = None, board: str = DEFAULT_BOARD) -> dict:
    """Start QEMU detached, wait until its serial port listens, write the state file.

    `port` fixes the TCP port (default: a free one), e.g. to restart the emulator
    under a running verify."""
    artifacts = Path(artifacts)
    if shutil.which(QEMU_BINARY) is None:
        raise LenetMcuError(f"{QEMU_BINARY} not found: install it (Debian/Ubuntu: sudo apt install qemu-system-arm)")
    elf = Path(elf).resolve()
    check_arm_elf(elf)
    artifacts.mkdir(parents=True, exist_ok=True)
    log_path = artifacts / QEMU_LOG
    last_error = ""
    fixed_port = port
    for _attempt in range(3 if fixed_port is None else 1):  # a free port can be taken between probe and bind
        port = fixed_port or _free_port()
        cmd = qemu_command(elf, port, icount, board)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True)
        state = {"pid": proc.pid, "pgid": proc.pid, "port": port, "url": f"socket://127.0.0.1:{port}",
                 "board": board, "elf": str(elf), "elf_sha256": sha256_file(elf), "icount": icount,
                 "command": cmd, "log": str(log_path), "started_at": time.time()}
        # Written at once: if this process dies while waiting, `stop` still finds the emulator.
        write_json(state_path(artifacts), state)
        deadline = time.monotonic() + boot_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _port_accepts(port):
                return state
            time.sleep(0.05)
        if proc.poll() is None:  # never listened: do not leave it behind
            _kill_group(proc.pid)
        state_path(artifacts).unlink(missing_ok=True)
        lines = log_path.read_text(errors="replace").strip().splitlines() if log_path.exists() else []
        said = [ln for ln in lines if ln.startswith(("qemu", QEMU_BINARY))] or lines[-1:]
        last_error = said[0] if said else f"exit code {proc.returncode}"
        if "address already in use" not in last_error.lower():
            break
    raise LenetMcuError(f"QEMU did not start: {last_error} (command: {shlex.join(cmd)})")


def _kill_group(pgid: int, grace: float = 3.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _alive(pgid):
                return
            time.sleep(0.05)


def stop_qemu(artifacts: Path) -> dict | None:
    """Kill the QEMU started by `flash` (its whole process group); None if none ran."""
    state = read_state(artifacts)
    if state is None:
        return None
    running = _is_our_qemu(state)
    if running:
        _kill_group(int(state.get("pgid", state["pid"])))
    state_path(artifacts).unlink(missing_ok=True)
    return state if running else None


def flash_qemu(artifacts: Path, elf: Path, runtime: str = "native", icount: bool = True, log=None,
               board: str = DEFAULT_BOARD) -> dict:
    """(Re)start QEMU with the firmware `elf`; returns the state (url, pid, port, elf...)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    elf = Path(elf)
    old = stop_qemu(artifacts)
    if old is not None:
        log(f"stopped the QEMU that was running (pid {old['pid']}, {old['url']})")
    state = start_qemu(artifacts, elf, icount=icount, board=board)
    state["runtime"] = runtime
    write_json(state_path(artifacts), state)
    return state


# --- real boards -------------------------------------------------------------

@dataclass
class ProbePlan:
    probe: str
    command: list[str]
    install_hint: str

    def __str__(self) -> str:
        return shlex.join(self.command)


def probe_plan(probe: str, elf: Path, interface: str | None = None, pyocd_target: str | None = None,
               board: str = DEFAULT_BOARD) -> ProbePlan:
    """The command that programs `board` with `probe`; the targets come from the board's record."""
    record = boards.get(board)
    elf = Path(elf).resolve()
    if probe not in PROBES:
        raise LenetMcuError(f"probe {probe!r} is unknown, expected one of {', '.join(PROBES)}")
    if probe not in record.probe.tools:
        served = ", ".join(record.probe.tools)
        raise LenetMcuError(f"board {board}: {probe} does not program it; "
                            + (f"use --probe {served.replace(', ', ' or --probe ')}" if served else record.probe.other))
    if probe == "openocd":
        # program = erase + write + (verify) + reset; `exit` ends openocd afterwards.
        return ProbePlan(probe, ["openocd", "-f", f"interface/{interface or record.probe.interface}.cfg",
                                 "-f", record.probe.openocd_target,
                                 "-c", f"program {{{elf}}} verify reset exit"],
                         "install it with `sudo apt install openocd`")
    if probe == "st-flash":
        # st-flash writes raw binaries; the firmware build makes firmware.bin next to the ELF.
        return ProbePlan(probe, ["st-flash", "--reset", "write", str(elf.with_suffix(".bin")),
                                 f"0x{record.flash_base:08x}"],
                         "install it with `sudo apt install stlink-tools`")
    target = pyocd_target or record.probe.pyocd_target
    return ProbePlan(probe, ["pyocd", "flash", "--target", target, str(elf)],
                     f"install it with `pip install pyocd` (and `pyocd pack install {target}` if pyocd lacks it)")


# Phrases in the tools' output and what the user should do about them.
_PROBE_TROUBLE = (
    (("open failed", "no st-link", "couldn't find any st-link", "no device found", "unable to find",
      "no available debug probes", "no probe", "libusb_error_no_device"),
     "no debug probe found: plug in the board's debug USB cable (or pass --probe/--interface for your probe)"),
    (("libusb_error_access", "permission denied"),
     "no permission to use the USB debug probe: install the udev rules of your probe (openocd ships 60-openocd.rules) and replug it"),
    (("unable to connect to the target", "init mode failed", "target not halted", "examination failed",
      "failed to connect", "no target", "target type not found", "target not found"),
     "the probe does not reach the chip: check the board power, the SWD wiring and the target name"),
    (("verify failed", "verification failed", "contents differ"),
     "the flash does not read back what was written: retry, then check the board"),
)


def explain_probe_failure(plan: ProbePlan, returncode: int, output: str) -> str:
    low = output.lower()
    for phrases, advice in _PROBE_TROUBLE:
        if any(p in low for p in phrases):
            return f"{plan.probe}: {advice}"
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    last = (errors or lines or [f"exit code {returncode}"])[-1]
    return f"{plan.probe} failed (exit code {returncode}): {last}"


def flash_board(elf: Path, probe: str = "openocd", interface: str | None = None, dry_run: bool = False,
                pyocd_target: str | None = None, timeout: float = 180.0, board: str = DEFAULT_BOARD) -> ProbePlan:
    """Program, verify and reset the real board; `dry_run` only returns the plan."""
    plan = probe_plan(probe, elf, interface, pyocd_target, board)
    if dry_run:
        return plan
    image = Path(plan.command[-2] if probe == "st-flash" else elf)
    if not image.is_file():
        raise LenetMcuError(f"firmware image {image} not found: run `lenet-mcu build` first")
    if shutil.which(plan.command[0]) is None:
        raise LenetMcuError(f"{plan.command[0]} not found: {plan.install_hint}")
    try:
        proc = subprocess.run(plan.command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LenetMcuError(f"{probe} did not finish within {timeout:g} s: is the probe stuck? replug it") from None
    if proc.returncode != 0:
        raise LenetMcuError(explain_probe_failure(plan, proc.returncode, proc.stdout + proc.stderr))
    return plan
