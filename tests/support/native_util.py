"""Helpers for the native-runtime tests: tiny TFLite models, a gcc build of the generated C.

Models are made with lenet_mcu.tflite_model.build_model (the flatbuffer
schema object API that tflite-micro ships), so no TensorFlow is needed.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from lenet_mcu.codegen import native
from lenet_mcu.tflite_model import OperatorSpec, TensorSpec, build_model, load_model

REPO_ROOT = Path(__file__).resolve().parents[2]
KERNEL_DIR = REPO_ROOT / "firmware" / "runtime" / "native"
DRIVER = Path(__file__).with_name("native_host_driver.c")
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wshadow", "-pedantic", "-Werror"]

ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
PAD = {"SAME": 0, "VALID": 1}


def have_gcc() -> bool:
    return shutil.which("gcc") is not None


def build_driver(gen_dir: Path, extra_flags: list[str] | None = None) -> Path:
    """Compile generated model + kernels + the stdin/stdout driver with the host gcc."""
    exe = gen_dir / "driver"
    sources = sorted(gen_dir.glob("*.c")) + sorted(KERNEL_DIR.glob("nn_*.c"))
    cmd = ["gcc", *CFLAGS, *(extra_flags or []), f"-I{gen_dir}", f"-I{KERNEL_DIR}",
           *map(str, sources), str(DRIVER), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"gcc failed:\n{' '.join(cmd)}\n{proc.stderr[-4000:]}")
    return exe


def run_driver(exe: Path, inputs: np.ndarray, output_count: int) -> np.ndarray:
    data = np.ascontiguousarray(inputs, dtype=np.int8).tobytes()
    proc = subprocess.run([str(exe)], input=data, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return np.frombuffer(proc.stdout, np.int8).reshape(len(inputs), output_count)


def native_outputs(model_bytes: bytes, inputs: np.ndarray, work: Path) -> np.ndarray:
    """Codegen + gcc + run: the native runtime's int8 outputs for a model given as bytes."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "model.tflite"
    path.write_bytes(model_bytes)
    gen = work / "gen"
    native.generate(path, gen)
    exe = build_driver(gen)
    plan = native.lower(load_model(path))
    return run_driver(exe, inputs.reshape(len(inputs), -1), plan.model.output.size)


def random_inputs(rng, count: int, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=(count, *shape), dtype=np.int8)


def conv_model(rng, in_shape=(12, 12, 3), out_c=5, kernel=(3, 3), stride=(1, 1), activation="NONE",
               per_channel=True, tanh=False, pool=None, pool_padding="VALID", fc_after=False,
               pool_op: str = "AVERAGE_POOL_2D") -> bytes:
    """CONV_2D [+ TANH] [+ AVERAGE_POOL_2D or pool_op] with random int8 weights and quantization."""
    h, w, c = in_shape
    kh, kw = kernel
    sh, sw = stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    in_scale = float(rng.uniform(0.004, 0.05))
    in_zp = int(rng.integers(-128, 128))
    w_scales = rng.uniform(0.002, 0.02, size=out_c if per_channel else 1).astype(np.float32)
    weights = rng.integers(-127, 128, size=(out_c, kh, kw, c), dtype=np.int8)
    bias = rng.integers(-(1 << 14), 1 << 14, size=out_c).astype(np.int32)
    # output scale so that values roughly fill int8, with some saturation
    out_scale = float(in_scale * float(np.mean(w_scales)) * 64.0 * np.sqrt(kh * kw * c) / 20.0)
    out_zp = int(rng.integers(-20, 21))
    tensors = [
        TensorSpec("input", (1, h, w, c), "int8", in_scale, in_zp),
        TensorSpec("filter", (out_c, kh, kw, c), "int8", list(w_scales), 0, 0, weights),
        TensorSpec("bias", (out_c,), "int32", [float(in_scale * s) for s in w_scales], 0, 0, bias),
        TensorSpec("conv", (1, oh, ow, out_c), "int8", out_scale, out_zp),
    ]
    ops = [OperatorSpec("CONV_2D", [0, 1, 2], [3], {
        "padding": PAD["VALID"], "strideW": sw, "strideH": sh, "fusedActivationFunction": ACT[activation],
        "dilationWFactor": 1, "dilationHFactor": 1})]
    last = 3
    if tanh:
        tensors.append(TensorSpec("tanh", (1, oh, ow, out_c), "int8", 1.0 / 128, 0))
        ops.append(OperatorSpec("TANH", [last], [len(tensors) - 1]))
        last = len(tensors) - 1
    if pool is not None:
        (ph, pw), (psh, psw) = pool
        t = tensors[last]
        if pool_padding == "VALID":
            qh, qw = (oh - ph) // psh + 1, (ow - pw) // psw + 1
        else:
            qh, qw = -(-oh // psh), -(-ow // psw)
        tensors.append(TensorSpec("pool", (1, qh, qw, out_c), "int8", t.scale, t.zero_point))
        ops.append(OperatorSpec(pool_op, [last], [len(tensors) - 1], {
            "padding": PAD[pool_padding], "strideW": psw, "strideH": psh, "filterWidth": pw, "filterHeight": ph,
            "fusedActivationFunction": 0}))
        last = len(tensors) - 1
    return build_model(tensors, ops, [0], [last])


def fc_model(rng, in_features=48, out_features=11, per_channel=True, activation="NONE", tanh=False,
             in_shape=None) -> bytes:
    in_scale = float(rng.uniform(0.004, 0.05))
    in_zp = int(rng.integers(-128, 128))
    w_scales = rng.uniform(0.002, 0.02, size=out_features if per_channel else 1).astype(np.float32)
    weights = rng.integers(-127, 128, size=(out_features, in_features), dtype=np.int8)
    bias = rng.integers(-(1 << 14), 1 << 14, size=out_features).astype(np.int32)
    out_scale = float(in_scale * float(np.mean(w_scales)) * 64.0 * np.sqrt(in_features) / 20.0)
    out_zp = int(rng.integers(-20, 21))
    # per-tensor: TFLM checks that the bias scale matches input_scale * filter_scale
    bias_scales = [float(np.float32(in_scale) * s) for s in w_scales]
    tensors = [
        TensorSpec("input", tuple(in_shape or (1, 1, 1, in_features)), "int8", in_scale, in_zp),
        TensorSpec("weights", (out_features, in_features), "int8", list(w_scales), 0, 0, weights),
        TensorSpec("bias", (out_features,), "int32", bias_scales, 0, 0, bias),
        TensorSpec("fc", (1, out_features), "int8", out_scale, out_zp),
    ]
    ops = [OperatorSpec("FULLY_CONNECTED", [0, 1, 2], [3], {"fusedActivationFunction": ACT[activation]})]
    last = 3
    if tanh:
        tensors.append(TensorSpec("tanh", (1, out_features), "int8", 1.0 / 128, 0))
        ops.append(OperatorSpec("TANH", [3], [4]))
        last = 4
    return build_model(tensors, ops, [0], [last])


def unary_model(op: str, shape, in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                options: dict | None = None) -> bytes:
    tensors = [TensorSpec("input", tuple(shape), "int8", in_scale, in_zp),
               TensorSpec("output", tuple(shape), "int8", out_scale, out_zp)]
    return build_model(tensors, [OperatorSpec(op, [0], [1], options or {})], [0], [1])


def pool_model(in_shape, filt, stride, padding, scale=0.02, zp=5, activation="NONE",
               op: str = "AVERAGE_POOL_2D") -> bytes:
    h, w, c = in_shape
    if padding == "VALID":
        oh, ow = (h - filt[0]) // stride[0] + 1, (w - filt[1]) // stride[1] + 1
    else:
        oh, ow = -(-h // stride[0]), -(-w // stride[1])
    tensors = [TensorSpec("input", (1, h, w, c), "int8", scale, zp),
               TensorSpec("output", (1, oh, ow, c), "int8", scale, zp)]
    ops = [OperatorSpec(op, [0], [1], {
        "padding": PAD[padding], "strideW": stride[1], "strideH": stride[0], "filterWidth": filt[1],
        "filterHeight": filt[0], "fusedActivationFunction": ACT[activation]})]
    return build_model(tensors, ops, [0], [1])


def depthwise_model(rng, in_shape=(28, 28, 6), kernel=(2, 2), stride=(2, 2), tanh=True, equal_taps=True,
                    per_channel=True) -> bytes:
    """DEPTHWISE_CONV_2D, one filter per channel (+ TANH): LeCun subsampling when the taps are equal."""
    h, w, c = in_shape
    kh, kw = kernel
    oh, ow = (h - kh) // stride[0] + 1, (w - kw) // stride[1] + 1
    in_scale, in_zp = 1 / 128, 0  # a tanh output, as in LeNet
    if equal_taps:  # the converter stores coefficient * window sum as four equal taps of +-127
        filt = np.broadcast_to(rng.choice([-127, 127], size=(1, 1, 1, c)), (1, kh, kw, c)).astype(np.int8)
    else:
        filt = rng.integers(-127, 128, size=(1, kh, kw, c), dtype=np.int8)
    w_scales = list(rng.uniform(0.001, 0.004, c)) if per_channel else [0.0025]
    out_scale, out_zp = 0.004, int(rng.integers(-20, 20))
    tensors = [TensorSpec("input", (1, h, w, c), "int8", in_scale, in_zp),
               TensorSpec("s2/filter", (1, kh, kw, c), "int8", w_scales, 0, 3, filt),
               TensorSpec("s2/bias", (c,), "int32", [in_scale * s for s in w_scales],
                          0, 0, rng.integers(-3000, 3000, size=(c,))),
               TensorSpec("s2/out", (1, oh, ow, c), "int8", out_scale, out_zp)]
    ops = [OperatorSpec("DEPTHWISE_CONV_2D", [0, 1, 2], [3], {
        "padding": PAD["VALID"], "strideW": stride[1], "strideH": stride[0], "depthMultiplier": 1,
        "dilationWFactor": 1, "dilationHFactor": 1})]
    if tanh:
        tensors.append(TensorSpec("s2/tanh", (1, oh, ow, c), "int8", 1 / 128, 0))
        ops.append(OperatorSpec("TANH", [3], [4]))
    return build_model(tensors, ops, [0], [len(tensors) - 1])


def rbf_model(rng, rows=10, cols=84, with_sum=True, constant_first=False, x_scale=1 / 128, x_zp=0,
              code_scale=2 / 255, code_zp=-1, sq_scale=0.0058, sq_zp=-128, out_scale=0.34, out_zp=-128) -> bytes:
    """The RBF output layer as the converter writes it: F6 [1,1,1,cols] -> RESHAPE [1,1,cols] ->
    SQUARED_DIFFERENCE against constant codes [1,rows,cols] -> SUM over the last axis -> [1,rows]."""
    codes = rng.choice([-128, 126], size=(1, rows, cols)).astype(np.int8)
    tensors = [TensorSpec("f6", (1, 1, 1, cols), "int8", x_scale, x_zp),
               TensorSpec("output/shape", (3,), "int32", None, None, data=np.array([1, 1, cols], np.int32)),
               TensorSpec("output/expand", (1, 1, cols), "int8", x_scale, x_zp),
               TensorSpec("output/codes", (1, rows, cols), "int8", code_scale, code_zp, data=codes),
               TensorSpec("output/square", (1, rows, cols), "int8", sq_scale, sq_zp)]
    ops = [OperatorSpec("RESHAPE", [0, 1], [2], {"newShape": [1, 1, cols]}),
           OperatorSpec("SQUARED_DIFFERENCE", [3, 2] if constant_first else [2, 3], [4], {})]
    if with_sum:
        tensors += [TensorSpec("output/axis", (1,), "int32", None, None, data=np.array([2], np.int32)),
                    TensorSpec("output/sum", (1, rows), "int8", out_scale, out_zp)]
        ops.append(OperatorSpec("SUM", [4, 5], [6], {"keepDims": False}))
    return build_model(tensors, ops, [0], [len(tensors) - 1])


def conv_reshape_fc_model(rng, reshape_last: bool = False) -> bytes:
    """CONV_2D -> RESHAPE (Flatten) -> FULLY_CONNECTED [-> RESHAPE]: the alias and copy paths of the planner."""
    in_scale, in_zp = 0.02, -7
    w1 = rng.integers(-127, 128, size=(4, 3, 3, 2), dtype=np.int8)
    s1 = rng.uniform(0.002, 0.02, size=4).astype(np.float32)
    b1 = rng.integers(-4000, 4000, size=4).astype(np.int32)
    c_scale, c_zp = 0.05, 3
    w2 = rng.integers(-127, 128, size=(6, 4 * 4 * 4), dtype=np.int8)
    s2 = rng.uniform(0.002, 0.02, size=6).astype(np.float32)
    b2 = rng.integers(-4000, 4000, size=6).astype(np.int32)
    tensors = [
        TensorSpec("input", (1, 6, 6, 2), "int8", in_scale, in_zp),
        TensorSpec("filter", (4, 3, 3, 2), "int8", list(s1), 0, 0, w1),
        TensorSpec("bias", (4,), "int32", [in_scale * float(s) for s in s1], 0, 0, b1),
        TensorSpec("conv", (1, 4, 4, 4), "int8", c_scale, c_zp),
        TensorSpec("shape", (2,), "int32", None, None, 0, np.array([1, 64], np.int32)),
        TensorSpec("flat", (1, 64), "int8", c_scale, c_zp),
        TensorSpec("weights", (6, 64), "int8", list(s2), 0, 0, w2),
        TensorSpec("bias2", (6,), "int32", [c_scale * float(s) for s in s2], 0, 0, b2),
        TensorSpec("fc", (1, 6), "int8", 0.1, -2),
    ]
    ops = [
        OperatorSpec("CONV_2D", [0, 1, 2], [3], {"padding": PAD["VALID"], "strideW": 1, "strideH": 1,
                                                 "dilationWFactor": 1, "dilationHFactor": 1}),
        OperatorSpec("RESHAPE", [3, 4], [5], {"newShape": [1, 64]}),
        OperatorSpec("FULLY_CONNECTED", [5, 6, 7], [8], {}),
    ]
    last = 8
    if reshape_last:
        tensors.append(TensorSpec("shape2", (4,), "int32", None, None, 0, np.array([1, 1, 1, 6], np.int32)))
        tensors.append(TensorSpec("out", (1, 1, 1, 6), "int8", 0.1, -2))
        ops.append(OperatorSpec("RESHAPE", [8, 9], [10], {"newShape": [1, 1, 1, 6]}))
        last = 10
    return build_model(tensors, ops, [0], [last])


def lenet_convs_model(rng, c3_connections=None, c5_maps: int = 64) -> bytes:
    """LeNet's C1 + tanh + S2, C3 + tanh + S4 and C5 with random weights (input 32x32x1; C5 has
    c5_maps outputs, fewer than LeNet's 120 so that a RESULT frame holds them).

    c3_connections: an optional 0/1 [6, 16] table; absent connections get exact zero weights,
    like the --c3-table model. Output scales keep the values spread over int8."""
    in_scale, in_zp = 1.0 / 255, -128
    tensors = [TensorSpec("input", (1, 32, 32, 1), "int8", in_scale, in_zp)]
    ops = []

    def conv_tanh_pool(x_index: int, x_scale: float, h: int, c: int, oc: int, mask=None) -> tuple[int, float]:
        w_scales = rng.uniform(0.002, 0.02, size=oc).astype(np.float32)
        weights = rng.integers(-127, 128, size=(oc, 5, 5, c), dtype=np.int8)
        if mask is not None:
            weights = (weights * np.asarray(mask, np.int8).T[:, None, None, :]).astype(np.int8)
        bias = rng.integers(-(1 << 12), 1 << 12, size=oc).astype(np.int32)
        conv_scale = float(x_scale * float(np.mean(w_scales)) * 40.0 * np.sqrt(25 * c))
        base = len(tensors)
        oh = h - 4
        tensors.extend([
            TensorSpec(f"w{base}", (oc, 5, 5, c), "int8", list(w_scales), 0, 0, weights),
            TensorSpec(f"b{base}", (oc,), "int32", [float(x_scale * s) for s in w_scales], 0, 0, bias),
            TensorSpec(f"conv{base}", (1, oh, oh, oc), "int8", conv_scale, int(rng.integers(-10, 11))),
            TensorSpec(f"tanh{base}", (1, oh, oh, oc), "int8", 1.0 / 128, 0),
            TensorSpec(f"pool{base}", (1, oh // 2, oh // 2, oc), "int8", 1.0 / 128, 0),
        ])
        ops.extend([
            OperatorSpec("CONV_2D", [x_index, base, base + 1], [base + 2], {
                "padding": PAD["VALID"], "strideW": 1, "strideH": 1, "dilationWFactor": 1, "dilationHFactor": 1}),
            OperatorSpec("TANH", [base + 2], [base + 3]),
            OperatorSpec("AVERAGE_POOL_2D", [base + 3], [base + 4], {
                "padding": PAD["VALID"], "strideW": 2, "strideH": 2, "filterWidth": 2, "filterHeight": 2,
                "fusedActivationFunction": 0}),
        ])
        return base + 4, 1.0 / 128

    s2, s2_scale = conv_tanh_pool(0, in_scale, 32, 1, 6)
    s4, s4_scale = conv_tanh_pool(s2, s2_scale, 14, 6, 16, c3_connections)
    w_scales = rng.uniform(0.002, 0.02, size=c5_maps).astype(np.float32)
    base = len(tensors)
    tensors.extend([
        TensorSpec("w5", (c5_maps, 5, 5, 16), "int8", list(w_scales), 0, 0,
                   rng.integers(-127, 128, size=(c5_maps, 5, 5, 16), dtype=np.int8)),
        TensorSpec("b5", (c5_maps,), "int32", [float(s4_scale * s) for s in w_scales], 0, 0,
                   rng.integers(-(1 << 12), 1 << 12, size=c5_maps).astype(np.int32)),
        TensorSpec("c5", (1, 1, 1, c5_maps), "int8", float(s4_scale * float(np.mean(w_scales)) * 40.0 * 20.0), 3),
    ])
    ops.append(OperatorSpec("CONV_2D", [s4, base, base + 1], [base + 2], {
        "padding": PAD["VALID"], "strideW": 1, "strideH": 1, "dilationWFactor": 1, "dilationHFactor": 1}))
    return build_model(tensors, ops, [0], [base + 2])


def run_on_qemu(elf: Path, inputs: np.ndarray, timeout: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Each input through the firmware on QEMU (one RAW INFER at a time) -> (int8 outputs, ticks)."""
    import time

    import serial

    from lenet_mcu.host import protocol as P
    from lenet_mcu.host.qemu import QemuBoard, read_available, request_hello

    outputs, ticks = [], []
    with QemuBoard(elf, icount=True) as board:
        ser = serial.serial_for_url(board.url, timeout=0.05)
        try:
            request_hello(ser)
            reader = P.FrameReader()
            for i, x in enumerate(inputs):
                ser.write(P.encode_frame(P.MsgType.INFER, i, P.infer_body(np.ascontiguousarray(x, np.int8).ravel(), None)))
                result, deadline = None, time.monotonic() + timeout
                while result is None and time.monotonic() < deadline:
                    for f in reader.feed(read_available(ser)):
                        assert f.type == P.MsgType.RESULT and f.seq == i, f
                        result = P.parse_result(f)
                assert result is not None, f"no RESULT for input {i}"
                outputs.append(result.outputs)
                ticks.append(result.ticks)
        finally:
            ser.close()
    return np.stack(outputs), np.array(ticks)
