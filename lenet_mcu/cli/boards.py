"""`lenet-mcu boards`: the boards firmware can be built for (lenet_mcu.boards)."""

from __future__ import annotations

import click

from lenet_mcu import boards


def _size(n: int) -> str:
    return f"{n // boards.MiB} MiB" if n % boards.MiB == 0 else f"{n // boards.KiB} KiB"


def _ticks(counter: boards.Counter) -> str:
    per = counter.instructions_per_tick
    return f"{per:.4g} instruction{'s' if per != 1 else ''}"


@click.command("boards")
@click.option("--verbose", "-v", is_flag=True, help="also the UART, the counter on silicon and the probe targets")
def boards_command(verbose: bool):
    """List the boards: core, flash/RAM, emulator, cost counter, flash tools (default marked *)."""
    rows = [("board", "core", "flash", "RAM", "QEMU machine", "one tick under QEMU", "flash tools")]
    for b in boards.BOARDS.values():
        rows.append(
            (
                b.name + (" *" if b.name == boards.DEFAULT_BOARD else ""),
                b.core,
                _size(b.flash_bytes),
                _size(b.ram_bytes),
                b.qemu_machine or "(not emulated)",
                _ticks(b.counter),
                ", ".join(b.probe.tools) or "none (SD card)",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if not verbose:
        return
    for b in boards.BOARDS.values():
        click.echo(f"\n{b.name}: {b.title}")
        click.echo(f"  core     {b.core}, {b.arch}")
        click.echo(f"  UART     {b.uart}")
        click.echo(f"  counter  {b.counter.name}, {b.counter.bits} bits; on silicon one tick is {b.counter.on_silicon}")
        probe = b.probe
        if probe.tools:
            click.echo(
                f"  probes   openocd -f interface/{probe.interface}.cfg -f {probe.openocd_target}"
                + (f"; pyocd --target {probe.pyocd_target}" if probe.pyocd_target else "")
                + (f"; st-flash at 0x{b.flash_base:08x}" if probe.st_flash else "")
            )
        else:
            click.echo(f"  loading  {probe.other}")
