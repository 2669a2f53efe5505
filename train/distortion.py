"""Random planar affine distortion of training images, as LeCun et al. (1998) did for
their 0.8 % error: translation, scaling, squeezing (width and height scaled in
opposite directions) and horizontal shearing, plus a small rotation.

The parameters come from a numpy generator (seeded by the caller), so an epoch's
distortions are fixed by (seed, epoch); the resampling is TensorFlow's
ImageProjectiveTransformV3 (bilinear, zero fill), a pure function of its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Amplitudes:
    """Largest distortion in each direction; every parameter is drawn uniformly in [-a, a]."""

    shift: float = 0.0  # pixels
    scale: float = 0.0  # size factor 1 + s
    squeeze: float = 0.0  # width * (1 + q), height / (1 + q)
    shear: float = 0.0  # x += shear * y
    rotation: float = 0.0  # degrees

    @classmethod
    def from_config(cls, config) -> Amplitudes:
        return cls(
            shift=config.max_shift,
            scale=config.max_scale,
            squeeze=config.max_squeeze,
            shear=config.max_shear,
            rotation=config.max_rotation,
        )

    @property
    def off(self) -> bool:
        return not any((self.shift, self.scale, self.squeeze, self.shear, self.rotation))


def affine_transforms(n: int, size: int, amp: Amplitudes, rng: np.random.Generator) -> np.ndarray:
    """[n, 8] output-to-input maps in the layout ImageProjectiveTransformV3 takes.

    The forward map is M = rotation * shear * diag(sx, sy) about the image centre,
    then a translation; the resampler needs its inverse: for each output pixel p,
    the input pixel is inv(M) (p - c - t) + c.
    """
    angle = np.deg2rad(rng.uniform(-amp.rotation, amp.rotation, n))
    scale = 1.0 + rng.uniform(-amp.scale, amp.scale, n)
    squeeze = 1.0 + rng.uniform(-amp.squeeze, amp.squeeze, n)
    shear = rng.uniform(-amp.shear, amp.shear, n)
    tx = rng.uniform(-amp.shift, amp.shift, n)
    ty = rng.uniform(-amp.shift, amp.shift, n)
    cos, sin = np.cos(angle), np.sin(angle)
    sx, sy = scale * squeeze, scale / squeeze
    m00, m01 = cos * sx, (cos * shear - sin) * sy
    m10, m11 = sin * sx, (sin * shear + cos) * sy
    det = m00 * m11 - m01 * m10
    i00, i01, i10, i11 = m11 / det, -m01 / det, -m10 / det, m00 / det
    c = (size - 1) / 2.0
    ox, oy = c + tx, c + ty
    zeros = np.zeros(n)
    return np.stack(
        [i00, i01, c - (i00 * ox + i01 * oy), i10, i11, c - (i10 * ox + i11 * oy), zeros, zeros], axis=1
    ).astype(np.float32)


def distort(images: np.ndarray, amp: Amplitudes, rng: np.random.Generator, chunk: int = 10000) -> np.ndarray:
    """Each float32 [N,H,W,1] image through its own random affine map (bilinear, zero fill)."""
    if amp.off or len(images) == 0:
        return images
    from lenet_mcu.tf_import import import_tensorflow

    tf = import_tensorflow()
    n, h, w = images.shape[:3]
    transforms = affine_transforms(n, h, amp, rng)
    out = np.empty_like(images)
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        out[part] = tf.raw_ops.ImageProjectiveTransformV3(
            images=images[part],
            transforms=transforms[part],
            output_shape=[h, w],
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
            fill_value=0.0,
        ).numpy()
    return out
