"""Shared fixtures: the MNIST folder and one fast pipeline run for the whole session.

TensorFlow stays out of the pytest process: anything that needs it runs in a
subprocess, so tests may use tflite-runtime (which breaks after a TensorFlow
import) in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_ENV = "LENET_MCU_MNIST_DIR"
ARTIFACTS_ENV = "LENET_MCU_TEST_ARTIFACTS"
_MNIST_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _has_mnist(folder: Path) -> bool:
    return all((folder / s).is_file() or (folder / (s + ".gz")).is_file() for s in _MNIST_STEMS)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Folder with the four MNIST IDX files: $LENET_MCU_MNIST_DIR or ../shared/data/mnist."""
    env = os.environ.get(MNIST_ENV)
    folder = Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "mnist"
    if not _has_mnist(folder):
        pytest.skip(f"MNIST IDX files not found in {folder} (set {MNIST_ENV})")
    return folder


def run_cli(*args, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`lenet-mcu ARGS` in a fresh Python process (TensorFlow may load there, not here)."""
    return subprocess.run(
        [sys.executable, "-m", "lenet_mcu.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def run_python(code: str, timeout: float = 600) -> dict:
    """Run a Python snippet in a subprocess; it must print one JSON object as its last stdout line."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if proc.returncode != 0:
        pytest.fail(f"subprocess failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [l for l in proc.stdout.strip().splitlines() if l.startswith("{")]
    if not lines:
        pytest.fail(f"subprocess printed no JSON:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


@pytest.fixture(scope="session")
def fast_artifacts(mnist_dir, tmp_path_factory) -> Path:
    """Artifacts of `lenet-mcu pipeline --fast`, made once per session.

    Set LENET_MCU_TEST_ARTIFACTS to an existing artifacts folder (with manifest.json)
    to reuse it instead while iterating locally.
    """
    reuse = os.environ.get(ARTIFACTS_ENV)
    if reuse and (Path(reuse) / "manifest.json").is_file():
        return Path(reuse)
    out = tmp_path_factory.mktemp("fast-artifacts")
    proc = run_cli("pipeline", "--fast", "--until", "evaluate", "--data", mnist_dir, "--artifacts", out, timeout=900)
    if proc.returncode != 0:
        pytest.fail(
            f"lenet-mcu pipeline --fast failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
    out.with_name(out.name + ".log").write_text(proc.stdout + proc.stderr)  # beside, not inside: not an artifact
    return out
