"""Stage 1: Keras LeNet-5 on MNIST.

Public API for the other stages (they never import this package's modules):

    from lenet_mcu.train import train, load_keras_model
"""

from __future__ import annotations


def train(*args, **kwargs) -> dict:
    """Seeded, resumable training (lenet_mcu.train.training.train); imports TensorFlow."""
    from lenet_mcu.train.training import train as _train

    return _train(*args, **kwargs)


def load_keras_model(path):
    """A saved LeNet-5 (.keras), with this package's custom layers registered; imports TensorFlow."""
    from lenet_mcu.train.model import load_keras_model as _load

    return _load(path)
