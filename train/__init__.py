"""Stage 1: Keras LeNet-5 on MNIST."""
