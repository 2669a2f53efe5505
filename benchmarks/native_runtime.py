"""Benchmark the native int8 runtime: flash, RAM, instructions per inference, verify time.

    python benchmarks/native_runtime.py [--artifacts artifacts] [--images 1000] [--data DIR] [--out FILE]

Steps (nothing is written into the artifacts folder; it works on a copy):
  1. lenet-mcu codegen --runtime native, firmware build for the STM32F405
  2. flash / static RAM from the ELF sections, activation arena from the plan
  3. QEMU netduinoplus2 with -icount shift=0 (TIM2 ticks = executed instructions):
     the serial check (lenet_mcu.host.verify) over the first N test images,
     every output compared with the TFLM reference; instructions per inference
     from the RESULT tick counts; wall time of the check
  4. the same C built for the host with gcc: time per inference (for reference)
  5. with --link-floor: the same check with an infer() that computes nothing, to
     split the QEMU wall time into serial link + emulation of the inference
Goals: flash <= 80 KB, static RAM <= 6,448 B (the runtime before its fast kernels), <= 0.45 M instructions per inference,
the 10,000-image QEMU check in about 60 s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from bench_options import artifacts_option, data_option, images_option

from lenet_mcu import artifacts as art

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))  # native_util: the gcc build of the generated C

GOALS = {
    "flash_bytes": 80 * 1024,
    "ram_static_bytes": 6_448,
    "instructions_per_inference": 450_000,
    "verify_10000_seconds": 60,
}


def bench_native(
    artifacts: Path, images: int, data_dir: Path | None, link_floor_images: int = 0, host_gcc: bool = True
) -> dict:
    """Steps 1-5 above on a scratch copy of `artifacts`; returns the result dict."""
    from lenet_mcu.codegen import generate, native
    from lenet_mcu.firmware.build import build_firmware, size_report
    from lenet_mcu.host.qemu import QemuBoard
    from lenet_mcu.host.verify import run_verify
    from lenet_mcu.tflite_model import load_model

    result: dict = {"goals": GOALS}
    with tempfile.TemporaryDirectory(prefix="bench-native-") as tmp:
        work = Path(tmp) / "artifacts"
        work.mkdir()
        for name in (art.TFLITE_MODEL, art.REFERENCES):
            shutil.copy(artifacts / name, work / name)
        gen = art.codegen_dir(work, "native")
        generate("native", work / art.TFLITE_MODEL, gen)
        plan = native.lower(load_model(work / art.TFLITE_MODEL))
        result["model_sha256"] = plan.model.sha256
        result["macs_per_inference"] = plan.macs
        result["arena_bytes"] = plan.arena_bytes
        result["layers"] = [s.title.replace("\n", " + ") for s in plan.steps]

        elf = build_firmware("native", gen, art.build_dir(work, "native"))
        size = size_report(elf)
        result["flash_bytes"] = size["flash_bytes"]
        result["text_bytes"] = size["text_bytes"]
        result["ram_static_bytes"] = size["ram_static_bytes"]
        result["ram_detail"] = {k: size[k] for k in ("data_bytes", "bss_bytes", "stack_reserved_bytes")}
        weights = sum(int(np.asarray(a[2]).nbytes) for s in plan.steps for a in s.arrays)
        result["constants_bytes"] = weights + 256 * len(plan.luts)

        click.echo(f"QEMU: serial check of {images} test images ...", err=True)
        with QemuBoard(elf, icount=True) as board:
            t0 = time.monotonic()
            report = run_verify(
                work,
                port=board.url,
                limit=images,
                data_dir=data_dir,
                progress=True,
                log=lambda msg: click.echo(msg, err=True),
            )
            seconds = time.monotonic() - t0
        ticks = report["ticks"]
        result["device_arena_bytes"] = report["device"]["arena_bytes"]
        result["stack_peak_bytes"] = (report.get("device_stats") or {}).get("stack_peak_bytes")
        result["profile"] = report.get("profile")  # ticks per layer of test image 0
        result["qemu"] = {
            "images": report["images"],
            "result": report["result"],
            "images_differing_from_tflm": report["bitexact"]["images_differing"] if "bitexact" in report else None,
            "instructions_per_inference": {k: ticks[k] for k in ("min", "median", "mean", "max")},
            "instructions_per_mac": ticks["mean"] / plan.macs,
            "seconds": round(seconds, 2),
            "images_per_second": round(report["images"] / seconds, 1),
            "projected_10000_seconds": round(seconds * 10000 / max(1, report["images"]), 1),
        }

        if link_floor_images:
            from lenet_mcu.host.verify import VerifyFailed

            floor_dir = work / "codegen" / "floor"
            shutil.copytree(gen, floor_dir)
            # same model_info.h/native_model.h, but no inference: outputs are wrong on purpose
            (floor_dir / "native_model.c").write_text(
                '#include "native_model.h"\n'
                "const char *const native_layer_names[NATIVE_LAYER_COUNT];\n"
                "void infer_profiled(const int8_t *in, int8_t *out, uint32_t (*clock)(void), uint32_t *ticks)\n"
                "{\n    (void)in, (void)out, (void)clock, (void)ticks;\n}\n"
                "void infer(const int8_t *in, int8_t *out)\n"
                "{\n    for (int i = 0; i < NATIVE_OUTPUT_COUNT; ++i) out[i] = in[i];\n}\n"
            )
            floor_elf = build_firmware("native", floor_dir, work / "build" / "floor")
            click.echo(f"QEMU: link floor over {link_floor_images} images ...", err=True)
            with QemuBoard(floor_elf, icount=True) as board:
                t0 = time.monotonic()
                try:
                    run_verify(
                        work,
                        port=board.url,
                        limit=link_floor_images,
                        data_dir=data_dir,
                        progress=False,
                        log=lambda msg: None,
                    )
                except VerifyFailed:
                    pass  # expected: no inference
                floor_s = time.monotonic() - t0
            per_image = floor_s / link_floor_images
            q = result["qemu"]
            q["link_floor"] = {
                "images": link_floor_images,
                "seconds": round(floor_s, 2),
                "milliseconds_per_image": round(per_image * 1e3, 2),
                "projected_10000_seconds": round(per_image * 10000, 1),
                "inference_milliseconds_per_image": round(q["seconds"] / q["images"] * 1e3 - per_image * 1e3, 2),
            }

        if host_gcc:
            result["host_gcc"] = bench_host_gcc(gen, work / art.REFERENCES, data_dir)

    q = result["qemu"]
    result["meets_goals"] = {
        "flash": result["flash_bytes"] <= GOALS["flash_bytes"],
        "ram": result["ram_static_bytes"] <= GOALS["ram_static_bytes"],
        "instructions": q["instructions_per_inference"]["max"] <= GOALS["instructions_per_inference"],
        "bit_exact": q["result"] == "pass",
    }
    return result


def bench_host_gcc(gen: Path, references: Path, data_dir: Path | None, images: int = 2000) -> dict:
    """Step 4: the generated C built for the host with gcc, time per inference (for scale)."""
    from native_util import build_driver

    from lenet_mcu import mnist

    refs = np.load(references)
    x_images, _ = mnist.load_split("test", data_dir)
    x = mnist.quantize_input(
        mnist.preprocess(x_images[:images]), float(refs["input_scale"]), int(refs["input_zero_point"])
    )
    exe = build_driver(gen)
    t0 = time.monotonic()
    out = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, check=True).stdout
    host_s = time.monotonic() - t0
    host_out = np.frombuffer(out, np.int8).reshape(len(x), -1)
    return {
        "images": len(x),
        "microseconds_per_inference": round(host_s / len(x) * 1e6, 1),
        "images_differing_from_tflm": int(np.any(host_out != refs["tflm_int8"][: len(x)], axis=1).sum()),
    }


@click.command()
@artifacts_option
@images_option()
@data_option
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the JSON result here too",
)
@click.option(
    "--link-floor",
    "link_floor_images",
    type=int,
    default=0,
    show_default=True,
    help="also time this many images with a firmware whose infer() does nothing",
)
def main(artifacts: Path, images: int, data_dir: Path | None, out_path: Path | None, link_floor_images: int):
    from lenet_mcu import atomic

    result = bench_native(artifacts, images, data_dir, link_floor_images=link_floor_images)
    text = json.dumps(result, indent=2)
    click.echo(text)
    if out_path:
        atomic.write_text(out_path, text + "\n")


if __name__ == "__main__":
    main()
