"""Is a .tflite our int8 LeNet-5 graph? (read with lenet_mcu.tflite_model, no TensorFlow)

Used after conversion (the op list must be exactly the variant's int8 graph) and
before evaluation (a corrupt or foreign file is a one-line error, not a crash).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from lenet_mcu.errors import LenetMcuError
from lenet_mcu.tflite_model import ModelInfo, load_model

#: Ops every LeNet-5 int8 graph has (C1, C3, C5 convolutions and tanh, F6), and what each
#: subsampling and output layer adds. RESHAPE: the Flatten, and for RBF the [1,84] -> [1,1,84]
#: that lines F6 up against the ten codes.
COMMON_OPS = {"CONV_2D", "TANH", "FULLY_CONNECTED"}
SUBSAMPLING_OPS = {"avg": {"AVERAGE_POOL_2D"}, "lecun": {"DEPTHWISE_CONV_2D"}, "max": {"MAX_POOL_2D"}}
OUTPUT_OPS = {"softmax": {"SOFTMAX"}, "rbf": {"SQUARED_DIFFERENCE", "SUM"}}
MAX_RESHAPES = {"softmax": 1, "rbf": 2}
#: Any variant's ops (a model checked without knowing its variant).
ALLOWED_OPS = COMMON_OPS | {"RESHAPE"} | set().union(*SUBSAMPLING_OPS.values(), *OUTPUT_OPS.values())
INPUT_SHAPE = (1, 32, 32, 1)
OUTPUT_SHAPE = (1, 10)


def variant_ops(subsampling: str, output: str) -> set[str]:
    """Exactly the ops (besides RESHAPE) the int8 graph of one variant needs."""
    if subsampling not in SUBSAMPLING_OPS or output not in OUTPUT_OPS:
        raise LenetMcuError(f"variant {subsampling}-{output} is unknown")
    return COMMON_OPS | SUBSAMPLING_OPS[subsampling] | OUTPUT_OPS[output]


def op_problems(ops: list[str], subsampling: str | None = None, output: str | None = None) -> list[str]:
    """What makes an op list unfit for the int8 LeNet-5 runtimes (empty = fine).

    With a variant (subsampling and output), the graph must contain exactly that
    variant's ops; without, any variant's ops are admitted and one output layer required."""
    problems = []
    if subsampling is not None and output is not None:
        need = variant_ops(subsampling, output)
        allowed, reshapes = need | {"RESHAPE"}, MAX_RESHAPES[output]
        label = f"the {subsampling}-{output} variant"
    else:
        need = COMMON_OPS
        allowed, reshapes = ALLOWED_OPS, max(MAX_RESHAPES.values())
        label = "LeNet-5"
        outputs = [name for name, op_set in OUTPUT_OPS.items() if op_set <= set(ops)]
        if len(outputs) != 1:
            problems.append(
                f"no single output layer (softmax: {', '.join(sorted(OUTPUT_OPS['softmax']))}; "
                f"rbf: {', '.join(sorted(OUTPUT_OPS['rbf']))})"
            )
    foreign = sorted(set(ops) - allowed)
    if foreign:
        problems.append(f"ops {', '.join(foreign)} are not in {label}")
    if ops.count("RESHAPE") > reshapes:
        problems.append(f"{ops.count('RESHAPE')} RESHAPE ops (at most {reshapes})")
    for required in sorted(need):
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
