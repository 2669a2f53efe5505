"""Native runtime code generator: .tflite -> readable C calling hand-written int8 kernels.

`lower(model)` checks every operator against what the kernels in
firmware/runtime/native/ can run *bit-exactly like TFLite Micro* and turns the
graph into a list of steps with precomputed constants; anything else is
refused here, with a one-line LenetMcuError, never by wrong numbers on the chip.

Constants follow TFLM's Prepare() code exactly:
  - conv / per-channel FC: QuantizeMultiplier(double(s_in) * double(s_w[c]) / double(s_out))
  - per-tensor FC: QuantizeMultiplier(double(float(s_in * s_w)) / double(s_out))
  - QuantizeMultiplier: frexp, round half away from zero, the q == 2^31 fix,
    flush below 2^-31 to zero (no TFLITE_SINGLE_ROUNDING in TFLM builds)
  - fused activation ranges: Quantize() in float32, round half away from zero
  - SOFTMAX: PreprocessSoftmaxScaling and CalculateInputRadius with 5 integer bits
  - TANH: a 256-entry table produced by the TFLM TANH kernel itself
The input zero point is folded into the bias (bias - zp_in * sum(w)), exact
for VALID convolutions and fully connected layers.
The TFLM arithmetic below is ported from TensorFlow Lite Micro, Apache License 2.0 (see NOTICE).

`generate(tflite_path, out_dir)` writes model_info.h, native_model.h and
native_model.c into out_dir (atomically, file by file).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lenet_mcu import atomic
from lenet_mcu.codegen.model_info import render_model_info_h
from lenet_mcu.codegen.templating import render
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.tflite_model import ModelInfo, TensorInfo, load_model

SUPPORTED_OPS = ("CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "TANH", "SOFTMAX", "RESHAPE")
ELEMENTWISE_LUT_OPS = ("TANH",)
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
IM2COL_MAX_CHANNELS = 64  # NN_MAX_CHANNELS in nn_kernels.h
INT8_MIN, INT8_MAX = -128, 127


# ------------------------------------------------------------ TFLM arithmetic

def round_half_away(x: float) -> int:
    """std::round / TfLiteRound."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier -> (int32 multiplier, shift); shift > 0 is a left shift."""
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed > (1 << 31):
        raise LenetMcuError(f"requantization multiplier {real_multiplier!r} cannot be represented")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if q_fixed < 0:
        raise LenetMcuError(f"negative requantization multiplier {real_multiplier!r} (negative scale)")
    return int(q_fixed), int(shift)


def quantize_float(scale: float, zero_point: int, value: float) -> int:
    """tflite::Quantize used by CalculateActivationRangeQuantized (float32 division)."""
    tmp = float(np.float32(np.float32(value) / np.float32(scale)))
    return zero_point + round_half_away(tmp)


def activation_range(activation: str, scale: float, zero_point: int, where: str) -> tuple[int, int]:
    lo, hi = INT8_MIN, INT8_MAX
    if activation == "NONE":
        return lo, hi
    if activation == "RELU":
        return max(lo, quantize_float(scale, zero_point, 0.0)), hi
    if activation == "RELU6":
        return max(lo, quantize_float(scale, zero_point, 0.0)), min(hi, quantize_float(scale, zero_point, 6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, quantize_float(scale, zero_point, -1.0)), min(hi, quantize_float(scale, zero_point, 1.0))
    raise LenetMcuError(f"{where}: fused activation {activation} is not supported (supported: {', '.join(ACTIVATIONS)})")


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling + CalculateInputRadius for int8 (5 integer bits)."""
    integer_bits = 5
    real = min(float(beta) * float(input_scale) * float(1 << (31 - integer_bits)), float((1 << 31) - 1))
    if not real > 1.0:
        raise LenetMcuError(f"softmax input multiplier {real!r} is not greater than one (input scale too small)")
    multiplier, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise LenetMcuError(f"softmax input multiplier {real!r} gives a negative left shift")
    max_input_rescaled = 1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift)
    diff_min = -int(math.floor(max_input_rescaled))
    return multiplier, left_shift, diff_min


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
    name: str  # C identifier prefix, e.g. "layer0"
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
            elif op.op == "AVERAGE_POOL_2D":
                self.lower_pool(op)
            elif op.op in ELEMENTWISE_LUT_OPS:
                self.lower_lut(op)
            elif op.op == "SOFTMAX":
                self.lower_softmax(op)
            elif op.op == "RESHAPE":
                self.lower_reshape(op)
        storage, arena = self.plan_memory()
        macs = sum(s.macs for s in self.steps)
        return NativePlan(m, self.steps, storage, arena, macs, self.luts)

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
            self.luts[key] = f"lut{len(self.luts)}_{op.op.lower()}"
        return self.luts[key]

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
        mult, shift = self.requant(x, scales, y, oc, per_tensor_float_product=False)
        weights = w.data.astype(np.int8)
        folded = self.fold_bias(op, bias, weights.reshape(oc, -1), x.zero_point)

        name = f"layer{len(self.steps)}"
        title = [f"CONV_2D '{y.name}' {list(x.shape)} -> {list(y.shape)}, {kh}x{kw} stride {sh}x{sw}"]
        consumed.add(op.index)
        lut, out_tensor = self.fuse_tanh(y, consumed, title)
        pool_h = pool_w = 1
        pool_min, pool_max = INT8_MIN, INT8_MAX
        pool = self.single_consumer(out_tensor.index, "AVERAGE_POOL_2D")
        if pool is not None:
            po = pool.options
            fused = (po.get("padding") == "VALID" and po["stride_h"] == po["filter_h"]
                     and po["stride_w"] == po["filter_w"])
            if fused:
                p_out = self.check_pool(pool)
                pool_h, pool_w = po["filter_h"], po["filter_w"]
                pool_min, pool_max = activation_range(po.get("activation", "NONE"), p_out.scale, p_out.zero_point,
                                                      f"{self.where_model}: operator {pool.index} (AVERAGE_POOL_2D)")
                consumed.add(pool.index)
                title.append(f"AVERAGE_POOL_2D '{p_out.name}' {pool_h}x{pool_w} -> {list(p_out.shape)} (fused)")
                out_tensor = p_out
        step = Step("conv", name, "\n".join(title), x.index, out_tensor.index, macs=oh * ow * oc * kh * kw * ic)
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

    def requant(self, x, scales, y, channels, per_tensor_float_product):
        mult = np.zeros(channels, np.int64)
        shift = np.zeros(channels, np.int64)
        for i in range(channels):
            s_w = scales[i] if scales.size > 1 else scales[0]
            if per_tensor_float_product:
                # GetQuantizedConvolutionMultipler: the product is taken in float32
                real = float(np.float32(x.scales[0]) * np.float32(s_w)) / float(y.scales[0])
            else:
                real = float(x.scales[0]) * float(s_w) / float(y.scales[0])
            mult[i], shift[i] = quantize_multiplier(real)
        return mult, shift

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
                                            f"{self.where_model}: operator {op.index} (AVERAGE_POOL_2D)")
        name = f"layer{len(self.steps)}"
        step = Step("pool", name, f"AVERAGE_POOL_2D '{y.name}' {list(x.shape)} -> {list(y.shape)}, "
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
        mult, shift = self.requant(x, scales, y, out_features, per_tensor_float_product=scales.size == 1)
        weights = w.data.astype(np.int8)
        folded = self.fold_bias(op, bias, weights, x.zero_point)
        name = f"layer{len(self.steps)}"
        title = [f"FULLY_CONNECTED '{y.name}' {list(x.shape)} -> {list(y.shape)}"]
        consumed.add(op.index)
        lut, out_tensor = self.fuse_tanh(y, consumed, title)
        step = Step("fc", name, "\n".join(title), x.index, out_tensor.index, macs=batches * out_features * in_features)
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
        name = f"layer{len(self.steps)}"
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
        name = f"layer{len(self.steps)}"
        step = Step("softmax", name, f"SOFTMAX '{y.name}' {list(x.shape)}, beta {beta}", x.index, y.index)
        step.params = {"outer": x.size // depth, "depth": depth, "input_multiplier": mult,
                       "input_left_shift": left_shift, "diff_min": diff_min}
        self.steps.append(step)

    def lower_reshape(self, op):
        x = self.activation(op, 0, "input")
        y = self.activation(op, 0, "output", "output")
        if x.size != y.size or x.scale != y.scale or x.zero_point != y.zero_point:
            self.fail(op, "changes the element count or the quantization; only a pure reshape is supported")
        name = f"layer{len(self.steps)}"
        self.steps.append(Step("copy", name, f"RESHAPE '{y.name}' {list(x.shape)} -> {list(y.shape)}",
                               x.index, y.index, params={"count": y.size}))

    # --- memory
    def plan_memory(self) -> tuple[dict[int, str], int]:
        """Activation buffers in one static arena: greedy, largest first, like TFLM's planner.

        The graph input is the caller's `in`, the graph output the caller's `out`; a
        RESHAPE between internal tensors is an alias, not a copy.
        """
        m = self.model
        graph_in, graph_out = m.inputs[0], m.outputs[0]
        alias: dict[int, int] = {}
        steps = []
        for s in self.steps:
            if s.kind == "copy" and s.output != graph_out:
                alias[s.output] = alias.get(s.input, s.input)
                continue
            steps.append(s)
        self.steps = steps

        def root(t):
            return alias.get(t, t)

        for s in self.steps:
            s.input, s.output = root(s.input), root(s.output)
        life: dict = {}  # tensor index or ("scratch", step name) -> [first step, last step]
        sizes: dict = {}
        for i, s in enumerate(self.steps):
            for t in (s.input, s.output):
                if t in (graph_in, graph_out):
                    continue
                life.setdefault(t, [i, i])
                life[t][0] = min(life[t][0], i)
                life[t][1] = max(life[t][1], i)
                sizes[t] = m.tensors[t].size
            if s.scratch_bytes:
                life[("scratch", s.name)] = [i, i]
                sizes[("scratch", s.name)] = s.scratch_bytes
        order = sorted(life, key=lambda t: (-sizes[t], life[t][0]))
        placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
        offsets: dict = {}
        for t in order:
            size = sizes[t]
            first, last = life[t]
            offset = 0
            for o, sz, f, l in sorted(placed):
                overlaps_in_time = not (last < f or first > l)
                if overlaps_in_time and offset < o + sz and o < offset + size:
                    offset = (o + sz + 3) // 4 * 4
            offsets[t] = offset
            placed.append((offset, size, first, last))
        arena = max([o + sizes[t] for t, o in offsets.items()], default=0)
        storage = {graph_in: "in", graph_out: "out"}
        for t, o in offsets.items():
            storage[t] = f"arena + {o}"
        for t, r in alias.items():
            storage[t] = storage.get(r, "in")
        return storage, (arena + 3) // 4 * 4


def lower(model: ModelInfo) -> NativePlan:
    return Lowering(model).lower()


# ------------------------------------------------------------ C rendering

def c_array(values: np.ndarray, per_line: int = 16, width: int = 4) -> str:
    flat = [int(v) for v in np.asarray(values).reshape(-1)]
    lines = []
    for i in range(0, len(flat), per_line):
        lines.append("    " + ", ".join(f"{v:{width}d}" for v in flat[i:i + per_line]) + ",")
    return "\n".join(lines)


def c_array_rows(values: np.ndarray, label: str) -> str:
    """One block per output channel/row, so a reader can find a filter."""
    arr = np.asarray(values)
    if arr.ndim < 2:
        return c_array(arr, per_line=8 if arr.dtype != np.int8 else 16, width=11 if arr.dtype != np.int8 else 4)
    blocks = []
    for i, row in enumerate(arr.reshape(arr.shape[0], -1)):
        blocks.append(f"    /* {label} {i} */\n" + c_array(row, per_line=20))
    return "\n".join(blocks)


def render_native(plan: NativePlan) -> tuple[str, str]:
    m = plan.model
    steps = []
    for s in plan.steps:
        arrays = []
        for c_type, name, data, comment in s.arrays:
            label = "output channel" if s.kind == "conv" else "output"
            body = c_array_rows(data, label) if data.ndim > 1 else c_array(
                data, per_line=8, width=11)
            arrays.append({"c_type": c_type, "name": name, "size": int(np.asarray(data).size),
                           "comment": comment, "body": body})
        steps.append({
            "kind": s.kind, "name": s.name, "title_lines": s.title.split("\n"), "arrays": arrays,
            "params": s.params, "input": plan.storage[s.input], "output": plan.storage[s.output],
            "macs": s.macs, "scratch": plan.storage.get(("scratch", s.name)),
        })
    luts = [{"name": name, "body": c_array(np.frombuffer(key, np.int8))} for key, name in plan.luts.items()]
    buffers = []  # arena buffers in the order the layers write them
    for st in plan.steps:
        expr = plan.storage[st.output]
        if expr.startswith("arena"):
            tensor = m.tensors[st.output]
            off = int(expr.split("+")[1])
            buffers.append((len(buffers), f"{st.name} writes arena[{off}..{off + tensor.size}): "
                                          f"{list(tensor.shape)} '{tensor.name}'"))
        scratch = plan.storage.get(("scratch", st.name))
        if scratch:
            off = int(scratch.split("+")[1])
            buffers.append((len(buffers), f"{st.name} im2col patch arena[{off}..{off + st.scratch_bytes})"))
    for s in steps:
        s["shape"] = list(m.tensors[next(st.output for st in plan.steps if st.name == s["name"])].shape)
    context = {
        "model_name": m.name, "sha256": m.sha256, "steps": steps, "luts": luts,
        "arena_bytes": plan.arena_bytes, "arena_words": max(1, plan.arena_bytes // 4), "macs": plan.macs,
        "input_bytes": m.input.size, "output_count": m.output.size,
        "ops": ", ".join(op.op for op in m.operators),
        "buffers": [text for _, text in sorted(buffers)],
    }
    return render("native_model.h.j2", **context), render("native_model.c.j2", **context)


def generate(tflite_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write model_info.h, native_model.h, native_model.c for `tflite_path` into `out_dir`."""
    model = load_model(tflite_path)
    info_h = render_model_info_h(model)  # checks the firmware's I/O contract first
    plan = lower(model)
    header, source = render_native(plan)
    out_dir = Path(out_dir)
    written = []
    for name, text in (("model_info.h", info_h), ("native_model.h", header), ("native_model.c", source)):
        atomic.write_text(out_dir / name, text)
        written.append(out_dir / name)
    return written
