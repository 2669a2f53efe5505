"""Read and check a .tflite file without TensorFlow (the `tflite` flatbuffer parser).

Used after conversion (the op list must be the plain LeNet-5 int8 graph) and
before evaluation (a corrupt or foreign file is a one-line error, not a crash).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lenet_mcu.errors import LenetMcuError

#: Ops the LeNet-5 int8 graph may contain; RESHAPE at most once (Flatten).
ALLOWED_OPS = {"CONV_2D", "AVERAGE_POOL_2D", "TANH", "FULLY_CONNECTED", "SOFTMAX", "RESHAPE"}
MAX_RESHAPES = 1
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
