"""Building the firmware: from a clean clone, clear errors, up-to-date checks,
size figures, and `lenet-mcu build`'s codegen staleness rule."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fw_helpers import ECHO_DIR, ECHO_MAKE_VARS

from lenet_mcu import boards, pipeline
from lenet_mcu.artifacts import firmware_elf
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.firmware import build as fwbuild

REPO = Path(__file__).resolve().parents[2]
needs_arm = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None, reason="needs gcc-arm-none-eabi libnewlib-arm-none-eabi"
)


def test_missing_toolchain_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    with pytest.raises(LenetMcuError, match="install gcc-arm-none-eabi libnewlib-arm-none-eabi"):
        fwbuild.build_firmware("echo", ECHO_DIR, tmp_path / "b", make_vars=ECHO_MAKE_VARS)


def test_model_dir_without_model_info_is_named(tmp_path):
    with pytest.raises(LenetMcuError, match=rf"{tmp_path}.*model_info\.h.*lenet-mcu codegen"):
        fwbuild.build_firmware("native", tmp_path, tmp_path / "b")


def test_make_explains_a_missing_model_dir(tmp_path):
    proc = subprocess.run(
        ["make", "-C", str(REPO / "firmware"), f"BUILD_DIR={tmp_path}"], capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "has no model_info.h" in proc.stderr and "MODEL_DIR" in proc.stderr


@needs_arm
def test_unknown_runtime_is_one_clear_error(tmp_path):
    with pytest.raises(LenetMcuError, match="RUNTIME=nosuch: runtime directory .* does not exist"):
        fwbuild.build_firmware("nosuch", ECHO_DIR, tmp_path)


@needs_arm
def test_build_from_a_clean_clone(tmp_path):
    """Only committed files, only the Debian toolchain: the Makefile must work."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    fixture = clone / "tests" / "support" / "firmware_fixtures" / "echo"
    build = tmp_path / "build"
    proc = subprocess.run(
        [
            "make",
            "-C",
            str(clone / "firmware"),
            "RUNTIME=echo",
            "RUNTIME_DIR=",
            f"MODEL_DIR={fixture}",
            f"BUILD_DIR={build}",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("firmware.elf", "firmware.bin", "firmware.map"):
        assert (build / name).stat().st_size > 0
    assert "warning" not in proc.stderr.lower(), proc.stderr
    assert "text" in proc.stdout and "bss" in proc.stdout  # size printed


@needs_arm
def test_second_build_compiles_nothing_and_sizes_are_reported(tmp_path):
    elf = fwbuild.build_firmware("echo", ECHO_DIR, tmp_path, make_vars=ECHO_MAKE_VARS)
    first = elf.stat().st_mtime_ns
    fwbuild.build_firmware("echo", ECHO_DIR, tmp_path, make_vars=ECHO_MAKE_VARS)
    assert elf.stat().st_mtime_ns == first
    assert "arm-none-eabi-gcc" not in (tmp_path / "build.log").read_text()
    size = fwbuild.size_report(elf)
    assert size["flash_bytes"] == size["text_bytes"] + size["data_bytes"] > 1000
    parts = size["data_bytes"] + size["bss_bytes"] + size["stack_reserved_bytes"]
    assert parts <= size["ram_static_bytes"] < parts + 16  # the span: sections plus alignment gaps
    assert size["stack_reserved_bytes"] == 2048
    # A changed setting rebuilds (objects depend on the command line).
    fwbuild.build_firmware("echo", ECHO_DIR, tmp_path, make_vars={**ECHO_MAKE_VARS, "HSE_HZ": "25000000"})
    assert elf.stat().st_mtime_ns != first


@needs_arm
def test_hse_frequency_must_give_168_mhz(tmp_path):
    with pytest.raises(LenetMcuError, match="HSE_HZ"):
        fwbuild.build_firmware("echo", ECHO_DIR, tmp_path, make_vars={**ECHO_MAKE_VARS, "HSE_HZ": "12500000"})


def test_codegen_runs_only_when_the_model_or_the_generator_changed(tmp_path, monkeypatch):
    import lenet_mcu.codegen as codegen

    calls = []

    def fake_generate(runtime, tflite_path, out_dir):
        calls.append((runtime, Path(tflite_path), Path(out_dir)))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "model_info.h").write_text("/* generated */")

    monkeypatch.setattr(codegen, "generate", fake_generate, raising=False)
    tflite = tmp_path / "lenet5_int8.tflite"
    tflite.write_bytes(b"model one")
    gen = pipeline.ensure_codegen("native", tmp_path)
    assert calls == [("native", tflite, tmp_path / "codegen" / "native")] and gen == calls[0][2]
    pipeline.ensure_codegen("native", tmp_path)
    assert len(calls) == 1  # same model, same generator: not regenerated
    tflite.write_bytes(b"model two")
    pipeline.ensure_codegen("native", tmp_path)
    assert len(calls) == 2  # another model: regenerated
    pipeline.ensure_codegen("tflm", tmp_path)
    assert calls[-1][0] == "tflm"  # each runtime has its own stamp
    real_fingerprint = codegen.fingerprint
    monkeypatch.setattr(codegen, "fingerprint", lambda rt, tf: "generator changed " + real_fingerprint(rt, tf))
    pipeline.ensure_codegen("native", tmp_path)
    assert len(calls) == 4  # same model, new generator: regenerated


def test_build_command_without_a_model_fails_in_one_line(tmp_path):
    from conftest import run_cli

    proc = run_cli("build", "--runtime", "native", "--artifacts", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'lenet5_int8.tflite'} not found: run `lenet-mcu quantize --artifacts {tmp_path}` first"
    ]


@needs_arm
@pytest.mark.slow
def test_build_command_runs_codegen_then_make(fast_artifacts, tmp_path):
    from conftest import run_cli

    shutil.copy2(fast_artifacts / "lenet5_int8.tflite", tmp_path / "lenet5_int8.tflite")
    first = run_cli("build", "--runtime", "native", "--artifacts", tmp_path)
    assert first.returncode == 0, first.stderr
    assert "codegen:" in first.stdout and "flash" in first.stdout
    elf = firmware_elf(tmp_path, "native")  # build/<board>/<runtime>/
    assert elf.is_file() and (tmp_path / "codegen" / "native" / "model_info.h").is_file()
    size = fwbuild.size_report(elf)
    assert f"flash {size['flash_bytes']} B" in first.stdout
    again = run_cli("build", "--runtime", "native", "--artifacts", tmp_path)
    assert again.returncode == 0 and "codegen:" not in again.stdout  # generated sources are fresh


def test_ram_span_counts_alignment_gaps():
    sections = {".stack": 4096, ".data": 116, ".bss": 20840, ".text": 9999}
    addresses = {".stack": 0x20000000, ".data": 0x20001000, ".bss": 0x20001080, ".text": 0x08000000}
    assert fwbuild.ram_span(sections, addresses) == 0x1080 + 20840  # 12 B gap after .data counted
    assert fwbuild.ram_span({".data": 0}, {".data": 0x20000000}) == 0


def test_first_cause_names_the_missing_library():
    stderr = (
        "arm-none-eabi-g++ ... -o firmware.elf\n"
        "/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: cannot find -lstdc++_nano: "
        "No such file or directory\ncollect2: error: ld returned 1 exit status\n"
        "make: *** [Makefile:127: build/firmware.elf] Error 1\n"
    )
    assert fwbuild._first_cause(stderr) == "ld: cannot find -lstdc++_nano: No such file or directory"


@needs_arm
@pytest.mark.parametrize("board", [b for b in boards.NAMES if b != boards.DEFAULT_BOARD])
def test_every_board_builds_and_fits_its_memory(tmp_path, board):
    record = boards.get(board)
    elf = fwbuild.build_firmware("echo", ECHO_DIR, tmp_path, board=board, make_vars=ECHO_MAKE_VARS)
    size = fwbuild.size_report(elf)
    assert 1000 < size["flash_bytes"] <= record.flash_bytes
    assert size["ram_static_bytes"] <= record.ram_bytes
    header = subprocess.run(["arm-none-eabi-readelf", "-h", str(elf)], capture_output=True, text=True).stdout
    entry = int(re.search(r"Entry point address:\s+(0x[0-9a-f]+)", header).group(1), 16)
    assert record.flash_base <= entry < record.flash_base + record.flash_bytes, "the reset handler lies in FLASH"


@needs_arm
def test_firmware_too_big_for_the_board_says_needed_and_available_in_one_line(tmp_path):
    # 8 KiB of SRAM on the STM32VLDISCOVERY: a 12 KiB stack cannot fit.
    with pytest.raises(LenetMcuError) as err:
        fwbuild.build_firmware(
            "echo", ECHO_DIR, tmp_path, board="stm32vldiscovery", make_vars={**ECHO_MAKE_VARS, "STACK_SIZE": "12288"}
        )
    msg = err.value.message
    assert "\n" not in msg
    m = re.search(r"does not fit board stm32vldiscovery: needs ([\d,]+) bytes of RAM, the board has 8,192", msg)
    assert m, msg
    assert int(m.group(1).replace(",", "")) > 12288


def test_an_unknown_board_is_named(tmp_path):
    with pytest.raises(LenetMcuError, match="board 'nosuch' is unknown"):
        fwbuild.build_firmware("echo", ECHO_DIR, tmp_path, board="nosuch", make_vars=ECHO_MAKE_VARS)
