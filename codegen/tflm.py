"""TensorFlow Lite Micro harness: the model as C arrays plus an interpreter set-up.

`generate_tflm(model_path, out_dir)` writes, into out_dir (codegen/tflm/ of the
artifacts folder):

- model_info.h      the firmware's I/O contract (shared template with the native runtime)
- model_data.h/.cc  the .tflite bytes as an alignas(16) const array, its length, and the
                    model's sha256 prefix, input/output shape, scale, zero point as constants
- tflm_runtime.cc   runtime.h for TFLM: a MicroMutableOpResolver with exactly the model's
                    operators, a measured tensor arena, input copied before every Invoke()
- tflm_model.mk     the operators for firmware/runtime/tflm/tflm.mk, which compiles only
                    their kernels, and the model's sha256 so a stale MODEL_DIR is refused

The arena is sized from a measurement: the tflite-micro Python interpreter (the
same TFLM, built for the host) allocates the model and reports its arena use
(RecordingMicroAllocator); the generated arena is that figure plus
ARENA_MARGIN_FRACTION (at least ARENA_MARGIN_MIN_BYTES), rounded up to 16 bytes.
The device reports its real `arena_used_bytes()` in HELLO, so the margin can be
checked on the target (tests/test_tflm_firmware.py does).

Nothing here imports TensorFlow; the measurement is lenet_mcu.interpreters.measure_tflm_arena.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lenet_mcu import atomic
from lenet_mcu.codegen.model_info import c_float, render_model_info_h
from lenet_mcu.codegen.templating import render
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.interpreters import measure_tflm_arena
from lenet_mcu.tflite_model import ModelInfo, load_model

#: Builtin operator -> MicroMutableOpResolver method, for every builtin op the
#: resolver of TFLM (tensorflow/lite/micro/micro_mutable_op_resolver.h, tflite-micro
#: commit 90b983c2 of 2026-08-20) can register. The registration function the
#: method uses is Register_<OP>() for each of them; tflm.mk finds the kernel
#: source that defines it in the user's TFLM tree and checks the method exists there.
TFLM_RESOLVER_METHODS = {
    "ABS": "AddAbs",
    "ADD": "AddAdd",
    "ADD_N": "AddAddN",
    "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo",
    "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast",
    "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "COS": "AddCos",
    "CUMSUM": "AddCumSum",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv",
    "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice",
    "ELU": "AddElu",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "EQUAL": "AddEqual",
    "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill",
    "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater",
    "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu",
    "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog",
    "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic",
    "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean",
    "MINIMUM": "AddMinimum",
    "MIRROR_PAD": "AddMirrorPad",
    "MUL": "AddMul",
    "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual",
    "PACK": "AddPack",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable",
    "REDUCE_ALL": "AddReduceAll",
    "REDUCE_MAX": "AddReduceMax",
    "REDUCE_MIN": "AddReduceMin",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound",
    "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape",
    "SIN": "AddSin",
    "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SQRT": "AddSqrt",
    "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "SUM": "AddSum",
    "SVDF": "AddSvdf",
    "TANH": "AddTanh",
    "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile",
    "ZEROS_LIKE": "AddZerosLike",
}

#: Arena = measured bytes + max(ARENA_MARGIN_FRACTION * measured, ARENA_MARGIN_MIN_BYTES),
#: rounded up to ARENA_ALIGNMENT. Why a margin at all: the host build of TFLM is 64-bit
#: (its pointers and structs are larger, so it over-estimates the reference kernels),
#: but optimized kernels (CMSIS-NN) request scratch buffers the host's reference
#: kernels do not. The device reports arena_used_bytes() in HELLO to check this.
ARENA_MARGIN_FRACTION = 0.25
ARENA_MARGIN_MIN_BYTES = 2048
ARENA_ALIGNMENT = 16

#: Generated files, in the order they are written.
GENERATED_FILES = ("model_info.h", "model_data.h", "model_data.cc", "tflm_runtime.cc", "tflm_model.mk")


@dataclass(frozen=True)
class ResolverOp:
    """One MicroMutableOpResolver registration: a builtin op and where the model uses it."""

    op: str  # builtin operator name, e.g. "CONV_2D"
    method: str  # MicroMutableOpResolver method, e.g. "AddConv2D"
    operator_indices: tuple[int, ...]  # operators of the subgraph that use it
    versions: tuple[int, ...]  # operator-code versions seen

    @property
    def registration(self) -> str:
        return f"Register_{self.op}"


@dataclass(frozen=True)
class ArenaMeasurement:
    """Arena use of the tflite-micro Python interpreter (host build of TFLM) for one model."""

    total_bytes: int
    head_bytes: int
    tail_bytes: int
    tflite_micro_version: str

    def arena_size(
        self, margin_fraction: float = ARENA_MARGIN_FRACTION, margin_min: int = ARENA_MARGIN_MIN_BYTES
    ) -> int:
        margin = max(int(self.total_bytes * margin_fraction + 0.5), margin_min)
        return -(-(self.total_bytes + margin) // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


# ---------------------------------------------------------------- op resolver


def resolver_ops(info: ModelInfo) -> list[ResolverOp]:
    """The registrations the model needs, in order of first use; LenetMcuError for an op TFLM lacks."""
    order: dict[str, list] = {}
    for op in info.operators:
        entry = order.setdefault(op.op, [[], set()])
        entry[0].append(op.index)
        entry[1].add(op.version)
    unsupported = [name for name in order if name not in TFLM_RESOLVER_METHODS]
    if unsupported:
        name = unsupported[0]
        where = ", ".join(str(i) for i in order[name][0])
        if name.startswith("CUSTOM:"):
            what = f"custom operator '{name[7:]}'"
        else:
            what = f"operator {name}"
        raise LenetMcuError(
            f"model {info.path} uses {what} (operator {where}), which TensorFlow Lite Micro does not "
            f"implement (MicroMutableOpResolver has no method for it); expected only builtin ops such as "
            f"CONV_2D, AVERAGE_POOL_2D, FULLY_CONNECTED, TANH, SOFTMAX"
        )
    return [
        ResolverOp(name, TFLM_RESOLVER_METHODS[name], tuple(idx), tuple(sorted(vers)))
        for name, (idx, vers) in order.items()
    ]


# ---------------------------------------------------------------- arena measurement


def measure_arena(model_path: str | Path, timeout: float = 120.0) -> ArenaMeasurement:
    """Allocate the model in the tflite-micro interpreter and read its arena use."""
    return ArenaMeasurement(*measure_tflm_arena(model_path, timeout))


# ---------------------------------------------------------------- C sources


def c_byte_rows(data: bytes, per_row: int = 12) -> list[str]:
    """`data` as rows of C hex literals, `per_row` bytes each."""
    return [", ".join(f"0x{b:02x}" for b in data[i : i + per_row]) + "," for i in range(0, len(data), per_row)]


def _comment_safe(text: str) -> str:
    """Text from the model (tensor and file names) made safe inside a C /* comment */ or string."""
    return text.replace("*/", "* /").replace("\\", "/").replace('"', "'").replace("\n", " ")


def _layer_comment(info: ModelInfo, r: ResolverOp) -> str:
    """'operators 0, 3, 6 (v3)': where an op is used, for the generated comments."""
    versions = "/".join(f"v{v}" for v in r.versions)
    return (
        f"operator{'s' if len(r.operator_indices) > 1 else ''} "
        f"{', '.join(str(i) for i in r.operator_indices)} ({versions})"
    )


def tflm_context(info: ModelInfo, model_bytes: bytes, arena: ArenaMeasurement, arena_size: int) -> dict:
    ops = resolver_ops(info)
    inp, out = info.input, info.output
    return {
        "model_name": _comment_safe(info.name),
        "sha256": info.sha256,
        "sha256_prefix": ", ".join(f"0x{b:02x}" for b in info.sha256_prefix),
        "model_len": len(model_bytes),
        "model_rows": c_byte_rows(model_bytes),
        "input_name": _comment_safe(inp.name),
        "output_name": _comment_safe(out.name),
        "input_dims": list(inp.shape),
        "output_dims": list(out.shape),
        "input_bytes": inp.size,
        "output_count": out.size,
        "input_scale": c_float(inp.scale),
        "input_zero_point": inp.zero_point,
        "output_scale": c_float(out.scale),
        "output_zero_point": out.zero_point,
        "ops": [
            {"op": r.op, "method": r.method, "registration": r.registration, "where": _layer_comment(info, r)}
            for r in ops
        ],
        # fused tensor names list every TF op they came from ("a/BiasAdd;a/convolution;..."): the first says enough
        "layers": [
            {
                "index": op.index,
                "op": op.op,
                "output": _comment_safe(info.tensors[op.outputs[0]].name.split(";")[0]) if op.outputs else "",
                "shape": list(info.tensors[op.outputs[0]].shape) if op.outputs else [],
            }
            for op in info.operators
        ],
        "arena_size": arena_size,
        "arena_measured": arena.total_bytes,
        "arena_head": arena.head_bytes,
        "arena_tail": arena.tail_bytes,
        "arena_margin_percent": int(round(ARENA_MARGIN_FRACTION * 100)),
        "arena_margin_min": ARENA_MARGIN_MIN_BYTES,
        "tflite_micro_version": arena.tflite_micro_version,
    }


def generate_tflm(model_path: str | Path, out_dir: str | Path, arena: ArenaMeasurement | None = None) -> list[Path]:
    """Write the TFLM sources for `model_path` into `out_dir`; returns the files written.

    `arena` is the host measurement (measured here when not given).
    """
    model_path = Path(model_path)
    info = load_model(model_path)
    resolver_ops(info)  # refuse an op TFLM lacks before measuring anything
    model_bytes = model_path.read_bytes()
    if arena is None:
        arena = measure_arena(model_path)
    context = tflm_context(info, model_bytes, arena, arena.arena_size())
    out_dir = Path(out_dir)
    sources = {
        "model_info.h": render_model_info_h(info),
        "model_data.h": render("tflm_model_data.h.j2", **context),
        "model_data.cc": render("tflm_model_data.cc.j2", **context),
        "tflm_runtime.cc": render("tflm_runtime.cc.j2", **context),
        "tflm_model.mk": render("tflm_model.mk.j2", model_path=str(model_path.resolve()), **context),
    }
    written = []
    for name in GENERATED_FILES:
        path = out_dir / name
        atomic.write_text(path, sources[name])
        written.append(path)
    return written


def read_c_array(source: str, name: str) -> bytes:
    """The bytes of `const unsigned char <name>[] = {...}` in generated C (round-trip checks)."""
    match = re.search(rf"\b{re.escape(name)}\[\]\s*=\s*\{{(.*?)\}};", source, re.S)
    if match is None:
        raise LenetMcuError(f"no array {name}[] in the generated source")
    body = re.sub(r"/\*.*?\*/|//[^\n]*", "", match.group(1), flags=re.S)
    return bytes(int(tok, 0) for tok in body.replace("\n", " ").split(",") if tok.strip())


def describe(out_dir: str | Path) -> dict:
    """What a generated MODEL_DIR holds (ops, arena), from its tflm_model.mk; for reports."""
    text = Path(out_dir, "tflm_model.mk").read_text()
    values = dict(re.findall(r"^(\w+)\s*:=\s*(.*)$", text, re.M))
    return {
        "ops": values.get("TFLM_MODEL_OPS", "").split(),
        "arena_size": int(values.get("TFLM_ARENA_BYTES", "0")),
        "arena_measured": int(values.get("TFLM_ARENA_MEASURED_BYTES", "0")),
        "model_sha256": values.get("TFLM_MODEL_SHA256", ""),
    }


#: lenet_mcu.codegen.generate("tflm", ...) calls this.
generate = generate_tflm
