"""Is a .tflite our int8 LeNet-5 graph? (read with lenet_mcu.tflite_model, no TensorFlow)

Used after conversion (the op list must be the plain LeNet-5 int8 graph) and
before evaluation (a corrupt or foreign file is a one-line error, not a crash).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from lenet_mcu.errors import LenetMcuError
from lenet_mcu.tflite_model import ModelInfo, load_model

#: Ops the LeNet-5 int8 graph may contain; RESHAPE at most once (Flatten).
ALLOWED_OPS = {"CONV_2D", "AVERAGE_POOL_2D", "TANH", "FULLY_CONNECTED", "SOFTMAX", "RESHAPE"}
MAX_RESHAPES = 1
INPUT_SHAPE = (1, 32, 32, 1)
OUTPUT_SHAPE = (1, 10)


def op_problems(ops: list[str]) -> list[str]:
    """What makes an op list unfit for the plain int8 LeNet-5 runtimes (empty = fine)."""
    problems = []
    foreign = sorted(set(ops) - ALLOWED_OPS)
    if foreign:
        problems.append(f"unexpected ops {', '.join(foreign)}")
    if ops.count("RESHAPE") > MAX_RESHAPES:
        problems.append(f"{ops.count('RESHAPE')} RESHAPE ops (at most {MAX_RESHAPES})")
    for required in ("CONV_2D", "FULLY_CONNECTED", "SOFTMAX"):
        if required not in ops:
            problems.append(f"no {required}")
    return problems


def check_lenet_int8(path: str | Path) -> ModelInfo:
    """Read a .tflite and insist it is our int8 LeNet-5 graph: batch-1 int8 in, int8 [1,10] out, builtin ops only."""
    info = load_model(path)
    problems = op_problems(info.ops)
    if info.input.dtype != "int8" or info.input.shape != INPUT_SHAPE:
        problems.append(f"input is {info.input.dtype} {list(info.input.shape)}, expected int8 {list(INPUT_SHAPE)}")
    if info.output.dtype != "int8" or info.output.shape != OUTPUT_SHAPE:
        problems.append(f"output is {info.output.dtype} {list(info.output.shape)}, expected int8 {list(OUTPUT_SHAPE)}")
    if not info.input.quantized or not info.output.quantized:
        problems.append("input or output tensor has no quantization parameters")
    if problems:
        raise LenetMcuError(f"model file {info.path} is not the int8 LeNet-5 model: " + "; ".join(problems))
    return info


def op_counts(ops: list[str]) -> dict[str, int]:
    return dict(Counter(ops))
