"""boards/stm32f405/board.c's board_init() against a simulated register file
(host gcc): the clock tree, flash wait states, USART1 pins and divisor, TIM2
and NVIC values, checked against RM0090's formulas computed here in Python.
QEMU ignores all of these, so this is what stands between them and a real board."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FW = REPO / "firmware"
HARNESS = Path(__file__).resolve().parents[1] / "support" / "firmware_fixtures" / "regcheck" / "regcheck.c"

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

RCC_CR, RCC_PLLCFGR, RCC_CFGR = 0x40023800, 0x40023804, 0x40023808
RCC_AHB1ENR, RCC_APB1ENR, RCC_APB2ENR = 0x40023830, 0x40023840, 0x40023844
PWR_CR, FLASH_ACR = 0x40007000, 0x40023C00
GPIOA_MODER, GPIOA_PUPDR, GPIOA_AFRH = 0x40020000, 0x4002000C, 0x40020024
USART1_BRR, USART1_CR1 = 0x40011008, 0x4001100C
TIM2_CR1, TIM2_PSC, TIM2_ARR = 0x40000000, 0x40000028, 0x4000002C
NVIC_ISER1 = 0xE000E104


def run_board_init(tmp_path: Path, hse_hz: int, ready: bool, baud: int = 115200) -> dict:
    exe = tmp_path / f"regcheck_{hse_hz}_{int(ready)}_{baud}"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O1",
            "-Wall",
            "-Werror",
            "-DBOARD_REGISTER_TEST",
            "-DREG(a)=(*fake_reg(a))",
            f"-DHSE_HZ={hse_hz}u",
            f"-DUART_BAUD={baud}u",
            f"-DCLOCKS_READY={int(ready)}",
            f"-I{FW / 'include'}",
            "-include",
            str(HARNESS.with_suffix(".h")),
            str(FW / "boards" / "stm32f405" / "board.c"),
            str(HARNESS),
            "-o",
            str(exe),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    regs = {}
    for line in out.splitlines():
        key, value = line.split()
        regs[int(key, 16) if key.startswith("0x") else key] = int(value, 0)
    return regs


def field(value: int, lsb: int, width: int) -> int:
    return (value >> lsb) & ((1 << width) - 1)


@pytest.mark.parametrize("hse_hz", [8_000_000, 12_000_000, 16_000_000, 25_000_000])
def test_clock_tree_gives_168_mhz_from_any_supported_crystal(tmp_path, hse_hz):
    r = run_board_init(tmp_path, hse_hz, ready=True)
    pll = r[RCC_PLLCFGR]
    m, n, p_bits, src, q = field(pll, 0, 6), field(pll, 6, 9), field(pll, 16, 2), field(pll, 22, 1), field(pll, 24, 4)
    p = 2 * (p_bits + 1)
    vco_in = hse_hz / m
    assert src == 1, "PLL source must be HSE"
    assert 1e6 <= vco_in <= 2e6, "RM0090 6.3.2: VCO input 1..2 MHz"
    assert 100e6 <= vco_in * n <= 432e6 and 50 <= n <= 432
    assert vco_in * n / p == 168e6
    assert vco_in * n / q == 48e6, "USB/SDIO clock must be 48 MHz"
    assert pll & ~0x0F437FFF == 0x24003010 & ~0x0F437FFF, "reserved bits keep their reset value"
    assert r[RCC_CR] & (1 << 16) and r[RCC_CR] & (1 << 24), "HSEON and PLLON"
    assert field(r[FLASH_ACR], 0, 3) == 5, "RM0090 Table 10: 5 wait states at 168 MHz, 2.7-3.6 V"
    assert r[FLASH_ACR] & (0b111 << 8) == 0b111 << 8, "prefetch, I-cache, D-cache on"
    assert r[PWR_CR] & (1 << 14), "voltage scale 1"
    cfgr = r[RCC_CFGR]
    assert field(cfgr, 0, 2) == 2, "SYSCLK = PLL"
    assert field(cfgr, 4, 4) == 0, "AHB = 168 MHz"
    assert field(cfgr, 10, 3) == 0b101, "APB1 = /4 = 42 MHz (max 42)"
    assert field(cfgr, 13, 3) == 0b100, "APB2 = /2 = 84 MHz (max 84)"
    # USART1 on APB2 = 84 MHz, oversampling 16: BRR = 84e6 / 115200 = 729.17 -> 729 (45 + 9/16).
    assert r[USART1_BRR] == 729
    assert abs(84e6 / r[USART1_BRR] / 115200 - 1) < 0.001
    assert r["tick_hz"] == 84_000_000, "TIM2 runs at 2 x PCLK1 when APB1 is divided"


def test_without_a_crystal_the_board_stays_on_hsi(tmp_path):
    r = run_board_init(tmp_path, 8_000_000, ready=False)
    assert field(r.get(RCC_CFGR, 0), 0, 2) == 0, "SYSCLK stays HSI"
    assert not r[RCC_CR] & (1 << 16), "HSE switched off again"
    assert r[USART1_BRR] == round(16e6 / 115200)  # 139
    assert r["tick_hz"] == 16_000_000 and r["tick_kind"] == 0


@pytest.mark.parametrize("baud", [9600, 115200, 921600])
def test_usart1_pins_and_divisor(tmp_path, baud):
    r = run_board_init(tmp_path, 8_000_000, ready=True, baud=baud)
    assert r[USART1_BRR] == round(84e6 / baud)
    assert abs(84e6 / r[USART1_BRR] / baud - 1) < 0.005
    assert r[RCC_AHB1ENR] & 1 and r[RCC_APB2ENR] & (1 << 4), "GPIOA and USART1 clocks on"
    assert field(r[GPIOA_MODER], 18, 2) == 2 and field(r[GPIOA_MODER], 20, 2) == 2, "PA9/PA10 alternate function"
    assert field(r[GPIOA_AFRH], 4, 4) == 7 and field(r[GPIOA_AFRH], 8, 4) == 7, "AF7 = USART1"
    assert field(r[GPIOA_PUPDR], 20, 2) == 1, "RX pull-up"
    cr1 = r[USART1_CR1]
    assert cr1 & (1 << 13) and cr1 & (1 << 3) and cr1 & (1 << 2) and cr1 & (1 << 5), "UE, TE, RE, RXNEIE"
    assert not cr1 & (1 << 15), "oversampling by 16 (the BRR formula assumes it)"
    assert r[NVIC_ISER1] == 1 << (37 - 32), "USART1 interrupt (position 37) enabled"


def test_tim2_free_runs_when_dwt_does_not_count(tmp_path):
    r = run_board_init(tmp_path, 8_000_000, ready=True)
    assert r["tick_kind"] == 0
    assert r[RCC_APB1ENR] & 1, "TIM2 clock on"
    assert r[TIM2_PSC] == 0 and r[TIM2_ARR] == 0xFFFFFFFF and r[TIM2_CR1] & 1


@pytest.mark.parametrize("baud", [1_000_000, 2_000_000, 3_000_000, 5_250_000])
def test_fast_exact_uart_rates(tmp_path, baud):
    r = run_board_init(tmp_path, 8_000_000, ready=True, baud=baud)
    assert r[USART1_BRR] * baud == 84_000_000  # exact: no rounding error at all


@pytest.mark.parametrize("baud", [2_500_000, 6_000_000])
def test_a_rate_usart1_cannot_make_does_not_build(tmp_path, baud):
    with pytest.raises(subprocess.CalledProcessError) as err:
        run_board_init(tmp_path, 8_000_000, ready=True, baud=baud)
    assert "UART_BAUD" in err.value.stderr
