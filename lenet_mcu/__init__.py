"""lenet-mcu: LeNet-5 from Keras training to a Cortex-M, proven bit-exact over serial."""

__version__ = "0.1.0"
