"""`lenet-mcu flash` / `stop`: QEMU lifecycle and the real-board probe command lines."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lenet_mcu.artifacts import firmware_elf
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host import flash, qemu

pytestmark = pytest.mark.base

needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="needs qemu-system-arm and arm-none-eabi-gcc",
)


def _run_main(*args):
    """Run `lenet-mcu ...` in a subprocess, as a user would (exit code, one-line errors)."""
    proc = subprocess.run([sys.executable, "-m", "lenet_mcu.cli", *args], capture_output=True, text=True, timeout=120)
    return proc


# --- real boards: dry runs and errors ---------------------------------------

# Exact command lines per board and probe: interface and target scripts from openocd's own
# script folders (interface/, target/), pyocd target names, st-flash's flash base address.
PROBE_COMMANDS = {
    (
        "stm32f405",
        "openocd",
    ): "openocd -f interface/stlink.cfg -f target/stm32f4x.cfg -c 'program {{{elf}}} verify reset exit'",
    ("stm32f405", "st-flash"): "st-flash --reset write {bin} 0x08000000",
    ("stm32f405", "pyocd"): "pyocd flash --target stm32f405rgtx {elf}",
    (
        "stm32vldiscovery",
        "openocd",
    ): "openocd -f interface/stlink.cfg -f target/stm32f1x.cfg -c 'program {{{elf}}} verify reset exit'",
    ("stm32vldiscovery", "st-flash"): "st-flash --reset write {bin} 0x08000000",
    ("stm32vldiscovery", "pyocd"): "pyocd flash --target stm32f100rbtx {elf}",
    (
        "microbit",
        "openocd",
    ): "openocd -f interface/cmsis-dap.cfg -f target/nrf51.cfg -c 'program {{{elf}}} verify reset exit'",
    ("microbit", "pyocd"): "pyocd flash --target nrf51 {elf}",
}
QEMU_MACHINES = {
    "stm32f405": "netduinoplus2",
    "stm32vldiscovery": "stm32vldiscovery",
    "microbit": "microbit",
    "mps2-an500": "mps2-an500",
    "mps2-an505": "mps2-an505",
    "mps3-an547": "mps3-an547",
}


def _built(artifacts: Path, runtime: str, board: str) -> Path:
    """A stand-in for the firmware `lenet-mcu build` writes (a dry run only checks that it exists)."""
    elf = firmware_elf(artifacts, runtime, board)
    elf.parent.mkdir(parents=True)
    elf.write_bytes(b"\x7fELF")
    return elf


@pytest.mark.parametrize("board,probe", sorted(PROBE_COMMANDS))
def test_probe_dry_run_prints_the_exact_command(tmp_path, board, probe):
    elf = _built(tmp_path, "tflm", board).resolve()
    proc = _run_main(
        "flash",
        "--target",
        "board",
        "--board",
        board,
        "--runtime",
        "tflm",
        "--probe",
        probe,
        "--dry-run",
        "--artifacts",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == PROBE_COMMANDS[board, probe].format(elf=elf, bin=elf.with_suffix(".bin"))


@pytest.mark.parametrize("board", sorted(QEMU_MACHINES))
@pytest.mark.parametrize("probe", flash.PROBES)
def test_a_probe_that_does_not_serve_the_board_is_a_one_line_error(tmp_path, board, probe):
    if (board, probe) in PROBE_COMMANDS:
        pytest.skip(f"{probe} serves {board}")
    proc = _run_main(
        "flash", "--target", "board", "--board", board, "--probe", probe, "--dry-run", "--artifacts", str(tmp_path)
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"board {board}: {probe} does not program it" in proc.stderr
    # the FPGA boards name their SD-card route, the others the probes that do serve them
    assert ("SD card" in proc.stderr) if board.startswith("mps") else ("--probe" in proc.stderr)


def test_the_interface_option_overrides_the_boards_usual_probe(tmp_path):
    _built(tmp_path, "native", "microbit")
    proc = _run_main(
        "flash",
        "--target",
        "board",
        "--board",
        "microbit",
        "--interface",
        "jlink",
        "--dry-run",
        "--artifacts",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("openocd -f interface/jlink.cfg -f target/nrf51.cfg ")


@pytest.mark.parametrize("board", sorted(QEMU_MACHINES))
def test_qemu_dry_run_prints_the_emulator_command(tmp_path, board):
    _built(tmp_path, "native", board)
    proc = _run_main("flash", "--board", board, "--dry-run", "--artifacts", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip()
    elf = (tmp_path / "build" / board / "native" / "firmware.elf").resolve()
    assert out.startswith(
        f"qemu-system-arm -M {QEMU_MACHINES[board]} -nographic -icount shift=0 -semihosting -kernel {elf} "
    )
    assert ",server=on,wait=off,nodelay=on -monitor none" in out


def test_an_unknown_board_is_a_one_line_error(tmp_path):
    proc = _run_main("flash", "--board", "arduino-uno", "--dry-run", "--artifacts", str(tmp_path))
    assert proc.returncode == 2
    assert "arduino-uno" in proc.stderr and "stm32f405" in proc.stderr


@pytest.mark.parametrize("target", flash.TARGETS)
def test_dry_run_without_firmware_says_so(tmp_path, target):
    proc = _run_main("flash", "--target", target, "--dry-run", "--artifacts", str(tmp_path))
    elf = firmware_elf(tmp_path, "native", "stm32f405")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        f"error: --dry-run: firmware {elf} not found; "
        "build it with `lenet-mcu build --runtime native --board stm32f405`\n"
    )


def test_missing_tool_is_a_one_line_error(tmp_path, monkeypatch):
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for probe, hint in (
        ("openocd", "apt install openocd"),
        ("st-flash", "apt install stlink-tools"),
        ("pyocd", "pip install pyocd"),
    ):
        if probe == "st-flash":
            elf.with_suffix(".bin").write_bytes(b"\0")
        with pytest.raises(LenetMcuError) as err:
            flash.flash_board(elf, probe=probe)
        msg = err.value.message
        assert f"{probe} not found" in msg and hint in msg and "\n" not in msg


def _fake_tool(folder: Path, name: str, output: str, code: int) -> Path:
    folder.mkdir(exist_ok=True)
    tool = folder / name
    tool.write_text(f"#!/bin/sh\necho \"$0 $@\" > {folder}/{name}.argv\necho '{output}' >&2\nexit {code}\n")
    tool.chmod(0o755)
    return tool


@pytest.mark.parametrize(
    "output,expected",
    [
        ("Error: open failed", "no debug probe found: plug in the board's debug USB cable"),
        ("Error: libusb_open() failed with LIBUSB_ERROR_ACCESS", "no permission to use the USB debug probe"),
        ("Error: init mode failed (unable to connect to the target)", "the probe does not reach the chip"),
        ("Error: something odd happened\nmore text", "openocd failed (exit code 1): Error: something odd happened"),
    ],
)
def test_probe_failures_are_explained(tmp_path, monkeypatch, output, expected):
    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir, "openocd", output, 1)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    with pytest.raises(LenetMcuError) as err:
        flash.flash_board(elf, probe="openocd")
    assert expected in err.value.message


def test_successful_flash_runs_the_planned_command(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir, "st-flash", "Flash written and verified! jolly good!", 0)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    elf.with_suffix(".bin").write_bytes(b"\0" * 16)
    plan = flash.flash_board(elf, probe="st-flash")
    argv = (bin_dir / "st-flash.argv").read_text().split()
    assert argv[1:] == plan.command[1:]


@pytest.mark.skipif(shutil.which("openocd") is None, reason="needs openocd")
def test_real_openocd_without_a_board_says_plug_it_in(tmp_path):
    """openocd is installed here but no ST-Link is plugged in."""
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    with pytest.raises(LenetMcuError) as err:
        flash.flash_board(elf, probe="openocd", timeout=60)
    msg = err.value.message
    assert msg.startswith("openocd: ") and "\n" not in msg


# --- QEMU lifecycle ----------------------------------------------------------


@pytest.fixture(scope="module")
def idle_elf(tmp_path_factory):
    """A minimal Cortex-M4 image that just spins: enough to run QEMU without the real firmware."""
    folder = tmp_path_factory.mktemp("idle")
    src = folder / "idle.c"
    src.write_text(
        'void reset(void) { for (;;) { __asm__ volatile ("wfi"); } }\n'
        '__attribute__((section(".vectors"), used)) const void *vectors[2] = {(void *)0x20001000, (void *)reset};\n'
    )
    ld = folder / "idle.ld"
    ld.write_text(
        "MEMORY { FLASH (rx) : ORIGIN = 0x08000000, LENGTH = 1024K }\n"
        "SECTIONS { .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) } > FLASH }\n"
    )
    elf = folder / "idle.elf"
    subprocess.run(
        [
            "arm-none-eabi-gcc",
            "-mcpu=cortex-m4",
            "-mthumb",
            "-nostdlib",
            "-O1",
            "-T",
            str(ld),
            "-o",
            str(elf),
            str(src),
        ],
        check=True,
    )
    return elf


def _pid_gone(pid: int, wait: float = 5.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not qemu.alive(pid):
            return True
        time.sleep(0.05)
    return False


@needs_qemu
@pytest.mark.qemu
def test_flash_qemu_then_stop_leaves_no_process(tmp_path, idle_elf):
    art = tmp_path / "artifacts"
    proc = _run_main("flash", "--target", "qemu", "--elf", str(idle_elf), "--artifacts", str(art))
    assert proc.returncode == 0, proc.stderr
    state = json.loads((art / "qemu.json").read_text())
    assert f"serial port: {state['url']}" in proc.stdout
    assert state["elf_sha256"] and qemu.alive(state["pid"])
    assert flash.running_qemu(art)["pid"] == state["pid"]
    # the flash command has exited; QEMU lives on in its own session
    assert os.getsid(state["pid"]) == state["pid"]

    # flashing again replaces the running emulator
    proc2 = _run_main("flash", "--elf", str(idle_elf), "--artifacts", str(art))
    assert proc2.returncode == 0, proc2.stderr
    assert "stopped the QEMU that was running" in proc2.stderr
    state2 = json.loads((art / "qemu.json").read_text())
    assert _pid_gone(state["pid"]) and state2["pid"] != state["pid"]

    proc3 = _run_main("stop", "--artifacts", str(art))
    assert proc3.returncode == 0 and f"stopped QEMU (pid {state2['pid']}" in proc3.stdout
    assert _pid_gone(state2["pid"])
    assert not (art / "qemu.json").exists()
    proc4 = _run_main("stop", "--artifacts", str(art))
    assert proc4.returncode == 0 and "no QEMU running" in proc4.stdout


def test_stale_state_file_is_ignored(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "qemu.json").write_text(
        json.dumps({"pid": dead.pid, "pgid": dead.pid, "port": 1, "url": "socket://127.0.0.1:1"})
    )
    assert flash.running_qemu(tmp_path) is None
    assert not (tmp_path / "qemu.json").exists()


def test_state_file_with_recycled_pid_is_not_killed(tmp_path):
    """A pid that now belongs to another program is never signalled by `stop`."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        (tmp_path / "qemu.json").write_text(
            json.dumps({"pid": other.pid, "pgid": other.pid, "port": 1234, "url": "socket://127.0.0.1:1234"})
        )
        assert flash.stop_qemu(tmp_path) is None
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_verify_without_port_or_qemu_is_a_clear_error(tmp_path):
    from host_fixtures import make_synthetic

    synth = make_synthetic(tmp_path)
    proc = _run_main("verify", "--artifacts", str(synth.artifacts), "--data", str(synth.data_dir))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: no --port given and no QEMU running")
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"this is not firmware", "is not an ELF file"),
        (None, "is an ELF file for another machine"),
    ],
)
def test_flash_refuses_what_is_not_arm_firmware(tmp_path, content, expected):
    art = tmp_path / "artifacts"
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(content if content is not None else Path(sys.executable).resolve().read_bytes()[:4096])
    proc = _run_main("flash", "--elf", str(elf), "--artifacts", str(art))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: firmware ") and expected in lines[0]
    assert not (art / "qemu.json").exists()


def _arm_elf_header(phnum=1, phoff=52):
    import struct

    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    return ident + struct.pack("<HHIIIIIHHHHHH", 2, 40, 1, 0x08000000, phoff, 0, 0x05000000, 52, 32, phnum, 40, 0, 0)


@pytest.mark.parametrize(
    "content,expected",
    [
        (_arm_elf_header(), "cut short: its program headers end at byte 84"),
        (_arm_elf_header()[:40], "cut short: 40 bytes"),
        (
            _arm_elf_header() + __import__("struct").pack("<8I", 1, 0x1000, 0x08000000, 0x08000000, 5000, 5000, 5, 4),
            "cut short: a loadable segment ends at byte 9096",
        ),
    ],
)
def test_flash_refuses_a_cut_short_elf_and_starts_nothing(tmp_path, content, expected):
    art = tmp_path / "artifacts"
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(content)
    proc = _run_main("flash", "--elf", str(elf), "--artifacts", str(art))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert not (art / "qemu.json").exists()


def _qemus_running(elf) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-system-arm" in cmdline and str(elf).encode() in cmdline and qemu.alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_verify_on_emulators_leaves_none_behind_when_signalled(tmp_path, idle_elf, signum):
    from host_fixtures import make_synthetic

    synth = make_synthetic(tmp_path)
    elf = firmware_elf(synth.artifacts, "native")
    elf.parent.mkdir(parents=True)
    shutil.copy2(idle_elf, elf)  # never answers HELLO: verify waits while we signal it
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lenet_mcu.cli",
            "verify",
            "--devices",
            "2",
            "--artifacts",
            str(synth.artifacts),
            "--data",
            str(synth.data_dir),
            "--hello-timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run started in the background inherits SIGINT ignored (so would the child):
        # give the child Python's default Ctrl-C handling, as on a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 30
    while len(_qemus_running(elf)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    started = _qemus_running(elf)
    assert len(started) == 2, proc.stderr.read() if proc.poll() is not None else "emulators did not start"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == (130 if signum == signal.SIGINT else 128 + signum), err
    assert all(_pid_gone(pid) for pid in started), "an emulator outlived verify"
    assert "Traceback" not in err
