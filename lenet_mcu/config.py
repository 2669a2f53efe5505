"""Training and quantization settings, with the default and the fast preset.

Kept free of TensorFlow so the manifest and the CLI can read it anywhere.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lenet_mcu.errors import LenetMcuError

DEFAULT_SEED = 1998  # the year of the LeNet-5 paper

#: S2/S4: average pooling; LeCun et al.'s trainable subsampling (2x2 sum * per-map coefficient
#: + per-map bias, then tanh); or 2x2 max pooling.
SUBSAMPLINGS = ("avg", "lecun", "max")
#: Output layer: dense + softmax (largest wins) or the paper's Euclidean RBF units (smallest wins).
OUTPUTS = ("softmax", "rbf")


@dataclass(frozen=True)
class PipelineConfig:
    seed: int = DEFAULT_SEED
    epochs: int = 15
    batch_size: int = 64
    learning_rate: float = 2e-3        # Adam, first epoch
    final_learning_rate: float = 5e-5  # last epoch; exponential decay in between
    # Random planar affine distortion of every training image, drawn afresh each epoch (the paper's
    # translation, scaling, squeezing and horizontal shearing, plus a small rotation); all 0 = off.
    max_shift: float = 1.5             # translation, pixels
    max_scale: float = 0.08            # size factor 1 +- this
    max_squeeze: float = 0.08          # width * (1 + q), height / (1 + q)
    max_shear: float = 0.15            # horizontal shear factor
    max_rotation: float = 8.0          # degrees
    # Max pooling: with this recipe the only subsampling whose int8 model reaches the paper's
    # accuracy on the chip; average pooling and LeCun's trainable subsampling stay just below
    # (README, benchmarks/results/pipeline.json).
    subsampling: str = "max"
    output: str = "softmax"
    # C3 fully connected by default: in float both choices score alike, the int8 model (what the
    # chip runs) is better with full C3 and its graph plainer (README; benchmarks/results/pipeline.json).
    c3_table: bool = False
    train_subset: int = 0              # 0 = all 60,000 training images
    calibration_size: int = 500        # representative images for PTQ (from the training set)
    fast: bool = False

    def __post_init__(self):
        if self.subsampling not in SUBSAMPLINGS:
            raise LenetMcuError(f"subsampling {self.subsampling!r} is unknown, expected one of {', '.join(SUBSAMPLINGS)}")
        if self.output not in OUTPUTS:
            raise LenetMcuError(f"output {self.output!r} is unknown, expected one of {', '.join(OUTPUTS)}")

    @property
    def variant(self) -> str:
        """Short name of the architecture, e.g. 'max-softmax'."""
        return f"{self.subsampling}-{self.output}"

    def learning_rate_for(self, epoch: int) -> float:
        """Exponential decay from learning_rate (epoch 0) to final_learning_rate (last epoch)."""
        if self.epochs <= 1:
            return self.learning_rate
        ratio = self.final_learning_rate / self.learning_rate
        return float(self.learning_rate * ratio ** (epoch / (self.epochs - 1)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PipelineConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def training_key(self) -> dict:
        """The settings that determine the trained weights (for checkpoint resume)."""
        d = self.to_dict()
        d.pop("calibration_size")
        d.pop("fast")
        return d


# Fast: a smoke setting for tests and first looks (well below the default's accuracy, seconds of training);
# evaluation still covers all 10,000 test images.
FAST_OVERRIDES = dict(epochs=3, train_subset=15000, final_learning_rate=5e-4, calibration_size=100, fast=True)


def make_config(
    *, fast: bool = False, seed: int | None = None, epochs: int | None = None,
    c3_table: bool | None = None, calibration_size: int | None = None,
    subsampling: str | None = None, output: str | None = None,
) -> PipelineConfig:
    """Defaults (or the fast preset), then any value given on the command line."""
    base = PipelineConfig(**FAST_OVERRIDES) if fast else PipelineConfig()
    changes = {
        k: v for k, v in dict(seed=seed, epochs=epochs, c3_table=c3_table, calibration_size=calibration_size,
                              subsampling=subsampling, output=output).items()
        if v is not None
    }
    return dataclasses.replace(base, **changes)
