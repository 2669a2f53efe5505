"""`lenet-mcu ports`: the serial ports a board's check can use (base install)."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print a JSON list instead of a table")
def ports(as_json: bool):
    """List serial ports, naming known debug probes and USB-UART bridges by their USB id."""
    from lenet_mcu.host.ports import format_ports, list_ports

    found = list_ports()
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in found], indent=2))
        return
    for line in format_ports(found):
        click.echo(line)
