"""Command-line options shared by the benchmark scripts (click decorators)."""

from __future__ import annotations

from pathlib import Path

import click


def artifacts_option(func):
    return click.option(
        "--artifacts",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=Path("artifacts"),
        show_default=True,
        help="folder with lenet5_int8.tflite and references.npz",
    )(func)


def images_option(help_text: str = "test images through QEMU"):
    return click.option("--images", type=int, default=1000, show_default=True, help=help_text)


def data_option(func):
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar="LENET_MCU_MNIST_DIR",
        help="MNIST IDX folder [env LENET_MCU_MNIST_DIR]",
    )(func)


def tflm_dir_options(required: bool):
    """--tflm-dir (reference kernels) and --tflm-cmsis-dir (CMSIS-NN kernels)."""

    def decorate(func):
        func = click.option(
            "--tflm-cmsis-dir",
            type=click.Path(file_okay=False, exists=True, path_type=Path),
            default=None,
            required=required,
            envvar="TFLM_CMSIS_DIR",
            help="TFLM tree made with OPTIMIZED_KERNEL_DIR=cmsis_nn [env TFLM_CMSIS_DIR]",
        )(func)
        return click.option(
            "--tflm-dir",
            type=click.Path(file_okay=False, exists=True, path_type=Path),
            default=None,
            required=required,
            envvar="TFLM_DIR",
            help="TFLM tree with reference kernels [env TFLM_DIR]",
        )(func)

    return decorate
