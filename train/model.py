"""LeNet-5 (LeCun et al. 1998) in Keras 3, sized for MNIST padded to 32x32.

Layers and output sizes, (W - K + 2P)/S + 1 with P = 0:
  input 32x32x1
  C1 Conv 6@5x5 tanh        -> 28x28x6
  S2 subsampling 2x2 /2     -> 14x14x6
  C3 Conv 16@5x5 tanh       -> 10x10x16   (optionally the paper's partial connection table)
  S4 subsampling 2x2 /2     -> 5x5x16
  C5 Conv 120@5x5 tanh      -> 1x1x120
  Flatten                   -> 120        (the converter folds it into FULLY_CONNECTED)
  F6 Dense 84 tanh          -> 84
  output                    -> 10

Subsampling (S2, S4): "avg" AveragePooling2D; "lecun" the paper's trainable
subsampling, tanh(coefficient * sum of the 2x2 window + bias) per map, which the
converter writes as DEPTHWISE_CONV_2D (one 2x2 filter per map, all four taps equal)
and TANH; "max" MaxPooling2D.
Output: "softmax" Dense 10 + softmax; "rbf" the paper's Euclidean RBF units,
y_i = sum_j (x_j - w_ij)^2 with fixed codes w_i (architecture.rbf_codes), written as
SQUARED_DIFFERENCE and SUM; the smallest y_i wins.
"""

from __future__ import annotations

import numpy as np

from lenet_mcu.tf_import import import_tensorflow

import_tensorflow()
import keras  # noqa: E402

from lenet_mcu.errors import LenetMcuError
from lenet_mcu.train.architecture import (  # noqa: F401  (re-exported for callers)
    C3_CONNECTIONS,
    INPUT_SHAPE,
    NUM_CLASSES,
    c3_connection_matrix,
    c3_kernel_mask,
    conv_output_size,
    expected_output_shapes,
    rbf_codes,
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


@keras.saving.register_keras_serializable(package="lenet_mcu")
class LeCunSubsampling(keras.layers.Layer):
    """tanh(coefficient[c] * (sum of the 2x2 window of map c) + bias[c]), stride 2.

    The window sum times the coefficient is a depthwise 2x2 convolution whose four
    taps share one trainable value per map, so the converter emits one
    DEPTHWISE_CONV_2D (its int8 filter is exact: four equal taps) followed by TANH.
    """

    def build(self, input_shape):
        maps = input_shape[-1]
        # 0.25 starts as average pooling, the "avg" variant.
        self.coefficient = self.add_weight(
            name="coefficient", shape=(maps,), initializer=keras.initializers.Constant(0.25)
        )
        self.bias = self.add_weight(name="bias", shape=(maps,), initializer="zeros")

    def call(self, x):
        maps = x.shape[-1]
        kernel = keras.ops.broadcast_to(self.coefficient[None, None, :, None], (2, 2, maps, 1))
        return keras.ops.tanh(keras.ops.depthwise_conv(x, kernel, strides=2, padding="valid") + self.bias)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else h // 2, None if w is None else w // 2, c)


@keras.saving.register_keras_serializable(package="lenet_mcu")
class EuclideanRBF(keras.layers.Layer):
    """y_i = sum_j (x_j - w_ij)^2 over F6's 84 outputs, one unit per class, with fixed codes w.

    The codes are a non-trainable weight (saved with the model); the converter writes
    the layer as SQUARED_DIFFERENCE of [1,1,84] against [1,10,84], then SUM over the 84.
    """

    def build(self, input_shape):
        codes = rbf_codes()
        self.codes = self.add_weight(
            name="codes", shape=codes.shape, trainable=False, initializer=keras.initializers.Constant(codes)
        )

    def call(self, x):
        diff = keras.ops.expand_dims(x, 1) - self.codes[None]
        return keras.ops.sum(keras.ops.square(diff), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], NUM_CLASSES)


@keras.saving.register_keras_serializable(package="lenet_mcu")
def rbf_loss(labels, distances):
    """Cross-entropy over -y: pulls F6 towards the true class's code and away from the others.

    The paper's criterion, y_true + log(exp(-j) + sum_i exp(-y_i)), with j -> infinity: the
    constant was there to stop trained codes collapsing, and these codes are fixed.
    """
    return keras.losses.sparse_categorical_crossentropy(labels, -distances, from_logits=True)


@keras.saving.register_keras_serializable(package="lenet_mcu")
def smallest_wins_accuracy(labels, distances):
    return keras.metrics.sparse_categorical_accuracy(labels, -distances)


def subsampling_layer(kind: str, name: str) -> keras.layers.Layer:
    if kind == "avg":
        return keras.layers.AveragePooling2D(pool_size=2, strides=2, padding="valid", name=name)
    if kind == "max":
        return keras.layers.MaxPooling2D(pool_size=2, strides=2, padding="valid", name=name)
    if kind == "lecun":
        return LeCunSubsampling(name=name)
    raise LenetMcuError(f"subsampling {kind!r} is unknown, expected avg, lecun or max")


def build_lenet5(c3_table: bool = False, subsampling: str = "avg", output: str = "softmax") -> keras.Model:
    """The LeNet-5 model; `c3_table=True` uses the paper's partial C3 connections."""
    conv = dict(kernel_size=5, strides=1, padding="valid", activation="tanh")
    c3_constraint = ConnectionMask(c3_connection_matrix()) if c3_table else None
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = keras.layers.Conv2D(6, name="c1", **conv)(inputs)
    x = subsampling_layer(subsampling, "s2")(x)
    x = keras.layers.Conv2D(16, name="c3", kernel_constraint=c3_constraint, **conv)(x)
    x = subsampling_layer(subsampling, "s4")(x)
    x = keras.layers.Conv2D(120, name="c5", **conv)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(84, activation="tanh", name="f6")(x)
    if output == "softmax":
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="output")(x)
    elif output == "rbf":
        outputs = EuclideanRBF(name="output")(x)
    else:
        raise LenetMcuError(f"output {output!r} is unknown, expected softmax or rbf")
    name = "lenet5" + ("_c3table" if c3_table else "")
    if (subsampling, output) != ("avg", "softmax"):
        name += f"_{subsampling}_{output}"
    model = keras.Model(inputs, outputs, name=name)
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
        raise LenetMcuError(
            f"Keras model {path} cannot be loaded ({first}); expected a .keras file saved by 'lenet-mcu train'"
        ) from None


def compile_args(output: str) -> dict:
    """Loss and metric for an output layer; the metric is named "accuracy" for either."""
    if output == "rbf":
        return {"loss": rbf_loss, "metrics": [keras.metrics.MeanMetricWrapper(smallest_wins_accuracy, name="accuracy")]}
    return {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
