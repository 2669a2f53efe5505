"""Model files for tests that are not the pipeline's own."""

from __future__ import annotations

from pathlib import Path

import pytest


def foreign_model() -> Path:
    """A real .tflite that is not ours: the float sine model shipped with tflite-micro."""
    import tflite_micro

    path = Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "sine_float.tflite"
    if not path.is_file():
        pytest.skip(f"{path} not shipped by this tflite-micro build")
    return path
