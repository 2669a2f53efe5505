"""`lenet-mcu pipeline`: every stage in order."""

from __future__ import annotations

import click

from lenet_mcu import mnist
from lenet_mcu.cli.options import board_option, config_from_options, runtime_option, tflm_dir_option, training_options
from lenet_mcu.extras import require_extra
from lenet_mcu.pipeline import STAGE_NAMES, STAGES, StageContext, run_pipeline


@click.command()
@training_options
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="continue training from the per-epoch checkpoint if one with the same settings exists",
)
@click.option(
    "--until",
    type=click.Choice(STAGE_NAMES),
    default=STAGE_NAMES[-1],
    show_default=True,
    help="last stage to run (evaluate: host only, no firmware)",
)
@runtime_option()
@board_option("the board to build for and verify on, emulated by QEMU (`lenet-mcu boards` lists them)")
@tflm_dir_option
def pipeline(
    artifacts,
    data_dir,
    seed,
    epochs,
    fast,
    c3_table,
    subsampling,
    output,
    calibration_size,
    resume,
    until,
    runtime,
    board,
    tflm_dir,
):
    """All stages in order into --artifacts: train, quantize, evaluate, codegen,
    build, and verify on the emulated board (QEMU)."""
    require_extra("train", "`lenet-mcu pipeline`")
    require_extra("codegen", "`lenet-mcu pipeline`")
    data_dir = mnist.check_data_dir(data_dir)
    config = config_from_options(seed, epochs, fast, c3_table, calibration_size, subsampling, output)
    stages = STAGES[: STAGE_NAMES.index(until) + 1]
    run_pipeline(
        StageContext(
            config=config,
            data_dir=data_dir,
            artifacts=artifacts,
            resume=resume,
            echo=click.echo,
            runtime=runtime,
            tflm_dir=tflm_dir,
            board=board,
        ),
        stages,
    )
