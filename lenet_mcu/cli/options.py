"""Options several commands share, declared once (with their defaults)."""

from __future__ import annotations

from pathlib import Path

import click

from lenet_mcu import boards, mnist
from lenet_mcu.artifacts import DEFAULT_ARTIFACTS, RUNTIMES
from lenet_mcu.config import OUTPUTS, SUBSAMPLINGS, PipelineConfig, make_config

_FAST = make_config(fast=True)


def artifacts_option(help: str = "artifacts folder (models, references, generated C, firmware, reports)"):
    return click.option(
        "--artifacts",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_ARTIFACTS,
        show_default=True,
        help=help,
    )


def data_option(func):
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(path_type=Path),
        default=None,
        help=f"folder with the four MNIST IDX files [default: ${mnist.DATA_ENV}]",
    )(func)


def runtime_option(help: str = "inference engine in the firmware (tflm needs --tflm-dir)"):
    return click.option("--runtime", type=click.Choice(RUNTIMES), default=RUNTIMES[0], show_default=True, help=help)


def board_option(
    help: str = "the board the firmware is for (`lenet-mcu boards` lists them)", default=boards.DEFAULT_BOARD
):
    return click.option(
        "--board", type=click.Choice(boards.NAMES), default=default, show_default=default is not None, help=help
    )


def tflm_dir_option(func):
    return click.option(
        "--tflm-dir",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=None,
        envvar="TFLM_DIR",
        help="TensorFlow Lite Micro source tree for --runtime tflm [env TFLM_DIR]",
    )(func)


def training_options(func):
    """--artifacts, --data, --seed, --epochs, --fast, --c3-table/--full-c3, --subsampling, --output,
    --calibration-size."""
    options = [
        artifacts_option("output folder for every artifact"),
        data_option,
        click.option("--seed", type=int, default=None, help=f"random seed [default: {PipelineConfig.seed}]"),
        click.option(
            "--epochs",
            type=click.IntRange(min=1),
            default=None,
            help=f"training epochs [default: {PipelineConfig.epochs}, fast: {_FAST.epochs}]",
        ),
        click.option(
            "--fast",
            is_flag=True,
            help=f"smoke-test setting: {_FAST.epochs} epochs on {_FAST.train_subset} training images, "
            f"{_FAST.calibration_size} calibration images (evaluation still uses all 10,000 test images)",
        ),
        click.option(
            "--c3-table/--full-c3",
            "c3_table",
            default=None,
            help="C3 with the paper's 60-of-96 connection table, or fully connected [default: --full-c3]",
        ),
        click.option(
            "--subsampling",
            type=click.Choice(SUBSAMPLINGS),
            default=None,
            help="S2/S4: average pooling, LeCun's trainable 2x2 sum * coefficient + bias then tanh, "
            f"or 2x2 max pooling [default: {PipelineConfig.subsampling}]",
        ),
        click.option(
            "--output",
            type=click.Choice(OUTPUTS),
            default=None,
            help="output layer: dense + softmax (largest wins) or the paper's Euclidean RBF units "
            f"(smallest distance wins) [default: {PipelineConfig.output}]",
        ),
        click.option(
            "--calibration-size",
            type=click.IntRange(min=1, max=60000),
            default=None,
            help=f"training images used to calibrate int8 quantization [default: {PipelineConfig.calibration_size}]",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def config_from_options(
    seed, epochs, fast, c3_table, calibration_size, subsampling=None, output=None
) -> PipelineConfig:
    return make_config(
        fast=fast,
        seed=seed,
        epochs=epochs,
        c3_table=c3_table,
        calibration_size=calibration_size,
        subsampling=subsampling,
        output=output,
    )
