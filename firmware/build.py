"""Build the firmware with make and read its size.

    elf = build_firmware("native", "artifacts/codegen/native", "artifacts/build/native")

make does the up-to-date check (objects depend on sources, headers and the
command line), so calling this again is cheap. The build log goes to
BUILD_DIR/build.log; the section sizes to BUILD_DIR/size.json.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from lenet_mcu import atomic, boards
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.firmware import FIRMWARE_DIR

TOOLCHAIN_HINT = (
    "install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib (scripts/setup.sh does)"
)


def check_toolchain(prefix: str = "arm-none-eabi-") -> None:
    for tool in ("gcc", "objcopy", "size"):
        if shutil.which(prefix + tool) is None:
            raise LenetMcuError(f"{prefix}{tool} not found: {TOOLCHAIN_HINT}")
    if shutil.which("make") is None:
        raise LenetMcuError("make not found: install make")


def _run_make(args: list[str], build_dir: Path, what: str, board: boards.Board | None = None) -> None:
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / "build.log"
    jobs = str(os.cpu_count() or 1)
    proc = subprocess.run(["make", "-C", str(FIRMWARE_DIR), f"-j{jobs}", *args], capture_output=True, text=True)
    atomic.write_text(log, proc.stdout + proc.stderr)
    if proc.returncode != 0:
        too_big = _does_not_fit(proc.stderr, board) if board is not None else None
        if too_big:
            raise LenetMcuError(f"{too_big} (full log: {log})")
        raise LenetMcuError(f"{what} failed: {_first_cause(proc.stderr)} (full log: {log})")


# The linker's memory regions (firmware/boards/<name>/<name>.ld) and the record field that sizes them.
_REGION_SIZE = {"FLASH": "flash_bytes", "RAM": "ram_bytes", "SRAM": "ram_bytes"}


def _does_not_fit(stderr: str, board: boards.Board) -> str | None:
    """'does not fit' with needed vs available bytes, if the linker ran out of a memory region."""
    over = re.findall(r"region `(\w+)' overflowed by (\d+) bytes", stderr)
    parts = []
    for region, excess in over:
        field = _REGION_SIZE.get(region)
        if field is None:
            parts.append(f"{region} overflowed by {int(excess):,} bytes")
            continue
        available = getattr(board, field)
        kind = "flash" if field == "flash_bytes" else "RAM"
        parts.append(f"needs {available + int(excess):,} bytes of {kind}, the board has {available:,}")
    if not parts:
        return None
    return f"the firmware does not fit board {board.name}: " + "; ".join(parts)


def _first_cause(stderr: str) -> str:
    """The one line of a failed make run that says what is wrong."""
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    for pattern in (
        r"\berror: (?!ld returned)",
        r"undefined reference|multiple definition|will not fit|overflowed|\bld: cannot find",
        r"\*\*\* (?!\[)",
    ):  # compiler, linker, then make's own $(error ...)
        for line in lines:
            if re.search(pattern, line):
                line = re.sub(r"^\S*/ld: ", "ld: ", line)  # the linker's path says nothing
                return re.sub(r"^.*?\*\*\* ", "", line).removesuffix(".  Stop.")
    return lines[-1] if lines else "no output"


def _make_vars(runtime: str, model_dir: Path, build_dir: Path, board: str, extra: dict[str, str] | None) -> list[str]:
    return [
        f"RUNTIME={runtime}",
        f"MODEL_DIR={model_dir}",
        f"BUILD_DIR={build_dir}",
        f"BOARD={board}",
        *(f"{k}={v}" for k, v in (extra or {}).items()),
    ]


def build_firmware(
    runtime: str,
    model_dir: str | os.PathLike,
    build_dir: str | os.PathLike,
    *,
    board: str = boards.DEFAULT_BOARD,
    make_vars: dict[str, str] | None = None,
) -> Path:
    """Build firmware.elf (+ .bin, .map) for `runtime` from a codegen output dir.

    Returns the path of firmware.elf; BUILD_DIR/size.json holds size_report().
    `make_vars` adds make variables (e.g. {"HSE_HZ": "25000000"}, {"TFLM_DIR": ...},
    or {"RUNTIME_DIR": ""} for a model dir that brings its own runtime).
    A firmware too big for the board's memory fails with the bytes it needs and has."""
    record = boards.get(board)
    model_dir, build_dir = Path(model_dir).resolve(), Path(build_dir).resolve()
    if not (model_dir / "model_info.h").is_file():
        raise LenetMcuError(f"{model_dir} has no model_info.h: run `lenet-mcu codegen --runtime {runtime}` first")
    check_toolchain()
    _run_make(_make_vars(runtime, model_dir, build_dir, board, make_vars), build_dir, "firmware build", record)
    elf = build_dir / "firmware.elf"
    if not elf.is_file():
        raise LenetMcuError(f"firmware build produced no {elf}")
    atomic.write_json(build_dir / "size.json", size_report(elf))
    return elf


def build_host(
    model_dir: str | os.PathLike,
    build_dir: str | os.PathLike,
    *,
    runtime: str = "native",
    make_vars: dict[str, str] | None = None,
) -> Path:
    """The same app, protocol and runtime built with gcc for this PC (stdin/stdout link)."""
    model_dir, build_dir = Path(model_dir).resolve(), Path(build_dir).resolve()
    if shutil.which("gcc") is None or shutil.which("make") is None:
        raise LenetMcuError("gcc/make not found: install build-essential")
    _run_make(_make_vars(runtime, model_dir, build_dir, "host", make_vars), build_dir, "host build")
    return build_dir / "firmware"


def build_protocol_lib(build_dir: str | os.PathLike) -> Path:
    """protocol/ as a shared library (host gcc) for the ctypes unit tests."""
    build_dir = Path(build_dir).resolve()
    if shutil.which("gcc") is None or shutil.which("make") is None:
        raise LenetMcuError("gcc/make not found: install build-essential")
    _run_make(["protolib", f"BUILD_DIR={build_dir}"], build_dir, "protocol library build")
    return build_dir / "libprotocol.so"


def size_report(elf: str | os.PathLike, size_tool: str = "arm-none-eabi-size") -> dict:
    """Section sizes of `elf` (arm-none-eabi-size -A) and the totals that matter.

    flash_bytes = text + data (what the chip stores); ram_static_bytes is
    ram_span(): the RAM the linker reserved, the same figure the device reports
    in HELLO. The stack actually used is measured on the device (STATS message,
    painted stack)."""
    proc = subprocess.run([size_tool, "-A", str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise LenetMcuError(f"{size_tool} failed on {elf}: {proc.stderr.strip()}")
    sections: dict[str, int] = {}
    addresses: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit() and parts[2].isdigit():
            sections[parts[0]] = int(parts[1])
            addresses[parts[0]] = int(parts[2])
    text = sum(sections.get(s, 0) for s in (".isr_vector", ".text", ".rodata", ".ARM.exidx", ".ARM.extab"))
    data = sections.get(".data", 0)
    bss = sections.get(".bss", 0)
    stack = sections.get(".stack", 0)
    return {
        "elf": str(elf),
        "text_bytes": text,
        "data_bytes": data,
        "bss_bytes": bss,
        "stack_reserved_bytes": stack,
        "flash_bytes": text + data,
        "ram_static_bytes": ram_span(sections, addresses),
        "sections": {k: v for k, v in sections.items() if not k.startswith(".debug")},
    }


RAM_SECTIONS = (".stack", ".data", ".bss")


def ram_span(sections: dict[str, int], addresses: dict[str, int]) -> int:
    """Static RAM, one definition everywhere: from the lowest to the highest address
    of .stack, .data and .bss, alignment gaps included (board.c computes the same
    from the linker symbols). Sections of size 0 do not count."""
    used = [(addresses[s], addresses[s] + sections[s]) for s in RAM_SECTIONS if sections.get(s)]
    return max(end for _, end in used) - min(start for start, _ in used) if used else 0
