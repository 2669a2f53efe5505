"""Lowering: a .tflite graph checked and turned into the native runtime's layer steps.

`lower(model)` checks every operator against what the kernels in
firmware/runtime/native/ can run *bit-exactly like TFLite Micro* and turns the
graph into a list of steps with precomputed constants; anything else is
refused here, with a one-line LenetMcuError, never by wrong numbers on the chip.

Constants come from tflm_arithmetic (TFLM's Prepare() arithmetic); TANH is a
256-entry table produced by the TFLM TANH kernel itself. The input zero point
is folded into the bias (bias - zp_in * sum(w)), exact for VALID convolutions
and fully connected layers. Steps are named after the model's layers (the
Keras layer names inside the .tflite tensor names: c1, s2, ...).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from lenet_mcu.codegen.native import layouts
from lenet_mcu.codegen.native.memory import plan_arena
from lenet_mcu.codegen.native.tflm_arithmetic import (INT8_MAX, INT8_MIN, activation_range, quantize_multiplier,
                                                       requantization, softmax_params)
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.tflite_model import ModelInfo, TensorInfo

SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "FULLY_CONNECTED", "TANH",
                 "SOFTMAX", "SQUARED_DIFFERENCE", "SUM", "RESHAPE")
ELEMENTWISE_LUT_OPS = ("TANH",)
IM2COL_MAX_CHANNELS = 64  # NN_MAX_CHANNELS in nn_kernels.h


SHORT_OP_NAMES = {"CONV_2D": "conv", "FULLY_CONNECTED": "fc", "AVERAGE_POOL_2D": "pool", "SOFTMAX": "softmax",
                  "TANH": "tanh", "RESHAPE": "reshape", "DEPTHWISE_CONV_2D": "depthwise", "MAX_POOL_2D": "max_pool",
                  "SQUARED_DIFFERENCE": "squared_difference", "SUM": "sum"}


def layer_name(tensor_name: str) -> str | None:
    """The model's layer name inside a converter tensor name, as a C identifier, or None.

    Keras/TFLite names look like "lenet5_1/lenet5_1/c1_1/BiasAdd;...": the layer is the
    last path component but one, with the converter's "_1" suffix removed."""
    parts = tensor_name.split(";")[0].split("/")
    if len(parts) < 2:
        return None
    name = re.sub(r"_\d+$", "", parts[-2])
    name = re.sub(r"[^0-9A-Za-z_]", "_", name)
    if not name:
        return None
    return name if not name[0].isdigit() else f"l{name}"


def channel_block(channels: int, max_block: int = 6) -> int:
    """Output channels per pass of the kernels: the largest divisor <= NN_MAX_BLOCK (6)."""
    return max(b for b in range(1, max_block + 1) if channels % b == 0)


def out_size(padding: str, in_size: int, filter_size: int, stride: int) -> int:
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size - filter_size + stride) // stride


def same_padding(in_size: int, filter_size: int, stride: int, out: int) -> int:
    return max((out - 1) * stride + filter_size - in_size, 0) // 2


# ------------------------------------------------------------ the lowered graph

@dataclass
class Step:
    kind: str  # conv | fc | pool | lut | softmax | copy
    name: str  # C identifier after the model's layers, e.g. "c1_s2"
    title: str  # comment: which .tflite operators this step runs
    input: int  # tensor index read
    output: int  # tensor index written
    params: dict = field(default_factory=dict)  # C parameter block fields
    arrays: list = field(default_factory=list)  # (c_type, name, np.ndarray, comment)
    macs: int = 0
    scratch_bytes: int = 0  # work buffer for this step only (im2col patch), planned in the arena


@dataclass
class NativePlan:
    model: ModelInfo
    steps: list[Step]
    storage: dict[int, str]  # tensor index -> C expression of its buffer
    arena_bytes: int
    macs: int
    luts: dict[bytes, str]  # table contents -> C name
    skipped_macs: int = 0


class Lowering:
    def __init__(self, model: ModelInfo):
        self.model = model
        self.where_model = f"model {model.path}"

    # --- checks
    def fail(self, op, message: str):
        raise LenetMcuError(f"{self.where_model}: operator {op.index} ({op.op}) {message}")

    def tensor(self, op, slot: int, role: str, kind: str = "input") -> TensorInfo:
        indices = op.inputs if kind == "input" else op.outputs
        if slot >= len(indices) or indices[slot] < 0:
            self.fail(op, f"has no {role} tensor")
        return self.model.tensors[indices[slot]]

    def activation(self, op, slot: int, role: str, kind: str = "input") -> TensorInfo:
        t = self.tensor(op, slot, role, kind)
        if t.data is not None:
            self.fail(op, f"{role} '{t.name}' is a constant, expected an activation")
        if t.dtype != "int8":
            self.fail(op, f"{role} '{t.name}' is {t.dtype}, the native runtime runs int8 activations only")
        if t.scales.size != 1:
            self.fail(op, f"{role} '{t.name}' is not per-tensor quantized (scales: {t.scales.size})")
        if not (float(t.scale) > 0.0 and math.isfinite(float(t.scale))):
            self.fail(op, f"{role} '{t.name}' has scale {t.scale}, expected a positive number")
        if not INT8_MIN <= t.zero_point <= INT8_MAX:
            self.fail(op, f"{role} '{t.name}' has zero point {t.zero_point}, expected -128..127")
        return t

    def constant(self, op, slot: int, role: str, dtype: str, ndim: int) -> TensorInfo:
        t = self.tensor(op, slot, role)
        if t.data is None:
            self.fail(op, f"{role} '{t.name}' is not a constant: the native runtime needs weights in the model")
        if t.dtype != dtype:
            self.fail(op, f"{role} '{t.name}' is {t.dtype}, expected {dtype}")
        if len(t.shape) != ndim:
            self.fail(op, f"{role} '{t.name}' has shape {list(t.shape)}, expected {ndim} dimensions")
        return t

    def weights_quant(self, op, w: TensorInfo, channels: int) -> np.ndarray:
        if w.scales.size not in (1, channels):
            self.fail(op, f"weights '{w.name}' have {w.scales.size} scales, expected 1 or {channels}")
        if w.scales.size > 1 and w.quantized_dimension != 0:
            self.fail(op, f"weights '{w.name}' are quantized along dimension {w.quantized_dimension}, expected 0")
        if np.any(w.zero_points != 0):
            self.fail(op, f"weights '{w.name}' have non-zero zero points; TFLM int8 kernels require symmetric weights")
        return w.scales.astype(np.float32)

    def bias(self, op, slot: int, channels: int) -> np.ndarray:
        if slot >= len(op.inputs) or op.inputs[slot] < 0:
            return np.zeros(channels, np.int64)
        b = self.constant(op, slot, "bias", "int32", 1)
        if b.shape != (channels,):
            self.fail(op, f"bias '{b.name}' has shape {list(b.shape)}, expected [{channels}]")
        return b.data.astype(np.int64)

    # --- lowering
    def lower(self) -> NativePlan:
        m = self.model
        for op in m.operators:
            if op.op not in SUPPORTED_OPS:
                self.fail(op, f"is not supported by the native runtime (supported: {', '.join(SUPPORTED_OPS)})")
        for role, t in (("input", m.input), ("output", m.output)):
            if t.dtype != "int8":
                raise LenetMcuError(f"{self.where_model}: graph {role} '{t.name}' is {t.dtype}, expected int8")
        for t in m.tensors:
            if t.is_variable:
                raise LenetMcuError(f"{self.where_model}: tensor '{t.name}' is a variable; stateful models are not supported")

        self.steps: list[Step] = []
        self.luts: dict[bytes, str] = {}
        consumed: set[int] = set()
        for op in m.operators:
            if op.index in consumed:
                continue
            if op.op == "CONV_2D":
                self.lower_conv(op, consumed)
            elif op.op == "FULLY_CONNECTED":
                self.lower_fc(op, consumed)
            elif op.op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
                self.lower_pool(op)
            elif op.op == "DEPTHWISE_CONV_2D":
                self.lower_depthwise(op, consumed)
            elif op.op == "SQUARED_DIFFERENCE":
                self.lower_squared_difference(op)
            elif op.op == "SUM":
                self.lower_sum(op)
            elif op.op in ELEMENTWISE_LUT_OPS:
                self.lower_lut(op)
            elif op.op == "SOFTMAX":
                self.lower_softmax(op)
            elif op.op == "RESHAPE":
                self.lower_reshape(op)
        self.steps, storage, arena = plan_arena(m, self.steps, self.int16_handoffs())
        macs = sum(s.macs for s in self.steps)
        return NativePlan(m, self.steps, storage, arena, macs, self.luts)

    def int16_handoffs(self) -> dict[int, int]:
        """Bytes of the tensors a conv_s16 step writes as int16 because every reader is a
        conv_s16 step too (which then reads it without widening)."""
        sizes = {}
        for s in self.steps:
            if s.kind != "conv_s16" or s.output in self.model.outputs:
                continue
            readers = [r for r in self.steps if r.input == s.output]
            if readers and all(r.kind == "conv_s16" for r in readers):
                s.params["out_s16"] = 1
                # channel-pair planes when every reader takes them (nn_conv2d_s16.h)
                pairs = all(r.params["in_c"] % 2 == 0 and r.params["pool_w"] == 2 and not r.params["quad"]
                            for r in readers)
                s.params["out_pairs"] = int(pairs)
                for r in readers:
                    r.params["in_s16"] = 1
                    r.params["in_pairs"] = int(pairs)
                    r.scratch_bytes = 0
                    if pairs:
                        self.reorder_for_pair_planes(r)
                # a zero-padded filter row (odd tap count, NHWC) reads one value past the last tap
                overread = any(not pairs and (r.params["filter_w"] * r.params["in_c"]) % 2 for r in readers)
                sizes[s.output] = 2 * self.model.tensors[s.output].size + (4 if overread else 0)
        for s in self.steps:
            if s.kind == "conv_s16":
                for key in ("in_s16", "in_pairs", "out_pairs"):
                    s.params.setdefault(key, 0)
        return sizes

    @staticmethod
    def reorder_for_pair_planes(step: Step):
        p = step.params
        for i, (c_type, name, data, comment) in enumerate(step.arrays):
            if name == p["filter"]:
                data = layouts.filter_for_pair_planes(data, p["out_c"], p["block"], p["filter_h"], p["filter_w"],
                                                      p["in_c"] // 2)
                step.arrays[i] = (c_type, name, data, comment.replace("(2 taps of a filter row)",
                                                                      "(2 channels of a pixel), [plane][kx] order"))

    def single_consumer(self, tensor_index: int, op_name: str):
        """The only operator reading this tensor, if it is `op_name` and the tensor is internal."""
        if tensor_index in self.model.outputs:
            return None
        users = self.model.consumers(tensor_index)
        if len(users) == 1 and users[0].op == op_name and users[0].inputs[0] == tensor_index:
            return users[0]
        return None

    def fuse_tanh(self, y, consumed: set, title: list) -> tuple:
        """If `y` feeds exactly one TANH, fold it into the producing layer as a table lookup.

        Returns (table name or None, the tensor the fused layer writes)."""
        nxt = self.single_consumer(y.index, "TANH")
        if nxt is None:
            return None, y
        lut = self.lut_name(self.lut_for(nxt), nxt)
        out_tensor = self.activation(nxt, 0, "output", "output")
        consumed.add(nxt.index)
        title.append(f"TANH '{out_tensor.name}' through a 256-entry table (fused)")
        return lut, out_tensor

    def lut_for(self, op) -> np.ndarray:
        from lenet_mcu.codegen.reference import tanh_lut

        x = self.activation(op, 0, "input")
        y = self.activation(op, 0, "output", "output")
        if x.size != y.size:
            self.fail(op, f"input has {x.size} elements but output {y.size}")
        if op.op == "TANH":
            return tanh_lut(x.scale, x.zero_point, y.scale, y.zero_point)
        self.fail(op, "has no lookup table")

    def lut_name(self, table: np.ndarray, op) -> str:
        key = table.astype(np.int8).tobytes()
        if key not in self.luts:
            layer = layer_name(self.model.tensors[op.outputs[0]].name)
            name = f"{layer}_{op.op.lower()}" if layer else f"{op.op.lower()}{len(self.luts)}"
            while name in self.luts.values():
                name += "_"
            self.luts[key] = name
        return self.luts[key]

    def use_fast(self, step: Step, kind: str, fast: tuple, shape_params: dict, input_values: int):
        """Finish `step` as a fast-kernel step: its params and arrays (named after the step)."""
        params, arrays = fast
        step.kind = kind
        step.arrays = [(c_type, f"{step.name}_{name}", data, comment) for c_type, name, data, comment in arrays]
        step.params = {**shape_params, **params}
        for _, name, _, _ in arrays:
            step.params[name] = f"{step.name}_{name}"
        # the input widened to int16 for this step alone (unless the previous layer writes int16)
        step.scratch_bytes = 2 * (input_values + 2)
        self.steps.append(step)

    def step_name(self, ops_and_outputs: list) -> str:
        """C identifier of a step: the model's layer names of its operators, joined ("c1_s2")."""
        parts: list[str] = []
        for op, out in ops_and_outputs:
            part = layer_name(out.name) or SHORT_OP_NAMES.get(op.op, op.op.lower())
            if part not in parts:
                parts.append(part)
        name = "_".join(parts)
        taken = {s.name for s in self.steps}
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name}_{n}", n + 1
        return unique

    def lower_conv(self, op, consumed: set[int]):
        x = self.activation(op, 0, "input")
        w = self.constant(op, 1, "filter", "int8", 4)
        y = self.activation(op, 0, "output", "output")
        o = op.options
        if len(x.shape) != 4 or len(y.shape) != 4:
            self.fail(op, f"input {list(x.shape)} / output {list(y.shape)} are not NHWC tensors")
        n, h, wid, c = x.shape
        oc, kh, kw, ic = w.shape
        if n != 1:
            self.fail(op, f"has batch size {n}, the native runtime runs batch 1")
        if ic != c:
            self.fail(op, f"filter depth {ic} differs from input depth {c} (grouped convolution is not supported)")
        if o.get("padding") != "VALID":
            self.fail(op, f"uses {o.get('padding')} padding; the native runtime supports VALID convolutions only")
        if o.get("dilation_h", 1) != 1 or o.get("dilation_w", 1) != 1:
            self.fail(op, "uses dilation; the native runtime supports dilation 1 only")
        sh, sw = o["stride_h"], o["stride_w"]
        if sh < 1 or sw < 1:
            self.fail(op, f"has stride {sh}x{sw}, expected >= 1")
        oh, ow = out_size("VALID", h, kh, sh), out_size("VALID", wid, kw, sw)
        if oh < 1 or ow < 1 or y.shape != (1, oh, ow, oc):
            self.fail(op, f"output shape {list(y.shape)} differs from the expected [1, {oh}, {ow}, {oc}]")
        scales = self.weights_quant(op, w, oc)
        bias = self.bias(op, 2, oc)
        act_min, act_max = activation_range(o.get("activation", "NONE"), y.scale, y.zero_point,
                                            f"{self.where_model}: operator {op.index} (CONV_2D)")
        mult, shift = requantization(x.scale, scales, y.scale, oc, per_tensor_float_product=False)
        weights = w.data.astype(np.int8)
        folded = self.fold_bias(op, bias, weights.reshape(oc, -1), x.zero_point)

        title = [f"CONV_2D '{y.name}' {list(x.shape)} -> {list(y.shape)}, {kh}x{kw} stride {sh}x{sw}"]
        consumed.add(op.index)
        named = [(op, y)]
        lut, out_tensor = self.fuse_tanh(y, consumed, title)
        pool_h = pool_w = 1
        pool_min, pool_max = INT8_MIN, INT8_MAX
        pool = (self.single_consumer(out_tensor.index, "AVERAGE_POOL_2D")
                or self.single_consumer(out_tensor.index, "MAX_POOL_2D"))
        is_max = pool is not None and pool.op == "MAX_POOL_2D"
        if pool is not None:
            po = pool.options
            fused = (po.get("padding") == "VALID" and po["stride_h"] == po["filter_h"]
                     and po["stride_w"] == po["filter_w"])
            if is_max:  # only the int16 fast kernel pools by maximum
                fused = fused and layouts.conv_s16(weights, folded, mult, shift, y.zero_point, (sh, sw),
                                                   (po["filter_h"], po["filter_w"])) is not None
            if fused:
                p_out = self.check_pool(pool)
                pool_h, pool_w = po["filter_h"], po["filter_w"]
                pool_min, pool_max = activation_range(po.get("activation", "NONE"), p_out.scale, p_out.zero_point,
                                                      f"{self.where_model}: operator {pool.index} ({pool.op})")
                consumed.add(pool.index)
                title.append(f"{pool.op} '{p_out.name}' {pool_h}x{pool_w} -> {list(p_out.shape)} (fused)")
                out_tensor = p_out
                named.append((pool, p_out))
            else:
                is_max = False
        name = self.step_name(named)
        step = Step("conv", name, "\n".join(title), x.index, out_tensor.index, macs=oh * ow * oc * kh * kw * ic)
        epilogue = {"act_min": act_min, "act_max": act_max, "lut": lut or "0"}
        if (oh, ow) == (1, 1) and (kh, kw) == (h, wid) and pool_h == pool_w == 1:
            # one output position over the whole input: a fully connected layer on the flattened NHWC input
            fast = layouts.fc_pairs(weights.reshape(oc, -1), folded, mult, shift, y.zero_point)
            if fast is not None:
                self.use_fast(step, "fc_pairs", fast, {"out_features": oc, **epilogue}, kh * kw * ic)
                return
        fast = layouts.conv_s16(weights, folded, mult, shift, y.zero_point, (sh, sw), (pool_h, pool_w))
        if fast is not None:
            out_h, out_w = oh // pool_h, ow // pool_w
            # the input rows one output row reads, widened to int16 (unless the layer before writes int16)
            window = (kh + pool_h - 1) * wid * c + 2
            self.use_fast(step, "conv_s16", fast, {
                "in_w": wid, "in_c": c, "filter_h": kh, "filter_w": kw, "out_h": out_h, "out_w": out_w,
                "out_c": oc, "pool_h": pool_h, "pool_w": pool_w, "pool_act_min": pool_min, "pool_act_max": pool_max,
                "pool_max": int(is_max), "out_s16": 0, **epilogue}, window)
            return
        taps = kh * kw * ic
        patch_len = (taps + 3) // 4 * 4
        im2col = oh * ow > 1 and oc <= IM2COL_MAX_CHANNELS
        if im2col:
            # each conv position is gathered into a patch of whole words: the filter is padded to match
            filt = np.zeros((oc, patch_len), np.int8)
            filt[:, :taps] = weights.reshape(oc, taps)
            filter_comment = f"[{oc}][{kh}][{kw}][{ic}] OHWI" + (
                f", each filter zero-padded from {taps} to {patch_len}" if patch_len > taps else "")
            step.scratch_bytes = patch_len
            title.append(f"im2col: taps gathered into a {patch_len}-byte patch per position")
            step.title = "\n".join(title)
        else:
            filt, filter_comment = weights, f"[{oc}][{kh}][{kw}][{ic}] OHWI"
        step.arrays = [
            ("int8_t", f"{name}_filter", filt, filter_comment),
            ("int32_t", f"{name}_bias", folded, f"bias - ({x.zero_point}) * sum(filter): input zero point folded in"),
            ("int32_t", f"{name}_multiplier", mult, "per-channel requantization multiplier (Q31)"),
            ("int32_t", f"{name}_shift", shift, "per-channel shift (> 0: left)"),
        ]
        step.params = {
            "in_w": wid, "in_c": c, "filter_h": kh, "filter_w": kw, "stride_h": sh, "stride_w": sw,
            "conv_out_h": oh, "conv_out_w": ow, "out_c": oc,
            "filter": f"{name}_filter", "bias": f"{name}_bias",
            "multiplier": f"{name}_multiplier", "shift": f"{name}_shift", "max_shift": int(shift.max()),
            "out_zero_point": y.zero_point, "act_min": act_min, "act_max": act_max,
            "lut": lut or "0", "pool_h": pool_h, "pool_w": pool_w,
            "pool_act_min": pool_min, "pool_act_max": pool_max,
            "block": channel_block(oc), "patch_len": patch_len if im2col else 0,
        }
        self.steps.append(step)

    def fold_bias(self, op, bias: np.ndarray, weights_2d: np.ndarray, input_zero_point: int) -> np.ndarray:
        folded = bias - input_zero_point * weights_2d.astype(np.int64).sum(axis=1)
        if folded.min() < -(1 << 31) or folded.max() >= (1 << 31):
            self.fail(op, "bias plus the folded input zero-point term overflows int32")
        return folded

    def check_pool(self, op) -> TensorInfo:
        x = self.activation(op, 0, "input")
        y = self.activation(op, 0, "output", "output")
        if abs(x.scale - y.scale) > 1.0e-6 or x.zero_point != y.zero_point:
            self.fail(op, "has different input and output quantization (TFLM requires them equal)")
        if len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != 1:
            self.fail(op, f"input {list(x.shape)} / output {list(y.shape)} are not batch-1 NHWC tensors")
        o = op.options
        _, h, w, c = x.shape
        oh = out_size(o["padding"], h, o["filter_h"], o["stride_h"])
        ow = out_size(o["padding"], w, o["filter_w"], o["stride_w"])
        if o["padding"] not in ("VALID", "SAME") or y.shape != (1, oh, ow, c) or oh < 1 or ow < 1:
            self.fail(op, f"output shape {list(y.shape)} differs from the expected [1, {oh}, {ow}, {c}]")
        return y

    def lower_pool(self, op):
        y = self.check_pool(op)
        x = self.model.tensors[op.inputs[0]]
        o = op.options
        _, h, w, c = x.shape
        _, oh, ow, _ = y.shape
        pad_h = same_padding(h, o["filter_h"], o["stride_h"], oh) if o["padding"] == "SAME" else 0
        pad_w = same_padding(w, o["filter_w"], o["stride_w"], ow) if o["padding"] == "SAME" else 0
        act_min, act_max = activation_range(o.get("activation", "NONE"), y.scale, y.zero_point,
                                            f"{self.where_model}: operator {op.index} ({op.op})")
        name = self.step_name([(op, y)])
        kind = "max_pool" if op.op == "MAX_POOL_2D" else "pool"
        step = Step(kind, name, f"{op.op} '{y.name}' {list(x.shape)} -> {list(y.shape)}, "
                    f"{o['filter_h']}x{o['filter_w']} stride {o['stride_h']}x{o['stride_w']} {o['padding']}",
                    x.index, y.index)
        step.params = {
            "in_h": h, "in_w": w, "channels": c, "filter_h": o["filter_h"], "filter_w": o["filter_w"],
            "stride_h": o["stride_h"], "stride_w": o["stride_w"], "pad_h": pad_h, "pad_w": pad_w,
            "out_h": oh, "out_w": ow, "act_min": act_min, "act_max": act_max,
        }
        self.steps.append(step)

    def lower_fc(self, op, consumed: set[int]):
        x = self.activation(op, 0, "input")
        w = self.constant(op, 1, "weights", "int8", 2)
        y = self.activation(op, 0, "output", "output")
        o = op.options
        if o.get("weights_format", 0) != 0:
            self.fail(op, "uses shuffled weights; only the default weights format is supported")
        out_features, in_features = w.shape
        if x.size % in_features:
            self.fail(op, f"input of {x.size} elements is not a multiple of the {in_features} weights per output")
        batches = x.size // in_features
        if y.size != batches * out_features or (y.shape and y.shape[-1] != out_features):
            self.fail(op, f"output shape {list(y.shape)} differs from the expected {batches} x {out_features}")
        scales = self.weights_quant(op, w, out_features)
        bias = self.bias(op, 2, out_features)
        act_min, act_max = activation_range(o.get("activation", "NONE"), y.scale, y.zero_point,
                                            f"{self.where_model}: operator {op.index} (FULLY_CONNECTED)")
        mult, shift = requantization(x.scale, scales, y.scale, out_features,
                                     per_tensor_float_product=scales.size == 1)
        weights = w.data.astype(np.int8)
        folded = self.fold_bias(op, bias, weights, x.zero_point)
        name = self.step_name([(op, y)])
        title = [f"FULLY_CONNECTED '{y.name}' {list(x.shape)} -> {list(y.shape)}"]
        consumed.add(op.index)
        lut, out_tensor = self.fuse_tanh(y, consumed, title)
        step = Step("fc", name, "\n".join(title), x.index, out_tensor.index, macs=batches * out_features * in_features)
        if batches == 1:
            fast = layouts.fc_pairs(weights, folded, mult, shift, y.zero_point)
            if fast is not None:
                self.use_fast(step, "fc_pairs", fast, {"out_features": out_features, "act_min": act_min,
                                                       "act_max": act_max, "lut": lut or "0"}, in_features)
                return
        step.arrays = [
            ("int8_t", f"{name}_weights", weights, f"[{out_features}][{in_features}]"),
            ("int32_t", f"{name}_bias", folded, f"bias - ({x.zero_point}) * sum(weights): input zero point folded in"),
            ("int32_t", f"{name}_multiplier", mult,
             "requantization multiplier (Q31)" + (" per channel" if scales.size > 1 else ", per-tensor, repeated")),
            ("int32_t", f"{name}_shift", shift, "shift (> 0: left)"),
        ]
        step.params = {
            "batches": batches, "in_features": in_features, "out_features": out_features,
            "weights": f"{name}_weights", "bias": f"{name}_bias",
            "multiplier": f"{name}_multiplier", "shift": f"{name}_shift", "max_shift": int(shift.max()),
            "out_zero_point": y.zero_point, "act_min": act_min, "act_max": act_max, "lut": lut or "0",
            "block": channel_block(out_features),
        }
        self.steps.append(step)

    def lower_lut(self, op):
        table = self.lut_for(op)
        x = self.model.tensors[op.inputs[0]]
        y = self.model.tensors[op.outputs[0]]
        name = self.step_name([(op, y)])
        step = Step("lut", name, f"{op.op} '{y.name}' {list(y.shape)} through a 256-entry table", x.index, y.index)
        step.params = {"lut": self.lut_name(table, op), "count": y.size}
        self.steps.append(step)

    def lower_softmax(self, op):
        x = self.activation(op, 0, "input")
        y = self.activation(op, 0, "output", "output")
        if x.size != y.size or not x.shape:
            self.fail(op, f"input {list(x.shape)} and output {list(y.shape)} do not match")
        if y.zero_point != -128 or float(y.scales[0]) != 1.0 / 256:
            self.fail(op, f"output quantization is scale {y.scale} zero point {y.zero_point}; "
                          "TFLM int8 softmax requires 1/256 and -128")
        beta = op.options.get("beta", 1.0)
        mult, left_shift, diff_min = softmax_params(beta, x.scale)
        depth = x.shape[-1]
        name = self.step_name([(op, y)])
        step = Step("softmax", name, f"SOFTMAX '{y.name}' {list(x.shape)}, beta {beta}", x.index, y.index)
        step.params = {"outer": x.size // depth, "depth": depth, "input_multiplier": mult,
                       "input_left_shift": left_shift, "diff_min": diff_min}
        self.steps.append(step)

    def lower_reshape(self, op):
        x = self.activation(op, 0, "input")
        y = self.activation(op, 0, "output", "output")
        if x.size != y.size or x.scale != y.scale or x.zero_point != y.zero_point:
            self.fail(op, "changes the element count or the quantization; only a pure reshape is supported")
        name = self.step_name([(op, y)])
        self.steps.append(Step("copy", name, f"RESHAPE '{y.name}' {list(x.shape)} -> {list(y.shape)}",
                               x.index, y.index, params={"count": y.size}))

    def lower_depthwise(self, op, consumed: set[int]):
        """DEPTHWISE_CONV_2D with one filter per input channel (LeCun subsampling), VALID, TANH fused."""
        x = self.activation(op, 0, "input")
        w = self.constant(op, 1, "filter", "int8", 4)
        y = self.activation(op, 0, "output", "output")
        o = op.options
        if len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != 1:
            self.fail(op, f"input {list(x.shape)} / output {list(y.shape)} are not batch-1 NHWC tensors")
        _, h, wid, c = x.shape
        one, kh, kw, oc = w.shape
        if one != 1 or oc != c or o.get("depth_multiplier", 1) != 1:
            self.fail(op, f"filter {list(w.shape)} (depth multiplier {o.get('depth_multiplier')}); the native "
                          f"runtime supports one filter per input channel, [1, kh, kw, {c}]")
        if o.get("padding") != "VALID":
            self.fail(op, f"uses {o.get('padding')} padding; the native runtime supports VALID only")
        if o.get("dilation_h", 1) != 1 or o.get("dilation_w", 1) != 1:
            self.fail(op, "uses dilation; the native runtime supports dilation 1 only")
        sh, sw = o["stride_h"], o["stride_w"]
        oh, ow = out_size("VALID", h, kh, sh), out_size("VALID", wid, kw, sw)
        if sh < 1 or sw < 1 or oh < 1 or ow < 1 or y.shape != (1, oh, ow, c):
            self.fail(op, f"output shape {list(y.shape)} differs from the expected [1, {oh}, {ow}, {c}]")
        if w.scales.size not in (1, c):
            self.fail(op, f"filter '{w.name}' has {w.scales.size} scales, expected 1 or {c}")
        if w.scales.size > 1 and w.quantized_dimension != 3:
            self.fail(op, f"filter '{w.name}' is quantized along dimension {w.quantized_dimension}, expected 3")
        if np.any(w.zero_points != 0):
            self.fail(op, f"filter '{w.name}' has non-zero zero points; TFLM int8 kernels require symmetric weights")
        bias = self.bias(op, 2, c)
        act_min, act_max = activation_range(o.get("activation", "NONE"), y.scale, y.zero_point,
                                            f"{self.where_model}: operator {op.index} (DEPTHWISE_CONV_2D)")
        # PopulateConvolutionQuantizationParams: the same per-channel multipliers as CONV_2D
        mult, shift = requantization(x.scale, w.scales.astype(np.float32), y.scale, c, per_tensor_float_product=False)
        taps = w.data.astype(np.int8).reshape(kh * kw, c)
        folded = self.fold_bias(op, bias, taps.T, x.zero_point)
        title = [f"DEPTHWISE_CONV_2D '{y.name}' {list(x.shape)} -> {list(y.shape)}, {kh}x{kw} stride {sh}x{sw}"]
        consumed.add(op.index)
        lut, out_tensor = self.fuse_tanh(y, consumed, title)
        name = self.step_name([(op, y)])
        step = Step("depthwise", name, "\n".join(title), x.index, out_tensor.index, macs=oh * ow * c * kh * kw)
        step.arrays = [
            ("int8_t", f"{name}_filter", taps, f"[{kh}][{kw}][{c}]: one {kh}x{kw} filter per channel"),
            ("int32_t", f"{name}_bias", folded, f"bias - ({x.zero_point}) * sum(filter): input zero point folded in"),
            ("int32_t", f"{name}_multiplier", mult, "per-channel requantization multiplier (Q31)"),
            ("int32_t", f"{name}_shift", shift, "per-channel shift (> 0: left)"),
        ]
        step.params = {
            "in_w": wid, "channels": c, "filter_h": kh, "filter_w": kw, "stride_h": sh, "stride_w": sw,
            "out_h": oh, "out_w": ow, "filter": f"{name}_filter", "bias": f"{name}_bias",
            "multiplier": f"{name}_multiplier", "shift": f"{name}_shift", "out_zero_point": y.zero_point,
            "act_min": act_min, "act_max": act_max, "lut": lut or "0",
        }
        self.steps.append(step)

    def rows_cols(self, op, t: TensorInfo, role: str) -> tuple[int, int]:
        """A tensor as [rows][cols] (cols = innermost dimension); every outer dimension but the last must be 1."""
        if not t.shape:
            self.fail(op, f"{role} '{t.name}' is a scalar, expected at least one dimension")
        outer = t.shape[:-2]
        if any(d != 1 for d in outer):
            self.fail(op, f"{role} '{t.name}' has shape {list(t.shape)}; only the last two dimensions may exceed 1")
        return (t.shape[-2] if len(t.shape) >= 2 else 1), t.shape[-1]

    def lower_squared_difference(self, op):
        """SQUARED_DIFFERENCE of an activation and a constant (the RBF codes), the rows of either broadcast."""
        if len(op.inputs) != 2:
            self.fail(op, f"has {len(op.inputs)} inputs, expected 2")
        a_t, b_t = (self.model.tensors[i] for i in op.inputs[:2])
        if (a_t.data is None) == (b_t.data is None):
            self.fail(op, "needs one activation and one constant input (the native runtime keeps one input buffer per layer)")
        const_slot = 0 if a_t.data is not None else 1
        x = self.activation(op, 1 - const_slot, "input")
        k = self.tensor(op, const_slot, "constant")
        if k.dtype != "int8" or k.scales.size != 1:
            self.fail(op, f"constant '{k.name}' is {k.dtype} with {k.scales.size} scales, expected per-tensor int8")
        y = self.activation(op, 0, "output", "output")
        rows, cols = self.rows_cols(op, y, "output")
        a, b = (k, x) if const_slot == 0 else (x, k)
        a_rows, a_cols = self.rows_cols(op, a, "input 1")
        b_rows, b_cols = self.rows_cols(op, b, "input 2")
        if a_cols != cols or b_cols != cols or a_rows not in (1, rows) or b_rows not in (1, rows):
            self.fail(op, f"inputs {list(a.shape)} and {list(b.shape)} do not broadcast to the output {list(y.shape)} "
                          "along rows only")
        for t in (a, b):
            if not INT8_MIN <= t.zero_point <= INT8_MAX:
                self.fail(op, f"tensor '{t.name}' has zero point {t.zero_point}, expected -128..127")
        left_shift = 7  # TFLM squared_difference.cc for int8
        twice_max = 2.0 * float(max(np.float32(a.scale), np.float32(b.scale)))
        a_mult, a_shift = quantize_multiplier(float(a.scale) / twice_max)
        b_mult, b_shift = quantize_multiplier(float(b.scale) / twice_max)
        out_mult, out_shift = quantize_multiplier(
            twice_max * twice_max / float(np.float32((1 << (2 * left_shift)) * np.float32(y.scale))))
        name = self.step_name([(op, y)])
        step = Step("squared_difference", name,
                    f"SQUARED_DIFFERENCE '{y.name}' {list(a.shape)} vs {list(b.shape)} -> {list(y.shape)}",
                    x.index, y.index, macs=rows * cols)
        step.arrays = [("int8_t", f"{name}_constant", k.data.astype(np.int8).reshape(-1),
                        f"'{k.name}' {list(k.shape)}, scale {float(k.scale):.9g}, zero point {k.zero_point}")]
        step.params = {
            "rows": rows, "cols": cols, "a_rows": a_rows, "b_rows": b_rows,
            "a_offset": -a.zero_point, "a_multiplier": a_mult, "a_shift": a_shift,
            "b_offset": -b.zero_point, "b_multiplier": b_mult, "b_shift": b_shift,
            "left_shift": left_shift, "out_multiplier": out_mult, "out_shift": out_shift,
            "out_zero_point": y.zero_point, "act_min": INT8_MIN, "act_max": INT8_MAX,
            "constant": f"{name}_constant", "constant_first": int(const_slot == 0),
        }
        self.steps.append(step)

    def lower_sum(self, op):
        """SUM over the innermost axis (the RBF distances)."""
        x = self.activation(op, 0, "input")
        y = self.activation(op, 0, "output", "output")
        axis = self.tensor(op, 1, "axis")
        if axis.data is None or axis.dtype != "int32":
            self.fail(op, "axis is not a constant int32 tensor")
        last = len(x.shape) - 1
        axes = sorted({int(v) % len(x.shape) for v in np.asarray(axis.data).reshape(-1)}) if x.shape else []
        if axes != [last]:
            self.fail(op, f"reduces axes {np.asarray(axis.data).reshape(-1).tolist()} of {list(x.shape)}; "
                          "the native runtime sums over the innermost axis only")
        rows, cols = x.size // x.shape[-1], x.shape[-1]
        if y.size != rows:
            self.fail(op, f"output {list(y.shape)} does not hold the {rows} sums")
        mult, shift = quantize_multiplier(float(x.scale) / float(y.scale))
        name = self.step_name([(op, y)])
        step = Step("sum", name, f"SUM '{y.name}' {list(x.shape)} -> {list(y.shape)} over the last axis",
                    x.index, y.index, macs=x.size)
        step.params = {"rows": rows, "cols": cols, "in_zero_point": x.zero_point, "multiplier": mult,
                       "shift": shift, "out_zero_point": y.zero_point}
        self.steps.append(step)


def lower(model: ModelInfo) -> NativePlan:
    return Lowering(model).lower()


