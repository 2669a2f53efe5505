"""MNIST IDX loading, validation and preprocessing (lenet_mcu.mnist)."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from lenet_mcu import mnist
from lenet_mcu.errors import LenetMcuError

pytestmark = pytest.mark.base


def idx_images(images: np.ndarray, magic: int = mnist.IMAGE_MAGIC, count: int | None = None) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", magic, n if count is None else count, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray, magic: int = mnist.LABEL_MAGIC, count: int | None = None) -> bytes:
    return struct.pack(">II", magic, len(labels) if count is None else count) + labels.astype(np.uint8).tobytes()


@pytest.fixture
def small_images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)


# ---------------------------------------------------------------- reading valid files
@pytest.mark.parametrize("gz", [False, True])
def test_reads_images_raw_and_gzipped(tmp_path, small_images, gz):
    data = idx_images(small_images)
    path = tmp_path / ("imgs.gz" if gz else "imgs")
    path.write_bytes(gzip.compress(data) if gz else data)
    got = mnist.read_idx_images(path, expected_count=5)
    assert got.dtype == np.uint8 and got.shape == (5, 28, 28)
    np.testing.assert_array_equal(got, small_images)


def test_reads_labels(tmp_path):
    labels = np.array([0, 9, 3, 3, 7], dtype=np.uint8)
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_labels(labels)))
    np.testing.assert_array_equal(mnist.read_idx_labels(path, expected_count=5), labels)


# ---------------------------------------------------------------- bad files: one clear error each
def test_wrong_magic_images(tmp_path, small_images):
    path = tmp_path / "imgs"
    path.write_bytes(idx_images(small_images, magic=0x00000801))
    with pytest.raises(LenetMcuError, match=r"magic 0x00000801, expected 0x00000803"):
        mnist.read_idx_images(path)


def test_wrong_magic_labels(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_labels(np.zeros(3), magic=0x00000803))
    with pytest.raises(LenetMcuError, match=r"magic 0x00000803, expected 0x00000801"):
        mnist.read_idx_labels(path)


def test_labels_file_given_as_images_is_rejected(tmp_path):
    path = tmp_path / "swapped"
    path.write_bytes(idx_labels(np.arange(10) % 10))
    with pytest.raises(LenetMcuError, match="truncated|magic"):
        mnist.read_idx_images(path)


def test_truncated_images(tmp_path, small_images):
    path = tmp_path / "imgs"
    path.write_bytes(idx_images(small_images)[:-100])
    with pytest.raises(LenetMcuError, match=r"truncated or corrupt") as err:
        mnist.read_idx_images(path)
    assert str(path) in err.value.message


def test_truncated_header(tmp_path):
    path = tmp_path / "imgs"
    path.write_bytes(b"\x00\x00\x08\x03\x00")
    with pytest.raises(LenetMcuError, match="truncated: 5 bytes"):
        mnist.read_idx_images(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(LenetMcuError, match="truncated: 2 bytes"):
        mnist.read_idx_labels(path)


def test_trailing_garbage_is_rejected(tmp_path, small_images):
    path = tmp_path / "imgs"
    path.write_bytes(idx_images(small_images) + b"\x00" * 7)
    with pytest.raises(LenetMcuError, match="truncated or corrupt"):
        mnist.read_idx_images(path)


def test_wrong_image_size(tmp_path):
    path = tmp_path / "imgs"
    path.write_bytes(idx_images(np.zeros((2, 27, 28), dtype=np.uint8)))
    with pytest.raises(LenetMcuError, match="27x28 images, expected 28x28"):
        mnist.read_idx_images(path)


def test_wrong_count(tmp_path, small_images):
    path = tmp_path / "imgs"
    path.write_bytes(idx_images(small_images))
    with pytest.raises(LenetMcuError, match="holds 5 images, expected 10000"):
        mnist.read_idx_images(path, expected_count=10000)


def test_label_out_of_range(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_labels(np.array([1, 2, 10, 3])))
    with pytest.raises(LenetMcuError, match="label 10 at index 2, expected 0..9"):
        mnist.read_idx_labels(path)


def _corrupt_middle(packed: bytes) -> bytes:
    half = len(packed) // 2
    return packed[:half] + b"\xff" * (len(packed) - half)


@pytest.mark.parametrize(
    "damage",
    [
        _corrupt_middle,  # corrupt gzip stream
        lambda packed: packed[:-20],  # truncated gzip
        lambda packed: gzip.decompress(packed),  # plain IDX bytes despite the .gz suffix
    ],
    ids=["corrupt", "truncated", "not-gzip"],
)
def test_unreadable_gzip(tmp_path, small_images, damage):
    path = tmp_path / "imgs.gz"
    path.write_bytes(damage(gzip.compress(idx_images(small_images))))
    with pytest.raises(LenetMcuError, match="cannot be read"):
        mnist.read_idx_images(path)


# ---------------------------------------------------------------- folders and splits
def test_missing_folder(tmp_path):
    with pytest.raises(LenetMcuError, match="does not exist"):
        mnist.load_split("test", tmp_path / "nope")


def test_folder_without_files(tmp_path):
    with pytest.raises(LenetMcuError, match=r"t10k-images-idx3-ubyte.*not found"):
        mnist.load_split("test", tmp_path)


def test_unknown_split(tmp_path):
    with pytest.raises(LenetMcuError, match="unknown"):
        mnist.load_split("validation", tmp_path)


def test_env_variable_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(mnist.DATA_ENV, str(tmp_path / "absent"))
    with pytest.raises(LenetMcuError, match="absent"):
        mnist.load_split("test")


def test_split_with_wrong_count_in_folder(tmp_path, small_images):
    # A well-formed but small test set under the official names is not MNIST's test split.
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_images(small_images))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_labels(np.arange(5)))
    with pytest.raises(LenetMcuError, match="holds 5 images, expected 10000"):
        mnist.load_split("test", tmp_path)


def test_real_mnist(mnist_dir):
    test_x, test_y = mnist.load_split("test", mnist_dir)
    train_x, train_y = mnist.load_split("train", mnist_dir)
    assert test_x.shape == (10000, 28, 28) and train_x.shape == (60000, 28, 28)
    # Per-class counts published with the data set.
    assert np.bincount(test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(train_y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(train_x.mean() / 255 - 0.1307) < 1e-3


# ---------------------------------------------------------------- preprocessing
def test_preprocess_pads_and_scales():
    images = np.full((2, 28, 28), 255, dtype=np.uint8)
    images[1] = 0
    x = mnist.preprocess(images)
    assert x.shape == (2, 32, 32, 1) and x.dtype == np.float32
    assert x[0, 2:30, 2:30, 0].min() == 1.0
    # 2-pixel zero border around the 28x28 digit.
    assert x[0, :2].max() == 0 and x[0, 30:].max() == 0 and x[0, :, :2].max() == 0 and x[0, :, 30:].max() == 0
    assert x[1].max() == 0


def test_preprocess_keeps_pixel_positions():
    images = np.zeros((1, 28, 28), dtype=np.uint8)
    images[0, 3, 17] = 51
    x = mnist.preprocess(images)
    assert np.argwhere(x[0, :, :, 0]).tolist() == [[5, 19]]
    assert x[0, 5, 19, 0] == np.float32(51) / np.float32(255)


@pytest.mark.parametrize(
    "bad", [np.zeros((28, 28), np.uint8), np.zeros((1, 32, 32), np.uint8), np.zeros((1, 28, 28), np.float32)]
)
def test_preprocess_rejects_wrong_input(bad):
    with pytest.raises(LenetMcuError, match="expected uint8"):
        mnist.preprocess(bad)


def test_quantize_input_maps_pixels_exactly():
    # The model's input quantization is scale 1/255, zero point -128: pixel p -> p - 128 exactly.
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    padded = np.zeros((1, 28, 28), dtype=np.uint8)
    padded[0, :16, :16] = pixels[0]
    x = mnist.preprocess(padded)
    q = mnist.quantize_input(x, np.float32(1 / 255), -128)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q[0, 2:18, 2:18, 0], pixels[0].astype(np.int16) - 128)


def test_quantize_input_saturates_and_rounds_half_even():
    q = mnist.quantize_input(np.array([-10.0, 10.0, 0.5, 1.5, 2.5]), 1.0, 0)
    assert q.tolist() == [-10, 10, 0, 2, 2]
    q = mnist.quantize_input(np.array([-1000.0, 1000.0]), 1.0, 0)
    assert q.tolist() == [-128, 127]
