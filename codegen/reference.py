"""The golden reference: the tflite-micro Python interpreter, and tiny models for it.

- `run_tflm(model, inputs)` runs int8 inputs through the TFLM interpreter (the
  reference kernels the native runtime must match byte for byte).
- `build_model(...)` writes a small .tflite flatbuffer (one or a few operators)
  with the schema object API that tflite-micro ships; used at codegen time to
  compute the TANH lookup table *from the reference itself*, and by the tests
  to check each native kernel against TFLM.

Importing this module never imports TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lenet_mcu.errors import LenetMcuError


def _tflm():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:
        raise LenetMcuError(f"the tflite-micro package (TFLM Python interpreter) is required: {exc}") from None
    return runtime


def _as_bytes(model: bytes | str | Path) -> bytes:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    try:
        return Path(model).read_bytes()
    except OSError as exc:
        raise LenetMcuError(f"model file {model} cannot be read: {exc.strerror or exc}") from None


class TflmRunner:
    """One TFLM interpreter for one model; `run` takes a batch of int8 inputs."""

    def __init__(self, model: bytes | str | Path, preserve_all_tensors: bool = False, arena_size: int | None = None):
        runtime = _tflm()
        data = _as_bytes(model)
        config = (runtime.InterpreterConfig.kPreserveAllTensors if preserve_all_tensors
                  else runtime.InterpreterConfig.kAllocationRecording)
        try:
            self.interpreter = runtime.Interpreter.from_bytes(
                data, arena_size=arena_size or max(64 * 1024, 10 * len(data)), intrepreter_config=config)
        except Exception as exc:  # TFLM reports Prepare failures as RuntimeError
            raise LenetMcuError(f"the TFLM interpreter rejects the model: {exc}") from None
        details = self.interpreter.get_input_details(0)
        self.input_shape = tuple(int(d) for d in details["shape"])
        self.input_dtype = np.dtype(details["dtype"])

    def run_one(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_input(np.asarray(x, self.input_dtype).reshape(self.input_shape), 0)
        self.interpreter.invoke()
        return np.array(self.interpreter.get_output(0), copy=True)

    def run(self, inputs: np.ndarray, progress: bool = False) -> np.ndarray:
        """inputs [N, *input_shape_without_batch] -> outputs [N, *output_shape_without_batch]."""
        inputs = np.asarray(inputs)
        items = range(len(inputs))
        if progress:
            from tqdm import tqdm

            items = tqdm(items, desc="TFLM reference", unit="input")
        outs = [self.run_one(inputs[i]) for i in items]
        return np.stack(outs).reshape((len(inputs),) + outs[0].shape[1:]) if outs else np.zeros((0,))

    def tensor(self, index: int) -> np.ndarray:
        """A tensor after invoke (needs preserve_all_tensors=True): for layer-by-layer debugging."""
        return np.array(self.interpreter.GetTensor(index, 0), copy=True)


def run_tflm(model: bytes | str | Path, inputs: np.ndarray, progress: bool = False) -> np.ndarray:
    return TflmRunner(model).run(inputs, progress=progress)


# ------------------------------------------------------------ model building

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


def build_model(tensors: list[TensorSpec], operators: list[OperatorSpec], inputs: list[int], outputs: list[int]) -> bytes:
    """A .tflite flatbuffer with these tensors and operators (one subgraph)."""
    import flatbuffers

    fb = _tflm().schema_fb
    model = fb.ModelT()
    model.version = 3
    model.description = "lenet-mcu test model"
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
        if spec.data is not None:
            b = fb.BufferT()
            arr = np.ascontiguousarray(np.asarray(spec.data).astype(np.dtype(spec.dtype).newbyteorder("<")))
            b.data = list(arr.tobytes())
            model.buffers.append(b)
            t.buffer = len(model.buffers) - 1
        else:
            model.buffers.append(fb.BufferT())
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


def tanh_lut(input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int) -> np.ndarray:
    """int8 TANH of every int8 input (-128..127), computed by the TFLM TANH kernel itself.

    Returns int8[256] indexed by input + 128.
    """
    model = build_model(
        [TensorSpec("x", (1, 256), "int8", input_scale, input_zero_point),
         TensorSpec("tanh_x", (1, 256), "int8", output_scale, output_zero_point)],
        [OperatorSpec("TANH", [0], [1])], [0], [1])
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    return TflmRunner(model).run_one(x).reshape(256).astype(np.int8)
