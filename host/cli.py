"""`lenet-mcu flash`, `lenet-mcu stop` and `lenet-mcu verify` (host side, no TensorFlow)."""
from __future__ import annotations

import shlex
from pathlib import Path

import click

from lenet_mcu.host import flash as flash_mod

DEFAULT_ARTIFACTS = Path("artifacts")

artifacts_option = click.option(
    "--artifacts", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_ARTIFACTS,
    show_default=True, help="artifacts folder (model, references, firmware, reports)")


@click.command()
@click.option("--target", type=click.Choice(flash_mod.TARGETS), default=flash_mod.QEMU_TARGET, show_default=True,
              help="the emulator, or a real STM32F405 board through a debug probe")
@click.option("--runtime", type=click.Choice(flash_mod.RUNTIMES), default="native", show_default=True,
              help="which firmware build to run")
@click.option("--probe", type=click.Choice(flash_mod.PROBES), default="openocd", show_default=True,
              help="programming tool for --target stm32f405")
@click.option("--interface", default="stlink", show_default=True,
              help="openocd interface config (interface/<name>.cfg): stlink, cmsis-dap, jlink...")
@click.option("--elf", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="flash this ELF instead of artifacts/build/<runtime>/firmware.elf (implies --no-build)")
@click.option("--build/--no-build", default=True, show_default=True, help="rebuild the firmware first if it is stale")
@click.option("--icount/--no-icount", default=True, show_default=True,
              help="QEMU -icount shift=0: deterministic tick counts (one per instruction)")
@click.option("--tflm-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              envvar="TFLM_DIR", help="TensorFlow Lite Micro source tree, to build --runtime tflm [env TFLM_DIR]")
@click.option("--dry-run", is_flag=True, help="print the command line that would run, do nothing")
@artifacts_option
def flash(target, runtime, probe, interface, elf, build, icount, tflm_dir, dry_run, artifacts):
    """Run the firmware: start QEMU (detached; stop with `lenet-mcu stop`) or program a board."""
    if target == flash_mod.QEMU_TARGET:
        if dry_run:
            elf_path = elf or flash_mod.firmware_elf(artifacts, runtime)
            click.echo(shlex.join(flash_mod.qemu_command(elf_path.resolve(), flash_mod._free_port(), icount)))
            return
        state = flash_mod.flash_qemu(artifacts, runtime, build=build and elf is None, icount=icount, elf=elf,
                                     tflm_dir=tflm_dir)
        click.echo(f"QEMU is running {state['elf']} (pid {state['pid']}); serial port: {state['url']}")
        click.echo(f"verify with `lenet-mcu verify --artifacts {artifacts}`, stop with `lenet-mcu stop --artifacts {artifacts}`")
        return
    if dry_run:
        elf_path = elf or flash_mod.firmware_elf(artifacts, runtime)
    else:
        elf_path = elf or flash_mod.ensure_firmware(artifacts, runtime, build=build, tflm_dir=tflm_dir)
    plan = flash_mod.flash_board(elf_path, probe=probe, interface=interface, dry_run=dry_run)
    if dry_run:
        click.echo(str(plan))
    else:
        click.echo(f"flashed {elf_path} with {probe}; the board was reset. "
                   "Verify with `lenet-mcu verify --port /dev/ttyACM0` (or your USB serial adapter)")


@click.command()
@artifacts_option
def stop(artifacts):
    """Stop the QEMU started by `lenet-mcu flash`."""
    state = flash_mod.stop_qemu(artifacts)
    if state is None:
        click.echo(f"no QEMU running for {artifacts}")
    else:
        click.echo(f"stopped QEMU (pid {state['pid']}, {state['url']})")


@click.command()
@click.option("--port", default=None,
              help="serial port or pyserial URL: /dev/ttyACM0, socket://host:port, rfc2217://host:port "
                   "[default: the QEMU started by `lenet-mcu flash`]")
@click.option("--baud", type=click.IntRange(min=1), default=115200, show_default=True, help="UART baud rate")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="check only the first N test images")
@click.option("--resume", is_flag=True, help="continue an interrupted run from its checkpoint")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="folder with the MNIST IDX files [default: $LENET_MCU_MNIST_DIR]")
@click.option("--window", type=click.IntRange(min=1, max=32), default=None,
              help="INFER frames in flight [default: 4 over socket://, 1 on a UART]")
@click.option("--timeout", type=click.FloatRange(min=0.01), default=2.0, show_default=True,
              help="longest wait for an answer before a request is sent again (it adapts down to "
                   "10x the usual answer time, at least 0.2 s)")
@click.option("--hello-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="seconds to wait for the device's HELLO")
@click.option("--progress/--no-progress", default=True, help="progress bar on stderr (only on a terminal)")
@artifacts_option
def verify(port, baud, limit, resume, data_dir, window, timeout, hello_timeout, progress, artifacts):
    """Stream the MNIST test set to the device and prove its int8 outputs equal the TFLM reference."""
    from lenet_mcu.host.verify import VerifyFailed, run_verify

    try:
        rep = run_verify(artifacts, port=port, baud=baud, limit=limit, resume=resume, data_dir=data_dir,
                         window=window, timeout=timeout, hello_timeout=hello_timeout, progress=progress)
    except VerifyFailed:
        print_summary(artifacts)
        raise
    print_summary(artifacts, rep)


def print_summary(artifacts: Path, rep: dict | None = None) -> None:
    import json

    if rep is None:
        path = artifacts / "verify" / "report.json"
        if not path.is_file():
            return
        rep = json.loads(path.read_text())
    acc, agr, bx, t, th = rep["accuracy"], rep["agreement"], rep["bitexact"], rep["ticks"], rep["throughput"]

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.2f}%"

    click.echo(f"{rep['result'].upper()}: {rep['images']} images on {rep['device']['board']}/{rep['device']['runtime']}; "
               f"{bx['images_differing']} differ from the TFLM reference (largest difference {bx['max_abs_difference']})")
    click.echo(f"on-device accuracy {pct(acc['device'])}; agreement with float model {pct(agr['float_model'])}, "
               f"with host int8 {pct(agr['host_int8_tflite'])}")
    if t:
        click.echo(f"ticks per inference min/median/max {t['min']}/{t['median']:.0f}/{t['max']} ({t['unit']})")
    if th["images_per_second"]:
        click.echo(f"{th['images_per_second']:.1f} images/s; report: {artifacts / 'verify' / 'report.md'}")
