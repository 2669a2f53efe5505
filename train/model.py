"""LeNet-5 (LeCun et al. 1998) in Keras 3, sized for MNIST padded to 32x32.

Layers and output sizes, (W - K + 2P)/S + 1 with P = 0:
  input 32x32x1
  C1 Conv 6@5x5 tanh        -> 28x28x6
  S2 AveragePooling 2x2 /2  -> 14x14x6
  C3 Conv 16@5x5 tanh       -> 10x10x16   (optionally the paper's partial connection table)
  S4 AveragePooling 2x2 /2  -> 5x5x16
  C5 Conv 120@5x5 tanh      -> 1x1x120
  Flatten                   -> 120        (the converter folds it into FULLY_CONNECTED)
  F6 Dense 84 tanh          -> 84
  output Dense 10 softmax   -> 10
"""
from __future__ import annotations

import numpy as np

from lenet_mcu.tf_import import import_tensorflow

import_tensorflow()
import keras  # noqa: E402

from lenet_mcu.errors import LenetMcuError
from lenet_mcu.train.architecture import (  # noqa: F401  (re-exported for callers)
    C3_CONNECTIONS, INPUT_SHAPE, NUM_CLASSES, c3_connection_matrix, c3_kernel_mask, conv_output_size,
    expected_output_shapes,
)


@keras.saving.register_keras_serializable(package="lenet_mcu")
class ConnectionMask(keras.constraints.Constraint):
    """Multiplies a conv kernel by a fixed 0/1 [in, out] connection matrix.

    Keras applies constraints after every optimizer step, and the initial kernel
    is masked once after build (see build_lenet5), so the forward pass never
    sees an absent connection and the saved kernel holds exact zeros there:
    0.0 quantizes to int8 0 whatever the per-channel scale.
    """

    def __init__(self, connections):
        self.connections = np.asarray(connections, dtype=np.float32)

    def __call__(self, w):
        mask = keras.ops.convert_to_tensor(self.connections, dtype=w.dtype)
        return w * mask[None, None, :, :]

    def get_config(self):
        return {"connections": self.connections.tolist()}


def build_lenet5(c3_table: bool = False) -> keras.Model:
    """The LeNet-5 model; `c3_table=True` uses the paper's partial C3 connections."""
    conv = dict(kernel_size=5, strides=1, padding="valid", activation="tanh")
    pool = dict(pool_size=2, strides=2, padding="valid")
    c3_constraint = ConnectionMask(c3_connection_matrix()) if c3_table else None
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = keras.layers.Conv2D(6, name="c1", **conv)(inputs)
    x = keras.layers.AveragePooling2D(name="s2", **pool)(x)
    x = keras.layers.Conv2D(16, name="c3", kernel_constraint=c3_constraint, **conv)(x)
    x = keras.layers.AveragePooling2D(name="s4", **pool)(x)
    x = keras.layers.Conv2D(120, name="c5", **conv)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(84, activation="tanh", name="f6")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="output")(x)
    model = keras.Model(inputs, outputs, name="lenet5_c3table" if c3_table else "lenet5")
    if c3_table:
        c3 = model.get_layer("c3")
        c3.kernel.assign(c3_constraint(c3.kernel))
    check_output_shapes(model)
    return model


def check_output_shapes(model: keras.Model) -> None:
    """Compare each layer's Keras output shape with the formula; raise on mismatch."""
    for name, want in expected_output_shapes().items():
        got = tuple(model.get_layer(name).output.shape[1:])
        if got != want:
            raise LenetMcuError(f"layer {name} outputs {got}, expected {want} from (W - K + 2P)/S + 1")
    if expected_output_shapes()["c5"][:2] != (1, 1):
        raise LenetMcuError("C5 must produce a 1x1 map")


def load_keras_model(path) -> keras.Model:
    """Load a saved LeNet-5 (.keras); a missing or unreadable file is a one-line error."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise LenetMcuError(f"Keras model {path} not found (run 'lenet-mcu train' first)")
    try:
        return keras.models.load_model(path, compile=True)
    except Exception as exc:  # zip, h5 or config errors all mean the same to a user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LenetMcuError(f"Keras model {path} cannot be loaded ({first}); expected a .keras file saved by 'lenet-mcu train'") from None
