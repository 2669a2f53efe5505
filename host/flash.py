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

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lenet_mcu import boards
from lenet_mcu.artifacts import QEMU_LOG, QEMU_STATE
from lenet_mcu.boards import DEFAULT_BOARD
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host import qemu

QEMU_TARGET = "qemu"
BOARD_TARGET = "board"
TARGETS = (QEMU_TARGET, BOARD_TARGET)
PROBES = ("openocd", "st-flash", "pyocd")


# --- QEMU ------------------------------------------------------------------


def qemu_machine(board: str = DEFAULT_BOARD) -> dict:
    """The board's QEMU machine and options, as keyword arguments of host.qemu's launchers."""
    record = boards.get(board)
    record.qemu_args()  # a one-line error for a board QEMU does not emulate
    return {"machine": record.qemu_machine, "extra_args": record.qemu_options}


def qemu_command(elf: Path, port: int, icount: bool = True, board: str = DEFAULT_BOARD) -> list[str]:
    """The emulator command line for `board` (what `flash --dry-run` prints)."""
    return qemu.command(elf, port, icount, **qemu_machine(board))


def check_arm_elf(path: Path) -> None:
    """One-line error unless `path` is a whole 32-bit little-endian ARM ELF file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LenetMcuError(f"firmware {path} cannot be read: {exc.strerror}") from None
    if data[:4] != b"\x7fELF":
        raise LenetMcuError(f"firmware {path} is not an ELF file (expected the firmware.elf of `lenet-mcu build`)")
    if len(data) >= 20 and (data[4] != 1 or data[5] != 1 or int.from_bytes(data[18:20], "little") != 40):
        # not ELFCLASS32, little-endian, EM_ARM
        raise LenetMcuError(f"firmware {path} is an ELF file for another machine, expected 32-bit ARM (Cortex-M)")
    if len(data) < 52:
        raise LenetMcuError(
            f"firmware {path} is cut short: {len(data)} bytes, less than an ELF header; rebuild it (`lenet-mcu build`)"
        )
    phoff, phentsize, phnum = (
        int.from_bytes(data[28:32], "little"),
        int.from_bytes(data[42:44], "little"),
        int.from_bytes(data[44:46], "little"),
    )
    if phnum == 0 or phoff + phentsize * phnum > len(data):
        raise LenetMcuError(
            f"firmware {path} is cut short: its program headers end at byte "
            f"{phoff + phentsize * phnum}, the file has {len(data)}; rebuild it (`lenet-mcu build`)"
        )
    for k in range(phnum):
        ph = data[phoff + k * phentsize : phoff + (k + 1) * phentsize]
        offset, filesz = int.from_bytes(ph[4:8], "little"), int.from_bytes(ph[16:20], "little")
        if int.from_bytes(ph[0:4], "little") == 1 and offset + filesz > len(data):  # PT_LOAD
            raise LenetMcuError(
                f"firmware {path} is cut short: a loadable segment ends at byte "
                f"{offset + filesz}, the file has {len(data)}; rebuild it (`lenet-mcu build`)"
            )


def qemu_state_file(artifacts: Path) -> Path:
    return Path(artifacts) / QEMU_STATE


def running_qemu(artifacts: Path) -> dict | None:
    """The state of the QEMU started by `flash` for this artifacts folder, if it still runs."""
    return qemu.running_detached(qemu_state_file(artifacts))


def start_qemu(
    artifacts: Path,
    elf: Path,
    icount: bool = True,
    boot_timeout: float = 10.0,
    port: int | None = None,
    board: str = DEFAULT_BOARD,
    **record,
) -> dict:
    """Start QEMU detached with `elf` on `board`'s machine; its state goes to artifacts/qemu.json,
    its output to qemu.log.

    `port` fixes the TCP port (default: a free one), e.g. to restart the emulator
    under a running verify."""
    check_arm_elf(elf)
    return qemu.start_detached(
        qemu_state_file(artifacts),
        Path(artifacts) / QEMU_LOG,
        elf,
        icount=icount,
        boot_timeout=boot_timeout,
        port=port,
        board=board,
        **qemu_machine(board),
        **record,
    )


def stop_qemu(artifacts: Path) -> dict | None:
    """Kill the QEMU started by `flash` (its whole process group); None if none ran."""
    return qemu.stop_detached(qemu_state_file(artifacts))


def flash_qemu(
    artifacts: Path, elf: Path, runtime: str = "native", icount: bool = True, log=None, board: str = DEFAULT_BOARD
) -> dict:
    """(Re)start QEMU with the firmware `elf`; returns the state (url, pid, port, elf...)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    old = stop_qemu(artifacts)
    if old is not None:
        log(f"stopped the QEMU that was running (pid {old['pid']}, {old['url']})")
    return start_qemu(artifacts, Path(elf), icount=icount, board=board, runtime=runtime)


# --- real boards -------------------------------------------------------------


@dataclass
class ProbePlan:
    probe: str
    command: list[str]
    install_hint: str

    def __str__(self) -> str:
        return shlex.join(self.command)


def probe_plan(
    probe: str, elf: Path, interface: str | None = None, pyocd_target: str | None = None, board: str = DEFAULT_BOARD
) -> ProbePlan:
    """The command that programs `board` with `probe`; the targets come from the board's record."""
    record = boards.get(board)
    elf = Path(elf).resolve()
    if probe not in PROBES:
        raise LenetMcuError(f"probe {probe!r} is unknown, expected one of {', '.join(PROBES)}")
    if probe not in record.probe.tools:
        served = record.probe.tools
        raise LenetMcuError(
            f"board {board}: {probe} does not program it; "
            + ("use " + " or ".join(f"--probe {t}" for t in served) if served else record.probe.other)
        )
    if probe == "openocd":
        # program = erase + write + (verify) + reset; `exit` ends openocd afterwards.
        return ProbePlan(
            probe,
            [
                "openocd",
                "-f",
                f"interface/{interface or record.probe.interface}.cfg",
                "-f",
                record.probe.openocd_target,
                "-c",
                f"program {{{elf}}} verify reset exit",
            ],
            "install it with `sudo apt install openocd`",
        )
    if probe == "st-flash":
        # st-flash writes raw binaries; the firmware build makes firmware.bin next to the ELF.
        return ProbePlan(
            probe,
            ["st-flash", "--reset", "write", str(elf.with_suffix(".bin")), f"0x{record.flash_base:08x}"],
            "install it with `sudo apt install stlink-tools`",
        )
    target = pyocd_target or record.probe.pyocd_target
    return ProbePlan(
        probe,
        ["pyocd", "flash", "--target", target, str(elf)],
        f"install it with `pip install pyocd` (and `pyocd pack install {target}` if pyocd lacks it)",
    )


# Phrases in the tools' output and what the user should do about them.
_PROBE_TROUBLE = (
    (
        (
            "open failed",
            "no st-link",
            "couldn't find any st-link",
            "no device found",
            "unable to find",
            "no available debug probes",
            "no probe",
            "libusb_error_no_device",
        ),
        "no debug probe found: plug in the board's debug USB cable (or pass --probe/--interface for your probe)",
    ),
    (
        ("libusb_error_access", "permission denied"),
        "no permission to use the USB debug probe: install the udev rules of your probe (openocd ships 60-openocd.rules) and replug it",
    ),
    (
        (
            "unable to connect to the target",
            "init mode failed",
            "target not halted",
            "examination failed",
            "failed to connect",
            "no target",
            "target type not found",
            "target not found",
        ),
        "the probe does not reach the chip: check the board power, the SWD wiring and the target name",
    ),
    (
        ("verify failed", "verification failed", "contents differ"),
        "the flash does not read back what was written: retry, then check the board",
    ),
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


def flash_board(
    elf: Path,
    probe: str = "openocd",
    interface: str | None = None,
    dry_run: bool = False,
    pyocd_target: str | None = None,
    timeout: float = 180.0,
    board: str = DEFAULT_BOARD,
) -> ProbePlan:
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
        proc = subprocess.run(plan.command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LenetMcuError(f"{probe} did not finish within {timeout:g} s: is the probe stuck? replug it") from None
    if proc.returncode != 0:
        raise LenetMcuError(explain_probe_failure(plan, proc.returncode, proc.stdout + proc.stderr))
    return plan
