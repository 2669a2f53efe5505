"""Random affine distortion of training images: the maps are the intended ones, seeded, and off when all amplitudes are 0."""

from __future__ import annotations

import numpy as np
import pytest

from lenet_mcu.config import PipelineConfig
from lenet_mcu.train.distortion import Amplitudes, affine_transforms, distort


def apply(t: np.ndarray, x: float, y: float) -> tuple[float, float]:
    """Where output pixel (x, y) reads the input, for one [8] transform."""
    return t[0] * x + t[1] * y + t[2], t[3] * x + t[4] * y + t[5]


def test_translation_only_maps_are_shifts_within_the_amplitude():
    t = affine_transforms(500, 32, Amplitudes(shift=2.0), np.random.default_rng(0))
    np.testing.assert_allclose(t[:, [0, 4]], 1.0, atol=1e-6)
    np.testing.assert_allclose(t[:, [1, 3, 6, 7]], 0.0, atol=1e-6)
    assert np.abs(t[:, [2, 5]]).max() <= 2.0 and np.abs(t[:, [2, 5]]).max() > 1.9


def test_maps_keep_the_centre_fixed_without_translation_and_stay_small():
    amp = Amplitudes(scale=0.1, squeeze=0.1, shear=0.2, rotation=10.0)
    t = affine_transforms(500, 32, amp, np.random.default_rng(1))
    centre = 15.5
    for row in t:
        np.testing.assert_allclose(apply(row, centre, centre), (centre, centre), atol=1e-4)
        # a corner moves by at most a few pixels: small distortions, not new shapes
        cx, cy = apply(row, 0.0, 0.0)
        assert abs(cx) < 8 and abs(cy) < 8
    # each parameter really varies
    assert t[:, 1].std() > 0.05 and t[:, 0].std() > 0.02


def test_distort_moves_a_block_by_whole_pixels():
    images = np.zeros((4, 32, 32, 1), np.float32)
    images[:, 10:20, 12:18] = 1.0
    rng = np.random.default_rng(3)
    t = affine_transforms(4, 32, Amplitudes(shift=3.0), np.random.default_rng(3))
    out = distort(images, Amplitudes(shift=3.0), rng)
    assert out.shape == images.shape and out.dtype == np.float32
    for img, row in zip(out[..., 0], t):
        # bilinear: the mass of the block is kept (it stays inside the frame)
        assert img.sum() == pytest.approx(60.0, abs=1e-3)
        ys, xs = np.nonzero(img > 0.999)
        sx, sy = apply(row, 0.0, 0.0)  # input = output + (sx, sy)
        assert xs.min() >= 12 - sx - 1 and xs.min() <= 12 - sx + 1
        assert ys.min() >= 10 - sy - 1 and ys.min() <= 10 - sy + 1


def test_distort_is_seeded_and_off_at_zero():
    images = np.random.default_rng(0).random((20, 32, 32, 1), dtype=np.float32)
    amp = Amplitudes.from_config(PipelineConfig())
    assert not amp.off
    a = distort(images, amp, np.random.default_rng(7))
    b = distort(images, amp, np.random.default_rng(7))
    c = distort(images, amp, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    off = Amplitudes()
    assert off.off
    np.testing.assert_array_equal(distort(images, off, np.random.default_rng(0)), images)
