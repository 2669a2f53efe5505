"""`lenet-mcu train`."""

from __future__ import annotations

import click

from lenet_mcu import mnist
from lenet_mcu.cli.options import config_from_options, training_options
from lenet_mcu.extras import require_extra
from lenet_mcu.pipeline import StageContext, run_stage, train_stage


@click.command()
@training_options
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="continue from the per-epoch checkpoint if one with the same settings exists",
)
def train(artifacts, data_dir, seed, epochs, fast, c3_table, subsampling, output, calibration_size, resume):
    """Train LeNet-5 on MNIST; writes lenet5.keras (checkpointing every epoch)."""
    require_extra("train", "`lenet-mcu train`")
    data_dir = mnist.check_data_dir(data_dir)
    config = config_from_options(seed, epochs, fast, c3_table, calibration_size, subsampling, output)
    run_stage("train", train_stage, StageContext(config=config, data_dir=data_dir, artifacts=artifacts, resume=resume))
