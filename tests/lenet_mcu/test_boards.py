"""lenet_mcu.boards: one record per board folder and one folder per record, and the record
agrees with what the folder's files say (core, memory map, counter)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lenet_mcu import boards
from lenet_mcu.errors import LenetMcuError

FW = Path(__file__).resolve().parents[2] / "firmware"
BOARDS_DIR = FW / "boards"
NOT_BOARDS = {"host"}  # the PC build of the firmware used by tests, not a target
BOARD_H = (FW / "include" / "board.h").read_text()


def board_folders() -> set[str]:
    return {p.name for p in BOARDS_DIR.iterdir() if p.is_dir()} - NOT_BOARDS


def test_every_board_folder_has_a_record_and_every_record_a_folder():
    assert board_folders() == set(boards.NAMES)


@pytest.mark.parametrize("name", boards.NAMES)
def test_the_folder_holds_a_whole_board(name):
    folder = BOARDS_DIR / name
    for required in ("board.c", "startup.c", "board.mk", f"{name}.ld"):
        assert (folder / required).is_file(), f"{folder} lacks {required}"
    board_c = (folder / "board.c").read_text()
    assert f'board_name[] = "{name}"' in board_c, "HELLO must name the board as its record does"


def _make_var(mk: str, var: str) -> str:
    m = re.search(rf"^{var}\s*:?=\s*(.+)$", mk, re.M)
    assert m, f"board.mk sets no {var}"
    return m.group(1).strip()


@pytest.mark.parametrize("name", boards.NAMES)
def test_board_mk_compiles_for_the_records_core(name):
    board = boards.get(name)
    flags = _make_var((BOARDS_DIR / name / "board.mk").read_text(), "CPU_FLAGS").split()
    assert f"-mcpu={board.core.lower().removesuffix('f')}" in flags
    assert "-mthumb" in flags
    if "FPU" in board.arch and "no FPU" not in board.arch:
        assert "-mfloat-abi=hard" in flags
    else:
        assert "-mfloat-abi=soft" in flags


def _memory(ld: str) -> dict[str, tuple[int, int]]:
    sizes = {"K": 1024, "M": 1024 * 1024, "": 1}
    regions = {}
    for m in re.finditer(
        r"^\s*(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9A-Fa-f_]+|\d+)\s*,\s*"
        r"LENGTH\s*=\s*(\d+)\s*([KM]?)",
        ld,
        re.M,
    ):
        regions[m.group(1)] = (int(m.group(2).replace("_", ""), 0), int(m.group(3)) * sizes[m.group(4)])
    return regions


@pytest.mark.parametrize("name", boards.NAMES)
def test_the_linker_script_gives_the_firmware_the_records_memory(name):
    board = boards.get(name)
    regions = _memory((BOARDS_DIR / name / f"{name}.ld").read_text())
    assert regions["FLASH"] == (board.flash_base, board.flash_bytes)
    ram = regions.get("RAM") or regions.get("SRAM")
    assert ram is not None and ram[1] == board.ram_bytes


def _tick_kinds() -> dict[str, int]:
    enum = re.search(r"enum tick_kind \{(.*?)\};", BOARD_H, re.S).group(1)
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"TICK_KIND_(\w+)\s*=\s*(\d+)", enum)}


def test_tick_kinds_are_the_firmwares():
    kinds = _tick_kinds()
    assert (
        kinds["TIM2"],
        kinds["DWT"],
        kinds["HOST_NS"],
        kinds["SYSTICK"],
        kinds["CMSDK_TIMER"],
        kinds["NRF_TIMER"],
    ) == (
        boards.TICK_TIM2,
        boards.TICK_DWT,
        boards.TICK_HOST_NS,
        boards.TICK_SYSTICK,
        boards.TICK_CMSDK_TIMER,
        boards.TICK_NRF_TIMER,
    )


@pytest.mark.parametrize("name", boards.NAMES)
def test_the_board_reports_the_records_counter(name):
    board = boards.get(name)
    kind = {v: k for k, v in _tick_kinds().items()}[board.counter.tick_kind]
    assert f"TICK_KIND_{kind}" in (BOARDS_DIR / name / "board.c").read_text()
    assert board.counter.instructions_per_tick >= 1, "a tick is at least one instruction under -icount shift=0"
    assert board.counter.bits in (24, 32)


def test_unknown_board_is_a_one_line_error_naming_the_boards():
    with pytest.raises(LenetMcuError) as err:
        boards.get("arduino-uno")
    assert "arduino-uno" in err.value.message and "microbit" in err.value.message


def test_a_board_qemu_does_not_emulate_says_so():
    real_only = boards.Board("x", "x", "Cortex-M4", "", 0, 1, 1, "", boards.get("stm32f405").counter, boards.Probe())
    assert not real_only.emulated
    with pytest.raises(LenetMcuError, match="not emulated by QEMU"):
        real_only.qemu_args()


def test_boards_command_lists_every_board():
    proc = subprocess.run(
        [sys.executable, "-m", "lenet_mcu.cli", "boards", "--verbose"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for board in boards.BOARDS.values():
        (row,) = [ln for ln in lines if ln.split()[:1] == [board.name]]
        assert board.core in row and (board.qemu_machine or "(not emulated)") in row
        assert f"{board.name}: {board.title}" in proc.stdout
    assert lines[1].split()[:2] == [boards.DEFAULT_BOARD, "*"]
