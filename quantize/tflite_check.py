"""Read and check a .tflite file without TensorFlow (the `tflite` flatbuffer parser).

Used after conversion (the op list must be exactly the variant's int8 graph) and
before evaluation (a corrupt or foreign file is a one-line error, not a crash).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lenet_mcu.errors import LenetMcuError

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

_TYPE_NAMES = {0: "float32", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}


@dataclass
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    scales: list[float]
    zero_points: list[int]
    buffer: int


@dataclass
class ModelInfo:
    path: Path
    ops: list[str]                   # in execution order
    op_inputs: list[list[int]]       # tensor indices per op
    tensors: list[TensorInfo]
    input: TensorInfo
    output: TensorInfo
    buffers: list[bytes] = field(repr=False)

    def tensor_data(self, index: int) -> np.ndarray:
        """Constant tensor contents (weights, biases) as a numpy array."""
        t = self.tensors[index]
        dtype = {"int8": np.int8, "int32": np.int32, "float32": np.float32, "uint8": np.uint8, "int16": np.int16,
                 "int64": np.int64}[t.dtype]
        return np.frombuffer(self.buffers[t.buffer], dtype=dtype).reshape(t.shape)

    def weights_of(self, op_type: str) -> list[np.ndarray]:
        """Weight tensor (input 1) of each op of a type, in graph order."""
        return [self.tensor_data(inputs[1]) for op, inputs in zip(self.ops, self.op_inputs) if op == op_type]


def _fail(path: Path, what: str):
    raise LenetMcuError(f"model file {path} {what}")


def read_model(path: str | Path) -> ModelInfo:
    """Parse a .tflite; raise LenetMcuError if it is missing, not a TFLite flatbuffer, or unreadable."""
    import tflite

    path = Path(path)
    if not path.is_file():
        _fail(path, "not found (expected a .tflite written by 'lenet-mcu quantize')")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        _fail(path, "is not a TFLite flatbuffer (no 'TFL3' identifier): corrupt or not a .tflite file")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            _fail(path, f"has {model.SubgraphsLength()} subgraphs, expected 1")
        graph = model.Subgraphs(0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            codes.append(tflite.BUILTIN_OPCODE2NAME.get(code, f"CUSTOM({code})"))
        ops, op_inputs = [], []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            ops.append(codes[op.OpcodeIndex()])
            op_inputs.append([int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else [])
        tensors = []
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            q = t.Quantization()
            scales = [float(s) for s in q.ScaleAsNumpy()] if q is not None and q.ScaleLength() else []
            zps = [int(z) for z in q.ZeroPointAsNumpy()] if q is not None and q.ZeroPointLength() else []
            shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            tensors.append(TensorInfo(
                name=t.Name().decode("utf-8", "replace"), dtype=_TYPE_NAMES.get(t.Type(), f"type{t.Type()}"),
                shape=shape, scales=scales, zero_points=zps, buffer=t.Buffer(),
            ))
        buffers = []
        for i in range(model.BuffersLength()):
            b = model.Buffers(i)
            buffers.append(b.DataAsNumpy().tobytes() if b.DataLength() else b"")
        if graph.InputsLength() != 1 or graph.OutputsLength() != 1:
            _fail(path, f"has {graph.InputsLength()} inputs and {graph.OutputsLength()} outputs, expected 1 and 1")
        inp, out = tensors[graph.Inputs(0)], tensors[graph.Outputs(0)]
    except LenetMcuError:
        raise
    except Exception as exc:  # any flatbuffer decoding failure means a damaged file
        _fail(path, f"cannot be parsed as TFLite ({type(exc).__name__}: {exc}): corrupt file")
    return ModelInfo(path=path, ops=ops, op_inputs=op_inputs, tensors=tensors, input=inp, output=out, buffers=buffers)


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
            problems.append(f"no single output layer (softmax: {', '.join(sorted(OUTPUT_OPS['softmax']))}; "
                            f"rbf: {', '.join(sorted(OUTPUT_OPS['rbf']))})")
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
    info = read_model(path)
    problems = op_problems(info.ops)
    if info.input.dtype != "int8" or info.input.shape != INPUT_SHAPE:
        problems.append(f"input is {info.input.dtype} {list(info.input.shape)}, expected int8 {list(INPUT_SHAPE)}")
    if info.output.dtype != "int8" or info.output.shape != OUTPUT_SHAPE:
        problems.append(f"output is {info.output.dtype} {list(info.output.shape)}, expected int8 {list(OUTPUT_SHAPE)}")
    if not info.input.scales or not info.output.scales:
        problems.append("input or output tensor has no quantization parameters")
    if problems:
        _fail(info.path, "is not the int8 LeNet-5 model: " + "; ".join(problems))
    return info


def op_counts(ops: list[str]) -> dict[str, int]:
    return dict(Counter(ops))
