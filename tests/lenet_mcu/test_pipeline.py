"""`lenet-mcu pipeline --fast` end to end on real MNIST, and the stage commands' user errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import run_cli

from lenet_mcu import atomic


def one_line_error(proc, *fragments):
    """Exit 2, exactly one 'error: ...' line on stderr, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- end to end (fixture in conftest.py)
def test_fast_pipeline_artifacts(fast_artifacts):
    names = {p.name for p in fast_artifacts.iterdir()}
    assert {
        "lenet5.keras",
        "lenet5_int8.tflite",
        "metrics.json",
        "references.npz",
        "manifest.json",
        "confusion.png",
        "training.json",
    } <= names
    # No half-written files or stale checkpoints left behind.
    assert not [n for n in names if n.startswith(".") or ".part" in n]
    assert "checkpoint" not in names


def test_fast_pipeline_accuracy_and_references(fast_artifacts):
    metrics = json.loads((fast_artifacts / "metrics.json").read_text())
    for name, value in metrics["accuracy"].items():
        assert value > 0.8, f"{name} accuracy {value} not well above chance"
    with np.load(fast_artifacts / "references.npz") as refs:
        assert refs["tflm_int8"].shape == (10000, 10)
        assert refs["tflite_int8"].shape == (10000, 10)
        assert refs["labels"].shape == (10000,)
        assert refs["float_pred"].shape == (10000,)


def test_manifest_hashes_every_artifact(fast_artifacts):
    manifest = json.loads((fast_artifacts / "manifest.json").read_text())
    files = {p.name for p in fast_artifacts.iterdir() if p.is_file() and p.name != "manifest.json"}
    assert set(manifest["artifacts"]) == files
    for name, entry in manifest["artifacts"].items():
        assert entry["sha256"] == atomic.sha256_file(fast_artifacts / name), name
    assert manifest["config"]["fast"] is True and manifest["seed"] == manifest["config"]["seed"]
    assert list(manifest["stages"])[:3] == ["train", "quantize", "evaluate"]
    assert {"tensorflow-cpu", "keras", "tflite-runtime", "tflite-micro", "numpy", "python"} <= set(manifest["versions"])
    assert manifest["pipeline_seconds"] > 0
    assert manifest["stages"]["train"]["weights_sha256"]


@pytest.mark.slow
def test_evaluate_command_reproduces_references(fast_artifacts, mnist_dir, tmp_path):
    """`lenet-mcu evaluate` on a copy of the artifacts writes the same references and accuracies."""
    copy = tmp_path / "copy"
    shutil.copytree(fast_artifacts, copy)
    (copy / "references.npz").unlink()
    proc = run_cli("evaluate", "--data", mnist_dir, "--artifacts", copy)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "int8 TFLM (golden)" in proc.stdout
    with np.load(fast_artifacts / "references.npz") as a, np.load(copy / "references.npz") as b:
        for key in ("labels", "float_pred", "tflite_int8", "tflm_int8", "input_scale", "input_zero_point"):
            np.testing.assert_array_equal(a[key], b[key])
    old = json.loads((fast_artifacts / "metrics.json").read_text())["accuracy"]
    new = json.loads((copy / "metrics.json").read_text())["accuracy"]
    assert old == new


# ---------------------------------------------------------------- one-line user errors
@pytest.mark.parametrize("command", ["train", "quantize", "evaluate", "pipeline"])
def test_missing_data_folder(command, tmp_path):
    proc = run_cli(command, "--data", tmp_path / "no-such-folder", "--artifacts", tmp_path / "a")
    one_line_error(proc, "no-such-folder", "does not exist")


def test_data_folder_without_idx_files(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_cli("pipeline", "--fast", "--data", tmp_path / "empty", "--artifacts", tmp_path / "a")
    one_line_error(proc, "train-images-idx3-ubyte", "not found")
    assert not (tmp_path / "a").exists()  # failed before writing anything


def test_data_from_environment_variable(tmp_path):
    proc = run_cli("train", "--artifacts", tmp_path / "a", env={"LENET_MCU_MNIST_DIR": str(tmp_path / "nowhere")})
    one_line_error(proc, "nowhere", "does not exist")


def test_evaluate_corrupt_tflite(mnist_dir, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 4 + b"JUNK" + bytes(range(256)) * 4)
    proc = run_cli("evaluate", "--data", mnist_dir, "--artifacts", tmp_path / "a", "--model", bad)
    one_line_error(proc, "bad.tflite", "not a TFLite flatbuffer")


def test_evaluate_truncated_tflite_in_artifacts(fast_artifacts, mnist_dir, tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    data = (fast_artifacts / "lenet5_int8.tflite").read_bytes()
    (folder / "lenet5_int8.tflite").write_bytes(data[: len(data) // 4])
    proc = run_cli("evaluate", "--data", mnist_dir, "--artifacts", folder)
    one_line_error(proc, "lenet5_int8.tflite")


def test_evaluate_foreign_tflite(mnist_dir, tmp_path):
    from models import foreign_model

    proc = run_cli("evaluate", "--data", mnist_dir, "--artifacts", tmp_path / "a", "--model", foreign_model())
    one_line_error(proc, "sine_float.tflite", "not the int8 LeNet-5 model")


def test_evaluate_without_any_model(mnist_dir, tmp_path):
    proc = run_cli("evaluate", "--data", mnist_dir, "--artifacts", tmp_path / "empty")
    one_line_error(proc, "lenet5_int8.tflite", "not found")


def test_quantize_without_keras_model(mnist_dir, tmp_path):
    proc = run_cli("quantize", "--data", mnist_dir, "--artifacts", tmp_path / "empty")
    one_line_error(proc, "lenet5.keras", "not found", "lenet-mcu train")


def test_evaluate_corrupt_keras_model(fast_artifacts, mnist_dir, tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    shutil.copy(fast_artifacts / "lenet5_int8.tflite", folder)
    (folder / "lenet5.keras").write_bytes(b"PK\x03\x04 not really a zip")
    proc = run_cli("evaluate", "--data", mnist_dir, "--artifacts", folder)
    one_line_error(proc, "lenet5.keras", "cannot be loaded")


def test_bad_option_values(tmp_path):
    proc = run_cli("train", "--epochs", "0", "--artifacts", tmp_path / "a")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "epochs" in proc.stderr


def test_help_lists_stages_and_options():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for name in ("train", "quantize", "evaluate", "pipeline"):
        assert name in proc.stdout
    proc = run_cli("pipeline", "--help")
    assert proc.returncode == 0
    for option in (
        "--artifacts",
        "--data",
        "--seed",
        "--epochs",
        "--fast",
        "--c3-table / --full-c3",
        "--calibration-size",
        "--resume / --no-resume",
    ):
        assert option in proc.stdout, option


def test_pipeline_ends_with_a_table_of_stage_durations(tmp_path):
    from lenet_mcu.config import make_config
    from lenet_mcu.pipeline import StageContext, run_pipeline

    lines = []
    ctx = StageContext(config=make_config(fast=True), data_dir=None, artifacts=tmp_path, echo=lines.append)
    result = run_pipeline(ctx, [("first", lambda c: {"n": 1}), ("second_stage", lambda c: {})])
    table = lines[[line.split() for line in lines].index(["stage", "seconds"]) :]
    assert [line.split()[0] for line in table[1:4]] == ["first", "second_stage", "total"]
    assert all(float(line.split()[1]) >= 0 for line in table[1:4])
    assert table[-1].startswith("pipeline finished in ") and set(result["stages"]) == {"first", "second_stage"}


def test_a_failed_pipeline_still_shows_the_stages_it_finished(tmp_path):
    from lenet_mcu.config import make_config
    from lenet_mcu.pipeline import StageContext, run_pipeline

    def broken(ctx):
        raise RuntimeError("stage failed")

    lines = []
    ctx = StageContext(config=make_config(fast=True), data_dir=None, artifacts=tmp_path, echo=lines.append)
    with pytest.raises(RuntimeError):
        run_pipeline(ctx, [("train", lambda c: {}), ("quantize", broken)])
    assert [line.split()[0] for line in lines[-3:]] == ["stage", "train", "total"]
