"""The `lenet-mcu` command: one subcommand per stage of the flow, plus `pipeline`.

The command line sits on top of everything: its modules (one per stage, in this
package) turn options into calls of the stage libraries and of lenet_mcu.pipeline.
Subcommands are imported lazily, so `lenet-mcu verify` never imports TensorFlow.

Exit codes (EXIT_CODES): 0 success, 1 the device's output bytes differ from the
reference, 2 bad input, usage or a missing extra (one line on stderr, no
traceback), 130 interrupted.
"""

from __future__ import annotations

import importlib
import signal
import sys

import click

from lenet_mcu import __version__, extras
from lenet_mcu.errors import LenetMcuError, Terminated

#: The documented exit codes (also in `lenet-mcu --help` and the README).
EXIT_CODES = {
    0: "success (verify: every output byte equals the reference)",
    1: "verify: device output bytes differ from the reference",
    2: "bad input, bad usage, or an extra this command needs is not installed",
    130: "interrupted (Ctrl-C); long runs resume with --resume",
    129: "terminated by SIGHUP (143: SIGTERM); emulators stopped, checkpoints kept",
}

# subcommand name -> "module:attribute"
COMMANDS = {
    "train": "lenet_mcu.cli.train:train",
    "quantize": "lenet_mcu.cli.quantize:quantize",
    "evaluate": "lenet_mcu.cli.quantize:evaluate",
    "pipeline": "lenet_mcu.cli.pipeline:pipeline",
    "codegen": "lenet_mcu.cli.codegen:codegen",
    "build": "lenet_mcu.cli.build:build",
    "flash": "lenet_mcu.cli.host:flash",
    "stop": "lenet_mcu.cli.host:stop",
    "verify": "lenet_mcu.cli.host:verify",
    "boards": "lenet_mcu.cli.boards:boards_command",
    "ports": "lenet_mcu.cli.ports:ports",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            # A stage whose optional dependencies are not installed.
            reason = extras.missing_extra_of(exc) or str(exc)  # `exc` is unbound once the except block ends

            @click.command(
                name=name,
                help=f"(unavailable: {reason})",
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            )
            def unavailable():
                raise LenetMcuError(f"'{name}' is unavailable in this install: {reason}")

            return unavailable


def _epilog() -> str:
    codes = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items())
    return (
        "\b\nThe base install runs flash, stop, verify, ports and boards; train, quantize, evaluate and\n"
        "pipeline need pip install 'lenet-mcu[train]'; codegen (and build or flash when the generated\n"
        "C is stale) needs 'lenet-mcu[codegen]'.\n\n"
        "\b\nExit codes:\n" + codes
    )


@click.group(cls=LazyGroup, invoke_without_command=True, epilog=_epilog())
@click.version_option(__version__, prog_name="lenet-mcu")
@click.pass_context
def cli(ctx):
    """LeNet-5 from training to a microcontroller, proven bit-exact over serial."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _raise_terminated(signum, frame):
    raise Terminated(signum)


def run_command(command: click.Command, argv=None) -> None:
    """Run a click command the lenet-mcu way: user errors as one line, no traceback.

    SIGTERM and SIGHUP unwind like Ctrl-C, so the emulators a command started
    are stopped and its checkpoint is closed whichever way it ends."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_terminated)
    try:
        command.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's name for a KeyboardInterrupt inside a command
        if isinstance(exc.__cause__, Terminated):
            click.echo(f"terminated ({signal.Signals(exc.__cause__.signum).name})", err=True)
            sys.exit(128 + exc.__cause__.signum)
        click.echo("aborted", err=True)
        sys.exit(130)
    except LenetMcuError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        if isinstance(exc, Terminated):
            click.echo(f"terminated ({signal.Signals(exc.signum).name})", err=True)
            sys.exit(128 + exc.signum)
        click.echo("interrupted", err=True)
        sys.exit(130)
    except ModuleNotFoundError as exc:  # an optional package imported deep inside a command
        hint = extras.missing_extra_of(exc)
        if hint is None:
            raise
        click.echo(f"error: {hint}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


def main(argv=None):
    run_command(cli, argv)
