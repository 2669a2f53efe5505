"""The firmware's I/O contract, `model_info.h`, shared by both runtimes.

The model itself is read by lenet_mcu.tflite_model (the one .tflite reader).
"""

from __future__ import annotations

import math

import numpy as np

from lenet_mcu.decision import smallest_wins
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.tflite_model import ModelInfo

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
            raise LenetMcuError(
                f"model {info.path}: {role} tensor '{t.name}' is {t.dtype}, expected int8 (full-int8 model)"
            )
        if t.scales.size != 1:
            raise LenetMcuError(f"model {info.path}: {role} tensor '{t.name}' is not per-tensor quantized")
    if len(inp.shape) != 4:
        raise LenetMcuError(
            f"model {info.path}: input tensor '{inp.name}' has shape {list(inp.shape)}, expected NHWC (4 dimensions)"
        )
    n, h, w, c = inp.shape
    return {
        "model_name": info.name,
        "sha256": info.sha256,
        "sha256_prefix": ", ".join(f"0x{b:02x}" for b in info.sha256_prefix),
        "input_name": inp.name,
        "output_name": out.name,
        "input_n": n,
        "input_h": h,
        "input_w": w,
        "input_c": c,
        "input_bytes": inp.size,
        "output_count": out.size,
        "input_scale": c_float(inp.scale),
        "input_zero_point": inp.zero_point,
        "output_scale": c_float(out.scale),
        "output_zero_point": out.zero_point,
        "smallest_wins": int(smallest_wins([op.op for op in info.operators])),
    }


def render_model_info_h(info: ModelInfo) -> str:
    from lenet_mcu.codegen.templating import render

    return render("model_info.h.j2", **model_info_context(info))
