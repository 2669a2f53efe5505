"""MNIST from the original IDX files, validated, and the one preprocessing.

The same `preprocess` and `quantize_input` serve training, calibration,
evaluation and the on-device serial check, so every stage sees the same pixels.
Only numpy is needed here (the host-only install has no TensorFlow).
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from lenet_mcu.errors import LenetMcuError

#: Environment variable naming the folder with the four IDX files.
DATA_ENV = "LENET_MCU_MNIST_DIR"
NO_FOLDER = f"no MNIST folder given: pass --data DIR or set {DATA_ENV} (a folder with the four IDX files, .gz or raw)"

IMAGE_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned byte, 1 dimension
ROWS = COLS = 28
PAD = 2  # LeNet-5 takes 32x32: the 28x28 digit zero-padded by 2 on each side
INPUT_SIZE = ROWS + 2 * PAD

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """--data wins, then $LENET_MCU_MNIST_DIR; None means 'use the Keras cache'."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
    if data_dir is None:
        return None
    path = Path(data_dir)
    if path.exists() and not path.is_dir():
        raise LenetMcuError(f"MNIST data folder {path} is a file, expected a folder with the four IDX files")
    if not path.is_dir():
        raise LenetMcuError(f"MNIST data folder {path} does not exist (expected a folder with the four IDX files)")
    return path


def _find(folder: Path, stem: str) -> Path:
    # Accept the original names, gzipped or not, and the common '.' variant.
    candidates = [stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")]
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    raise LenetMcuError(f"MNIST file {folder / (stem + '.gz')} not found (expected {stem}[.gz] in {folder})")


def check_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """The MNIST folder; fails fast (before slow work) if none is given or it lacks an IDX file.

    Nothing is downloaded: the data comes from a folder the user names."""
    folder = resolve_data_dir(data_dir)
    if folder is None:
        raise LenetMcuError(NO_FOLDER)
    for image_stem, label_stem, _ in SPLITS.values():
        _find(folder, image_stem)
        _find(folder, label_stem)
    return folder


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:  # zlib: a damaged deflate stream
        raise LenetMcuError(f"MNIST file {path} cannot be read: {exc}") from None


def read_idx_images(path: Path, expected_count: int | None = None) -> np.ndarray:
    data = _read_bytes(path)
    if len(data) < 16:
        raise LenetMcuError(f"MNIST file {path} is truncated: {len(data)} bytes, expected a 16-byte IDX image header")
    magic, count, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != IMAGE_MAGIC:
        raise LenetMcuError(f"MNIST file {path} has magic 0x{magic:08x}, expected 0x{IMAGE_MAGIC:08x} (IDX images)")
    if (rows, cols) != (ROWS, COLS):
        raise LenetMcuError(f"MNIST file {path} holds {rows}x{cols} images, expected {ROWS}x{COLS}")
    if expected_count is not None and count != expected_count:
        raise LenetMcuError(f"MNIST file {path} holds {count} images, expected {expected_count}")
    need = 16 + count * rows * cols
    if len(data) != need:
        raise LenetMcuError(
            f"MNIST file {path} has {len(data)} bytes, expected {need} for {count} images (truncated or corrupt)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def read_idx_labels(path: Path, expected_count: int | None = None) -> np.ndarray:
    data = _read_bytes(path)
    if len(data) < 8:
        raise LenetMcuError(f"MNIST file {path} is truncated: {len(data)} bytes, expected an 8-byte IDX label header")
    magic, count = struct.unpack(">II", data[:8])
    if magic != LABEL_MAGIC:
        raise LenetMcuError(f"MNIST file {path} has magic 0x{magic:08x}, expected 0x{LABEL_MAGIC:08x} (IDX labels)")
    if expected_count is not None and count != expected_count:
        raise LenetMcuError(f"MNIST file {path} holds {count} labels, expected {expected_count}")
    if len(data) != 8 + count:
        raise LenetMcuError(
            f"MNIST file {path} has {len(data)} bytes, expected {8 + count} for {count} labels (truncated or corrupt)"
        )
    labels = np.frombuffer(data, dtype=np.uint8, offset=8)
    if labels.size and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise LenetMcuError(f"MNIST file {path} has label {labels[bad]} at index {bad}, expected 0..9")
    return labels


def load_split(split: str, data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [N,28,28], labels uint8 [N]) for 'train' or 'test'."""
    if split not in SPLITS:
        raise LenetMcuError(f"MNIST split {split!r} is unknown, expected one of {sorted(SPLITS)}")
    folder = resolve_data_dir(data_dir)
    if folder is None:
        raise LenetMcuError(NO_FOLDER)
    image_stem, label_stem, count = SPLITS[split]
    images = read_idx_images(_find(folder, image_stem), count)
    labels = read_idx_labels(_find(folder, label_stem), count)
    if len(images) != len(labels):  # unreachable with fixed counts; kept for custom sets
        raise LenetMcuError(f"MNIST {split}: {len(images)} images but {len(labels)} labels in {folder}")
    return images, labels


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 [N,28,28] -> float32 [N,32,32,1] in 0.0..1.0, zero-padded by 2."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (ROWS, COLS) or images.dtype != np.uint8:
        raise LenetMcuError(f"images of shape {images.shape} and type {images.dtype}, expected uint8 [N,{ROWS},{COLS}]")
    x = images.astype(np.float32) / np.float32(255.0)
    x = np.pad(x, ((0, 0), (PAD, PAD), (PAD, PAD)))
    return x[..., np.newaxis]


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float input -> int8 tensor with the model's input quantization.

    q = round(x / scale) + zero_point, saturated to int8; numpy rounds half to even,
    and the same function feeds the host interpreters and the device.
    """
    q = np.round(np.asarray(x, dtype=np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)
