"""Read a `.tflite` file into a plain model description, shared by both runtimes.

The flatbuffer is parsed with the `tflite` package (generated schema bindings);
nothing here imports TensorFlow. The description keeps what code generators
need: tensors (shape, type, quantization, constant data), operators (builtin
name and options), graph inputs/outputs, and the sha256 of the file.
`render_model_info_h` produces the `model_info.h` contract of the firmware.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lenet_mcu.decision import smallest_wins
from lenet_mcu.errors import LenetMcuError

try:  # the `tflite` package: flatbuffer bindings of the TFLite schema
    import tflite
except ImportError as exc:  # pragma: no cover - a broken install
    raise LenetMcuError(f"the 'tflite' package is required to read .tflite files: {exc}") from None

#: TensorType enum value -> (name, numpy dtype or None when the type has no plain numpy form)
_TENSOR_TYPES = {
    v: k.lower() for k, v in vars(tflite.TensorType).items() if not k.startswith("_") and isinstance(v, int)
}
_NUMPY_TYPES = {
    "float32": np.float32, "float16": np.float16, "float64": np.float64,
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64, "bool": np.bool_,
}
_BUILTIN_NAMES = {
    v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)
}
_PADDING_NAMES = {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}
_ACTIVATION_NAMES = {
    v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_") and isinstance(v, int)
}

#: How many leading sha256 bytes the firmware reports in HELLO (docs/protocol.md).
SHA256_PREFIX_BYTES = 8


@dataclass
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # "int8", "int32", "float32", ...
    scales: np.ndarray  # float32 [Q]; empty when not quantized
    zero_points: np.ndarray  # int64 [Q]; empty when not quantized
    quantized_dimension: int
    data: np.ndarray | None  # constant contents, shaped, or None for activations
    is_variable: bool = False

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def quantized(self) -> bool:
        return self.scales.size > 0

    @property
    def scale(self) -> float:
        """The per-tensor scale (float32 value as a Python float)."""
        if self.scales.size != 1:
            raise LenetMcuError(f"tensor '{self.name}' has {self.scales.size} scales, expected per-tensor quantization")
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        if self.zero_points.size == 0:
            return 0
        if self.zero_points.size != 1:
            raise LenetMcuError(f"tensor '{self.name}' has {self.zero_points.size} zero points, expected one")
        return int(self.zero_points[0])


@dataclass
class OperatorInfo:
    index: int
    op: str  # builtin operator name, e.g. "CONV_2D"; "CUSTOM:<code>" for custom ops
    version: int
    inputs: list[int]  # tensor indices, -1 for an omitted optional input
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class ModelInfo:
    path: Path
    sha256: str
    description: str
    tensors: list[TensorInfo]
    operators: list[OperatorInfo]
    inputs: list[int]
    outputs: list[int]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def sha256_prefix(self) -> bytes:
        return bytes.fromhex(self.sha256)[:SHA256_PREFIX_BYTES]

    @property
    def input(self) -> TensorInfo:
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> TensorInfo:
        return self.tensors[self.outputs[0]]

    def consumers(self, tensor_index: int) -> list[OperatorInfo]:
        return [op for op in self.operators if tensor_index in op.inputs]

    def producer(self, tensor_index: int) -> OperatorInfo | None:
        for op in self.operators:
            if tensor_index in op.outputs:
                return op
        return None


def _options(op, code: int) -> dict:
    """The builtin options the code generators use, as a plain dict."""
    table = op.BuiltinOptions()
    if table is None:
        return {}
    if code in (tflite.BuiltinOperator.CONV_2D, tflite.BuiltinOperator.DEPTHWISE_CONV_2D):
        cls = tflite.Conv2DOptions if code == tflite.BuiltinOperator.CONV_2D else tflite.DepthwiseConv2DOptions
        o = cls()
        o.Init(table.Bytes, table.Pos)
        result = {
            "padding": _PADDING_NAMES.get(o.Padding(), str(o.Padding())),
            "stride_h": o.StrideH(), "stride_w": o.StrideW(),
            "dilation_h": o.DilationHFactor(), "dilation_w": o.DilationWFactor(),
            "activation": _ACTIVATION_NAMES.get(o.FusedActivationFunction(), str(o.FusedActivationFunction())),
        }
        if code == tflite.BuiltinOperator.DEPTHWISE_CONV_2D:
            result["depth_multiplier"] = o.DepthMultiplier()
        return result
    if code in (tflite.BuiltinOperator.AVERAGE_POOL_2D, tflite.BuiltinOperator.MAX_POOL_2D):
        o = tflite.Pool2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {
            "padding": _PADDING_NAMES.get(o.Padding(), str(o.Padding())),
            "stride_h": o.StrideH(), "stride_w": o.StrideW(),
            "filter_h": o.FilterHeight(), "filter_w": o.FilterWidth(),
            "activation": _ACTIVATION_NAMES.get(o.FusedActivationFunction(), str(o.FusedActivationFunction())),
        }
    if code == tflite.BuiltinOperator.FULLY_CONNECTED:
        o = tflite.FullyConnectedOptions()
        o.Init(table.Bytes, table.Pos)
        return {
            "activation": _ACTIVATION_NAMES.get(o.FusedActivationFunction(), str(o.FusedActivationFunction())),
            "weights_format": o.WeightsFormat(),
            "keep_num_dims": bool(o.KeepNumDims()),
            "asymmetric_quantize_inputs": bool(o.AsymmetricQuantizeInputs()),
        }
    if code == tflite.BuiltinOperator.SOFTMAX:
        o = tflite.SoftmaxOptions()
        o.Init(table.Bytes, table.Pos)
        return {"beta": float(np.float32(o.Beta()))}
    return {}


def _tensor(index: int, t, model, data_bytes: bytes) -> TensorInfo:
    name = t.Name().decode("utf-8", "replace") if t.Name() else f"tensor{index}"
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    dtype = _TENSOR_TYPES.get(t.Type(), f"type{t.Type()}")
    q = t.Quantization()
    scales = np.zeros(0, np.float32)
    zero_points = np.zeros(0, np.int64)
    qdim = 0
    if q is not None and q.ScaleLength():
        scales = q.ScaleAsNumpy().astype(np.float32)
        zero_points = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(scales.size, np.int64)
        qdim = q.QuantizedDimension()
    data = None
    buffer_index = t.Buffer()
    if 0 < buffer_index < model.BuffersLength():
        buf = model.Buffers(buffer_index)
        raw = b""
        if buf.DataLength():
            raw = buf.DataAsNumpy().tobytes()
        elif buf.Offset() > 1:  # large models keep buffers after the flatbuffer
            raw = data_bytes[buf.Offset(): buf.Offset() + buf.Size()]
        if raw:
            np_type = _NUMPY_TYPES.get(dtype)
            if np_type is None:
                data = np.frombuffer(raw, np.uint8).copy()
            else:
                arr = np.frombuffer(raw, np.dtype(np_type).newbyteorder("<"))
                if arr.size != int(np.prod(shape, dtype=np.int64)):
                    raise LenetMcuError(
                        f"tensor '{name}' has {arr.size} constant values for shape {list(shape)}: the model file is corrupt"
                    )
                data = arr.reshape(shape).astype(np_type)
    return TensorInfo(index, name, shape, dtype, scales, zero_points, qdim, data, bool(t.IsVariable()))


def load_model(path: str | Path) -> ModelInfo:
    """Parse `path` (a .tflite flatbuffer); one-line LenetMcuError on anything unreadable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LenetMcuError(f"model file {path} cannot be read ({exc.strerror or exc}); expected a .tflite file") from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise LenetMcuError(f"model file {path} is not a TFLite flatbuffer (no 'TFL3' identifier at byte 4)")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise LenetMcuError(
                f"model file {path} has {model.SubgraphsLength()} subgraphs, expected exactly one"
            )
        sg = model.Subgraphs(0)
        tensors = [_tensor(i, sg.Tensors(i), model, data) for i in range(sg.TensorsLength())]
        operators = []
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            oc = model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            name = _BUILTIN_NAMES.get(code, f"BUILTIN_{code}")
            if code == tflite.BuiltinOperator.CUSTOM:
                name = "CUSTOM:" + (oc.CustomCode() or b"").decode("utf-8", "replace")
            operators.append(OperatorInfo(
                index=i, op=name, version=oc.Version(),
                inputs=[int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else [],
                outputs=[int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else [],
                options=_options(op, code),
            ))
        inputs = [int(x) for x in sg.InputsAsNumpy()] if sg.InputsLength() else []
        outputs = [int(x) for x in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
        description = model.Description().decode("utf-8", "replace") if model.Description() else ""
    except LenetMcuError:
        raise
    except Exception as exc:  # flatbuffer offsets out of range: truncated or corrupt file
        raise LenetMcuError(f"model file {path} cannot be parsed as a TFLite model ({type(exc).__name__}: {exc})") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise LenetMcuError(f"model file {path} has {len(inputs)} inputs and {len(outputs)} outputs, expected one of each")
    return ModelInfo(path, hashlib.sha256(data).hexdigest(), description, tensors, operators, inputs, outputs)


# ---------------------------------------------------------------- model_info.h

def c_float(value: float) -> str:
    """A C float literal that reads back as exactly the same float32."""
    f = float(np.float32(value))
    if not math.isfinite(f):
        raise LenetMcuError(f"quantization scale {value} is not a finite number")
    # numpy prints the shortest text that parses back to the same float32
    text = np.format_float_positional(np.float32(f), unique=True, trim="0")
    if float(np.float32(float(text))) != f or len(text) > 24:
        text = np.format_float_scientific(np.float32(f), unique=True, trim="0")
    return text + "f"


def model_info_context(info: ModelInfo) -> dict:
    """Values for templates/model_info.h.j2; checks the I/O contract of the firmware."""
    inp, out = info.input, info.output
    for role, t in (("input", inp), ("output", out)):
        if t.dtype != "int8":
            raise LenetMcuError(f"model {info.path}: {role} tensor '{t.name}' is {t.dtype}, expected int8 (full-int8 model)")
        if t.scales.size != 1:
            raise LenetMcuError(f"model {info.path}: {role} tensor '{t.name}' is not per-tensor quantized")
    if len(inp.shape) != 4:
        raise LenetMcuError(f"model {info.path}: input tensor '{inp.name}' has shape {list(inp.shape)}, expected NHWC (4 dimensions)")
    n, h, w, c = inp.shape
    return {
        "model_name": info.name,
        "sha256": info.sha256,
        "sha256_prefix": ", ".join(f"0x{b:02x}" for b in info.sha256_prefix),
        "input_name": inp.name, "output_name": out.name,
        "input_n": n, "input_h": h, "input_w": w, "input_c": c,
        "input_bytes": inp.size,
        "output_count": out.size,
        "input_scale": c_float(inp.scale), "input_zero_point": inp.zero_point,
        "output_scale": c_float(out.scale), "output_zero_point": out.zero_point,
        "smallest_wins": int(smallest_wins([op.op for op in info.operators])),
    }


def render_model_info_h(info: ModelInfo) -> str:
    from lenet_mcu.codegen.templating import render

    return render("model_info.h.j2", **model_info_context(info))
