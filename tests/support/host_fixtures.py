"""Synthetic artifacts for the host-side tests: a fake model, MNIST-format files and references.

The images are random blobs on a blank background (so RLE matters); the
"reference" outputs are random int8 rows. Together with tests/support/fake_device.py this
exercises the whole serial check without a model, firmware or emulator.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet_mcu import mnist

TEST_COUNT = 10000  # lenet_mcu.mnist insists on the real test split size
INPUT_SCALE = np.float32(1 / 255)
INPUT_ZERO_POINT = -128


@dataclass
class Synthetic:
    artifacts: Path
    data_dir: Path
    sha256: str
    labels: np.ndarray
    tflm: np.ndarray
    inputs: np.ndarray  # int8 [N,32,32,1], as verify will send them

    def table(self) -> dict[bytes, np.ndarray]:
        return {self.inputs[i].tobytes(): self.tflm[i] for i in range(len(self.inputs))}

    def device_kwargs(self) -> dict:
        return {
            "table": self.table(),
            "sha_prefix": self.sha256[:16],
            "input_scale": float(INPUT_SCALE),
            "input_zero_point": INPUT_ZERO_POINT,
        }


def _write_idx(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    n = len(images)
    (folder / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())


def make_synthetic(root: Path, seed: int = 0, smallest_wins: bool = False) -> Synthetic:
    """smallest_wins: the references are distances (an RBF model), the smallest output names the class."""
    rng = np.random.default_rng(seed)
    images = np.zeros((TEST_COUNT, 28, 28), np.uint8)
    for i in range(TEST_COUNT):
        r, c = rng.integers(2, 14, size=2)
        h, w = rng.integers(6, 14, size=2)
        images[i, r : r + h, c : c + w] = rng.integers(1, 256, size=(h, w))
    labels = rng.integers(0, 10, size=TEST_COUNT).astype(np.uint8)
    data_dir = root / "mnist"
    _write_idx(data_dir, images, labels)

    artifacts = root / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    model = rng.bytes(4096)
    (artifacts / "lenet5_int8.tflite").write_bytes(model)
    tflm = rng.integers(-128, 128, size=(TEST_COUNT, 10)).astype(np.int8)
    # Make most labels the reference's prediction so accuracy numbers are not trivial.
    winner = tflm.argmin(axis=1) if smallest_wins else tflm.argmax(axis=1)
    agree = rng.random(TEST_COUNT) < 0.9
    labels_ref = np.where(agree, winner, labels).astype(np.uint8)
    _write_idx(data_dir, images, labels_ref)
    float_pred = np.where(rng.random(TEST_COUNT) < 0.95, winner, labels_ref).astype(np.uint8)
    tflite = tflm.copy()
    tflite[::97, 0] = np.clip(tflite[::97, 0].astype(int) + 1, -128, 127)  # host runtime differs a little
    np.savez(
        artifacts / "references.npz",
        labels=labels_ref,
        float_pred=float_pred,
        tflite_int8=tflite,
        tflm_int8=tflm,
        input_scale=INPUT_SCALE,
        input_zero_point=np.int32(INPUT_ZERO_POINT),
        model_sha256=np.str_(hashlib.sha256(model).hexdigest()),
        smallest_wins=np.bool_(smallest_wins),
    )
    inputs = mnist.quantize_input(mnist.preprocess(images), INPUT_SCALE, INPUT_ZERO_POINT)
    return Synthetic(artifacts, data_dir, hashlib.sha256(model).hexdigest(), labels_ref, tflm, inputs)
