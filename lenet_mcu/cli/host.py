"""`lenet-mcu flash`, `lenet-mcu stop` and `lenet-mcu verify` (host side, no TensorFlow)."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from lenet_mcu.artifacts import firmware_elf
from lenet_mcu.boards import DEFAULT_BOARD
from lenet_mcu.cli.options import artifacts_option, board_option, data_option, runtime_option, tflm_dir_option
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host import flash as flash_mod
from lenet_mcu.host import qemu
from lenet_mcu.pipeline import built_firmware, ensure_firmware


@click.command()
@click.option(
    "--target",
    type=click.Choice(flash_mod.TARGETS),
    default=flash_mod.QEMU_TARGET,
    show_default=True,
    help="the board's emulator, or the real board through a debug probe",
)
@board_option()
@runtime_option("which firmware build to run")
@click.option(
    "--probe",
    type=click.Choice(flash_mod.PROBES),
    default="openocd",
    show_default=True,
    help="programming tool for --target board",
)
@click.option(
    "--interface",
    default=None,
    help="openocd interface config (interface/<name>.cfg): stlink, cmsis-dap, jlink... "
    "[default: the board's usual probe]",
)
@click.option(
    "--elf",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="flash this ELF instead of artifacts/build/<board>/<runtime>/firmware.elf (implies --no-build)",
)
@click.option("--build/--no-build", default=True, show_default=True, help="rebuild the firmware first if it is stale")
@click.option(
    "--icount/--no-icount",
    default=True,
    show_default=True,
    help="QEMU -icount shift=0: deterministic tick counts (instructions per tick: `lenet-mcu boards`)",
)
@tflm_dir_option
@click.option("--dry-run", is_flag=True, help="print the command line that would run, do nothing")
@artifacts_option()
def flash(target, board, runtime, probe, interface, elf, build, icount, tflm_dir, dry_run, artifacts):
    """Run the firmware: start QEMU (detached; stop with `lenet-mcu stop`) or program a board."""
    if dry_run:
        elf_path = elf or firmware_elf(artifacts, runtime, board)
        if target == flash_mod.QEMU_TARGET:
            plan = shlex.join(flash_mod.qemu_command(elf_path.resolve(), qemu.free_port(), icount, board))
        else:
            plan = str(flash_mod.flash_board(elf_path, probe=probe, interface=interface, dry_run=True, board=board))
        if not elf_path.is_file():  # the board and probe are checked first, then what would be flashed
            hint = "check --elf" if elf else f"build it with `lenet-mcu build --runtime {runtime} --board {board}`"
            raise LenetMcuError(f"--dry-run: firmware {elf_path} not found; {hint}")
        click.echo(plan)
        return
    if elf is not None:
        elf_path = elf
    elif build:
        elf_path = ensure_firmware(artifacts, runtime, board=board, tflm_dir=tflm_dir, echo=click.echo)
    else:
        elf_path = built_firmware(artifacts, runtime, board)
    if target == flash_mod.QEMU_TARGET:
        state = flash_mod.flash_qemu(artifacts, elf_path, runtime, icount=icount, board=board)
        click.echo(f"QEMU is running {state['elf']} (pid {state['pid']}); serial port: {state['url']}")
        click.echo(
            f"verify with `lenet-mcu verify --artifacts {artifacts}`, stop with `lenet-mcu stop --artifacts {artifacts}`"
        )
        return
    flash_mod.flash_board(elf_path, probe=probe, interface=interface, board=board)
    click.echo(
        f"flashed {elf_path} with {probe}; the board was reset. "
        "Verify with `lenet-mcu verify --port /dev/ttyACM0` (or your USB serial adapter)"
    )


@click.command()
@artifacts_option()
def stop(artifacts):
    """Stop the QEMU started by `lenet-mcu flash`."""
    state = flash_mod.stop_qemu(artifacts)
    if state is None:
        click.echo(f"no QEMU running for {artifacts}")
    else:
        click.echo(f"stopped QEMU (pid {state['pid']}, {state['url']})")


@click.command()
@click.option(
    "--port",
    "ports",
    multiple=True,
    help="serial port or pyserial URL: /dev/ttyACM0, socket://host:port, rfc2217://host:port; "
    "repeat it to share the images among several devices "
    "[default: the QEMU started by `lenet-mcu flash`]",
)
@click.option(
    "--devices",
    type=click.IntRange(min=0, max=64),
    default=0,
    show_default=True,
    help="start this many emulated boards running the built firmware (with --port: in addition)",
)
@runtime_option("firmware the emulated boards of --devices run")
@click.option("--baud", type=click.IntRange(min=1), default=115200, show_default=True, help="UART baud rate")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="check only the first N test images")
@click.option(
    "--resume", is_flag=True, help="continue an interrupted run from its checkpoint (with any number of devices)"
)
@data_option
@click.option(
    "--window",
    type=click.IntRange(min=1, max=32),
    default=None,
    help="INFER frames in flight per device [default: 4 over socket://, 1 on a UART]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.01),
    default=2.0,
    show_default=True,
    help="longest wait for an answer before a request is sent again (it adapts down to "
    "10x the usual answer time, at least 0.2 s)",
)
@click.option(
    "--hello-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="seconds to wait for the device's HELLO",
)
@click.option(
    "--progress/--no-progress", default=True, help="progress: a bar on a terminal, else a line every few seconds"
)
@click.option(
    "--json", "as_json", is_flag=True, help="print a JSON summary on stdout (progress and messages go to stderr)"
)
@board_option(
    "refuse a device that says it is another board; the board the emulators of --devices are "
    "[default: the board `lenet-mcu flash` started, "
    "else any]",
    default=None,
)
@artifacts_option()
def verify(
    ports,
    devices,
    runtime,
    baud,
    limit,
    resume,
    data_dir,
    window,
    timeout,
    hello_timeout,
    progress,
    as_json,
    board,
    artifacts,
):
    """Stream the MNIST test set to the device(s) and prove its int8 outputs equal the TFLM reference."""
    import contextlib
    import json
    import sys

    from lenet_mcu.artifacts import verify_dir
    from lenet_mcu.host import report
    from lenet_mcu.host.verify import VerifyFailed, run_verify

    report_json = verify_dir(artifacts) / "report.json"

    def show(rep: dict, exit_code: int) -> None:
        if as_json:
            click.echo(json.dumps({**report.summary(rep), "exit_code": exit_code, "report": str(report_json)}))
        else:
            for line in report.summary_lines(rep, artifacts):
                click.echo(line)

    try:
        elf = built_firmware(artifacts, runtime, board or DEFAULT_BOARD) if devices else None
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            rep = run_verify(
                artifacts,
                port=list(ports),
                baud=baud,
                limit=limit,
                resume=resume,
                data_dir=data_dir,
                window=window,
                timeout=timeout,
                hello_timeout=hello_timeout,
                progress=progress,
                devices=devices,
                elf=elf,
                board=board,
            )
    except VerifyFailed as exc:
        if report_json.is_file():
            show(json.loads(report_json.read_text()), exc.exit_code)
        raise
    except LenetMcuError as exc:
        if as_json:
            click.echo(json.dumps({"result": "error", "error": str(exc), "exit_code": exc.exit_code}))
        raise
    show(rep, 0)
