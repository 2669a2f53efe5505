"""`lenet-mcu quantize` and `lenet-mcu evaluate`."""

from __future__ import annotations

from pathlib import Path

import click

from lenet_mcu import mnist
from lenet_mcu.artifacts import update_manifest
from lenet_mcu.cli.options import training_options
from lenet_mcu.extras import require_extra
from lenet_mcu.pipeline import StageContext, config_for_later_stage, evaluate_summary, quantize_stage, run_stage


@click.command()
@training_options
def quantize(artifacts, data_dir, seed, epochs, fast, c3_table, subsampling, output, calibration_size):
    """Full-integer PTQ of lenet5.keras to lenet5_int8.tflite (int8 in/out, builtin int8 ops)."""
    require_extra("train", "`lenet-mcu quantize`")
    require_extra("codegen", "`lenet-mcu quantize`")
    data_dir = mnist.check_data_dir(data_dir)
    config = config_for_later_stage(
        artifacts,
        fast=fast,
        seed=seed,
        epochs=epochs,
        c3_table=c3_table,
        calibration_size=calibration_size,
        subsampling=subsampling,
        output=output,
    )
    run_stage("quantize", quantize_stage, StageContext(config=config, data_dir=data_dir, artifacts=artifacts))


@click.command()
@training_options
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="int8 .tflite to evaluate [default: ARTIFACTS/lenet5_int8.tflite]",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=16),
    default=None,
    help="processes for the TFLM interpreter [default: up to 2]",
)
def evaluate(
    artifacts, data_dir, seed, epochs, fast, c3_table, subsampling, output, calibration_size, model_path, workers
):
    """Accuracy of float, int8 desktop TFLite and int8 TFLM on the 10,000 test images.

    Writes metrics.json, references.npz and confusion.png into --artifacts.
    The training options are accepted for uniformity and do not change the evaluation.
    """
    require_extra("train", "`lenet-mcu evaluate`")
    require_extra("codegen", "`lenet-mcu evaluate`")
    from lenet_mcu.quantize.evaluate import evaluate as run_evaluate
    from lenet_mcu.quantize.tflite_check import check_lenet_int8

    data_dir = mnist.check_data_dir(data_dir)
    if model_path is not None:
        check_lenet_int8(model_path)  # one-line error for a corrupt or foreign file, before TensorFlow loads
    metrics = run_evaluate(data_dir, artifacts, model_path=model_path, workers=workers)
    update_manifest(artifacts, None, "evaluate", evaluate_summary(metrics))
