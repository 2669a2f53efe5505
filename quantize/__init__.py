"""Stage 2: full-integer post-training quantization and host-side evaluation."""
