"""The boards lenet-mcu builds firmware for: one record each, the one place that names them.

    from lenet_mcu import boards
    board = boards.get("microbit")
    board.qemu_args()                     # ["-M", "microbit"]
    board.counter.instructions_per_tick   # 62.5 under QEMU -icount shift=0

A board is its record here plus its folder firmware/boards/<name>/: start-up
code, linker script (the memory map), board.c behind firmware/include/board.h
(clocks, UART, cost counter) and board.mk (the compiler's CPU flags). The
record tells the rest of the toolchain what it needs to know without reading
C: the core, the memory the firmware may use, the emulator that runs it, the
serial port, the cost counter and what one tick of it means, and the tools
that program the real board. See firmware/README.md, "Adding a board".
"""

from __future__ import annotations

from dataclasses import dataclass

from lenet_mcu.errors import LenetMcuError

# HELLO tick kinds: firmware/include/board.h, enum tick_kind.
TICK_TIM2, TICK_DWT, TICK_HOST_NS, TICK_SYSTICK, TICK_CMSDK_TIMER, TICK_NRF_TIMER = range(6)

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Counter:
    """The timer the firmware reads around each inference (RESULT ticks)."""

    name: str
    tick_kind: int  # the HELLO tick kind the firmware reports
    bits: int  # counter width: one measurement spans at most 2**bits - 1 ticks
    emulated_hz: float  # its rate in QEMU's model of the chip (ticks per second of emulated time)
    on_silicon: str  # what one tick is on the real chip

    @property
    def instructions_per_tick(self) -> float:
        """Under QEMU -icount shift=0 every instruction takes 1 ns of emulated time."""
        return 1e9 / self.emulated_hz


@dataclass(frozen=True)
class Probe:
    """How the real board is programmed over its debug port."""

    interface: str = ""  # openocd interface script (interface/<name>.cfg), the board's usual probe
    openocd_target: str = ""  # openocd target script, e.g. "target/stm32f4x.cfg"
    pyocd_target: str = ""  # pyocd --target name
    st_flash: bool = False  # an ST-LINK: st-flash writes firmware.bin at the flash base
    other: str = ""  # how to load it when no probe tool serves the board

    @property
    def tools(self) -> tuple[str, ...]:
        return tuple(
            t
            for t, ok in (("openocd", self.openocd_target), ("pyocd", self.pyocd_target), ("st-flash", self.st_flash))
            if ok
        )


@dataclass(frozen=True)
class Board:
    name: str  # its folder: firmware/boards/<name>/
    title: str
    core: str  # "Cortex-M4F", ...; board.mk's -mcpu names the same core
    arch: str  # architecture and the extensions the kernels care about
    flash_base: int  # where the firmware image starts (the linker script's FLASH origin)
    flash_bytes: int  # code memory the linker script gives the firmware
    ram_bytes: int  # data memory (.data, .bss, stack) the linker script gives the firmware
    uart: str  # the serial link: peripheral, pins, settings
    counter: Counter
    probe: Probe
    qemu_machine: str = ""  # qemu-system-arm -M name; "" if QEMU does not emulate the board
    qemu_options: tuple[str, ...] = ()

    @property
    def emulated(self) -> bool:
        return bool(self.qemu_machine)

    def qemu_args(self) -> list[str]:
        """The machine part of a qemu-system-arm command line: -M and its options."""
        if not self.qemu_machine:
            raise LenetMcuError(f"board {self.name} is not emulated by QEMU: flash the real board (--target board)")
        return ["-M", self.qemu_machine, *self.qemu_options]


_BOARDS = (
    Board(
        name="stm32f405",
        title="STM32F405 (Netduino Plus 2, STM32F4 boards)",
        core="Cortex-M4F",
        arch="ARMv7E-M, DSP, single-precision FPU",
        flash_base=0x0800_0000,
        flash_bytes=1 * MiB,
        ram_bytes=128 * KiB,
        uart="USART1, PA9 TX / PA10 RX, 115200 8N1",
        counter=Counter(
            "TIM2 under QEMU (DWT CYCCNT on silicon)",
            TICK_TIM2,
            32,
            1e9,
            "one CPU cycle (DWT CYCCNT); TIM2 at 84 MHz where DWT is absent",
        ),
        probe=Probe(
            interface="stlink", openocd_target="target/stm32f4x.cfg", pyocd_target="stm32f405rgtx", st_flash=True
        ),
        qemu_machine="netduinoplus2",
    ),
    Board(
        name="stm32vldiscovery",
        title="STM32VLDISCOVERY (STM32F100RB)",
        core="Cortex-M3",
        arch="ARMv7-M, no DSP extension, no FPU",
        flash_base=0x0800_0000,
        flash_bytes=128 * KiB,
        ram_bytes=8 * KiB,
        uart="USART1, PA9 TX / PA10 RX, 115200 8N1",
        counter=Counter(
            "SysTick (QEMU models no TIMx on this chip)",
            TICK_SYSTICK,
            24,
            24e6,
            "one HCLK cycle (24 MHz from the 8 MHz crystal)",
        ),
        probe=Probe(
            interface="stlink", openocd_target="target/stm32f1x.cfg", pyocd_target="stm32f100rbtx", st_flash=True
        ),
        qemu_machine="stm32vldiscovery",
    ),
    Board(
        name="microbit",
        title="BBC micro:bit v1 (nRF51822)",
        core="Cortex-M0",
        arch="ARMv6-M: no DSP, no saturation, no FPU",
        flash_base=0x0000_0000,
        flash_bytes=256 * KiB,
        ram_bytes=16 * KiB,
        uart="UART0, P0.24 TX / P0.25 RX (USB serial of the interface chip), 115200 8N1",
        counter=Counter(
            "TIMER0, 32-bit, 16 MHz", TICK_NRF_TIMER, 32, 16e6, "1/16 us (16 MHz HFCLK; the CPU also runs at 16 MHz)"
        ),
        probe=Probe(interface="cmsis-dap", openocd_target="target/nrf51.cfg", pyocd_target="nrf51"),
        qemu_machine="microbit",
    ),
    Board(
        name="mps2-an500",
        title="Arm MPS2+ with AN500 (Cortex-M7 FPGA image)",
        core="Cortex-M7",
        arch="ARMv7E-M, DSP, FPU",
        flash_base=0x0000_0000,
        flash_bytes=4 * MiB,
        ram_bytes=4 * MiB,
        uart="CMSDK UART0 at 0x40004000, 115200 8N1 (the board's USB serial port)",
        counter=Counter("CMSDK TIMER0 at 25 MHz", TICK_CMSDK_TIMER, 32, 25e6, "one 25 MHz PCLK cycle"),
        probe=Probe(
            other="the MPS2 loads firmware.bin from its SD card: copy it to the board's "
            "MB/HBI0263*/AN500/ folder and name it in images.txt"
        ),
        qemu_machine="mps2-an500",
    ),
    Board(
        name="mps2-an505",
        title="Arm MPS2+ with AN505 (Cortex-M33 IoT Kit FPGA image)",
        core="Cortex-M33",
        arch="ARMv8-M Mainline, DSP, single-precision FPU, TrustZone (runs Secure)",
        flash_base=0x1000_0000,
        flash_bytes=4 * MiB,
        ram_bytes=4 * MiB,
        uart="CMSDK UART0 at 0x50200000 (Secure alias), 115200 8N1 (the board's USB serial port)",
        counter=Counter(
            "CMSDK TIMER0 of the IoT Kit at 20 MHz", TICK_CMSDK_TIMER, 32, 20e6, "one 20 MHz MAINCLK cycle"
        ),
        probe=Probe(
            other="the MPS2 loads firmware.bin from its SD card: copy it to the board's "
            "MB/HBI0263*/AN505/ folder and name it in images.txt"
        ),
        qemu_machine="mps2-an505",
    ),
    Board(
        name="mps3-an547",
        title="Arm MPS3 with AN547 (Cortex-M55 SSE-300 FPGA image)",
        core="Cortex-M55",
        arch="ARMv8.1-M Mainline, Helium (MVE), FPU, TrustZone (runs Secure)",
        flash_base=0x1000_0000,
        flash_bytes=512 * KiB,
        ram_bytes=512 * KiB,
        uart="CMSDK UART0 at 0x59303000 (Secure alias), 115200 8N1 (the board's USB serial port)",
        counter=Counter("SysTick at the 32 MHz CPU clock", TICK_SYSTICK, 24, 32e6, "one 32 MHz CPU cycle"),
        probe=Probe(
            other="the MPS3 loads firmware.bin from its SD card: copy it to the board's "
            "MB/HBI0309*/AN547/ folder and name it in images.txt"
        ),
        qemu_machine="mps3-an547",
    ),
)

BOARDS: dict[str, Board] = {b.name: b for b in _BOARDS}
NAMES = tuple(BOARDS)
#: The board every command uses when --board is not given.
DEFAULT_BOARD = "stm32f405"


def get(name: str) -> Board:
    """The record of board `name`; a one-line error naming the known boards otherwise."""
    try:
        return BOARDS[name]
    except KeyError:
        raise LenetMcuError(f"board {name!r} is unknown, expected one of {', '.join(NAMES)}") from None


def for_tick_kind(name: str, tick_kind: int) -> Board | None:
    """The record of the board a HELLO names, if it is one of ours and reports the counter we know."""
    board = BOARDS.get(name)
    return board if board is not None and board.counter.tick_kind == tick_kind else None
