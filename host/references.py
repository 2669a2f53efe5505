"""What the serial check compares against: the host references and the test images.

references.npz (made by `lenet-mcu evaluate`) holds the TFLM outputs, the
labels and the input quantization; the MNIST test split gives the images,
quantized exactly as the host evaluation did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet_mcu.artifacts import REFERENCES, TFLITE_MODEL
from lenet_mcu.atomic import sha256_file
from lenet_mcu.decision import predict
from lenet_mcu.errors import LenetMcuError

REFERENCE_KEYS = ("labels", "float_pred", "tflite_int8", "tflm_int8", "input_scale", "input_zero_point")


@dataclass
class References:
    labels: np.ndarray  # uint8 [N]
    float_pred: np.ndarray  # uint8 [N]  predictions of the float Keras model
    tflite_int8: np.ndarray  # int8 [N, C] tflite-runtime outputs on the host
    tflm_int8: np.ndarray  # int8 [N, C] TFLM outputs: the golden reference
    input_scale: float
    input_zero_point: int
    model_sha256: str | None = None  # of the .tflite the references were computed from
    smallest_wins: bool = False  # RBF distances: the smallest output names the class (lenet_mcu.decision)

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        """The class each row of outputs names, by this model's rule."""
        return predict(outputs, self.smallest_wins)

    def check_model(self, sha256: str, artifacts: Path) -> None:
        """Refuse references computed from another model than the one in the artifacts folder."""
        if self.model_sha256 is None:
            raise LenetMcuError(
                f"{Path(artifacts) / REFERENCES} does not say which model it was computed from "
                f"(made by an older version): rerun `lenet-mcu evaluate`"
            )
        if self.model_sha256 != sha256:
            raise LenetMcuError(
                f"{Path(artifacts) / REFERENCES} was computed from model sha256 "
                f"{self.model_sha256[:16]}..., but {Path(artifacts) / TFLITE_MODEL} is "
                f"{sha256[:16]}...: rerun `lenet-mcu evaluate` for this model"
            )

    @property
    def count(self) -> int:
        return int(self.tflm_int8.shape[0])

    @property
    def output_count(self) -> int:
        return int(self.tflm_int8.shape[1])

    @classmethod
    def load(cls, path: Path) -> References:
        if not path.is_file():
            raise LenetMcuError(
                f"{path} not found: run the pipeline (lenet-mcu pipeline / evaluate) to make the host references first"
            )
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [k for k in REFERENCE_KEYS if k not in npz.files]
                if missing:
                    raise LenetMcuError(
                        f"{path} lacks {', '.join(missing)} (expected keys {', '.join(REFERENCE_KEYS)})"
                    )
                arrays = {k: npz[k] for k in REFERENCE_KEYS}
                model_sha = str(npz["model_sha256"]) if "model_sha256" in npz.files else None
                smallest = bool(npz["smallest_wins"]) if "smallest_wins" in npz.files else False
        except LenetMcuError:
            raise
        except Exception as exc:  # zip/npy corruption
            raise LenetMcuError(f"{path} cannot be read as an .npz file: {exc}") from None
        tflm = arrays["tflm_int8"]
        if tflm.ndim != 2 or tflm.dtype != np.int8 or tflm.shape[0] == 0:
            raise LenetMcuError(
                f"{path}: tflm_int8 has shape {tflm.shape} and type {tflm.dtype}, expected int8 [N, classes]"
            )
        n = tflm.shape[0]
        for key in ("labels", "float_pred"):
            if arrays[key].ndim != 1 or arrays[key].shape[0] < n:
                raise LenetMcuError(f"{path}: {key} has shape {arrays[key].shape}, expected at least [{n}]")
        if arrays["tflite_int8"].shape != tflm.shape:
            raise LenetMcuError(
                f"{path}: tflite_int8 has shape {arrays['tflite_int8'].shape}, expected {tflm.shape} like tflm_int8"
            )
        scale = float(arrays["input_scale"])
        if not np.isfinite(scale) or scale <= 0:
            raise LenetMcuError(f"{path}: input_scale is {scale}, expected a positive number")
        return cls(
            arrays["labels"][:n].astype(np.uint8),
            arrays["float_pred"][:n].astype(np.uint8),
            arrays["tflite_int8"].astype(np.int8),
            tflm,
            scale,
            int(arrays["input_zero_point"]),
            model_sha,
            smallest,
        )


def model_sha256(artifacts: Path) -> str:
    path = Path(artifacts) / TFLITE_MODEL
    if not path.is_file():
        raise LenetMcuError(f"{path} not found: the artifacts folder has no int8 model (run lenet-mcu pipeline)")
    return sha256_file(path)


def load_test_images(refs: References, data_dir) -> tuple[np.ndarray, np.ndarray]:
    """(raw uint8 [N,28,28], int8 inputs [N,32,32,1]) exactly as the host evaluation made them."""
    from lenet_mcu import mnist

    folder = mnist.resolve_data_dir(data_dir)
    if folder is None:  # load_split would fall back to Keras, i.e. TensorFlow: not on the host side
        raise LenetMcuError(
            f"no MNIST folder given: pass --data DIR or set {mnist.DATA_ENV} (verify streams the MNIST test images)"
        )
    images, labels = mnist.load_split("test", folder)
    n = refs.count
    if len(images) < n:
        raise LenetMcuError(f"references.npz covers {n} images but the MNIST test split has {len(images)}")
    images, labels = images[:n], labels[:n]
    if not np.array_equal(labels, refs.labels):
        bad = int(np.argmax(labels != refs.labels))
        raise LenetMcuError(
            f"MNIST test label {bad} is {labels[bad]} but references.npz says {refs.labels[bad]}: "
            "the references were made from other data (check --data)"
        )
    inputs = mnist.quantize_input(mnist.preprocess(images), refs.input_scale, refs.input_zero_point)
    return images, inputs
