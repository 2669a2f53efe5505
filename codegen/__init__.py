"""Stage 3: the int8 model as C: native interpreter-free runtime and TFLite Micro harness."""
