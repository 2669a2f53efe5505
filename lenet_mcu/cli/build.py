"""`lenet-mcu build`: codegen (if stale) + firmware build for one runtime."""

from __future__ import annotations

from pathlib import Path

import click

from lenet_mcu.cli.options import artifacts_option, board_option, runtime_option, tflm_dir_option
from lenet_mcu.pipeline import ensure_firmware


@click.command()
@runtime_option("inference engine compiled into the firmware")
@artifacts_option("artifacts folder (model in, codegen/ and build/ out)")
@board_option()
@click.option(
    "--hse-hz",
    type=int,
    default=None,
    help="crystal frequency of an STM32 board in Hz (default 8000000; QEMU ignores it)",
)
@click.option(
    "--baud",
    type=click.IntRange(min=1200),
    default=None,
    help="UART rate of the firmware (default 115200; on the STM32F405 exact: 1000000, 2000000, "
    "3000000, 5250000); verify with the same --baud",
)
@tflm_dir_option
def build(runtime: str, artifacts: Path, board: str, hse_hz: int | None, baud: int | None, tflm_dir: Path | None):
    """Generate C for the int8 model if needed and build firmware.elf."""
    from lenet_mcu.firmware.build import size_report

    make_vars = {}
    if hse_hz is not None:
        make_vars["HSE_HZ"] = str(hse_hz)
    if baud is not None:
        make_vars["UART_BAUD"] = str(baud)
    elf = ensure_firmware(artifacts, runtime, board=board, tflm_dir=tflm_dir, make_vars=make_vars, echo=click.echo)
    size = size_report(elf)
    click.echo(
        f"{elf}: flash {size['flash_bytes']} B (text {size['text_bytes']} + data {size['data_bytes']}), "
        f"static RAM {size['ram_static_bytes']} B (data {size['data_bytes']} + bss {size['bss_bytes']} "
        f"+ stack {size['stack_reserved_bytes']})"
    )
