"""C rendering of a lowered plan: the generated files of the native runtime.

  native_weights.h/.c  every constant (filters, biases, requantization tables,
                       element-wise tables), one block per layer
  native_model.h/.c    the program: one parameter block per layer, the buffer
                       plan and infer(), calling the kernels of firmware/runtime/native/
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lenet_mcu import atomic
from lenet_mcu.codegen.model_info import render_model_info_h
from lenet_mcu.codegen.native.lowering import NativePlan, lower
from lenet_mcu.codegen.templating import render
from lenet_mcu.tflite_model import load_model

#: The files `generate` writes, in order.
GENERATED_FILES = ("model_info.h", "native_weights.h", "native_weights.c", "native_model.h", "native_model.c")


def c_array(values: np.ndarray, per_line: int = 16, width: int = 4) -> str:
    flat = [int(v) for v in np.asarray(values).reshape(-1)]
    lines = []
    for i in range(0, len(flat), per_line):
        lines.append("    " + ", ".join(f"{v:{width}d}" for v in flat[i:i + per_line]) + ",")
    return "\n".join(lines)


def c_array_rows(values: np.ndarray, label: str) -> str:
    """One block per output channel/row, so a reader can find a filter."""
    arr = np.asarray(values)
    blocks = []
    for i, row in enumerate(arr.reshape(arr.shape[0], -1)):
        blocks.append(f"    /* {label} {i} */\n" + c_array(row, per_line=20))
    return "\n".join(blocks)


def c_buffer(expr: str | None) -> str | None:
    """A buffer of the plan as the generated code names it (the arena is ARENA)."""
    return expr.replace("arena", "ARENA") if expr else expr


def c_words(values: np.ndarray, macro: str, per_line: int) -> str:
    """Words built by a layout macro of nn_common.h, e.g. NN_PAIR(-12, 40)."""
    rows = np.asarray(values).reshape(len(values), -1)
    items = [f"{macro}({', '.join(str(int(v)) for v in row)})" for row in rows]
    return "\n".join("    " + ", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line))


PARAMS_TYPES = {"conv": "nn_conv_params", "conv_s16": "nn_conv2d_s16_params", "fc": "nn_fc_params",
                "fc_pairs": "nn_fc_pairs_params", "pool": "nn_pool_params", "max_pool": "nn_pool_params",
                "depthwise": "nn_depthwise_params", "squared_difference": "nn_squared_difference_params",
                "sum": "nn_sum_params", "softmax": "nn_softmax_params"}
LAYOUT_MACROS = {"pairs": ("NN_PAIR", 6), "quads": ("NN_CHANNEL_PAIR", 4)}


def render_native(plan: NativePlan) -> dict[str, str]:
    """{file name: text} of the four native_* files."""
    m = plan.model
    steps = []
    for s in plan.steps:
        arrays = []
        for c_type, name, data, comment in s.arrays:
            if c_type in LAYOUT_MACROS:
                macro, per_line = LAYOUT_MACROS[c_type]
                body, c_type, size = c_words(data, macro, per_line), "uint32_t", len(data)
            else:
                label = "output channel" if s.kind == "conv" else "output"
                body = c_array_rows(data, label) if data.ndim > 1 else c_array(data, per_line=8, width=11)
                size = int(np.asarray(data).size)
            arrays.append({"c_type": c_type, "name": name, "size": size, "comment": comment, "body": body})
        steps.append({
            "params_type": PARAMS_TYPES.get(s.kind), "input_count": m.tensors[s.input].size,
            "kind": s.kind, "name": s.name, "title_lines": s.title.split("\n"), "arrays": arrays,
            "params": s.params, "input": c_buffer(plan.storage[s.input]), "output": c_buffer(plan.storage[s.output]),
            "macs": s.macs, "scratch": c_buffer(plan.storage.get(("scratch", s.name))),
            "shape": list(m.tensors[s.output].shape),
        })
    luts = [{"name": name, "body": c_array(np.frombuffer(key, np.int8))} for key, name in plan.luts.items()]
    buffers = []  # arena buffers in the order the layers write them
    for st in plan.steps:
        expr = plan.storage[st.output]
        if expr.startswith("arena"):
            tensor = m.tensors[st.output]
            off = int(expr.split("+")[1])
            buffers.append(f"{st.name} writes arena[{off}..{off + tensor.size}): {list(tensor.shape)} '{tensor.name}'")
        scratch = plan.storage.get(("scratch", st.name))
        if scratch:
            off = int(scratch.split("+")[1])
            buffers.append(f"{st.name} im2col patch arena[{off}..{off + st.scratch_bytes})")
    context = {
        "model_name": m.name, "sha256": m.sha256, "steps": steps, "luts": luts,
        "arena_bytes": plan.arena_bytes, "arena_words": max(1, plan.arena_bytes // 4), "macs": plan.macs,
        "input_bytes": m.input.size, "output_count": m.output.size,
        "ops": ", ".join(op.op for op in m.operators), "buffers": buffers,
    }
    return {name: render(f"{name}.j2", **context) for name in GENERATED_FILES if name.startswith("native_")}


def generate(tflite_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write the GENERATED_FILES for `tflite_path` into `out_dir` (atomically, file by file)."""
    model = load_model(tflite_path)
    texts = {"model_info.h": render_model_info_h(model)}  # checks the firmware's I/O contract first
    texts.update(render_native(lower(model)))
    out_dir = Path(out_dir)
    written = []
    for name in GENERATED_FILES:
        atomic.write_text(out_dir / name, texts[name])
        written.append(out_dir / name)
    return written
