"""Register-level facts of the boards beside the STM32F405 (test_board_stm32f405.py covers that
one), each board.c's board_init() run on the host against a simulated register file and its
writes checked against a source independent of the firmware:

- the vendors' CMSIS-SVD files (STM32F100xx.svd, nrf51.svd, as shipped by the cmsis-svd package):
  peripheral base addresses, register offsets, bit positions, enumerated values and interrupt
  numbers;
- QEMU's model of the MPS2/MPS3 FPGA images (`info qtree`: the UART's clock, `info mtree`:
  where the UART sits), with the CMSDK UART's control bits and divisor rule from its TRM.

QEMU ignores clocks, pins and baud divisors, so this is what stands between them and a real board.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FW = REPO / "firmware"
HARNESS = REPO / "tests" / "support" / "firmware_fixtures" / "regcheck" / "regfile.c"
BAUD = 115200

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def run_board_init(
    tmp_path: Path, board: str, presets: dict[int, int] | None = None, defines: tuple[str, ...] = ()
) -> dict:
    """board_init() of `board` on the host: {address: last value written, 'tick_kind':..., 'tick_hz':...}."""
    exe = tmp_path / f"regfile_{board}"
    sources = [FW / "boards" / board / "board.c", FW / "cortexm" / "cortexm.c", HARNESS]
    if "cmsdk.h" in sources[0].read_text():
        sources.append(FW / "cortexm" / "cmsdk.c")
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O1",
            "-Wall",
            "-Werror",
            "-DBOARD_REGISTER_TEST",
            "-DREG(a)=(*fake_reg(a))",
            f"-DUART_BAUD={BAUD}u",
            *defines,
            f"-I{FW / 'include'}",
            f"-I{FW / 'cortexm'}",
            "-include",
            str(HARNESS.with_name("regcheck.h")),
            *map(str, sources),
            "-o",
            str(exe),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    args = [f"0x{a:08X}=0x{v:08X}" for a, v in (presets or {}).items()]
    out = subprocess.run([str(exe), *args], check=True, capture_output=True, text=True).stdout
    regs = {}
    for line in out.splitlines():
        key, value = line.split()
        regs[int(key, 16) if key.startswith("0x") else key] = int(value, 0)
    return regs


# ---------------------------------------------------------------- CMSIS-SVD


class Svd:
    """One vendor SVD file: addresses, fields and enumerated values by name."""

    def __init__(self, vendor: str, filename: str):
        parser = pytest.importorskip("cmsis_svd.parser", reason="needs the cmsis-svd package (test extra)")
        try:
            device = parser.SVDParser.for_packaged_svd(vendor, filename).get_device()
        except (OSError, FileNotFoundError):
            pytest.skip(f"the installed cmsis-svd ships no {vendor}/{filename}")
        self.peripherals = {p.name: p for p in device.peripherals}

    def _register(self, periph: str, reg: str):
        for r in self.peripherals[periph].registers:
            if r.name == reg:
                return r
        raise KeyError(f"{periph}.{reg}")

    def address(self, periph: str, reg: str) -> int:
        return self.peripherals[periph].base_address + self._register(periph, reg).address_offset

    def field(self, periph: str, reg: str, name: str) -> tuple[int, int]:
        for f in self._register(periph, reg).fields:
            if f.name == name:
                return f.bit_offset, f.bit_width
        raise KeyError(f"{periph}.{reg}.{name}")

    def get(self, regs: dict, periph: str, reg: str, name: str) -> int:
        lsb, width = self.field(periph, reg, name)
        return (regs.get(self.address(periph, reg), 0) >> lsb) & ((1 << width) - 1)

    def enum(self, periph: str, reg: str, name: str, value_name: str) -> int:
        for f in self._register(periph, reg).fields:
            if f.name == name:
                for e in f.enumerated_values or []:
                    if e.name == value_name:
                        return e.value
        raise KeyError(f"{periph}.{reg}.{name}={value_name}")

    def irq(self, periph: str) -> int:
        (irq,) = self.peripherals[periph].interrupts
        return irq.value


def nvic_enabled(regs: dict, irqn: int) -> bool:
    return bool(regs.get(0xE000E100 + 4 * (irqn // 32), 0) >> (irqn % 32) & 1)


# ---------------------------------------------------------------- STM32VLDISCOVERY


@pytest.fixture(scope="module")
def f100() -> Svd:
    return Svd("STMicro", "STM32F100xx.svd")


def f100_ready(svd: Svd) -> dict[int, int]:
    """What a working 8 MHz crystal and PLL report: HSERDY, PLLRDY, SWS = PLL."""
    cr = (1 << svd.field("RCC", "CR", "HSERDY")[0]) | (1 << svd.field("RCC", "CR", "PLLRDY")[0])
    return {svd.address("RCC", "CR"): cr, svd.address("RCC", "CFGR"): 2 << svd.field("RCC", "CFGR", "SWS")[0]}


def test_stm32vldiscovery_runs_at_24_mhz_from_its_8_mhz_crystal(tmp_path, f100):
    r = run_board_init(tmp_path, "stm32vldiscovery", f100_ready(f100), ("-DHSE_HZ=8000000u",))
    prediv = f100.get(r, "RCC", "CFGR2", "PREDIV1") + 1
    pllmul = f100.get(r, "RCC", "CFGR", "PLLMUL") + 2  # RM0041: 0000 = x2 ... 0111 = x9
    assert f100.get(r, "RCC", "CFGR", "PLLSRC") == 1, "PLL from HSE / PREDIV1"
    assert f100.get(r, "RCC", "CR", "HSEON") and f100.get(r, "RCC", "CR", "PLLON")
    assert 8e6 / prediv * pllmul == 24e6, "24 MHz: the STM32F100's maximum"
    assert f100.get(r, "RCC", "CFGR", "SW") == 2, "SYSCLK = PLL"
    assert (f100.get(r, "RCC", "CFGR", "HPRE"), f100.get(r, "RCC", "CFGR", "PPRE2")) == (0, 0), "APB2 undivided"
    # USART1 on APB2 = 24 MHz, oversampling 16: BRR = 24e6 / 115200 = 208.3 -> 208.
    assert r[f100.address("USART1", "BRR")] == round(24e6 / BAUD) == 208
    assert r["tick_hz"] == 24_000_000 and r["tick_kind"] == 3, "SysTick at HCLK"


def test_stm32vldiscovery_without_a_crystal_stays_on_hsi(tmp_path, f100):
    r = run_board_init(tmp_path, "stm32vldiscovery")
    assert f100.get(r, "RCC", "CFGR", "SW") == 0 and not f100.get(r, "RCC", "CR", "HSEON")
    assert r[f100.address("USART1", "BRR")] == round(8e6 / BAUD)
    assert r["tick_hz"] == 8_000_000


def test_stm32vldiscovery_usart1_pins_and_interrupt(tmp_path, f100):
    r = run_board_init(tmp_path, "stm32vldiscovery", f100_ready(f100))
    for bit in ("UE", "TE", "RE", "RXNEIE"):
        assert f100.get(r, "USART1", "CR1", bit) == 1, bit
    assert f100.get(r, "RCC", "APB2ENR", "USART1EN") and f100.get(r, "RCC", "APB2ENR", "IOPAEN")
    # PA9 = TX: alternate-function push-pull output; PA10 = RX: input with pull-up (RM0041 Table 20).
    assert (f100.get(r, "GPIOA", "CRH", "CNF9"), f100.get(r, "GPIOA", "CRH", "MODE9")) == (0b10, 0b01)
    assert (f100.get(r, "GPIOA", "CRH", "CNF10"), f100.get(r, "GPIOA", "CRH", "MODE10")) == (0b10, 0b00)
    assert f100.get(r, "GPIOA", "ODR", "ODR10") == 1, "pull-up, not pull-down"
    assert nvic_enabled(r, f100.irq("USART1"))


# ---------------------------------------------------------------- micro:bit


@pytest.fixture(scope="module")
def nrf51() -> Svd:
    return Svd("Nordic", "nrf51.svd")


def test_microbit_uart0_on_the_interface_chip_pins_at_115200(tmp_path, nrf51):
    r = run_board_init(tmp_path, "microbit")
    assert r[nrf51.address("UART0", "ENABLE")] == nrf51.enum("UART0", "ENABLE", "ENABLE", "Enabled")
    assert r[nrf51.address("UART0", "BAUDRATE")] == nrf51.enum("UART0", "BAUDRATE", "BAUDRATE", "Baud115200")
    # micro:bit v1 schematic: P0.24 = UART TX, P0.25 = UART RX (to the KL26 interface chip).
    assert (r[nrf51.address("UART0", "PSELTXD")], r[nrf51.address("UART0", "PSELRXD")]) == (24, 25)
    assert nrf51.get(r, "UART0", "INTENSET", "RXDRDY") == 1
    assert r[nrf51.address("UART0", "TASKS_STARTTX")] == 1 and r[nrf51.address("UART0", "TASKS_STARTRX")] == 1
    assert nrf51.get(r, "GPIO", "PIN_CNF[24]", "DIR") == nrf51.enum("GPIO", "PIN_CNF[24]", "DIR", "Output")
    assert nrf51.get(r, "GPIO", "PIN_CNF[25]", "DIR") == nrf51.enum("GPIO", "PIN_CNF[25]", "DIR", "Input")
    assert nrf51.get(r, "GPIO", "PIN_CNF[25]", "PULL") == nrf51.enum("GPIO", "PIN_CNF[25]", "PULL", "Pullup")
    assert r[nrf51.address("GPIO", "OUTSET")] >> 24 & 1, "TX idles high before the UART takes it"
    assert nvic_enabled(r, nrf51.irq("UART0"))


def test_microbit_runs_from_its_16_mhz_crystal_and_counts_with_timer0(tmp_path, nrf51):
    r = run_board_init(tmp_path, "microbit")
    assert r[nrf51.address("CLOCK", "XTALFREQ")] == nrf51.enum("CLOCK", "XTALFREQ", "XTALFREQ", "16MHz")
    assert r[nrf51.address("CLOCK", "TASKS_HFCLKSTART")] == 1
    assert r[nrf51.address("TIMER0", "MODE")] == nrf51.enum("TIMER0", "MODE", "MODE", "Timer")
    assert r[nrf51.address("TIMER0", "BITMODE")] == nrf51.enum("TIMER0", "BITMODE", "BITMODE", "32Bit")
    prescaler = r[nrf51.address("TIMER0", "PRESCALER")]
    assert r[nrf51.address("TIMER0", "TASKS_START")] == 1
    assert r["tick_hz"] == 16_000_000 >> prescaler == 16_000_000 and r["tick_kind"] == 5


# ---------------------------------------------------------------- MPS2 / MPS3 (CMSDK UART)

# CMSDK APB UART (Cortex-M System Design Kit TRM, DDI0479): CTRL bit 0 TX enable, 1 RX enable,
# 3 RX interrupt enable; BAUDDIV = PCLK / baud, at least 16.
CMSDK_CTRL = {"TXEN": 1 << 0, "RXEN": 1 << 1, "RXINTEN": 1 << 3}
CMSDK_BOARDS = {"mps2-an500": "mps2-an500", "mps2-an505": "mps2-an505", "mps3-an547": "mps3-an547"}


@cache
def qemu_monitor(machine: str, command: str) -> str:
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("needs qemu-system-arm (its model of the board is the reference here)")
    proc = subprocess.run(
        ["qemu-system-arm", "-M", machine, "-S", "-nographic", "-serial", "null", "-monitor", "stdio"],
        input=f"{command}\nquit\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", proc.stdout)


def serial0_uart_pclk(machine: str) -> int:
    """pclk-frq of the UART QEMU connects to the first serial port (the one the host talks to)."""
    qtree = qemu_monitor(machine, "info qtree")
    for block in qtree.split("dev: ")[1:]:
        if block.startswith("cmsdk-apb-uart") and 'chardev = "serial0"' in block:
            return int(re.search(r"pclk-frq = (\d+)", block).group(1))
    raise AssertionError(f"no cmsdk-apb-uart on serial0 in {machine}'s qtree")


def cmsdk_uart_writes(regs: dict) -> tuple[int, int, int]:
    """(base, CTRL, BAUDDIV) of the CMSDK UART board_init() set up: the address written with a divisor."""
    bases = [a - 0x10 for a in regs if isinstance(a, int) and (a - 0x10) + 0x08 in regs and (a & 0xFFF) == 0x10]
    assert len(bases) == 1, (
        f"expected one UART set up, registers written: {sorted(hex(a) for a in regs if isinstance(a, int))}"
    )
    base = bases[0]
    return base, regs[base + 0x08], regs[base + 0x10]


@pytest.mark.parametrize("board", sorted(CMSDK_BOARDS))
def test_cmsdk_uart_divisor_from_the_machines_uart_clock(tmp_path, board):
    from lenet_mcu import boards

    r = run_board_init(tmp_path, board)
    base, ctrl, bauddiv = cmsdk_uart_writes(r)
    pclk = serial0_uart_pclk(CMSDK_BOARDS[board])
    assert bauddiv == round(pclk / BAUD) >= 16
    assert ctrl == CMSDK_CTRL["TXEN"] | CMSDK_CTRL["RXEN"] | CMSDK_CTRL["RXINTEN"]
    assert f"0x{base:08x}" in boards.get(board).uart.lower(), "the record names the UART the firmware uses"
    if board == "mps2-an500":  # no TrustZone: QEMU maps the UART straight into the address map
        assert re.search(
            rf"^\s*{base:016x}-[0-9a-f]+ \(prio 0, i/o\): uart$", qemu_monitor(board, "info mtree -f"), re.M
        )
