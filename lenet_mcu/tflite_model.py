"""Read and write `.tflite` flatbuffers: the one place that knows the TFLite schema.

The schema code is the one tflite-micro ships (flatc output of TFLM's own
schema.fbs), so this reader reads exactly what the golden reference interpreter
reads and never lags behind it; nothing here imports TensorFlow.

- `load_model(path)` -> ModelInfo: tensors (shape, type, quantization, constant
  data), operators (builtin name and the options code generators use), graph
  inputs/outputs and the file's sha256.
- `build_model(tensors, operators, inputs, outputs)` -> bytes: a small .tflite
  (one subgraph), for probing TFLM kernels and for tests.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from lenet_mcu import extras
from lenet_mcu.errors import LenetMcuError

#: How many leading sha256 bytes the firmware reports in HELLO (docs/protocol.md).
SHA256_PREFIX_BYTES = 8

_NUMPY_TYPES = {
    "float32": np.float32, "float16": np.float16, "float64": np.float64,
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64, "bool": np.bool_,
}


def schema() -> ModuleType:
    """The generated TFLite schema module (object and table API) that tflite-micro ships."""
    return extras.require("tflite_micro.tensorflow.lite.micro.python.schema_py_generated",
                          "reading and writing .tflite files")


def _enum_names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


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

    @property
    def ops(self) -> list[str]:
        """Operator names in execution order."""
        return [op.op for op in self.operators]

    def weights_of(self, op_name: str) -> list[np.ndarray]:
        """The weight tensor (input 1) of each operator of one kind, in graph order."""
        return [self.tensors[op.inputs[1]].data for op in self.operators if op.op == op_name]

    def consumers(self, tensor_index: int) -> list[OperatorInfo]:
        return [op for op in self.operators if tensor_index in op.inputs]

    def producer(self, tensor_index: int) -> OperatorInfo | None:
        for op in self.operators:
            if tensor_index in op.outputs:
                return op
        return None


def _options(fb, op, code: int) -> dict:
    """The builtin options the code generators use, as a plain dict."""
    table = op.BuiltinOptions()
    if table is None:
        return {}
    ops = fb.BuiltinOperator
    padding = _enum_names(fb.Padding)
    activation = _enum_names(fb.ActivationFunctionType)

    def load(cls):
        o = cls()
        o.Init(table.Bytes, table.Pos)
        return o

    if code in (ops.CONV_2D, ops.DEPTHWISE_CONV_2D):
        o = load(fb.Conv2DOptions if code == ops.CONV_2D else fb.DepthwiseConv2DOptions)
        result = {
            "padding": padding.get(o.Padding(), str(o.Padding())),
            "stride_h": o.StrideH(), "stride_w": o.StrideW(),
            "dilation_h": o.DilationHFactor(), "dilation_w": o.DilationWFactor(),
            "activation": activation.get(o.FusedActivationFunction(), str(o.FusedActivationFunction())),
        }
        if code == ops.DEPTHWISE_CONV_2D:
            result["depth_multiplier"] = o.DepthMultiplier()
        return result
    if code in (ops.AVERAGE_POOL_2D, ops.MAX_POOL_2D):
        o = load(fb.Pool2DOptions)
        return {
            "padding": padding.get(o.Padding(), str(o.Padding())),
            "stride_h": o.StrideH(), "stride_w": o.StrideW(),
            "filter_h": o.FilterHeight(), "filter_w": o.FilterWidth(),
            "activation": activation.get(o.FusedActivationFunction(), str(o.FusedActivationFunction())),
        }
    if code == ops.FULLY_CONNECTED:
        o = load(fb.FullyConnectedOptions)
        return {
            "activation": activation.get(o.FusedActivationFunction(), str(o.FusedActivationFunction())),
            "weights_format": o.WeightsFormat(),
            "keep_num_dims": bool(o.KeepNumDims()),
            "asymmetric_quantize_inputs": bool(o.AsymmetricQuantizeInputs()),
        }
    if code == ops.SOFTMAX:
        return {"beta": float(np.float32(load(fb.SoftmaxOptions).Beta()))}
    if code == ops.SUM:
        return {"keep_dims": bool(load(fb.ReducerOptions).KeepDims())}
    return {}


def _tensor(fb, index: int, t, model, data_bytes: bytes) -> TensorInfo:
    name = t.Name().decode("utf-8", "replace") if t.Name() else f"tensor{index}"
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    dtype = _enum_names(fb.TensorType).get(t.Type(), f"TYPE{t.Type()}").lower()
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
    if not path.is_file():
        raise LenetMcuError(f"model file {path} not found (expected a .tflite file, e.g. from `lenet-mcu quantize`)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LenetMcuError(f"model file {path} cannot be read ({exc.strerror or exc}); expected a .tflite file") from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise LenetMcuError(f"model file {path} is not a TFLite flatbuffer (no 'TFL3' identifier at byte 4)")
    fb = schema()
    builtin_names = _enum_names(fb.BuiltinOperator)
    try:
        model = fb.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() != 1:
            raise LenetMcuError(f"model file {path} has {model.SubgraphsLength()} subgraphs, expected exactly one")
        sg = model.Subgraphs(0)
        tensors = [_tensor(fb, i, sg.Tensors(i), model, data) for i in range(sg.TensorsLength())]
        operators = []
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            oc = model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            name = builtin_names.get(code, f"BUILTIN_{code}")
            if code == fb.BuiltinOperator.CUSTOM:
                name = "CUSTOM:" + (oc.CustomCode() or b"").decode("utf-8", "replace")
            operators.append(OperatorInfo(
                index=i, op=name, version=oc.Version(),
                inputs=[int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else [],
                outputs=[int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else [],
                options=_options(fb, op, code),
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


# ------------------------------------------------------------ writing small models

@dataclass
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str = "int8"  # int8 | int32 | float32
    scale: float | list[float] | None = None
    zero_point: int | list[int] | None = None
    quantized_dimension: int = 0
    data: np.ndarray | None = None  # constant contents


@dataclass
class OperatorSpec:
    op: str  # builtin name, e.g. "CONV_2D"
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)  # schema field names (camelCase), e.g. {"strideW": 1}


# builtin name -> (options class, BuiltinOptions member)
_OPTIONS = {
    "CONV_2D": ("Conv2DOptionsT", "Conv2DOptions"),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptionsT", "DepthwiseConv2DOptions"),
    "AVERAGE_POOL_2D": ("Pool2DOptionsT", "Pool2DOptions"),
    "MAX_POOL_2D": ("Pool2DOptionsT", "Pool2DOptions"),
    "FULLY_CONNECTED": ("FullyConnectedOptionsT", "FullyConnectedOptions"),
    "SOFTMAX": ("SoftmaxOptionsT", "SoftmaxOptions"),
    "RESHAPE": ("ReshapeOptionsT", "ReshapeOptions"),
    "ADD": ("AddOptionsT", "AddOptions"),
    "SQUARED_DIFFERENCE": ("SquaredDifferenceOptionsT", "SquaredDifferenceOptions"),
    "SUM": ("ReducerOptionsT", "ReducerOptions"),
}

_TYPES = {"float32": "FLOAT32", "int8": "INT8", "int32": "INT32", "uint8": "UINT8", "int16": "INT16"}


def build_model(tensors: list[TensorSpec], operators: list[OperatorSpec], inputs: list[int], outputs: list[int],
                description: str = "lenet-mcu test model") -> bytes:
    """A .tflite flatbuffer with these tensors and operators (one subgraph)."""
    flatbuffers = extras.require("flatbuffers", "writing .tflite files")
    fb = schema()
    model = fb.ModelT()
    model.version = 3
    model.description = description
    model.buffers = [fb.BufferT()]  # buffer 0: the empty sentinel
    sg = fb.SubGraphT()
    sg.tensors = []
    for spec in tensors:
        t = fb.TensorT()
        t.name = spec.name
        t.shape = list(spec.shape)
        t.type = getattr(fb.TensorType, _TYPES[spec.dtype])
        if spec.scale is not None:
            q = fb.QuantizationParametersT()
            scales = np.atleast_1d(np.asarray(spec.scale, np.float32))
            zps = np.atleast_1d(np.asarray(0 if spec.zero_point is None else spec.zero_point, np.int64))
            if zps.size == 1 and scales.size > 1:
                zps = np.repeat(zps, scales.size)
            q.scale = [float(s) for s in scales]
            q.zeroPoint = [int(z) for z in zps]
            q.quantizedDimension = spec.quantized_dimension
            t.quantization = q
        b = fb.BufferT()
        if spec.data is not None:
            arr = np.ascontiguousarray(np.asarray(spec.data).astype(np.dtype(spec.dtype).newbyteorder("<")))
            b.data = list(arr.tobytes())
        model.buffers.append(b)
        t.buffer = len(model.buffers) - 1
        sg.tensors.append(t)
    codes: list[str] = []
    sg.operators = []
    for spec in operators:
        if spec.op not in codes:
            codes.append(spec.op)
        o = fb.OperatorT()
        o.opcodeIndex = codes.index(spec.op)
        o.inputs = list(spec.inputs)
        o.outputs = list(spec.outputs)
        if spec.op in _OPTIONS:
            cls_name, member = _OPTIONS[spec.op]
            opts = getattr(fb, cls_name)()
            for key, value in spec.options.items():
                if not hasattr(opts, key):
                    raise ValueError(f"{cls_name} has no field {key}")
                setattr(opts, key, value)
            o.builtinOptionsType = getattr(fb.BuiltinOptions, member)
            o.builtinOptions = opts
        sg.operators.append(o)
    model.operatorCodes = []
    for name in codes:
        oc = fb.OperatorCodeT()
        code = getattr(fb.BuiltinOperator, name)
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = 1
        model.operatorCodes.append(oc)
    sg.inputs = list(inputs)
    sg.outputs = list(outputs)
    model.subgraphs = [sg]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
